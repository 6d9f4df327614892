//! Feed arbitrary bytes, cut into arbitrary chunks, to a ZMTP connection
//! of each socket type; poll until error or until more input is needed.
//!
//! Input layout: byte 0 picks the socket type (low 4 bits) and whether a
//! valid peer greeting (bit 7) and a valid READY of a compatible type
//! (bit 6) are put before the fuzzed bytes, so that frame parsing after the
//! handshake is explored too; byte 1 sets the frame limit, byte 2 seeds the
//! chunk sizes; the rest is the stream. Some chunks first give their
//! short messages straight from the read data. After each chunk
//! the connection is polled dry, and every message is checked for
//! consistency; output is drained as a reactor would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zgossip::wire::zmtp::{Connection, ConnectionConfig, ConnectionEvent, SocketType};

fuzz_target!(|data: &[u8]| {
    let [kind, limit, seed, stream @ ..] = data else {
        return;
    };
    let socket_type = SocketType::ALL[usize::from(*kind & 0x0F) % SocketType::ALL.len()];
    let mut prefixed = Vec::new();
    if kind & 0x80 != 0 {
        // Any Connection's greeting is a valid peer greeting.
        prefixed.extend_from_slice(
            Connection::new(ConnectionConfig::new(socket_type)).pending_output(),
        );
        if kind & 0x40 != 0 {
            if let Some(peer) = SocketType::ALL
                .iter()
                .find(|t| socket_type.compatible_with(**t))
            {
                // A peer that has read our greeting queues its READY.
                let mut other = Connection::new(ConnectionConfig::new(*peer));
                let greeting = other.pending_output().len();
                other.consume_output(greeting);
                other.feed(Connection::new(ConnectionConfig::new(socket_type)).pending_output());
                let _ = other.poll();
                prefixed.extend_from_slice(other.pending_output());
            }
        }
    }
    prefixed.extend_from_slice(stream);
    let stream = &prefixed[..];
    let mut config = ConnectionConfig::new(socket_type);
    // Small limits exercise the size checks; 0xFF keeps the default.
    if *limit != 0xFF {
        config.max_frame = usize::from(*limit) * 8;
    }
    let max_frame = config.max_frame;
    let mut conn = Connection::new(config);
    let mut rest = stream;
    let mut state = u32::from(*seed) | 1;
    let mut dead = false;
    while !rest.is_empty() && !dead {
        // xorshift for chunk sizes 1..=64
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state as usize % 64 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        // Half the chunks go through the path that takes short messages
        // straight from read data, the rest is fed.
        let taken = if state & 4 != 0 {
            conn.take_short_messages_from(chunk, |body| {
                assert!(body.len() <= max_frame.min(255));
                true
            })
        } else {
            0
        };
        assert!(taken <= chunk.len());
        conn.feed(&chunk[taken..]);
        loop {
            match conn.poll() {
                Ok(None) => break,
                Ok(Some(ConnectionEvent::Ready(peer))) => {
                    assert!(socket_type.compatible_with(peer.socket_type));
                    assert!(conn.is_ready());
                    // Sending works once ready.
                    conn.queue_message(&[b"x"])
                        .expect("ready connection must send");
                }
                Ok(Some(ConnectionEvent::Message(msg))) => {
                    assert!(!msg.is_empty());
                    assert_eq!(msg.parts().count(), msg.len());
                    assert!(msg.parts().all(|p| p.len() <= max_frame));
                    assert_eq!(msg.parts().next(), Some(msg.first()));
                }
                Err(e) => {
                    let again = conn.poll().expect_err("error must persist");
                    assert_eq!(again, e);
                    assert!(conn.is_closed());
                    let _ = e.to_string();
                    dead = true;
                    break;
                }
            }
        }
        let out = conn.pending_output().len();
        conn.consume_output(out / 2 + 1);
        assert!(conn.buffered_input() <= max_frame + 9 + 64 + 64 || conn.is_closed());
    }
    if state & 2 == 0 {
        conn.fail("fuzz");
        assert!(conn.is_closed());
        assert!(matches!(conn.poll(), Ok(None) | Err(_)));
    }
});
