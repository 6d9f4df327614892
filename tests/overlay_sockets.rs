//! The overlay over real sockets on loopback: nodes that JOIN through a
//! contact keep a few links each, and every write reaches every node.

mod common;

use std::time::Duration;

use common::wait_until;
use zgossip::Node;

fn stat(node: &Node, name: &str) -> u64 {
    node.stats().unwrap().get(name).copied().unwrap_or(0)
}

#[test]
fn nodes_that_join_keep_a_few_links_and_every_write_reaches_every_node() {
    let n = 16;
    let mut nodes = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..n {
        let node = Node::new(&format!("o{i}")).unwrap();
        let port = node.bind("tcp://127.0.0.1:*").unwrap().unwrap();
        endpoints.push(format!("tcp://127.0.0.1:{port}"));
        if i > 0 {
            // Through a contact: node 0 for the first few, then any.
            node.join(&endpoints[(i * 7) % i]).unwrap();
        }
        nodes.push(node);
    }
    let active_max = 5;
    let formed = wait_until(Duration::from_secs(10), || {
        nodes.iter().all(|n| stat(n, "overlay-active") >= 1)
    });
    assert!(formed, "every node has an overlay link");
    for (i, node) in nodes.iter().enumerate() {
        node.publish(&format!("k{i}"), "v").unwrap();
    }
    let all = wait_until(Duration::from_secs(10), || {
        nodes.iter().all(|node| common::status(node) == n)
    });
    assert!(all, "every node holds every write");
    for (i, node) in nodes.iter().enumerate() {
        let active = stat(node, "overlay-active");
        assert!(active <= active_max, "o{i}: {active} overlay links");
        // The links are the overlay's, not a mesh.
        assert!(stat(node, "connections") < (n - 1) as u64, "o{i}");
        assert_eq!(node.get("k0").unwrap().as_deref(), Some("v"));
    }
    let eager: u64 = nodes.iter().map(|n| stat(n, "overlay-eager")).sum();
    let lazy: u64 = nodes.iter().map(|n| stat(n, "overlay-lazy")).sum();
    assert!(eager + lazy > 0);
}

#[test]
fn join_refuses_what_is_not_a_tcp_contact() {
    let node = Node::new("j").unwrap();
    let e = node.join("ipc:///tmp/nowhere").unwrap_err().to_string();
    assert!(e.contains("not a tcp:// endpoint"), "{e}");
    let e = node.join("tcp://nohost").unwrap_err().to_string();
    assert!(e.contains("expected host:port"), "{e}");
    // An unreachable contact is not an error: it is dialled again while
    // the node is alone.
    node.join("tcp://127.0.0.1:1").unwrap();
    assert_eq!(stat(&node, "overlay-active"), 0);
}

#[test]
fn the_overlay_settings_are_set_and_refused_with_the_path_named() {
    let node = Node::new("s").unwrap();
    node.send(&["SET", "overlay/active-max", "3"]).unwrap();
    let e = node
        .send(&["SET", "overlay/active-max", "0"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("overlay/active-max must be between 1 and 64"),
        "{e}"
    );
}

#[test]
fn nodes_of_two_clusters_refuse_each_other_and_say_so() {
    let node = |name: &str, cluster: Option<&str>| {
        let n = Node::new(name).unwrap();
        if let Some(c) = cluster {
            n.send(&["SET", "cluster/name", c]).unwrap();
        }
        let port = n.bind("tcp://127.0.0.1:*").unwrap().unwrap();
        (n, format!("tcp://127.0.0.1:{port}"))
    };
    let (prod, prod_ep) = node("prod", Some("prod"));
    let (test, _) = node("test", Some("test"));
    let (plain, _) = node("plain", None);
    let (prod2, _) = node("prod2", Some("prod"));
    prod.publish("secret", "prod only").unwrap();
    test.connect(&prod_ep).unwrap();
    plain.join(&prod_ep).unwrap();
    prod2.join(&prod_ep).unwrap();
    // The same cluster links and converges...
    assert!(wait_until(Duration::from_secs(10), || common::status(
        &prod2
    ) == 1));
    // ...the others are refused on both sides, and counted.
    assert!(wait_until(Duration::from_secs(10), || {
        stat(&test, "cluster-refused") >= 1
            && stat(&plain, "cluster-refused") >= 1
            && stat(&prod, "cluster-refused") >= 2
    }));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(common::status(&test), 0);
    assert_eq!(common::status(&plain), 0);
    let e = test
        .send(&["SET", "cluster/name", "bad\tname"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("control characters"), "{e}");
}
