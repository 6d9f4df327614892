//! Decode arbitrary bytes as a ZGP message; whatever decodes must
//! re-encode to the same bytes and decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
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
});
