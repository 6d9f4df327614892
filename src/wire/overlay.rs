//! The overlay's ZGP/2 messages: the active and passive views (HyParView:
//! join, forward join, neighbour requests, disconnects, shuffles) and the
//! broadcast tree (Plumtree: announcements, grafts, prunes). They are ZGP/2
//! messages like TUPLE (signature, id, version octet 2) and only travel on
//! extended connections; `docs/protocol.md` section 12 gives their ABNF.
//!
//! ```text
//! JOIN           (10) = peer
//! FORWARD-JOIN   (11) = ttl peer
//! NEIGHBOR       (12) = priority peer
//! NEIGHBOR-REPLY (13) = accepted peer
//! DISCONNECT     (14) = alive
//! SHUFFLE        (15) = ttl number-1 *peer
//! SHUFFLE-REPLY  (16) = number-1 *peer
//! IHAVE          (17) = number-2 *write-id
//! GRAFT          (18) = number-2 *write-id
//! PRUNE          (19) =
//! ANCHOR         (20) = node-id
//! ROOT           (21) = node-id seq level parent ; seq = number-8 ; level = number-1
//! ROOT-REQUEST   (22) = node-id seq
//! peer = node-id endpoint key ; node-id = number-8 ; endpoint = number-1 *OCTET
//! key = %x00 / %x20 32OCTET (the node's CURVE public key, if it has one)
//! write-id = key clock origin ; key = number-1 *OCTET (as in TUPLE)
//! ```

use super::gossip::MAX_KEY_LEN;
use super::zgp2::{DecodeError, Reader};

pub(crate) const ID_JOIN: u8 = 10;
pub(crate) const ID_FORWARD_JOIN: u8 = 11;
pub(crate) const ID_NEIGHBOR: u8 = 12;
pub(crate) const ID_NEIGHBOR_REPLY: u8 = 13;
pub(crate) const ID_DISCONNECT: u8 = 14;
pub(crate) const ID_SHUFFLE: u8 = 15;
pub(crate) const ID_SHUFFLE_REPLY: u8 = 16;
pub(crate) const ID_IHAVE: u8 = 17;
pub(crate) const ID_GRAFT: u8 = 18;
pub(crate) const ID_PRUNE: u8 = 19;
pub(crate) const ID_ANCHOR: u8 = 20;
pub(crate) const ID_ROOT: u8 = 21;
pub(crate) const ID_ROOT_REQUEST: u8 = 22;

/// The most peers one SHUFFLE or SHUFFLE-REPLY may carry.
pub const MAX_SHUFFLE_PEERS: usize = 64;
/// The most write ids one IHAVE or GRAFT may carry.
pub const MAX_ANNOUNCED: usize = 1024;
/// The longest endpoint a peer entry may carry.
pub const MAX_ENDPOINT_LEN: usize = 255;

/// A member of the overlay as the messages name it: its node id, the
/// endpoint others dial to reach it (empty when it does not listen) and,
/// on a CURVE network, its public key (others dial it as CURVE clients of
/// that key; a wrong key only makes the dial fail its handshake).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerEntry {
    pub id: u64,
    pub endpoint: String,
    pub key: Option<[u8; 32]>,
}

/// Names one write: its key and version (the version alone is not
/// enough: one node's clock stamps writes of many keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WriteId {
    pub key: String,
    pub clock: u64,
    pub origin: u64,
}

/// What a node tells each tree link of the broadcast tree's root: the
/// root's id, the newest sequence number of the root it has taken, its
/// distance to the root in hops ([`ROOT_UNREACHABLE`]: it has lost its
/// way to it) and whether the receiver is its parent on that way
/// (`engine/tree_root.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RootAdvert {
    pub root: u64,
    pub seq: u64,
    pub level: u8,
    pub parent: bool,
}

/// The level of a node that has lost its way to the root.
pub const ROOT_UNREACHABLE: u8 = u8::MAX;

/// One overlay message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A new node asks the receiver, its contact, to take it into its
    /// active view and to introduce it to the network.
    Join(PeerEntry),
    /// A join travelling a random walk of `ttl` more hops.
    ForwardJoin { ttl: u8, peer: PeerEntry },
    /// The sender asks for an active link; a `high` request may only be
    /// refused by a node that cannot take any link.
    Neighbor { high: bool, peer: PeerEntry },
    /// The answer to JOIN or NEIGHBOR, with the answering node's entry.
    NeighborReply { accepted: bool, peer: PeerEntry },
    /// The sender drops the link; `alive`: it stays up (keep it as a
    /// passive peer).
    Disconnect { alive: bool },
    /// A sample of the sender's views walking `ttl` more hops.
    Shuffle { ttl: u8, peers: Vec<PeerEntry> },
    /// A sample of the receiver's passive view, answering a SHUFFLE.
    ShuffleReply(Vec<PeerEntry>),
    /// Writes the sender holds, announced instead of sent.
    IHave(Vec<WriteId>),
    /// Send these writes, and from now on push new ones on this link.
    Graft(Vec<WriteId>),
    /// Stop pushing writes on this link; announce them.
    Prune,
    /// The smallest node id the sender knows in its part of the overlay
    /// (its *anchor*: nodes that hear of a smaller one by discovery join
    /// that part, so that groups that formed apart become one).
    Anchor(u64),
    /// The broadcast tree's root as the sender knows it, and whether the
    /// receiver is the sender's parent toward it.
    Root(RootAdvert),
    /// The sender lost its way to `root` at number `seq` and asks the root
    /// for a newer one (passed on from parent to parent).
    RootRequest { root: u64, seq: u64 },
}

impl Message {
    pub fn name(&self) -> &'static str {
        match self {
            Message::Join(_) => "JOIN",
            Message::ForwardJoin { .. } => "FORWARD-JOIN",
            Message::Neighbor { .. } => "NEIGHBOR",
            Message::NeighborReply { .. } => "NEIGHBOR-REPLY",
            Message::Disconnect { .. } => "DISCONNECT",
            Message::Shuffle { .. } => "SHUFFLE",
            Message::ShuffleReply(_) => "SHUFFLE-REPLY",
            Message::IHave(_) => "IHAVE",
            Message::Graft(_) => "GRAFT",
            Message::Prune => "PRUNE",
            Message::Anchor(_) => "ANCHOR",
            Message::Root(_) => "ROOT",
            Message::RootRequest { .. } => "ROOT-REQUEST",
        }
    }

    /// Appends the message as one ZGP/2 frame. Lists longer than the
    /// limits above are cut to them (callers keep within them).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let id = match self {
            Message::Join(_) => ID_JOIN,
            Message::ForwardJoin { .. } => ID_FORWARD_JOIN,
            Message::Neighbor { .. } => ID_NEIGHBOR,
            Message::NeighborReply { .. } => ID_NEIGHBOR_REPLY,
            Message::Disconnect { .. } => ID_DISCONNECT,
            Message::Shuffle { .. } => ID_SHUFFLE,
            Message::ShuffleReply(_) => ID_SHUFFLE_REPLY,
            Message::IHave(_) => ID_IHAVE,
            Message::Graft(_) => ID_GRAFT,
            Message::Prune => ID_PRUNE,
            Message::Anchor(_) => ID_ANCHOR,
            Message::Root(_) => ID_ROOT,
            Message::RootRequest { .. } => ID_ROOT_REQUEST,
        };
        super::zgp2::header(out, id);
        match self {
            Message::Join(peer) => encode_peer(peer, out),
            Message::ForwardJoin { ttl, peer } => {
                out.push(*ttl);
                encode_peer(peer, out);
            }
            Message::Neighbor { high: flag, peer }
            | Message::NeighborReply {
                accepted: flag,
                peer,
            } => {
                out.push(u8::from(*flag));
                encode_peer(peer, out);
            }
            Message::Disconnect { alive } => out.push(u8::from(*alive)),
            Message::Shuffle { ttl, peers } => {
                out.push(*ttl);
                encode_peers(peers, out);
            }
            Message::ShuffleReply(peers) => encode_peers(peers, out),
            Message::IHave(ids) | Message::Graft(ids) => {
                let ids = &ids[..ids.len().min(MAX_ANNOUNCED)];
                out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
                for id in ids {
                    let key = &id.key.as_bytes()[..id.key.len().min(MAX_KEY_LEN)];
                    out.push(key.len() as u8);
                    out.extend_from_slice(key);
                    out.extend_from_slice(&id.clock.to_be_bytes());
                    out.extend_from_slice(&id.origin.to_be_bytes());
                }
            }
            Message::Prune => {}
            Message::Anchor(id) => out.extend_from_slice(&id.to_be_bytes()),
            Message::Root(a) => {
                out.extend_from_slice(&a.root.to_be_bytes());
                out.extend_from_slice(&a.seq.to_be_bytes());
                out.push(a.level);
                out.push(u8::from(a.parent));
            }
            Message::RootRequest { root, seq } => {
                out.extend_from_slice(&root.to_be_bytes());
                out.extend_from_slice(&seq.to_be_bytes());
            }
        }
    }
}

/// Bytes a write id of a key of `key_len` bytes takes in an IHAVE or
/// GRAFT (which take 6 bytes more, for the header and the count).
pub fn write_id_len(key_len: usize) -> usize {
    1 + key_len + 16
}

fn encode_peer(peer: &PeerEntry, out: &mut Vec<u8>) {
    let endpoint = &peer.endpoint.as_bytes()[..peer.endpoint.len().min(MAX_ENDPOINT_LEN)];
    out.extend_from_slice(&peer.id.to_be_bytes());
    out.push(endpoint.len() as u8);
    out.extend_from_slice(endpoint);
    match &peer.key {
        Some(key) => {
            out.push(32);
            out.extend_from_slice(key);
        }
        None => out.push(0),
    }
}

fn encode_peers(peers: &[PeerEntry], out: &mut Vec<u8>) {
    let peers = &peers[..peers.len().min(MAX_SHUFFLE_PEERS)];
    out.push(peers.len() as u8);
    for p in peers {
        encode_peer(p, out);
    }
}

/// The host and port of `tcp://host:port`, if the endpoint has that form
/// (the host may be a wildcard).
fn host_and_port(endpoint: &str) -> Option<(&str, u16)> {
    let (host, port) = endpoint.strip_prefix("tcp://")?.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|&p| p != 0)?;
    let bad = host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/');
    (!bad).then_some((host, port))
}

/// Whether `endpoint` has the form `tcp://host:port` (the host may be a
/// wildcard).
pub(crate) fn endpoint_parses(endpoint: &str) -> bool {
    host_and_port(endpoint).is_some()
}

/// Whether a peer can be dialled at `endpoint`: `tcp://host:port` with a
/// port and a host that is not a wildcard.
pub fn endpoint_is_dialable(endpoint: &str) -> bool {
    host_and_port(endpoint)
        .is_some_and(|(host, _)| !matches!(host, "*" | "0.0.0.0" | "[::]" | "::"))
}

/// A node bound to a wildcard address does not know the address others
/// reach it at: it says `tcp://*:PORT` of itself, and the node it talks to
/// puts in the address the connection comes from (`peer_ip`). Any other
/// endpoint is returned as it is.
pub fn resolve_wildcard(endpoint: &str, peer_ip: Option<std::net::IpAddr>) -> String {
    match (host_and_port(endpoint), peer_ip) {
        (Some(("*" | "0.0.0.0" | "[::]" | "::", port)), Some(ip)) => {
            format!("tcp://{}", std::net::SocketAddr::new(ip, port))
        }
        _ => endpoint.to_string(),
    }
}

fn decode_peer(r: &mut Reader<'_>) -> Result<PeerEntry, DecodeError> {
    let id = r.u64("node id")?;
    let n = r.u8("endpoint")? as usize;
    let endpoint = r.text(n, "endpoint")?;
    if !endpoint.is_empty() && host_and_port(endpoint).is_none() {
        return Err(DecodeError::BadField("endpoint"));
    }
    let key = match r.u8("key")? {
        0 => None,
        32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(r.take(32, "key")?);
            Some(key)
        }
        _ => return Err(DecodeError::BadField("key")),
    };
    Ok(PeerEntry {
        id,
        endpoint: endpoint.to_string(),
        key,
    })
}

fn decode_peers(r: &mut Reader<'_>) -> Result<Vec<PeerEntry>, DecodeError> {
    let n = r.u8("peers")? as usize;
    if n > MAX_SHUFFLE_PEERS {
        return Err(DecodeError::BadField("peers"));
    }
    // The smallest entry is 10 bytes: check before allocating.
    r.room(n, 10, "peers")?;
    (0..n).map(|_| decode_peer(r)).collect()
}

fn decode_flag(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::BadField(field)),
    }
}

/// Decodes the body of an overlay message with id `id` (the four header
/// octets already read); `None` if `id` is not an overlay message.
pub(crate) fn decode_body(id: u8, r: &mut Reader<'_>) -> Option<Result<Message, DecodeError>> {
    let body = |r: &mut Reader<'_>| -> Result<Message, DecodeError> {
        Ok(match id {
            ID_JOIN => Message::Join(decode_peer(r)?),
            ID_FORWARD_JOIN => Message::ForwardJoin {
                ttl: r.u8("ttl")?,
                peer: decode_peer(r)?,
            },
            ID_NEIGHBOR => Message::Neighbor {
                high: decode_flag(r, "priority")?,
                peer: decode_peer(r)?,
            },
            ID_NEIGHBOR_REPLY => Message::NeighborReply {
                accepted: decode_flag(r, "accepted")?,
                peer: decode_peer(r)?,
            },
            ID_DISCONNECT => Message::Disconnect {
                alive: decode_flag(r, "alive")?,
            },
            ID_SHUFFLE => Message::Shuffle {
                ttl: r.u8("ttl")?,
                peers: decode_peers(r)?,
            },
            ID_SHUFFLE_REPLY => Message::ShuffleReply(decode_peers(r)?),
            ID_IHAVE | ID_GRAFT => {
                let n = r.u16("write ids")? as usize;
                if n > MAX_ANNOUNCED {
                    return Err(DecodeError::BadField("write ids"));
                }
                r.room(n, write_id_len(0), "write ids")?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let klen = r.u8("key")? as usize;
                    ids.push(WriteId {
                        key: r.text(klen, "key")?.to_string(),
                        clock: r.u64("clock")?,
                        origin: r.u64("origin")?,
                    });
                }
                if id == ID_IHAVE {
                    Message::IHave(ids)
                } else {
                    Message::Graft(ids)
                }
            }
            ID_PRUNE => Message::Prune,
            ID_ANCHOR => match r.u64("anchor")? {
                0 => return Err(DecodeError::BadField("anchor")),
                id => Message::Anchor(id),
            },
            ID_ROOT => Message::Root(RootAdvert {
                root: match r.u64("root")? {
                    0 => return Err(DecodeError::BadField("root")),
                    id => id,
                },
                seq: r.u64("seq")?,
                level: r.u8("level")?,
                parent: decode_flag(r, "parent")?,
            }),
            ID_ROOT_REQUEST => Message::RootRequest {
                root: match r.u64("root")? {
                    0 => return Err(DecodeError::BadField("root")),
                    id => id,
                },
                seq: r.u64("seq")?,
            },
            _ => unreachable!("checked below"),
        })
    };
    (ID_JOIN..=ID_ROOT_REQUEST).contains(&id).then(|| body(r))
}

#[cfg(test)]
mod tests {
    use super::super::zgp2::{self, decode};
    use super::*;
    use proptest::prelude::*;

    fn peer(id: u64, endpoint: &str) -> PeerEntry {
        PeerEntry {
            id,
            endpoint: endpoint.to_string(),
            key: (id % 2 == 0).then_some([id as u8; 32]),
        }
    }

    fn all() -> Vec<Message> {
        let item = WriteId {
            key: "some/key".into(),
            clock: 2,
            origin: 3,
        };
        vec![
            Message::Join(peer(7, "tcp://10.0.0.1:5670")),
            Message::ForwardJoin {
                ttl: 6,
                peer: peer(u64::MAX, "tcp://[::1]:1"),
            },
            Message::Neighbor {
                high: true,
                peer: peer(1, ""),
            },
            Message::NeighborReply {
                accepted: false,
                peer: peer(2, "tcp://host.example:65535"),
            },
            Message::Disconnect { alive: true },
            Message::Shuffle {
                ttl: 3,
                peers: vec![peer(1, "tcp://a:1"), peer(2, "")],
            },
            Message::ShuffleReply(vec![]),
            Message::IHave(vec![item.clone(), item.clone()]),
            Message::Graft(vec![item]),
            Message::Prune,
            Message::Anchor(0x0102_0304_0506_0708),
            Message::Root(RootAdvert {
                root: 9,
                seq: u64::MAX,
                level: ROOT_UNREACHABLE,
                parent: true,
            }),
            Message::RootRequest { root: 1, seq: 0 },
        ]
    }

    #[test]
    fn every_message_round_trips_through_the_zgp2_decoder() {
        for m in all() {
            let mut out = Vec::new();
            m.encode(&mut out);
            assert_eq!(&out[..2], &[0xAA, 0xA0]);
            assert_eq!(out[3], 2, "{}", m.name());
            assert_eq!(decode(&out), Ok(zgp2::Message::Overlay(m.clone())));
        }
    }

    #[test]
    fn the_bytes_of_a_forward_join_are_laid_out_field_by_field() {
        let mut out = Vec::new();
        Message::ForwardJoin {
            ttl: 6,
            peer: peer(0x0102_0304_0506_0707, "tcp://a:1"),
        }
        .encode(&mut out);
        let mut want = vec![0xAA, 0xA0, 11, 2, 6, 1, 2, 3, 4, 5, 6, 7, 7, 9];
        want.extend_from_slice(b"tcp://a:1");
        want.push(0);
        assert_eq!(out, want);
        let mut ihave = Vec::new();
        Message::IHave(vec![WriteId {
            key: "ab".into(),
            clock: 0x1112_1314_1516_1718,
            origin: 0x2122_2324_2526_2728,
        }])
        .encode(&mut ihave);
        let mut want = vec![0xAA, 0xA0, 17, 2, 0, 1, 2, b'a', b'b'];
        want.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        want.extend_from_slice(&[0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28]);
        assert_eq!(ihave, want);
        assert_eq!(ihave.len(), 6 + write_id_len(2));
        let mut root = Vec::new();
        Message::Root(RootAdvert {
            root: 0x0102_0304_0506_0708,
            seq: 0x1112_1314_1516_1718,
            level: 3,
            parent: true,
        })
        .encode(&mut root);
        let mut want = vec![0xAA, 0xA0, 21, 2, 1, 2, 3, 4, 5, 6, 7, 8];
        want.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 3, 1]);
        assert_eq!(root, want);
    }

    #[test]
    fn impossible_contents_are_refused_with_the_field_named() {
        let cases: Vec<(Vec<u8>, DecodeError)> = vec![
            // An endpoint that does not parse.
            (
                [
                    &[0xAA, 0xA0, 10, 2, 0, 0, 0, 0, 0, 0, 0, 1, 5][..],
                    b"hello",
                ]
                .concat(),
                DecodeError::BadField("endpoint"),
            ),
            // A key that is neither absent nor 32 bytes.
            (
                [
                    &[0xAA, 0xA0, 10, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 16][..],
                    &[0; 16],
                ]
                .concat(),
                DecodeError::BadField("key"),
            ),
            // A flag that is neither 0 nor 1.
            (vec![0xAA, 0xA0, 14, 2, 2], DecodeError::BadField("alive")),
            // An anchor of 0 (no node has id 0), and a short one.
            (
                vec![0xAA, 0xA0, 20, 2, 0, 0, 0, 0, 0, 0, 0, 0],
                DecodeError::BadField("anchor"),
            ),
            (
                vec![0xAA, 0xA0, 20, 2, 0, 0, 1],
                DecodeError::Truncated("anchor"),
            ),
            // More peers than a shuffle may carry.
            (vec![0xAA, 0xA0, 16, 2, 65], DecodeError::BadField("peers")),
            // A count the frame cannot hold.
            (
                vec![0xAA, 0xA0, 16, 2, 3, 0, 0],
                DecodeError::Truncated("peers"),
            ),
            (
                vec![0xAA, 0xA0, 17, 2, 0, 2, 0],
                DecodeError::Truncated("write ids"),
            ),
            (
                vec![0xAA, 0xA0, 18, 2, 0xFF, 0xFF],
                DecodeError::BadField("write ids"),
            ),
            (vec![0xAA, 0xA0, 19, 2, 0], DecodeError::TrailingBytes(1)),
            // A root of 0, a parent flag of 2, a short one.
            (
                [
                    &[0xAA, 0xA0, 21, 2][..],
                    &[0; 8],
                    &[0, 0, 0, 0, 0, 0, 0, 1, 3, 0],
                ]
                .concat(),
                DecodeError::BadField("root"),
            ),
            (
                [
                    &[0xAA, 0xA0, 21, 2, 0, 0, 0, 0, 0, 0, 0, 1][..],
                    &[0; 9],
                    &[2],
                ]
                .concat(),
                DecodeError::BadField("parent"),
            ),
            (
                vec![0xAA, 0xA0, 21, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                DecodeError::Truncated("seq"),
            ),
            (
                vec![
                    0xAA, 0xA0, 22, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                ],
                DecodeError::BadField("root"),
            ),
            (vec![0xAA, 0xA0, 25, 2], DecodeError::UnknownId(25)),
        ];
        for (frame, want) in cases {
            assert_eq!(decode(&frame), Err(want), "{frame:?}");
        }
    }

    #[test]
    fn a_wildcard_endpoint_takes_the_address_the_connection_came_from() {
        let ip = Some("10.1.2.3".parse().unwrap());
        assert_eq!(resolve_wildcard("tcp://*:5670", ip), "tcp://10.1.2.3:5670");
        assert_eq!(resolve_wildcard("tcp://0.0.0.0:9", ip), "tcp://10.1.2.3:9");
        let v6 = Some("::1".parse().unwrap());
        assert_eq!(resolve_wildcard("tcp://*:9", v6), "tcp://[::1]:9");
        assert_eq!(resolve_wildcard("tcp://host:9", ip), "tcp://host:9");
        assert_eq!(resolve_wildcard("tcp://*:9", None), "tcp://*:9");
        assert!(endpoint_is_dialable(&resolve_wildcard("tcp://*:9", ip)));
    }

    #[test]
    fn dialable_endpoints() {
        for ok in [
            "tcp://127.0.0.1:5670",
            "tcp://[::1]:9",
            "tcp://node-1.lan:80",
        ] {
            assert!(endpoint_is_dialable(ok), "{ok}");
        }
        for bad in [
            "",
            "tcp://*:5670",
            "tcp://0.0.0.0:5670",
            "tcp://host",
            "tcp://host:0",
            "tcp://host:99999",
            "ipc:///tmp/x",
            "tcp://:5",
            "tcp://a b:5",
        ] {
            assert!(!endpoint_is_dialable(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(id in 10u8..20, body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let frame = [&[0xAA, 0xA0, id, 2][..], &body].concat();
            let _ = decode(&frame);
        }
    }
}
