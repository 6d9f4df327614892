//! Micro-benchmarks: codecs, the store merge, the engine's forward path
//! and the actor round trip. `cargo bench --bench micro`.

use std::time::Duration;

use divan::{black_box, Bencher};
use zgossip::engine::{Engine, Now, Peer, Role, Settings};
use zgossip::store::{Store, Version, Write};
use zgossip::wire::gossip::{self, Message};
use zgossip::wire::{zgp2, zmtp};

fn main() {
    divan::main();
}

#[divan::bench]
fn zgp_encode_publish(b: Bencher) {
    let mut out = Vec::with_capacity(64);
    b.bench_local(|| {
        out.clear();
        Message::Publish {
            key: black_box("service/database/primary"),
            value: black_box("tcp://10.0.0.5:5432"),
            ttl: 0,
        }
        .encode(&mut out);
        black_box(&out);
    });
}

#[divan::bench]
fn zgp_decode_publish(b: Bencher) {
    let mut frame = Vec::new();
    Message::Publish {
        key: "service/database/primary",
        value: "tcp://10.0.0.5:5432",
        ttl: 0,
    }
    .encode(&mut frame);
    b.bench_local(|| black_box(gossip::decode(black_box(&frame)).unwrap()));
}

#[divan::bench]
fn zgp2_tuple_round_trip(b: Bencher) {
    let t = zgp2::Tuple {
        key: "service/database/primary",
        value: "tcp://10.0.0.5:5432",
        clock: 1 << 40,
        origin: 7,
        expires: 0,
        deleted: false,
        ephemeral: false,
    };
    let mut out = Vec::with_capacity(96);
    b.bench_local(|| {
        out.clear();
        zgp2::encode_tuple(black_box(&t), &mut out);
        black_box(zgp2::decode(&out).unwrap());
    });
}

/// 1,000 frames of 40 bytes through a ZMTP connection: framing and parse.
#[divan::bench]
fn zmtp_1000_frames(b: Bencher) {
    let mut a = zmtp::Connection::new(zmtp::ConnectionConfig::new(zmtp::SocketType::Dealer));
    let mut r = zmtp::Connection::new(zmtp::ConnectionConfig::new(zmtp::SocketType::Router));
    for _ in 0..4 {
        let out = a.pending_output().to_vec();
        a.consume_output(out.len());
        r.feed(&out);
        while let Ok(Some(_)) = r.poll() {}
        let out = r.pending_output().to_vec();
        r.consume_output(out.len());
        a.feed(&out);
        while let Ok(Some(_)) = a.poll() {}
    }
    let frame = [7u8; 40];
    b.bench_local(|| {
        for _ in 0..1000 {
            a.queue_message(&[&frame]).unwrap();
        }
        let out = a.pending_output().to_vec();
        a.consume_output(out.len());
        r.feed(&out);
        let mut n = 0;
        while let Ok(Some(_)) = r.poll() {
            n += 1;
        }
        assert_eq!(n, 1000);
    });
}

#[divan::bench(args = [1_000, 100_000])]
fn store_merge_new_keys(b: Bencher, n: usize) {
    let keys: Vec<String> = (0..n).map(|i| format!("key-{i:08}")).collect();
    b.bench_local(|| {
        let mut s = Store::new();
        for (i, k) in keys.iter().enumerate() {
            s.merge(
                k,
                Write {
                    value: "value-0123456789",
                    version: Version {
                        clock: i as u64,
                        origin: 1,
                    },
                    expires: 0,
                    deleted: false,
                    ephemeral: false,
                },
                0,
            );
        }
        black_box(s.len());
    });
}

/// A PUBLISH received and forwarded to 8 peers, through the engine.
#[divan::bench]
fn engine_receive_and_forward(b: Bencher) {
    let mut e = Engine::new("bench", 1, Settings::default());
    let now = Now {
        mono_ms: 0,
        wall_ms: 1_700_000_000_000,
    };
    let peer = Peer {
        addr: None,
        zgp2: true,
        timeout_ms: Some(1000),
        max_frame: None,
    };
    for c in 0..9 {
        e.handle_connected(c, Role::Inbound, peer, now);
        let mut hello = Vec::new();
        Message::Hello.encode(&mut hello);
        e.handle_frame(c, &hello, false, now);
    }
    let mut dirty = Vec::new();
    let mut i = 0u64;
    b.bench_local(|| {
        i += 1;
        let mut frame = Vec::with_capacity(96);
        zgp2::encode_tuple(
            &zgp2::Tuple {
                key: "k",
                value: "v",
                clock: (1_700_000_000_000 << 16) + i,
                origin: 2,
                expires: 0,
                deleted: false,
                ephemeral: false,
            },
            &mut frame,
        );
        e.handle_frame(0, &frame, false, now);
        e.take_dirty(&mut dirty);
        for &c in &dirty {
            e.drain_outbox(c, |f| {
                black_box(f);
                true
            });
        }
        while e.poll_event().is_some() {}
    });
}

/// STATUS through the node thread and back.
#[divan::bench]
fn actor_round_trip(b: Bencher) {
    let node = zgossip::Node::new("bench").unwrap();
    b.bench_local(|| black_box(node.status().unwrap()));
}

/// PUBLISH from the application until the node has taken it in.
#[divan::bench(sample_count = 20)]
fn actor_publish_10k(b: Bencher) {
    let node = zgossip::Node::new("bench").unwrap();
    let mut round = 0u32;
    b.bench_local(|| {
        round += 1;
        for i in 0..10_000 {
            node.publish(&format!("k{i}"), &format!("v{round}"))
                .unwrap();
        }
        black_box(node.status().unwrap());
        while node.recv_timeout(Duration::ZERO).unwrap().is_some() {}
    });
}
