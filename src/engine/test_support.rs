//! Helpers shared by the engine's tests: a clock reading, the frames queued
//! for a connection, the actions asked for, a ZGP v1 message as bytes.

use super::*;

/// Wall-clock time of the tests' origin (2023-11-14).
pub(super) const WALL: u64 = 1_700_000_000_000;

/// The clocks `ms` after the origin.
pub(super) fn at(ms: u64) -> Now {
    Now {
        mono_ms: ms,
        wall_ms: WALL + ms,
    }
}

/// Every frame queued for `conn`, taken out.
pub(super) fn drain(e: &mut Engine, conn: ConnId) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    e.drain_outbox(conn, |f| {
        out.push(f.to_vec());
        true
    });
    out
}

/// Every action the engine asks for, taken out.
pub(super) fn actions(e: &mut Engine) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

/// A ZGP v1 message, encoded.
pub(super) fn enc(m: Message<'_>) -> Vec<u8> {
    let mut v = Vec::new();
    m.encode(&mut v);
    v
}
