//! Every pointer that crosses the C boundary goes through here: handles
//! (boxed Rust values given to C), borrowed arguments, and strings and
//! string arrays handed to C (allocated with the C allocator, so C may free
//! them with `free` too, as CZMQ's `zstr_free` does).

use std::ffi::{c_char, c_void, CStr};

use super::boundary::Failure;
use super::error::zgossip_result;

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
}

/// Gives a value to C as an owned handle.
pub(crate) fn handle_into_raw<T>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back the handle `*slot` (if any) and sets `*slot` to NULL.
///
/// # Safety
/// `slot` is NULL or points to a valid `*mut T` that is NULL or came from
/// [`handle_into_raw`] and was not taken back yet.
pub(crate) unsafe fn handle_take<T>(slot: *mut *mut T) -> Option<Box<T>> {
    if slot.is_null() {
        return None;
    }
    // SAFETY: slot is non-NULL and points to a valid pointer (caller's
    // contract); we read it and clear it so it cannot be freed twice.
    let raw = unsafe { std::ptr::replace(slot, std::ptr::null_mut()) };
    if raw.is_null() {
        return None;
    }
    // SAFETY: raw came from Box::into_raw in handle_into_raw and is taken
    // back exactly once (the slot is now NULL).
    Some(unsafe { Box::from_raw(raw) })
}

/// Borrows the value behind a handle.
///
/// # Safety
/// `ptr` is NULL or came from [`handle_into_raw`] and is still live for `'a`.
pub(crate) unsafe fn handle_ref<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: per the caller's contract a non-NULL ptr is a live handle.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null_arg(what))
}

/// Borrows an output argument for writing.
///
/// # Safety
/// `ptr` is NULL or valid for writes and not aliased for `'a`.
pub(crate) unsafe fn out_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: per the caller's contract a non-NULL ptr is valid for writes.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null_arg(what))
}

/// Borrows a C string argument as UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null_arg(what));
    }
    // SAFETY: ptr is non-NULL and NUL-terminated (caller's contract).
    let s = unsafe { CStr::from_ptr(ptr) };
    utf8(s).map_err(|e| {
        Failure::new(
            zgossip_result::ZGOSSIP_ERR_UTF8,
            format!(
                "{what} is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// A C string as UTF-8. Commands, keys and values are mostly ASCII: that
/// is checked eight bytes at a time, where the general UTF-8 check walks
/// short strings a byte at a time (it was a tenth of a PUBLISH).
fn utf8(s: &CStr) -> Result<&str, std::str::Utf8Error> {
    let bytes = s.to_bytes();
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Borrows an array of `count` C strings as UTF-8 and hands them to `f`.
/// Up to eight strings (every command) are gathered on the stack; the name
/// of a bad element is only formatted when there is an error to report.
///
/// # Safety
/// `array` is NULL or points to `count` pointers, each NULL or a
/// NUL-terminated string, all valid during the call.
pub(crate) unsafe fn with_str_array<R>(
    array: *const *const c_char,
    count: usize,
    what: &str,
    f: impl FnOnce(&[&str]) -> R,
) -> Result<R, Failure> {
    if array.is_null() {
        return Err(Failure::null_arg(what));
    }
    // SAFETY: array is non-NULL and holds count pointers (caller's contract).
    let ptrs = unsafe { std::slice::from_raw_parts(array, count) };
    let element = |i: usize, p: *const c_char| -> Result<&str, Failure> {
        if p.is_null() {
            return Err(Failure::null_arg(&format!("{what}[{i}]")));
        }
        // SAFETY: p is non-NULL and a NUL-terminated string valid during
        // the call (caller's contract).
        let s = unsafe { CStr::from_ptr(p) };
        utf8(s).map_err(|e| {
            Failure::new(
                zgossip_result::ZGOSSIP_ERR_UTF8,
                format!(
                    "{what}[{i}] is not valid UTF-8 (bad byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })
    };
    const ON_STACK: usize = 8;
    if count <= ON_STACK {
        let mut strs = [""; ON_STACK];
        for (i, &p) in ptrs.iter().enumerate() {
            strs[i] = element(i, p)?;
        }
        Ok(f(&strs[..count]))
    } else {
        let strs = ptrs
            .iter()
            .enumerate()
            .map(|(i, &p)| element(i, p))
            .collect::<Result<Vec<&str>, Failure>>()?;
        Ok(f(&strs))
    }
}

/// Copies a string into a new C string from `malloc`. A NUL inside `s`
/// ends the C string there, as C would read it.
pub(crate) fn c_string(s: &str) -> Result<*mut c_char, Failure> {
    let bytes = s.as_bytes();
    // Text from the network or a PUBLISH has no NUL: that is checked eight
    // bytes at a time before looking for where one is.
    let len = if crate::wire::text::has_nul(bytes) {
        bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())
    } else {
        bytes.len()
    };
    // SAFETY: malloc may be called with any size; the result is checked.
    let p = unsafe { malloc(len + 1) }.cast::<u8>();
    if p.is_null() {
        return Err(out_of_memory());
    }
    // SAFETY: p holds len + 1 bytes, bytes holds at least len; they do not
    // overlap (p is fresh).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, len);
        *p.add(len) = 0;
    }
    Ok(p.cast())
}

/// Copies frames into a new `malloc`ed array of `malloc`ed C strings.
pub(crate) fn c_frames<S: AsRef<str>>(frames: &[S]) -> Result<*mut *mut c_char, Failure> {
    let n = frames.len().max(1);
    let size = n
        .checked_mul(std::mem::size_of::<*mut c_char>())
        .ok_or_else(out_of_memory)?;
    // SAFETY: malloc may be called with any size; the result is checked.
    let array = unsafe { malloc(size) }.cast::<*mut c_char>();
    if array.is_null() {
        return Err(out_of_memory());
    }
    for (i, f) in frames.iter().enumerate() {
        match c_string(f.as_ref()) {
            // SAFETY: i < frames.len() <= n, the array's length.
            Ok(s) => unsafe { array.add(i).write(s) },
            Err(e) => {
                // SAFETY: the first i slots hold strings from c_string;
                // the array came from malloc.
                unsafe { free_frames(array, i) };
                return Err(e);
            }
        }
    }
    Ok(array)
}

/// Frees a string from [`c_string`]; NULL is ignored.
///
/// # Safety
/// `s` is NULL or came from [`c_string`] (or C's `malloc`) and is not used
/// again.
pub(crate) unsafe fn free_string(s: *mut c_char) {
    // SAFETY: s is NULL or malloc'ed (caller's contract); free(NULL) is a no-op.
    unsafe { free(s.cast()) }
}

/// Frees an array from [`c_frames`] and every non-NULL string in it.
///
/// # Safety
/// `array` is NULL or came from [`c_frames`] with at least `count` frames;
/// each of its first `count` slots is NULL or a string from [`c_string`].
pub(crate) unsafe fn free_frames(array: *mut *mut c_char, count: usize) {
    if array.is_null() {
        return;
    }
    for i in 0..count {
        // SAFETY: i < count, within the array (caller's contract); each slot
        // is NULL or a malloc'ed string.
        unsafe { free_string(array.add(i).read()) };
    }
    // SAFETY: the array came from malloc (caller's contract).
    unsafe { free(array.cast()) }
}

fn out_of_memory() -> Failure {
    Failure::new(zgossip_result::ZGOSSIP_ERR_IO, "out of memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let frames = vec!["DELIVER".to_string(), "k".to_string(), "a\0b".to_string()];
        let array = c_frames(&frames).unwrap();
        // SAFETY: array holds 3 strings from c_frames.
        let read: Vec<String> = (0..3)
            .map(|i| unsafe { CStr::from_ptr(array.add(i).read()) })
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(read, ["DELIVER", "k", "a"]);
        // SAFETY: array came from c_frames with 3 frames.
        unsafe { free_frames(array, 3) };
    }

    #[test]
    fn bad_strings_are_refused() {
        let bad = b"\xff\xfe\0";
        // SAFETY: bad is NUL-terminated.
        let e = unsafe { str_arg(bad.as_ptr().cast(), "frames[1]") }.unwrap_err();
        assert_eq!(e.code, zgossip_result::ZGOSSIP_ERR_UTF8);
        assert!(e.message.contains("frames[1]"));
        // SAFETY: NULL is allowed.
        let e = unsafe { str_arg(std::ptr::null(), "name") }.unwrap_err();
        assert_eq!(e.code, zgossip_result::ZGOSSIP_ERR_NULL_ARG);
    }

    #[test]
    fn ascii_and_utf8_strings_are_taken_and_the_bad_byte_is_named() {
        let cases: [(&[u8], Result<&str, usize>); 5] = [
            (b"PUBLISH\0", Ok("PUBLISH")),
            (b"\0", Ok("")),
            ("ключ-0123456789\0".as_bytes(), Ok("ключ-0123456789")),
            (b"key-0123456789ab\xc3\0", Err(16)),
            (b"abcdefgh\x80ijklmnop\0", Err(8)),
        ];
        for (bytes, want) in cases {
            // SAFETY: every case is NUL-terminated.
            let got = unsafe { str_arg(bytes.as_ptr().cast(), "key") };
            match want {
                Ok(text) => assert_eq!(got.unwrap(), text),
                Err(offset) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.code, zgossip_result::ZGOSSIP_ERR_UTF8);
                    assert!(
                        e.message.ends_with(&format!("offset {offset})")),
                        "{}",
                        e.message
                    );
                }
            }
        }
    }

    #[test]
    fn c_strings_end_at_a_nul_wherever_it_is() {
        for len in 0..40 {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            for cut in (0..len).chain([len]) {
                let mut s = text.clone();
                if cut < len {
                    s.replace_range(cut..cut + 1, "\0");
                }
                let p = c_string(&s).unwrap();
                // SAFETY: p is a C string from c_string.
                let read = unsafe { CStr::from_ptr(p) }.to_bytes().to_vec();
                // SAFETY: p came from c_string and is freed once.
                unsafe { free_string(p) };
                assert_eq!(read, text.as_bytes()[..cut], "len {len} cut {cut}");
            }
        }
    }

    #[test]
    fn handles_are_taken_once() {
        let mut h = handle_into_raw(5u32);
        // SAFETY: h came from handle_into_raw.
        assert_eq!(unsafe { handle_take(&mut h) }.map(|b| *b), Some(5));
        assert!(h.is_null());
        // SAFETY: the slot now holds NULL.
        assert!(unsafe { handle_take(&mut h) }.is_none());
        // SAFETY: a NULL slot is allowed.
        assert!(unsafe { handle_take::<u32>(std::ptr::null_mut()) }.is_none());
    }
}
