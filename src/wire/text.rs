//! Text fields of ZGP messages: UTF-8 without NUL bytes (a C string cannot
//! carry one).
//!
//! Keys and values are short: the NUL check runs inline, eight bytes at a
//! time, instead of a call to a general byte search.

/// Why a text field was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextError {
    Nul,
    NotUtf8,
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// True if the eight bytes of `w` hold a zero byte: one borrows in
/// `w - LOW` and sets the high bit there while it is clear in `w` (the
/// classic has-zero-byte test).
#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(LOW) & !w & HIGH != 0
}

/// True if `b` holds a zero byte. Eight bytes at a time, the last few as
/// one more word padded with bytes that are not zero (a call to a byte
/// search cost more than the rest for keys).
#[inline]
pub(crate) fn has_nul(b: &[u8]) -> bool {
    let mut words = b.chunks_exact(8);
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().expect("eight bytes"));
    if words.any(|w| has_zero_byte(word(w))) {
        return true;
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return false;
    }
    let mut last = [0xFF; 8];
    last[..rest.len()].copy_from_slice(rest);
    has_zero_byte(u64::from_le_bytes(last))
}

/// `b` as text, if it is UTF-8 and holds no NUL byte.
#[inline]
pub(crate) fn check(b: &[u8]) -> Result<&str, TextError> {
    let s = std::str::from_utf8(b).map_err(|_| TextError::NotUtf8)?;
    if has_nul(b) {
        return Err(TextError::Nul);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_nul_anywhere_and_refuses_bad_utf8() {
        assert_eq!(check(b""), Ok(""));
        assert_eq!(
            check("ключ-value-0123456789".as_bytes()),
            Ok("ключ-value-0123456789")
        );
        for len in 1..40 {
            for at in 0..len {
                let mut b = vec![b'a'; len];
                b[at] = 0;
                assert_eq!(check(&b), Err(TextError::Nul), "len {len} at {at}");
                // Bytes that look like borrows around it change nothing.
                b.iter_mut().filter(|c| **c != 0).for_each(|c| *c = 0x01);
                assert_eq!(check(&b), Err(TextError::Nul));
            }
            let ok = vec![0x7f; len];
            assert!(check(&ok).is_ok());
        }
        assert_eq!(check(&[0xff, b'a']), Err(TextError::NotUtf8));
        assert_eq!(check(&[b'a', 0xc3]), Err(TextError::NotUtf8));
        assert_eq!(check("é\0".as_bytes()), Err(TextError::Nul));
    }
}
