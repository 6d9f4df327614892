//! Engine fuzzing with well-formed messages (issue 22): arbitrary
//! sequences of ZGP/2 writes (sizes, versions, clocks, expiries, deleted
//! flags) at arbitrary local times, checking the store's invariants after
//! every step.

use super::test_support::at;
use super::*;
use proptest::prelude::*;
const DRIFT: u64 = 60_000;
const GRACE: u64 = 20_000;
const EXPIRED_GRACE: u64 = 5_000;
/// How late a collection may run: the collection interval (a tenth of
/// the shorter grace, at least 1 s) plus a tick and the longest step.
const GC_SLACK: u64 = 1_000 + 250 + 500;

fn settings() -> Settings {
    Settings {
        tombstone_grace_ms: GRACE,
        expired_grace_ms: EXPIRED_GRACE,
        max_clock_ahead_ms: DRIFT,
        ..Settings::default()
    }
}

/// An engine with a ZGP/2 client on connection 10, past HELLO.
fn hub() -> Engine {
    let mut e = Engine::new("hub", 1, settings());
    let peer = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: None,
    };
    e.handle_connected(10, Role::Inbound, peer, at(0));
    let mut hello = Vec::new();
    Message::Hello.encode(&mut hello);
    e.handle_frame(10, &hello, false, at(0));
    e
}

/// One write as a peer sends it, relative to the receiver's time.
#[derive(Debug, Clone)]
struct Op {
    /// Local time passing before it arrives (ms).
    dt: u64,
    key: u8,
    value_len: usize,
    /// Wall ms of its clock relative to the arrival time; None: a clock of
    /// 2^64-1.
    clock_ms: Option<i64>,
    logical: u16,
    origin: u64,
    /// Expiry relative to the arrival time; None: never.
    expires_ms: Option<i64>,
    deleted: bool,
}

fn op(clock_range: std::ops::Range<i64>) -> impl Strategy<Value = Op> {
    (
        0u64..500,
        0u8..6,
        prop_oneof![0usize..16, 0usize..2_000],
        prop_oneof![
            9 => clock_range.prop_map(Some),
            1 => Just(None),
        ],
        0u16..3,
        2u64..5,
        prop_oneof![Just(None), (-5_000i64..10_000).prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(
            |(dt, key, value_len, clock_ms, logical, origin, expires_ms, deleted)| Op {
                dt,
                key,
                value_len,
                clock_ms,
                logical,
                origin,
                expires_ms,
                deleted,
            },
        )
}

fn offset(now_wall: u64, by: i64) -> u64 {
    now_wall.saturating_add_signed(by)
}

/// The TUPLE frame of `o` arriving at local wall time `now_wall`.
fn frame(o: &Op, now_wall: u64) -> Vec<u8> {
    let key = format!("k{}", o.key);
    let value = "v".repeat(o.value_len);
    let clock = match o.clock_ms {
        Some(ms) => (offset(now_wall, ms) << 16) | u64::from(o.logical),
        None => u64::MAX,
    };
    let mut f = Vec::new();
    zgp2::encode_tuple(
        &zgp2::Tuple {
            key: &key,
            value: &value,
            clock,
            origin: o.origin,
            expires: o.expires_ms.map_or(0, |ms| offset(now_wall, ms).max(1)),
            deleted: o.deleted,
            ephemeral: false,
        },
        &mut f,
    );
    f
}

/// The invariants that hold after every step at local time `now`.
fn check(e: &Engine, now: Now) -> Result<(), TestCaseError> {
    let store = e.store();
    let live = store.iter().filter(|(_, t)| t.is_live()).count();
    prop_assert_eq!(store.len(), live, "len() counts the live tuples");
    for (key, t) in store.iter() {
        prop_assert!(
            t.version.wall_ms() <= now.wall_ms + DRIFT,
            "{} stored with a clock from the future: {:?}",
            key,
            t.version
        );
        match store.tombstone_since(key) {
            Some(since) => {
                prop_assert!(t.deleted, "{} live but buried", key);
                // Kept to the second, rounded up.
                prop_assert!(since < now.wall_ms + 1_000);
                prop_assert!(
                    since + GRACE + GC_SLACK > now.wall_ms,
                    "{} kept past its grace: since {}, now {}",
                    key,
                    since,
                    now.wall_ms
                );
            }
            None => prop_assert!(t.is_live(), "{} a tombstone without its time", key),
        }
    }
    prop_assert!(store.origin_count() <= store.entries());
    Ok(())
}

/// The whole store: key -> (value, version, deleted).
fn state(e: &Engine) -> Vec<(String, String, Version, bool)> {
    let mut v: Vec<_> = e
        .store()
        .iter()
        .map(|(k, t)| (k.to_string(), t.value.to_string(), t.version, t.deleted))
        .collect();
    v.sort();
    v
}

proptest! {
    #[test]
    fn arbitrary_writes_at_arbitrary_times_keep_the_store_sound(
        ops in proptest::collection::vec(op(-100_000..200_000), 0..60),
    ) {
        let mut e = hub();
        let mut t = 0;
        for o in &ops {
            t += o.dt;
            let now = at(t);
            e.handle_timeout(now);
            e.handle_frame(10, &frame(o, now.wall_ms), false, now);
            e.drain_outbox(10, |_| true);
            check(&e, now)?;
        }
        // Quiet long enough for every expiry (10 s at most) and every
        // grace: nothing is left but live tuples without an expiry.
        let end = t + 10_000 + GRACE + 2 * GC_SLACK;
        while t < end {
            t += 250;
            e.handle_timeout(at(t));
            e.drain_outbox(10, |_| true);
            check(&e, at(t))?;
        }
        prop_assert_eq!(e.store().entries(), e.store().len(), "tombstones collected");
        prop_assert!(e.store().live().all(|(_, t)| t.expires == 0));
    }

    #[test]
    fn writes_within_the_drift_merge_the_same_in_any_order(
        ops in proptest::collection::vec(op(-(GRACE as i64) + 1_000..DRIFT as i64), 0..40),
        seed in any::<u64>(),
    ) {
        // A write is named by its key and version: its content follows
        // from them, as on a real network. None has expired on arrival,
        // and no version is older than the grace: such a write is dropped
        // when nothing of its key is held, so an older one arriving after
        // it is taken (see docs/protocol.md, sections 5 and 6).
        let now = at(1_000);
        let frames: Vec<Vec<u8>> = ops
            .iter()
            .map(|o| {
                let mut o = o.clone();
                let id = (u64::from(o.key) * 31 + o.origin * 7 + u64::from(o.logical))
                    .wrapping_add(o.clock_ms.map_or(0, |c| c as u64));
                o.value_len = (id % 40) as usize;
                o.deleted = id % 5 == 0;
                o.expires_ms = (id % 3 == 0).then_some(60_000);
                o.clock_ms = o.clock_ms.or(Some(0));
                frame(&o, now.wall_ms)
            })
            .collect();
        let mut shuffled = frames.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let (mut a, mut b) = (hub(), hub());
        for f in &frames {
            a.handle_frame(10, f, false, now);
        }
        for f in &shuffled {
            b.handle_frame(10, f, false, now);
        }
        prop_assert_eq!(state(&a), state(&b));
        prop_assert_eq!(a.store().len(), b.store().len());
        check(&a, now)?;
        check(&b, now)?;
    }
}
