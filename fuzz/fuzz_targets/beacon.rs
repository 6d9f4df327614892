//! Discovery beacons: arbitrary bytes decode or are rejected, never panic;
//! what decodes (the advertised endpoint of version 5 too) re-encodes to
//! a beacon that decodes the same. Then the
//! input, cut into datagrams, is fed to the discovery state machine (plain
//! or CURVE, by the first byte): it never panics, and never tracks more
//! peers than its bound.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use zgossip::beacon::discovery::{Discovery, DiscoverySettings};
use zgossip::beacon::frame::{decode, encode_advertised, encode_for};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = decode(data) {
        let again = match &a.advertised {
            Some(ep) => encode_advertised(
                a.port,
                a.node_id,
                a.public_key.as_ref(),
                &a.cluster,
                a.anchor.unwrap_or(a.node_id),
                ep,
            ),
            None => encode_for(
                a.port,
                a.node_id,
                a.public_key.as_ref(),
                &a.cluster,
                a.anchor,
            ),
        };
        let b = decode(&again).expect("a re-encoded beacon must decode");
        assert_eq!(
            (b.port, b.node_id, b.public_key, &b.cluster, b.anchor),
            (a.port, a.node_id, a.public_key, &a.cluster, a.anchor)
        );
        assert_eq!(b.advertised, a.advertised);
    }
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let settings = DiscoverySettings {
        max_peers: 8,
        ..DiscoverySettings::for_interval(100)
    };
    // Plain or CURVE by the first bit, in no cluster or in "c" by the second.
    let cluster = if first & 2 == 2 { "c" } else { "" };
    let mut d = Discovery::new(1, first & 1 == 1, settings, 0).in_cluster(cluster);
    // Dual stack (peers heard over both families kept at IPv4) by the
    // fourth bit.
    if first & 8 == 8 {
        d = d.preferring_ipv4();
    }
    // Joined, with an anchor, by the third bit: beacons of smaller anchors
    // are handed on.
    if first & 4 == 4 {
        d.set_joined(true);
        d.set_anchor(Some(u64::MAX / 2));
    }
    let admit = |_: IpAddr, k: Option<&[u8; 32]>| k.is_none_or(|k| k[0] & 1 == 0);
    let mut now = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        // Four IPv4 and four IPv6 sources.
        let source = match len % 8 {
            l @ 0..=3 => IpAddr::from([10, 0, 0, l]),
            l => IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, u16::from(l)]),
        };
        now += u64::from(len);
        d.handle_datagram(source, datagram, now, &admit);
        d.handle_timeout(now);
        while d.poll_action().is_some() {}
        assert!(d.peer_count() <= 8);
        rest = next;
    }
});
