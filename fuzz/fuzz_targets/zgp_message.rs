//! Decode arbitrary bytes as a ZGP v1 message and as a ZGP/2 (extension)
//! message; whatever decodes must re-encode to the same bytes and decode to
//! the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zgossip::wire::ext;
use zgossip::wire::gossip::{decode, Message};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        let mut out = Vec::with_capacity(msg.encoded_len());
        msg.try_encode(&mut out)
            .expect("a decoded message must encode");
        assert_eq!(out.len(), msg.encoded_len());
        assert_eq!(out, data, "re-encoding changed the bytes");
        let again: Message<'_> = decode(&out).expect("re-encoded message must decode");
        assert_eq!(again, msg);
    }
    if let Ok(msg) = ext::decode(data) {
        let mut out = Vec::new();
        match &msg {
            ext::Message::Tuple(t) => ext::encode_tuple(t, &mut out),
            ext::Message::Ranges(r) => ext::encode_ranges(r, &mut out),
            ext::Message::Items(g) => ext::encode_items(g, &mut out),
            ext::Message::Want(w) => ext::encode_want(w, &mut out),
        }
        // Flags other than "deleted" are ignored on decode, so compare the
        // decoded forms rather than the bytes.
        assert_eq!(ext::decode(&out).expect("re-encoded must decode"), msg);
    }
});
