//! Sans-IO codecs: ZMTP 3.1 stream framing and handshake (NULL and CURVE),
//! Z85, ZGP messages.
//! Nothing here touches a socket or a clock.

pub mod curve;
pub mod gossip;
pub mod overlay;
pub(crate) mod text;
pub mod z85;
pub mod zgp2;
pub mod zmtp;

/// The key bytes of a frame that carries a tuple (a ZGP `PUBLISH` or a
/// ZGP/2 `TUPLE`: both put a one-octet key length after the four header
/// octets), unchecked: for reading ahead only, the frame is decoded
/// properly when it is handled.
pub fn tuple_key(frame: &[u8]) -> Option<&[u8]> {
    let [s0, s1, id, version, len, rest @ ..] = frame else {
        return None;
    };
    let carries_tuple = [*s0, *s1] == gossip::SIGNATURE
        && ((*id, *version) == (gossip::ID_PUBLISH, gossip::VERSION)
            || (*id, *version) == (zgp2::ID_TUPLE, zgp2::VERSION));
    carries_tuple
        .then(|| rest.get(..usize::from(*len)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_key_finds_the_key_of_both_tuple_frames_and_of_nothing_else() {
        let mut v1 = Vec::new();
        gossip::Message::Publish {
            key: "k1",
            value: "v",
            ttl: 0,
        }
        .encode(&mut v1);
        assert_eq!(tuple_key(&v1), Some(&b"k1"[..]));
        let mut v2 = Vec::new();
        zgp2::encode_tuple(
            &zgp2::Tuple {
                key: "key-2",
                value: "v",
                clock: 1,
                origin: 2,
                expires: 0,
                deleted: false,
            },
            &mut v2,
        );
        assert_eq!(tuple_key(&v2), Some(&b"key-2"[..]));
        let mut hello = Vec::new();
        gossip::Message::Hello.encode(&mut hello);
        hello.extend_from_slice(b"\x02ab");
        assert_eq!(tuple_key(&hello), None);
        // A length past the end of the frame.
        assert_eq!(tuple_key(&v1[..6]), None);
        assert_eq!(tuple_key(b""), None);
    }
}
