//! Z85 (ZeroMQ RFC 32): the printable encoding of binary data used for
//! CURVE keys (32 bytes <-> 40 characters).
//!
//! Strict, as the RFC: [`encode`] takes a length that is a multiple of 4,
//! [`decode`] a length that is a multiple of 5 made only of the 85 Z85
//! characters, and refuses a group whose value does not fit 32 bits.

use std::fmt;

/// The 85 characters, in value order.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Value of each byte in the alphabet, 0xFF for bytes that are not in it.
const DECODER: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 85 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a Z85 conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Z85Error {
    /// Binary input whose length is not a multiple of 4.
    BinaryLength(usize),
    /// Text whose length is not a multiple of 5.
    TextLength(usize),
    /// A character outside the Z85 alphabet, at this byte offset.
    BadCharacter(usize),
    /// A 5-character group (starting at this offset) above 2^32 - 1.
    Overflow(usize),
}

impl fmt::Display for Z85Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Z85Error::BinaryLength(n) => {
                write!(f, "Z85 encodes multiples of 4 bytes, got {n} bytes")
            }
            Z85Error::TextLength(n) => {
                write!(f, "Z85 text must be a multiple of 5 characters, got {n}")
            }
            Z85Error::BadCharacter(i) => write!(f, "character {i} is not a Z85 character"),
            Z85Error::Overflow(i) => write!(f, "Z85 group at {i} exceeds 32 bits"),
        }
    }
}

impl std::error::Error for Z85Error {}

/// Encodes `data` (length a multiple of 4) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::BinaryLength(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut group = [0u8; 5];
        for slot in group.iter_mut().rev() {
            *slot = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        // Every alphabet byte is ASCII.
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    Ok(out)
}

/// Decodes Z85 text (length a multiple of 5) into bytes.
pub fn decode(text: &str) -> Result<Vec<u8>, Z85Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 5 != 0 {
        return Err(Z85Error::TextLength(bytes.len()));
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 * 4);
    for (g, group) in bytes.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &b) in group.iter().enumerate() {
            let digit = DECODER[usize::from(b)];
            if digit == 0xFF {
                return Err(Z85Error::BadCharacter(g * 5 + i));
            }
            value = value * 85 + u64::from(digit);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow(g * 5))?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

/// Decodes a 40-character Z85 CURVE key into its 32 bytes.
pub fn decode_key(text: &str) -> Result<[u8; 32], Z85Error> {
    if text.len() != 40 {
        return Err(Z85Error::TextLength(text.len()));
    }
    let v = decode(text)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&v);
    Ok(key)
}

/// Encodes a 32-byte CURVE key as 40 Z85 characters.
pub fn encode_key(key: &[u8; 32]) -> String {
    // 32 is a multiple of 4: cannot fail.
    encode(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of RFC 32.
    const RFC_BINARY: [u8; 8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
    const RFC_TEXT: &str = "HelloWorld";

    #[test]
    fn rfc32_vector() {
        assert_eq!(encode(&RFC_BINARY).unwrap(), RFC_TEXT);
        assert_eq!(decode(RFC_TEXT).unwrap(), RFC_BINARY);
    }

    #[test]
    fn libzmq_curve_test_key() {
        // The server key pair from libzmq's tests (Z85 text of both).
        let public = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
        let secret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
        for text in [public, secret] {
            let key = decode_key(text).unwrap();
            assert_eq!(encode_key(&key), text);
        }
        // And the keys match: the public key is derived from the secret.
        let s = crypto_box::SecretKey::from(decode_key(secret).unwrap());
        assert_eq!(s.public_key().to_bytes(), decode_key(public).unwrap());
    }

    #[test]
    fn strictness() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::BinaryLength(3)));
        assert_eq!(decode("abcd"), Err(Z85Error::TextLength(4)));
        assert_eq!(decode("abc\"d"), Err(Z85Error::BadCharacter(3)));
        assert_eq!(decode("abcd~"), Err(Z85Error::BadCharacter(4)));
        assert_eq!(decode("éabc"), Err(Z85Error::BadCharacter(0)));
        // "%nSc1" is 2^32 exactly; "%nSc0" is 2^32 - 1.
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(decode("%nSc1"), Err(Z85Error::Overflow(0)));
        assert_eq!(decode("#####"), Err(Z85Error::Overflow(0)));
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(encode(&[]).unwrap(), "");
        assert!(decode_key("HelloWorld").is_err());
        assert!(Z85Error::Overflow(5).to_string().contains("32 bits"));
    }

    #[test]
    fn round_trips_every_byte() {
        let data: Vec<u8> = (0..=255u8).collect();
        let text = encode(&data).unwrap();
        assert_eq!(text.len(), 320);
        assert_eq!(decode(&text).unwrap(), data);
    }
}
