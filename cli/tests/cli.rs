//! The `zgossip` command, driven as real processes on loopback (and, for
//! `--discover`, inside a network namespace the test creates).

#[path = "../../tests/support/netns.rs"]
mod netns;

mod support;

use std::time::{Duration, Instant};

use support::process::{run, Proc, BIN, T};

#[test]
fn two_node_processes_exchange_tuples() {
    let a = Proc::node(&["--bind", "tcp://127.0.0.1:*", "--publish", "from-a=1"]);
    let ep = a.bound_endpoint();
    let b = Proc::node(&["--connect", &ep, "--publish", "from-b=2", "--json"]);
    a.expect("b's tuple", |l| l == "from-b = 2");
    b.expect("a's tuple", |l| {
        l == r#"{"event":"deliver","key":"from-a","value":"1"}"#
    });
    assert_eq!(b.terminate(), 0);
    assert_eq!(a.terminate(), 0);
}

#[test]
fn put_then_get_from_other_processes() {
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*"]);
    let ep = hub.bound_endpoint();
    let (code, _, err) = run(&["put", "greeting", "hello world", "-c", &ep]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the tuple at the hub", |l| l == "greeting = hello world");
    let (code, out, err) = run(&["get", "greeting", "-c", &ep]);
    assert_eq!((code, out.as_str()), (0, "hello world\n"), "{err}");
    let (code, _, err) = run(&["get", "missing", "-c", &ep]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing: not found"), "{err}");
    let (code, _, err) = run(&["del", "greeting", "-c", &ep]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the delete at the hub", |l| l == "greeting deleted");
    let (code, _, _) = run(&["get", "greeting", "-c", &ep]);
    assert_eq!(code, 1);
}

#[test]
fn exit_codes_tell_what_went_wrong() {
    let (code, _, err) = run(&["get"]);
    assert_eq!(code, 2, "usage: {err}");
    let (code, _, err) = run(&["get", "k", "-c", "tcp://127.0.0.1:1", "--timeout", "300"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no node reachable"), "{err}");
    let (code, _, err) = run(&["get", "k", "-c", "bogus"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad endpoint 'bogus'"), "{err}");
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*"]);
    let ep = hub.bound_endpoint();
    let (code, _, err) = run(&["node", "--no-control", "--bind", &ep]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("cannot bind"), "{err}");
}

#[test]
fn a_bad_advertise_or_dns_seed_is_refused_saying_why() {
    let (code, _, err) = run(&["node", "--no-control", "--advertise", "tcp://*:5670"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("overlay/advertise must be tcp://HOST:PORT"),
        "{err}"
    );
    let (code, _, err) = run(&["node", "--no-control", "--join", "dns:seeds.test"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("bad DNS seed 'dns:seeds.test': missing :PORT"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "node",
        "--no-control",
        "--dns-interval",
        "5",
        "--join",
        "dns:s.test:1",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("overlay/dns-interval must be between 100"),
        "{err}"
    );
}

#[test]
fn demo_runs_to_a_clean_exit() {
    let (code, out, err) = run(&["demo", "--nodes", "4", "--tuples", "20"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("every node holds all 20 tuples"), "{out}");
}

#[test]
fn keygen_prints_or_writes_a_key_pair() {
    let (code, out, _) = run(&["keygen"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.len() == 40));
    let path = std::env::temp_dir().join(format!("zgossip-cli-{}.cert", std::process::id()));
    let (code, out, _) = run(&["keygen", "--cert", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    let cert = zgossip::certs::load_cert(&path).unwrap();
    assert_eq!(cert.public, out.trim());
    assert!(cert.secret.is_some());
    let mut secret = path.clone().into_os_string();
    secret.push("_secret");
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(secret).unwrap();
}

#[test]
fn curve_keys_from_keygen_secure_a_network() {
    let (code, server_keys, _) = run(&["keygen"]);
    assert_eq!(code, 0);
    let (code, client_keys, _) = run(&["keygen"]);
    assert_eq!(code, 0);
    let server: Vec<&str> = server_keys.lines().collect();
    let client: Vec<&str> = client_keys.lines().collect();
    assert_eq!((server.len(), server[0].len()), (2, 40), "{server_keys}");
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*", "--curve-secret", server[1]]);
    let ep = hub.bound_endpoint();
    let (code, _, err) = run(&[
        "put",
        "secret",
        "42",
        "-c",
        &ep,
        "--curve-secret",
        client[1],
        "--curve-server",
        server[0],
    ]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the tuple", |l| l == "secret = 42");
    // Without the server key a client cannot reach the network.
    let (code, _, err) = run(&["get", "secret", "-c", &ep, "--timeout", "500"]);
    assert_eq!(code, 1, "{err}");
}

/// A node started mid-rotation holds both its keys (`--curve-secret`
/// twice, the first primary); a client given both server keys
/// (`--curve-server` twice) gets in whichever it tries first.
#[test]
fn curve_keys_given_twice_hold_a_rotation() {
    let (new_public, new_secret) = zgossip::certs::keypair().unwrap();
    let (old_public, old_secret) = zgossip::certs::keypair().unwrap();
    let (stranger, _) = zgossip::certs::keypair().unwrap();
    let hub = Proc::node(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--curve-secret",
        &new_secret,
        "--curve-secret",
        &old_secret,
    ]);
    let ep = hub.bound_endpoint();
    for (i, servers) in [[&old_public, &stranger], [&stranger, &new_public]]
        .iter()
        .enumerate()
    {
        let value = format!("v{i}");
        let (code, _, err) = run(&[
            "put",
            "rotating",
            &value,
            "-c",
            &ep,
            "--curve-server",
            servers[0],
            "--curve-server",
            servers[1],
        ]);
        assert_eq!(code, 0, "{err}");
        hub.expect("the tuple", |l| l == format!("rotating = {value}"));
    }
}

/// A key pair whose key (public if `public`, else secret) starts with `-`
/// (one in 85 does: `-` is a Z85 digit).
fn pair_starting_with_hyphen(public: bool) -> (String, String) {
    for _ in 0..100_000 {
        let (p, s) = zgossip::certs::keypair().unwrap();
        if (if public { &p } else { &s }).starts_with('-') {
            return (p, s);
        }
    }
    panic!("no key starting with '-' in 100,000 pairs");
}

#[test]
fn curve_keys_starting_with_a_hyphen_are_values_not_flags() {
    let (server_public, server_secret) = pair_starting_with_hyphen(true);
    let (client_public, client_secret) = pair_starting_with_hyphen(false);
    let hub = Proc::node(&[
        "--bind",
        "tcp://127.0.0.1:*",
        "--curve-secret",
        &server_secret,
        "--curve-allow",
        &client_public,
    ]);
    let ep = hub.bound_endpoint();
    let (code, _, err) = run(&[
        "put",
        "hyphen",
        "ok",
        "-c",
        &ep,
        "--curve-secret",
        &client_secret,
        "--curve-server",
        &server_public,
    ]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the tuple", |l| l == "hyphen = ok");
}

/// Two `zgossip node` processes in a sealed namespace (only `lo`), each
/// discovering on `lo` with `discover` (and `--discover-port PORT`) and
/// publishing one tuple, find each other, take each other's tuple and
/// end cleanly. Beacons never leave the machine.
fn two_nodes_discover_each_other_in_a_sealed_namespace(port: &str, discover: &[&str]) {
    let ns = match netns::Netns::sealed() {
        Ok(ns) => ns,
        Err(why) => return netns::skip(&why),
    };
    let args = |kv: &'static str| {
        let mut args = vec!["node", "--no-control", "--discover", "--interface", "lo"];
        args.extend(["--discover-port", port]);
        args.extend_from_slice(discover);
        args.extend(["--publish", kv]);
        args
    };
    let a = Proc::spawn(ns.command(BIN, &args("from-a=1"), &[]));
    let b = Proc::spawn(ns.command(BIN, &args("from-b=2"), &[]));
    a.expect("b's tuple", |l| l == "from-b = 2");
    b.expect("a's tuple", |l| l == "from-a = 1");
    assert_eq!(a.terminate(), 0);
    assert_eq!(b.terminate(), 0);
}

#[test]
fn node_processes_with_only_discover_find_each_other() {
    two_nodes_discover_each_other_in_a_sealed_namespace("5699", &[]);
}

#[test]
fn node_processes_discover_over_both_families_with_discover_ipv6_both() {
    // Each process beacons IPv4 broadcast and IPv6 multicast on `lo`, and
    // listens on `[::]`.
    two_nodes_discover_each_other_in_a_sealed_namespace("5698", &["--discover-ipv6", "both"]);
    let (code, _, err) = run(&["node", "--no-control", "--discover", "--discover-ipv6", "3"]);
    assert_ne!(code, 0);
    assert!(err.contains("possible values: 0, 1, both"), "{err}");
}

/// `zgossip members --json` on `ep`: one (id, name, state, endpoint) per
/// line, each line checked to be exactly the JSON object the command
/// documents.
fn members_json(ep: &str) -> Vec<(String, String, String, String)> {
    let (code, out, err) = run(&["members", "-c", ep, "--json"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| {
            // {"id":"<16 hex>","name":<json>,"state":"<state>","endpoint":<json>}
            let rest = l.strip_prefix(r#"{"id":""#).expect(l);
            let (id, rest) = rest.split_at(16);
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{l}"
            );
            let rest = rest.strip_prefix(r#"","name":""#).expect(l);
            let (name, rest) = rest.split_once(r#"","state":""#).expect(l);
            let (state, rest) = rest.split_once(r#"","endpoint":""#).expect(l);
            let endpoint = rest.strip_suffix(r#""}"#).expect(l);
            assert!(
                ["alive", "suspect", "failed", "left"].contains(&state),
                "{l}"
            );
            (id.into(), name.into(), state.into(), endpoint.into())
        })
        .collect()
}

/// Runs `members --json` until `ok` holds for its list (at most `T`).
fn members_until(
    ep: &str,
    what: &str,
    ok: impl Fn(&[(String, String, String, String)]) -> bool,
) -> Vec<(String, String, String, String)> {
    let deadline = Instant::now() + T;
    loop {
        let list = members_json(ep);
        if ok(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "not within {T:?}: {what}; last {list:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_of<'a>(list: &'a [(String, String, String, String)], name: &str) -> Option<&'a str> {
    list.iter().find(|m| m.1 == name).map(|m| m.2.as_str())
}

#[test]
fn members_lists_the_network_as_a_table_and_as_json() {
    let hub = Proc::node(&["--name", "hub", "--bind", "tcp://127.0.0.1:*"]);
    let hub_ep = hub.bound_endpoint();
    // A name JSON must escape.
    let leaf = Proc::node(&[
        "--name",
        "leaf \"one\"",
        "--bind",
        "tcp://127.0.0.1:*",
        "--join",
        &hub_ep,
    ]);
    let leaf_ep = leaf.bound_endpoint();
    let leaf_json = r#"leaf \"one\""#;
    let list = members_until(&hub_ep, "hub and leaf alive", |l| {
        state_of(l, "hub") == Some("alive") && state_of(l, leaf_json) == Some("alive")
    });
    let hub_row = list.iter().find(|m| m.1 == "hub").unwrap();
    let leaf_row = list.iter().find(|m| m.1 == leaf_json).unwrap();
    assert_eq!(
        (hub_row.3.as_str(), leaf_row.3.as_str()),
        (hub_ep.as_str(), leaf_ep.as_str())
    );
    assert_ne!(hub_row.0, leaf_row.0);
    // The command's own short-lived node is not listed (those of earlier
    // runs may be, as left).
    assert!(
        list.iter().all(|m| m.1 != "cli" || m.2 == "left"),
        "{list:?}"
    );

    // The table: a header, then one row per member, every column aligned
    // on the header's.
    let (code, out, err) = run(&["members", "-c", &hub_ep]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let header = lines[0];
    assert!(header.starts_with("ID  "), "{out}");
    let at = |col: &str| header.find(col).unwrap();
    let (name_at, state_at, ep_at) = (at("NAME"), at("STATE"), at("ENDPOINT"));
    assert!(
        16 < name_at && name_at < state_at && state_at < ep_at,
        "{out}"
    );
    for (name, endpoint) in [("hub", &hub_ep), ("leaf \"one\"", &leaf_ep)] {
        let row = lines
            .iter()
            .find(|l| l.get(name_at..).is_some_and(|r| r.starts_with(name)))
            .unwrap_or_else(|| panic!("no row for {name}: {out}"));
        assert!(row[..16].chars().all(|c| c.is_ascii_hexdigit()), "{row}");
        assert_eq!(&row[state_at..state_at + 5], "alive", "{out}");
        assert_eq!(&row[ep_at..], endpoint.as_str(), "{out}");
    }
    // Besides, only short-lived nodes of earlier runs, left.
    for row in &lines[1..] {
        if !(row[name_at..].starts_with("hub ") || row[name_at..].starts_with("leaf ")) {
            assert!(row[name_at..].starts_with("cli "), "{out}");
            assert_eq!(&row[state_at..state_at + 4], "left", "{out}");
        }
    }

    // A node that stops leaves: listed as left within seconds.
    let started = Instant::now();
    assert_eq!(leaf.terminate(), 0);
    members_until(&hub_ep, "leaf left", |l| {
        state_of(l, leaf_json) == Some("left")
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(hub.terminate(), 0);
}

/// `zgossip node --members` prints every change of another member's
/// state as it happens: a node joining (alive), leaving (left), as text and
/// as JSON; without the flag, nothing of members.
#[test]
fn node_members_prints_the_changes_of_members_states() {
    let hub = Proc::node(&[
        "--name",
        "hub",
        "--bind",
        "tcp://127.0.0.1:*",
        "--members",
        "--json",
    ]);
    let bound = hub.expect("bound", |l| l.starts_with(r#"{"event":"bound","#));
    let hub_ep = bound
        .split(r#""endpoint":""#)
        .nth(1)
        .and_then(|r| r.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("{bound}"))
        .to_string();
    let plain = Proc::node(&["--name", "plain", "--members", "--join", &hub_ep]);
    let member = |state: &str, name: &str| {
        let (state, name) = (state.to_string(), name.to_string());
        move |l: &str| {
            l.starts_with(r#"{"event":"member","id":""#)
                && l.contains(&format!(r#""name":"{name}","state":"{state}","endpoint":"#))
        }
    };
    let line = hub.expect("plain alive", member("alive", "plain"));
    // Started only now: the hub's lines are read in order, and a quiet
    // node that connected first would print its line before plain's.
    let quiet = Proc::node(&["--name", "quiet", "--connect", &hub_ep]);
    // {"event":"member","id":"<16 hex>","name":..,"state":..,"endpoint":""}
    let id = &line[r#"{"event":"member","id":""#.len()..][..16];
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    assert!(line.ends_with(r#""endpoint":""}"#), "{line}");
    // As text: member ID NAME STATE ENDPOINT, `-` for no endpoint.
    let text = plain.expect("hub alive", |l| {
        l.starts_with("member ") && l.contains(" hub ")
    });
    assert_eq!(text.split(' ').nth(3), Some("alive"), "{text}");
    assert_eq!(text.split(' ').nth(4), Some(hub_ep.as_str()), "{text}");
    hub.expect("quiet alive", member("alive", "quiet"));
    // Without --members a node prints nothing of members (it has heard of
    // the hub and of plain by now: plain is listed at the hub).
    std::thread::sleep(Duration::from_millis(300));
    let printed: Vec<String> = quiet.lines.try_iter().collect();
    assert!(printed.iter().all(|l| !l.contains("member")), "{printed:?}");
    assert_eq!(quiet.terminate(), 0);
    hub.expect("quiet left", member("left", "quiet"));
    assert_eq!(plain.terminate(), 0);
    hub.expect("plain left", member("left", "plain"));
    assert_eq!(hub.terminate(), 0);
}

#[test]
fn members_exit_codes() {
    // Without --connect, members asks the local agent (tests/agent.rs);
    // both at once is a usage error.
    let (code, _, err) = run(&["members", "--agent", "x.sock", "-c", "tcp://127.0.0.1:1"]);
    assert_eq!(code, 2, "usage: {err}");
    let (code, _, err) = run(&["members", "-c", "tcp://127.0.0.1:1", "--timeout", "300"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no node reachable"), "{err}");
    let (code, _, err) = run(&["members", "-c", "bogus"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("bad endpoint 'bogus'"), "{err}");
    // A node that speaks ZGP v1 only, as CZMQ's, keeps no member table.
    let v1 = zgossip::Node::new("v1").unwrap();
    v1.send(&["SET", "server/extensions", "0"]).unwrap();
    let port = v1.bind("tcp://127.0.0.1:*").unwrap().unwrap();
    let ep = format!("tcp://127.0.0.1:{port}");
    let (code, out, err) = run(&["members", "-c", &ep, "--timeout", "800"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("no member table"), "{err}");
}

#[test]
fn a_node_takes_its_ephemeral_tuples_along_when_it_stops() {
    let hub = Proc::node(&["--name", "hub", "--bind", "tcp://127.0.0.1:*"]);
    let hub_ep = hub.bound_endpoint();
    let svc = Proc::node(&[
        "--name",
        "svc",
        "--bind",
        "tcp://127.0.0.1:*",
        "--join",
        &hub_ep,
        "--ephemeral",
        "svc/db=tcp://10.0.0.5:5432",
        "--publish",
        "plain=stays",
    ]);
    hub.expect_all(&["svc/db = tcp://10.0.0.5:5432", "plain = stays"]);
    svc.expect_all(&["svc/db = tcp://10.0.0.5:5432", "plain = stays"]);
    let (code, out, err) = run(&["get", "svc/db", "-c", &hub_ep]);
    assert_eq!((code, out.as_str()), (0, "tcp://10.0.0.5:5432\n"), "{err}");

    // SIGTERM: the node leaves, and the hub deletes its ephemeral tuple at
    // once (well within seconds); the plain one stays.
    let started = Instant::now();
    assert_eq!(svc.terminate(), 0);
    hub.expect("the delete at the hub", |l| l == "svc/db deleted");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, _, err) = run(&["get", "svc/db", "-c", &hub_ep]);
    assert_eq!(code, 1, "{err}");
    let (code, out, err) = run(&["get", "plain", "-c", &hub_ep]);
    assert_eq!((code, out.as_str()), (0, "stays\n"), "{err}");
    let later = hub.lines_for(Duration::from_millis(300));
    assert!(later.iter().all(|l| !l.ends_with(" deleted")), "{later:?}");
    assert_eq!(hub.terminate(), 0);
}

#[test]
fn put_ephemeral_holds_the_tuple_until_interrupted() {
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*"]);
    let hub_ep = hub.bound_endpoint();
    // With a ttl the tuple is refreshed while held: it outlives its ttl.
    let mut holder = Proc::start(&[
        "put",
        "--ephemeral",
        "svc/web",
        "tcp://10.0.0.6:80",
        "--ttl",
        "900",
        "-c",
        &hub_ep,
    ]);
    holder.expect("holding", |l| l == "holding svc/web");
    hub.expect("the tuple at the hub", |l| {
        l == "svc/web = tcp://10.0.0.6:80"
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(holder.running(), "put --ephemeral exited while holding");
    let (code, out, err) = run(&["get", "svc/web", "-c", &hub_ep]);
    assert_eq!((code, out.as_str()), (0, "tcp://10.0.0.6:80\n"), "{err}");

    // Interrupted: it exits cleanly, and the tuple is deleted.
    let started = Instant::now();
    assert_eq!(holder.terminate(), 0);
    hub.expect("the delete at the hub", |l| l == "svc/web deleted");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (code, _, err) = run(&["get", "svc/web", "-c", &hub_ep]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(hub.terminate(), 0);
}

#[test]
fn put_ephemeral_exits_when_its_tuple_is_no_longer_its_own() {
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*"]);
    let hub_ep = hub.bound_endpoint();
    for (key, change) in [
        ("written/over", &["put", "written/over", "other"][..]),
        ("deleted", &["del", "deleted"][..]),
    ] {
        let mut holder = Proc::start(&["put", "--ephemeral", key, "mine", "-c", &hub_ep]);
        holder.expect("holding", |l| l == format!("holding {key}"));
        hub.expect("the tuple at the hub", |l| l == format!("{key} = mine"));
        let mut args = change.to_vec();
        args.extend(["-c", &hub_ep]);
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(holder.wait("exit when its tuple changed"), 1, "{key}");
    }
    assert_eq!(hub.terminate(), 0);
}

#[test]
fn ephemeral_usage_and_exit_codes() {
    let (code, _, err) = run(&["put", "--ephemeral", "k", "-c", "tcp://127.0.0.1:1"]);
    assert_eq!(code, 2, "usage: {err}");
    let (code, _, err) = run(&["node", "--no-control", "--ephemeral", "no-equals-sign"]);
    assert_eq!(code, 2, "usage: {err}");
    assert!(err.contains("expected key=value"), "{err}");
    let (code, _, err) = run(&[
        "put",
        "--ephemeral",
        "k",
        "v",
        "-c",
        "tcp://127.0.0.1:1",
        "--timeout",
        "300",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no node reachable"), "{err}");
    // The command's own checks, in its words.
    let hub = Proc::node(&["--bind", "tcp://127.0.0.1:*"]);
    let hub_ep = hub.bound_endpoint();
    let (code, out, err) = run(&["put", "--ephemeral", "k", "v", "--ttl", "0", "-c", &hub_ep]);
    assert_eq!((code, out.as_str()), (3, ""), "{err}");
    assert!(
        err.contains("EPHEMERAL: ttl must be a positive number of milliseconds, got '0'"),
        "{err}"
    );
    let long_key = "k".repeat(256);
    let (code, _, err) = run(&["put", "--ephemeral", &long_key, "v", "-c", &hub_ep]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("255"), "{err}");
    assert_eq!(hub.terminate(), 0);
}
