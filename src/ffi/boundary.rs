//! The panic boundary and the thread-local "last error".
//!
//! Every exported function runs its body through [`guard`]: a closure that
//! returns `Result<T, Failure>`. A failure is recorded as this thread's last
//! error and turned into the neutral value of `T` for that failure (a
//! negative code, NULL, nothing); a panic is caught and treated the same
//! way, so no unwinding ever crosses into C.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::zgossip_result;

/// Why a call failed: a code for the caller and a message for
/// `zgossip_last_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: zgossip_result,
    pub message: String,
}

impl Failure {
    pub fn new(code: zgossip_result, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn null_arg(what: &str) -> Failure {
        Failure::new(
            zgossip_result::ZGOSSIP_ERR_NULL_ARG,
            format!("{what} is NULL"),
        )
    }

    fn panic(payload: Box<dyn Any + Send>) -> Failure {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        Failure::new(
            zgossip_result::ZGOSSIP_ERR_PANIC,
            format!("internal error (panic) in zgossip: {what}"),
        )
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Failure {
        Failure::new(zgossip_result::from_kind(e.kind()), e.to_string())
    }
}

/// What an exported function returns when it fails.
pub(crate) trait Neutral {
    fn failed(code: zgossip_result) -> Self;
}

/// `int`-returning calls return the negated code.
impl Neutral for c_int {
    fn failed(code: zgossip_result) -> c_int {
        -(code as c_int)
    }
}

impl<T> Neutral for *mut T {
    fn failed(_: zgossip_result) -> *mut T {
        std::ptr::null_mut()
    }
}

impl<T> Neutral for *const T {
    fn failed(_: zgossip_result) -> *const T {
        std::ptr::null()
    }
}

impl Neutral for () {
    fn failed(_: zgossip_result) {}
}

/// Runs the body of an exported function: records a failure or a panic as
/// this thread's last error and returns the neutral value for it.
pub(crate) fn guard<T: Neutral>(body: impl FnOnce() -> Result<T, Failure>) -> T {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => return value,
        Ok(Err(failure)) => failure,
        Err(payload) => Failure::panic(payload),
    };
    let code = failure.code;
    set_last_error(&failure.message);
    T::failed(code)
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: &str) {
    // A message never holds a NUL (C strings come in without one), but be
    // sure: a C string stops at the first.
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    // try_with: during thread teardown the slot may be gone; then there is
    // nobody left to read the message.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = Some(message));
}

/// The last error message of this thread, `""` if no call failed yet. The
/// pointer stays valid until the next failure on this thread.
pub(crate) fn last_error() -> *const c_char {
    static EMPTY: &[u8] = b"\0";
    LAST_ERROR
        .try_with(|slot| {
            slot.borrow()
                .as_ref()
                .map_or(EMPTY.as_ptr().cast(), |m| m.as_ptr())
        })
        .unwrap_or(EMPTY.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn message() -> String {
        // SAFETY: last_error returns a NUL-terminated string owned by this
        // thread, valid until the next failure on it.
        unsafe { CStr::from_ptr(last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn failure_sets_code_and_message() {
        let rc: c_int = guard(|| Err(Failure::null_arg("frames")));
        assert_eq!(rc, -(zgossip_result::ZGOSSIP_ERR_NULL_ARG as c_int));
        assert_eq!(message(), "frames is NULL");
    }

    #[test]
    fn panic_is_caught() {
        let p: *mut u8 = guard(|| panic!("boom"));
        assert!(p.is_null());
        assert!(message().contains("boom"), "{}", message());
        let rc: c_int = guard(|| panic!("again"));
        assert_eq!(rc, -(zgossip_result::ZGOSSIP_ERR_PANIC as c_int));
    }

    #[test]
    fn success_passes_through_and_keeps_the_last_error() {
        let _: c_int = guard(|| Err(Failure::null_arg("self")));
        let rc: c_int = guard(|| Ok(7));
        assert_eq!(rc, 7);
        assert_eq!(message(), "self is NULL");
    }
}
