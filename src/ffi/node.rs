//! The node handle and its calls: the C face of [`crate::Node`].

use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use super::boundary::{guard, Failure};
use super::error::zgossip_result;
use super::ownership::{
    c_frames, c_string, free_frames, free_string, handle_into_raw, handle_ref, handle_take,
    out_mut, str_arg, with_str_array,
};
use super::view;
use crate::Node;

/// A gossip node (CZMQ: the `zgossip` actor), on an event-loop thread
/// shared by the nodes of the process (`ZGOSSIP_IO_THREADS`).
/// Opaque: create with `zgossip_new`, destroy with `zgossip_destroy`. One
/// handle may be used from several threads at once, but `zgossip_destroy`
/// must not overlap any other call on it.
#[allow(non_camel_case_types)]
pub struct zgossip_t {
    node: Node,
    /// Timeout of `zgossip_recvx` in ms, -1 = wait forever.
    rcvtimeo: AtomicI32,
}

// The claim above: a handle is shared between C threads as `&zgossip_t`.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<zgossip_t>()
};

/// Starts a node; `name` prefixes its trace lines (CZMQ:
/// `zactor_new (zgossip, name)`). Returns NULL on failure (`name` NULL or
/// not UTF-8, no thread could be started); `zgossip_last_error` says why.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_new(name: *const c_char) -> *mut zgossip_t {
    guard(|| {
        // SAFETY: name is NULL or a C string (API contract).
        let name = unsafe { str_arg(name, "name") }?;
        let node = Node::new(name)?;
        Ok(handle_into_raw(zgossip_t {
            node,
            rcvtimeo: AtomicI32::new(-1),
        }))
    })
}

/// Stops the node (as `$TERM`), waits until it has ended, frees the handle and
/// sets `*node_p` to NULL. `node_p` NULL or `*node_p` NULL does nothing
/// (CZMQ: `zactor_destroy`).
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_destroy(node_p: *mut *mut zgossip_t) {
    guard(|| {
        // SAFETY: node_p is NULL or points to a handle pointer from
        // zgossip_new or NULL (API contract); handle_take clears it.
        drop(unsafe { handle_take(node_p) });
        Ok(())
    })
}

/// Sends a command of `count` string frames, e.g. `{"BIND",
/// "tcp://127.0.0.1:5670"}`. The command is checked first; every command but
/// PUBLISH and UNPUBLISH then waits until the node has carried it out, so
/// an error such as a busy port comes back here (those two wait only when
/// the caller is 1,024 commands ahead of its node). Returns `ZGOSSIP_OK` or a negative
/// code: `-ZGOSSIP_ERR_NULL_ARG` (`node`, `frames` or a frame NULL),
/// `-ZGOSSIP_ERR_UTF8`, `-ZGOSSIP_ERR_COMMAND` (unknown or malformed
/// command, `count` 0), `-ZGOSSIP_ERR_IO`, `-ZGOSSIP_ERR_CONFIG`,
/// `-ZGOSSIP_ERR_TERMINATED`.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_send(
    node: *mut zgossip_t,
    frames: *const *const c_char,
    count: usize,
) -> c_int {
    guard(|| {
        // SAFETY: node is NULL or a live handle (API contract).
        let this = unsafe { handle_ref(node, "node") }?;
        // SAFETY: frames is NULL or holds count C strings (API contract).
        unsafe { with_str_array(frames, count, "frames", |frames| this.node.send(frames)) }??;
        Ok(zgossip_result::ZGOSSIP_OK as c_int)
    })
}

/// Sends a one-frame command such as `"STATUS"` (CZMQ: `zstr_send`).
/// Returns as `zgossip_send`.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_str_send(node: *mut zgossip_t, command: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: node is NULL or a live handle (API contract).
        let this = unsafe { handle_ref(node, "node") }?;
        // SAFETY: command is NULL or a C string (API contract).
        let command = unsafe { str_arg(command, "command") }?;
        this.node.send(&[command])?;
        Ok(zgossip_result::ZGOSSIP_OK as c_int)
    })
}

/// Receives the next reply (`PORT n`, `STATUS n`) or delivery
/// (`DELIVER key value`), waiting at most `timeout_ms` (-1 waits forever,
/// 0 does not wait). On success returns the number of frames (> 0) and
/// stores in `*frames_out` a new array of that many new strings and in
/// `*count_out` its length; the caller owns them and frees them with
/// `zgossip_frames_free`. A NUL byte inside a frame ends that C string.
/// On failure nothing is written and a negative code is returned:
/// `-ZGOSSIP_ERR_TIMEOUT`, `-ZGOSSIP_ERR_TERMINATED`,
/// `-ZGOSSIP_ERR_NULL_ARG`, `-ZGOSSIP_ERR_INVALID_ARG` (timeout < -1).
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_recv(
    node: *mut zgossip_t,
    timeout_ms: c_int,
    frames_out: *mut *mut *mut c_char,
    count_out: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: frames_out is NULL or valid for writes (API contract).
        let frames_out = unsafe { out_mut(frames_out, "frames_out") }?;
        // SAFETY: count_out is NULL or valid for writes (API contract).
        let count_out = unsafe { out_mut(count_out, "count_out") }?;
        // The C strings are made straight from the frames the pipe holds.
        let (array, count) = receive(node, timeout_ms, |frames| {
            c_frames(frames).map(|a| (a, frames.len()))
        })?;
        let Ok(n) = c_int::try_from(count) else {
            // SAFETY: array came from c_frames with count frames.
            unsafe { free_frames(array, count) };
            return Err(Failure::new(
                zgossip_result::ZGOSSIP_ERR_IO,
                "message has too many frames",
            ));
        };
        *frames_out = array;
        *count_out = count;
        Ok(n)
    })
}

/// Receives the next reply or delivery into `frames`, an array of the
/// caller with room for `capacity` strings, waiting at most `timeout_ms`
/// (-1 waits forever, 0 does not wait). On success returns the number of
/// frames the message had (> 0): the first of them, up to `capacity`, are
/// written as new strings the caller owns (free each with
/// `zgossip_str_free`), frames beyond `capacity` are dropped, and slots
/// beyond the message are set to NULL. No array is allocated, so this is
/// the cheapest way to read deliveries (`zgossip_recvx` uses it). On
/// failure every slot is set to NULL and a negative code is returned, as
/// `zgossip_recv`.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_recv_into(
    node: *mut zgossip_t,
    timeout_ms: c_int,
    frames: *mut *mut c_char,
    capacity: usize,
) -> c_int {
    clear_slots(frames.cast(), capacity);
    guard(|| {
        if frames.is_null() {
            return Err(Failure::null_arg("frames"));
        }
        receive(node, timeout_ms, |got| {
            for (i, f) in got.iter().take(capacity).enumerate() {
                match c_string(f) {
                    // SAFETY: i < capacity, the array's length.
                    Ok(p) => unsafe { frames.add(i).write(p) },
                    Err(e) => {
                        for j in 0..i {
                            // SAFETY: slots below i hold strings made just
                            // now; each is freed once and cleared.
                            unsafe {
                                free_string(std::ptr::replace(frames.add(j), std::ptr::null_mut()))
                            };
                        }
                        return Err(e);
                    }
                }
            }
            Ok(frame_count(got))
        })
    })
}

/// Receives the next reply or delivery without allocating: its first
/// frames, up to `capacity`, are written to `frames` as pointers to
/// NUL-terminated copies that the library keeps for the calling thread.
/// They stay valid until this thread's next `zgossip_recv_view` (on any
/// handle) or until the thread ends; never free them. Waits at most
/// `timeout_ms` (-1 waits forever, 0 does not wait). On success returns
/// the number of frames the message had (> 0); frames beyond `capacity`
/// are dropped and slots beyond the message are set to NULL. On failure
/// every slot is set to NULL and a negative code is returned, as
/// `zgossip_recv`. The cheapest way to read many deliveries: nothing is
/// allocated per message once this thread's buffer has grown to the
/// largest message.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_recv_view(
    node: *mut zgossip_t,
    timeout_ms: c_int,
    frames: *mut *const c_char,
    capacity: usize,
) -> c_int {
    clear_slots(frames, capacity);
    guard(|| {
        if frames.is_null() {
            return Err(Failure::null_arg("frames"));
        }
        receive(node, timeout_ms, |got| {
            let kept = view::fill(got, capacity, |i, p| {
                // SAFETY: i < capacity, the array's length.
                unsafe { frames.add(i).write(p) }
            });
            kept.then(|| frame_count(got)).ok_or_else(|| {
                Failure::new(
                    zgossip_result::ZGOSSIP_ERR_TERMINATED,
                    "this thread is ending: its view buffer is gone",
                )
            })
        })
    })
}

/// Frees an array from `zgossip_recv` with its `count` strings (NULL slots
/// are skipped, so strings taken out of it and set to NULL are not freed)
/// and sets `*frames` to NULL. `frames` NULL or `*frames` NULL does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_frames_free(frames: *mut *mut *mut c_char, count: usize) {
    guard(|| {
        if frames.is_null() {
            return Ok(());
        }
        // SAFETY: frames is non-NULL and points to NULL or an array from
        // zgossip_recv holding count frames (API contract); it is cleared so
        // it cannot be freed twice.
        unsafe {
            let array = std::ptr::replace(frames, std::ptr::null_mut());
            free_frames(array, count);
        }
        Ok(())
    })
}

/// Frees a string received from the library and sets `*string_p` to NULL
/// (CZMQ: `zstr_free`). `string_p` NULL or `*string_p` NULL does nothing.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_str_free(string_p: *mut *mut c_char) {
    guard(|| {
        if string_p.is_null() {
            return Ok(());
        }
        // SAFETY: string_p is non-NULL and points to NULL or a string from
        // this library (API contract); it is cleared so it cannot be freed
        // twice.
        unsafe { free_string(std::ptr::replace(string_p, std::ptr::null_mut())) };
        Ok(())
    })
}

/// A file descriptor that is readable while a reply or delivery waits, for
/// `poll`, `select` or an event loop. Never read from it or close it; it
/// lives as long as the handle. Returns -ZGOSSIP_ERR_NULL_ARG if `node` is
/// NULL.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_fd(node: *mut zgossip_t) -> c_int {
    guard(|| {
        // SAFETY: node is NULL or a live handle (API contract).
        let this = unsafe { handle_ref(node, "node") }?;
        Ok(this.node.fd())
    })
}

/// Sets the timeout of `zgossip_recvx` in ms: -1 waits forever (the
/// default), 0 does not wait (CZMQ: `zsock_set_rcvtimeo`). A value below -1
/// is refused and leaves the timeout as it was; `zgossip_last_error` says so.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_set_rcvtimeo(node: *mut zgossip_t, msecs: c_int) {
    guard(|| {
        // SAFETY: node is NULL or a live handle (API contract).
        let this = unsafe { handle_ref(node, "node") }?;
        if msecs < -1 {
            return Err(Failure::new(
                zgossip_result::ZGOSSIP_ERR_INVALID_ARG,
                format!("rcvtimeo must be -1 or more, got {msecs}"),
            ));
        }
        this.rcvtimeo.store(msecs, Ordering::Relaxed);
        Ok(())
    })
}

/// The timeout of `zgossip_recvx` in ms (-1: forever), or
/// -ZGOSSIP_ERR_NULL_ARG if `node` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_rcvtimeo(node: *mut zgossip_t) -> c_int {
    guard(|| {
        // SAFETY: node is NULL or a live handle (API contract).
        let this = unsafe { handle_ref(node, "node") }?;
        Ok(this.rcvtimeo.load(Ordering::Relaxed))
    })
}

/// Takes the next message off `node`'s pipe, waiting as `timeout_ms` says,
/// and hands its frames to `take`: the one path of every receive. No
/// message in time is a failure (`ZGOSSIP_ERR_TIMEOUT`).
fn receive<R>(
    node: *mut zgossip_t,
    timeout_ms: c_int,
    take: impl FnOnce(&[&str]) -> Result<R, Failure>,
) -> Result<R, Failure> {
    // SAFETY: node is NULL or a live handle (API contract).
    let this = unsafe { handle_ref(node, "node") }?;
    let timeout = timeout_arg(timeout_ms)?;
    this.node
        .recv_with(timeout, take)?
        .ok_or_else(|| timed_out(timeout_ms))?
}

/// A message's frame count as a receive returns it.
fn frame_count(frames: &[&str]) -> c_int {
    c_int::try_from(frames.len()).unwrap_or(c_int::MAX)
}

/// Sets the `capacity` slots of a caller's array to NULL, before a receive
/// fills them; nothing if `frames` is NULL.
fn clear_slots(frames: *mut *const c_char, capacity: usize) {
    if frames.is_null() {
        return;
    }
    for i in 0..capacity {
        // SAFETY: frames is non-NULL and holds capacity slots (API
        // contract of every receive that takes an array).
        unsafe { frames.add(i).write(std::ptr::null()) };
    }
}

/// A receive timeout in ms: -1 forever, 0 no wait, more: that long.
fn timeout_arg(timeout_ms: c_int) -> Result<Option<Duration>, Failure> {
    match timeout_ms {
        -1 => Ok(None),
        t if t >= 0 => Ok(Some(Duration::from_millis(u64::from(t.unsigned_abs())))),
        t => Err(Failure::new(
            zgossip_result::ZGOSSIP_ERR_INVALID_ARG,
            format!("timeout_ms must be -1 or more, got {t}"),
        )),
    }
}

fn timed_out(timeout_ms: c_int) -> Failure {
    Failure::new(
        zgossip_result::ZGOSSIP_ERR_TIMEOUT,
        format!("no message within {timeout_ms} ms"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn code(r: zgossip_result) -> c_int {
        -(r as c_int)
    }

    #[test]
    fn send_recv_round_trip() {
        let mut node = zgossip_new(c"t".as_ptr());
        assert!(!node.is_null());
        let frames = [c"STATUS".as_ptr()];
        assert_eq!(zgossip_send(node, frames.as_ptr(), 1), 0);
        let mut out: *mut *mut c_char = std::ptr::null_mut();
        let mut n = 0usize;
        assert_eq!(zgossip_recv(node, 5000, &mut out, &mut n), 2);
        assert_eq!(n, 2);
        // SAFETY: out holds n strings from zgossip_recv.
        let got: Vec<&CStr> = (0..n)
            .map(|i| unsafe { CStr::from_ptr(*out.add(i)) })
            .collect();
        assert_eq!(got, [c"STATUS", c"0"]);
        zgossip_frames_free(&mut out, n);
        assert!(out.is_null());
        assert_eq!(
            zgossip_recv(node, 0, &mut out, &mut n),
            code(zgossip_result::ZGOSSIP_ERR_TIMEOUT)
        );
        assert!(out.is_null(), "nothing written on failure");
        zgossip_destroy(&mut node);
        assert!(node.is_null());
        zgossip_destroy(&mut node);
        zgossip_destroy(std::ptr::null_mut());
    }

    #[test]
    fn rcvtimeo_defaults_to_forever() {
        let mut node = zgossip_new(c"t".as_ptr());
        assert_eq!(zgossip_rcvtimeo(node), -1);
        zgossip_set_rcvtimeo(node, 250);
        assert_eq!(zgossip_rcvtimeo(node), 250);
        zgossip_set_rcvtimeo(node, -7);
        assert_eq!(zgossip_rcvtimeo(node), 250);
        assert_eq!(
            zgossip_rcvtimeo(std::ptr::null_mut()),
            code(zgossip_result::ZGOSSIP_ERR_NULL_ARG)
        );
        zgossip_destroy(&mut node);
    }
}
