//! Result codes of the C API.

use std::ffi::{c_char, c_int};

use super::boundary::{guard, last_error};
use crate::ErrorKind;

/// Result codes. Calls that return `int` return `ZGOSSIP_OK` (0) or a
/// non-negative count on success, and the *negated* code on failure, e.g.
/// `-ZGOSSIP_ERR_TIMEOUT`. The numbers are fixed and never reused.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum zgossip_result {
    /// Success.
    ZGOSSIP_OK = 0,
    /// The node refused the command: unknown name, wrong number of
    /// arguments, bad endpoint, key too long, empty command, ...
    ZGOSSIP_ERR_COMMAND = 1,
    /// An operating-system operation failed: a busy port, a file, a thread.
    ZGOSSIP_ERR_IO = 2,
    /// A configuration file or path could not be read, written or applied.
    ZGOSSIP_ERR_CONFIG = 3,
    /// The node has terminated; nothing more can be sent or received.
    ZGOSSIP_ERR_TERMINATED = 4,
    /// No message arrived within the timeout.
    ZGOSSIP_ERR_TIMEOUT = 5,
    /// A required pointer argument was NULL.
    ZGOSSIP_ERR_NULL_ARG = 6,
    /// A string argument was not valid UTF-8.
    ZGOSSIP_ERR_UTF8 = 7,
    /// An internal error (a Rust panic) was caught; the call did nothing.
    ZGOSSIP_ERR_PANIC = 8,
    /// An argument was out of range (e.g. a timeout below -1).
    ZGOSSIP_ERR_INVALID_ARG = 9,
}

impl zgossip_result {
    pub(crate) fn from_kind(kind: ErrorKind) -> zgossip_result {
        match kind {
            ErrorKind::Command => zgossip_result::ZGOSSIP_ERR_COMMAND,
            ErrorKind::Io => zgossip_result::ZGOSSIP_ERR_IO,
            ErrorKind::Config => zgossip_result::ZGOSSIP_ERR_CONFIG,
            ErrorKind::Terminated => zgossip_result::ZGOSSIP_ERR_TERMINATED,
        }
    }
}

/// The message of the last failed call on the calling thread, or `""` if
/// none failed yet. Successful calls leave it as it is. The string belongs
/// to the library and stays valid until the next failing call on this
/// thread; copy it to keep it. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_last_error() -> *const c_char {
    guard(|| Ok(last_error()))
}

/// A short constant name for a result code (`"ZGOSSIP_ERR_TIMEOUT"`), given
/// as returned (negative) or as the enumerator (positive); `"unknown"` for
/// other numbers. Never NULL; the string is static.
#[unsafe(no_mangle)]
pub extern "C" fn zgossip_result_name(code: c_int) -> *const c_char {
    guard(|| {
        let name: &'static [u8] = match code.unsigned_abs() {
            0 => b"ZGOSSIP_OK\0",
            1 => b"ZGOSSIP_ERR_COMMAND\0",
            2 => b"ZGOSSIP_ERR_IO\0",
            3 => b"ZGOSSIP_ERR_CONFIG\0",
            4 => b"ZGOSSIP_ERR_TERMINATED\0",
            5 => b"ZGOSSIP_ERR_TIMEOUT\0",
            6 => b"ZGOSSIP_ERR_NULL_ARG\0",
            7 => b"ZGOSSIP_ERR_UTF8\0",
            8 => b"ZGOSSIP_ERR_PANIC\0",
            9 => b"ZGOSSIP_ERR_INVALID_ARG\0",
            _ => b"unknown\0",
        };
        Ok(name.as_ptr().cast())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_numbers() {
        for kind in [
            ErrorKind::Command,
            ErrorKind::Io,
            ErrorKind::Config,
            ErrorKind::Terminated,
        ] {
            assert_eq!(zgossip_result::from_kind(kind) as i32, kind as i32);
        }
    }

    #[test]
    fn names_match_codes() {
        // SAFETY: zgossip_result_name returns static NUL-terminated strings.
        let name = |c| unsafe { std::ffi::CStr::from_ptr(zgossip_result_name(c)) };
        assert_eq!(name(-5).to_str().unwrap(), "ZGOSSIP_ERR_TIMEOUT");
        assert_eq!(name(9).to_str().unwrap(), "ZGOSSIP_ERR_INVALID_ARG");
        assert_eq!(name(0).to_str().unwrap(), "ZGOSSIP_OK");
        assert_eq!(name(i32::MIN).to_str().unwrap(), "unknown");
    }
}
