//! Decode arbitrary bytes as a ZGP v1 message and as a ZGP/2 message
//! (overlay messages included); whatever decodes must re-encode to the same bytes and decode to
//! the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zgossip::wire::gossip::{decode, Message};
use zgossip::wire::zgp2;

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
    if let Ok(msg) = zgp2::decode(data) {
        let mut out = Vec::new();
        match &msg {
            zgp2::Message::Tuple(t) => zgp2::encode_tuple(t, &mut out),
            zgp2::Message::Ranges(r) => zgp2::encode_ranges(r, &mut out),
            zgp2::Message::Items(g) => zgp2::encode_items(g, &mut out),
            zgp2::Message::Want(w) => zgp2::encode_want(w, &mut out),
            zgp2::Message::Overlay(m) => {
                m.encode(&mut out);
                // Overlay messages have one encoding: the very bytes.
                assert_eq!(out, data, "re-encoding an overlay message changed it");
            }
            zgp2::Message::Membership(m) => {
                m.encode(&mut out);
                // Membership messages have one encoding too.
                assert_eq!(out, data, "re-encoding a membership message changed it");
            }
        }
        // Flags other than "deleted" are ignored on decode, so compare the
        // decoded forms rather than the bytes.
        assert_eq!(zgp2::decode(&out).expect("re-encoded must decode"), msg);
    }
});
