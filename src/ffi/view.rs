//! The calling thread's buffer behind `zgossip_recv_view`: a received
//! message's frames, copied back to back with a NUL after each, and handed
//! out as pointers that stay valid until the thread's next view.

use std::cell::RefCell;
use std::ffi::c_char;

/// Bytes a thread's buffer keeps at least once it has grown.
const KEEP: usize = 64 << 10;

thread_local! {
    static VIEW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Copies the first `capacity` of `frames` into this thread's buffer (a
/// NUL inside a frame ends its C string there, as C would read it) and
/// calls `put(i, p)` with the C string of frame `i`. False if the thread
/// is ending and its buffer is gone (called from a thread-local's
/// destructor): then `put` is not called.
pub(crate) fn fill(
    frames: &[&str],
    capacity: usize,
    mut put: impl FnMut(usize, *const c_char),
) -> bool {
    let frames = &frames[..frames.len().min(capacity)];
    VIEW.try_with(|view| {
        let mut buf = view.borrow_mut();
        buf.clear();
        let need = frames.iter().map(|f| f.len() + 1).sum();
        // What one large message left is given back at the next smaller one.
        if buf.capacity() > KEEP && buf.capacity() / 4 > need {
            buf.shrink_to(need.max(KEEP));
        }
        buf.reserve(need);
        for f in frames {
            buf.extend_from_slice(f.as_bytes());
            buf.push(0);
        }
        // Pointers are taken once the buffer is complete: it does not move
        // again until the next view on this thread.
        let base = buf.as_ptr();
        let mut at = 0;
        for (i, f) in frames.iter().enumerate() {
            put(i, base.wrapping_add(at).cast());
            at += f.len() + 1;
        }
    })
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    /// The C strings `fill` lends for `frames`, read back.
    fn lent(frames: &[&str], capacity: usize) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        assert!(fill(frames, capacity, |i, p| {
            // SAFETY: p points into this thread's buffer, NUL-terminated,
            // and nothing changes the buffer before it is read here.
            let s = unsafe { CStr::from_ptr(p) };
            out.push((i, s.to_string_lossy().into_owned()));
        }));
        out
    }

    #[test]
    fn lends_each_frame_up_to_capacity() {
        let got = lent(&["DELIVER", "", "value"], 3);
        assert_eq!(
            got,
            [(0, "DELIVER".into()), (1, "".into()), (2, "value".into())]
        );
        assert_eq!(lent(&["STATUS", "1"], 1), [(0, "STATUS".to_string())]);
        assert!(lent(&["x"], 0).is_empty());
    }

    #[test]
    fn a_nul_ends_a_frame_as_c_reads_it() {
        assert_eq!(lent(&["a\0b", "c"], 2), [(0, "a".into()), (1, "c".into())]);
    }

    #[test]
    fn views_are_per_thread() {
        let mine = lent(&["mine"], 1);
        let theirs = std::thread::spawn(|| lent(&["theirs"], 1)).join().unwrap();
        assert_eq!(
            (mine[0].1.as_str(), theirs[0].1.as_str()),
            ("mine", "theirs")
        );
        VIEW.with(|v| assert_eq!(v.borrow().as_slice(), b"mine\0"));
    }

    #[test]
    fn a_large_message_leaves_no_large_buffer_behind() {
        let big = "v".repeat(1 << 20);
        assert_eq!(lent(&["DELIVER", "k", &big], 3)[2].1.len(), 1 << 20);
        assert_eq!(lent(&["DELIVER", "k", "v"], 3)[2].1, "v");
        VIEW.with(|v| assert!(v.borrow().capacity() <= KEEP));
    }
}
