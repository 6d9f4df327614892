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

/// True if `b` holds a zero byte. Eight bytes at a time; the last word
/// overlaps the one before it instead of being copied out and padded, and
/// strings shorter than eight bytes are read as two overlapping halves
/// (keys and values are short: a call to a byte search, or the copy of
/// the tail, cost more than the test itself).
#[inline]
pub(crate) fn has_nul(b: &[u8]) -> bool {
    let n = b.len();
    if n >= 8 {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        let last = n - 8;
        let mut at = 0;
        while at < last {
            if has_zero_byte(word(at)) {
                return true;
            }
            at += 8;
        }
        return has_zero_byte(word(last));
    }
    if n >= 4 {
        let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"));
        return has_zero_byte(u64::from(half(0)) | u64::from(half(n - 4)) << 32);
    }
    b.contains(&0)
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
        // High bytes (no borrow from them) neither hide nor fake a zero.
        for len in 0..40 {
            for fill in [0x80, 0xff, 0x01, 0x7f] {
                assert!(!has_nul(&vec![fill; len]), "len {len} fill {fill:#x}");
                for at in 0..len {
                    let mut b = vec![fill; len];
                    b[at] = 0;
                    assert!(has_nul(&b), "len {len} fill {fill:#x} at {at}");
                }
            }
        }
        assert_eq!(check(&[0xff, b'a']), Err(TextError::NotUtf8));
        assert_eq!(check(&[b'a', 0xc3]), Err(TextError::NotUtf8));
        assert_eq!(check("é\0".as_bytes()), Err(TextError::Nul));
    }
}
