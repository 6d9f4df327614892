//! `MEMBERS` and the `MEMBER` events on real sockets (loopback): nodes
//! that join list each other, a node dropped is listed as left at once,
//! and the events appear only after `SET membership/events 1`.

use std::time::{Duration, Instant};

use zgossip::{MemberState, Node};

fn node(name: &str) -> (Node, String) {
    let n = Node::new(name).unwrap();
    let port = n.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    (n, format!("tcp://127.0.0.1:{port}"))
}

/// Polls `check` every 20 ms for at most 10 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < end, "not within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn state_of(at: &Node, name: &str) -> Option<MemberState> {
    at.members()
        .unwrap()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.state)
}

/// The `MEMBER` events on `n`'s pipe within `ms`, as (name, state).
fn member_events(n: &Node, ms: u64) -> Vec<(String, String)> {
    let end = Instant::now() + Duration::from_millis(ms);
    let mut seen = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match n.recv_timeout(left).unwrap() {
            Some(msg) if msg[0] == "MEMBER" => {
                assert_eq!(msg.len(), 5, "{msg:?}");
                assert_eq!(msg[1].len(), 16, "{msg:?}");
                seen.push((msg[2].clone(), msg[3].clone()));
            }
            Some(_) => {}
            None => break,
        }
    }
    seen
}

#[test]
fn joined_nodes_list_each_other_and_a_dropped_one_is_left_at_once() {
    let (a, a_ep) = node("alpha");
    let (b, b_ep) = node("beta");
    let (c, _) = node("gamma");
    a.send(&["SET", "membership/events", "1"]).unwrap();
    b.join(&a_ep).unwrap();
    c.join(&a_ep).unwrap();
    for n in [&a, &b, &c] {
        eventually("three members alive everywhere", || {
            let m = n.members().unwrap();
            m.len() == 3 && m.iter().all(|m| m.state == MemberState::Alive)
        });
    }
    let list = b.members().unwrap();
    assert_eq!(list[0].name, "beta", "itself first");
    let alpha = list.iter().find(|m| m.name == "alpha").unwrap();
    assert_eq!(alpha.endpoint, a_ep);
    let mut joined = member_events(&a, 300);
    joined.sort();
    assert_eq!(
        joined,
        [
            ("beta".into(), "alive".into()),
            ("gamma".into(), "alive".into())
        ]
    );
    // b had no events asked for: nothing new on its pipe.
    assert!(member_events(&b, 100).is_empty());

    // Dropping the handle leaves: left at once, never failed.
    let started = Instant::now();
    drop(c);
    eventually("gamma left on alpha and beta", || {
        state_of(&a, "gamma") == Some(MemberState::Left)
            && state_of(&b, "gamma") == Some(MemberState::Left)
    });
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        member_events(&a, 300),
        [("gamma".to_string(), "left".to_string())]
    );
    let stats = a.stats().unwrap();
    assert_eq!(stats["members-alive"], 1);
    assert_eq!(stats["members-gone"], 1);
    assert_eq!(stats["members-failures"], 0);
    let _ = b_ep;
}

#[test]
fn members_refuses_arguments_and_bad_settings_are_named() {
    let n = Node::new("m").unwrap();
    let e = n.send(&["MEMBERS", "x"]).unwrap_err().to_string();
    assert!(e.contains("MEMBERS"), "{e}");
    let e = n
        .send(&["SET", "membership/events", "2"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("membership/events"), "{e}");
    // A node alone lists itself.
    let m = n.members().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].name.as_str(), m[0].state), ("m", MemberState::Alive));
}

#[test]
fn an_ephemeral_tuple_is_deleted_everywhere_when_its_writer_leaves() {
    let (a, a_ep) = node("writer");
    let (b, _) = node("reader");
    b.join(&a_ep).unwrap();
    eventually("b lists a", || {
        state_of(&b, "writer") == Some(MemberState::Alive)
    });
    a.publish_ephemeral("svc/db", "tcp://10.0.0.1:5432")
        .unwrap();
    a.publish("plain", "stays").unwrap();
    eventually("b holds both", || {
        b.get("svc/db").unwrap().is_some() && b.get("plain").unwrap().is_some()
    });
    // Refused as PUBLISH would be.
    let e = a.send(&["EPHEMERAL", "k"]).unwrap_err().to_string();
    assert!(e.contains("EPHEMERAL takes 2 arguments"), "{e}");
    drop(a);
    eventually("svc/db deleted on b", || b.get("svc/db").unwrap().is_none());
    assert_eq!(b.get("plain").unwrap().as_deref(), Some("stays"));
    // b's application was told: DELETE svc/db.
    let end = Instant::now() + Duration::from_secs(5);
    let mut deleted = false;
    while !deleted && Instant::now() < end {
        if let Some(msg) = b.recv_timeout(Duration::from_millis(200)).unwrap() {
            deleted = msg == ["DELETE", "svc/db"];
        }
    }
    assert!(deleted, "no DELETE svc/db on b's pipe");
    assert_eq!(b.stats().unwrap()["ephemeral-deleted"], 1);
}
