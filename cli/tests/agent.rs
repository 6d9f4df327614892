//! The local agent: `zgossip node --control PATH` and the commands that
//! ask it, as real processes on loopback, their sockets in temporary
//! directories (XDG_RUNTIME_DIR too points there, so no default path
//! outside them is ever used).

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::process::{Proc, BIN, T};

/// A private temporary directory (0700), removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("zgossip-agent-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(dir: &TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("XDG_RUNTIME_DIR", dir.path());
    c
}

/// `zgossip args` with `XDG_RUNTIME_DIR` in `dir`, its stderr kept.
fn spawn(dir: &TempDir, args: &[&str]) -> Proc {
    Proc::spawn_keeping_stderr(command(dir, args))
}

fn run(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let out = command(dir, args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `args` with `--agent sock` appended.
fn ask(dir: &TempDir, sock: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = args.to_vec();
    all.extend(["--agent", sock.to_str().unwrap()]);
    run(dir, &all)
}

/// An agent node on loopback serving `sock`; waits until it serves.
fn agent(dir: &TempDir, sock: &Path, more: &[&str]) -> (Proc, String) {
    let mut args = vec![
        "node",
        "--name",
        "agent",
        "--bind",
        "tcp://127.0.0.1:*",
        "--control",
        sock.to_str().unwrap(),
    ];
    args.extend(more);
    let p = spawn(dir, &args);
    let ep = p.expect("bound", |l| l.starts_with("bound tcp://"));
    p.expect("control", |l| l.starts_with("control at "));
    (p, ep.trim_start_matches("bound ").to_string())
}

/// The agent's members as (id, name) pairs, from `members --json`.
fn member_ids(dir: &TempDir, sock: &Path) -> Vec<String> {
    let (code, out, err) = ask(dir, sock, &["members", "--json"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| l.split('"').nth(3).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_commands_work_through_the_agent_without_joining() {
    let dir = TempDir::new("commands");
    let sock = dir.join("a.sock");
    let hub = spawn(
        &dir,
        &[
            "node",
            "--name",
            "hub",
            "--no-control",
            "--members",
            "--bind",
            "tcp://127.0.0.1:*",
        ],
    );
    let hub_ep = hub
        .expect("bound", |l| l.starts_with("bound tcp://"))
        .trim_start_matches("bound ")
        .to_string();
    let (_agent, _) = agent(&dir, &sock, &["--join", &hub_ep]);
    hub.expect("the agent joined", |l| {
        l.starts_with("member ") && l.contains(" agent alive")
    });

    // The socket is the user's only: 0600 in a 0700 directory.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(&dir.0), 0o700);

    // The agent's table: itself first, and the hub, once it has both.
    let deadline = Instant::now() + T;
    let members = loop {
        let ids = member_ids(&dir, &sock);
        if ids.len() == 2 || Instant::now() >= deadline {
            break ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(members.len(), 2, "{members:?}");
    let (code, out, _) = ask(&dir, &sock, &["members"]);
    assert_eq!(code, 0);
    let rows: Vec<&str> = out.lines().collect();
    assert!(rows[0].starts_with("ID "), "{out}");
    assert!(
        rows[1].contains(" agent ") && rows[1].contains(&members[0]),
        "{out}"
    );

    let value = "a value, with spaces — and ünïcode";
    let (code, _, err) = ask(&dir, &sock, &["put", "cfg/mode", value]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the put at the hub", |l| l == format!("cfg/mode = {value}"));
    let (code, out, err) = ask(&dir, &sock, &["get", "cfg/mode"]);
    assert_eq!(
        (code, out.as_str()),
        (0, format!("{value}\n").as_str()),
        "{err}"
    );
    let (code, _, err) = ask(&dir, &sock, &["put", "cfg/other", "2", "--ttl", "60000"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ask(&dir, &sock, &["keys", "cfg/"]);
    assert_eq!(code, 0, "{err}");
    let mut keys: Vec<&str> = out.lines().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["cfg/mode", "cfg/other"]);
    let (code, out, err) = ask(&dir, &sock, &["stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == "tuples 2"), "{out}");
    let (code, out, err) = ask(&dir, &sock, &["stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with('{') && out.contains("\"tuples\":2"),
        "{out}"
    );
    let (code, _, err) = ask(&dir, &sock, &["del", "cfg/mode"]);
    assert_eq!(code, 0, "{err}");
    hub.expect("the delete at the hub", |l| l == "cfg/mode deleted");
    let (code, out, err) = ask(&dir, &sock, &["get", "cfg/mode"]);
    assert_eq!((code, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("cfg/mode: not found"), "{err}");
    // A refused command comes back in the node's words.
    let long = "k".repeat(300);
    let (code, _, err) = ask(&dir, &sock, &["put", &long, "v"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("agent:"), "{err}");

    // Nothing joined or left: the same two members, and no member news at
    // the hub during the calls.
    assert_eq!(member_ids(&dir, &sock), members);
    let later = hub.lines_for(Duration::from_millis(300));
    assert!(later.iter().all(|l| !l.starts_with("member ")), "{later:?}");
}

#[test]
fn watch_streams_a_put_made_by_another_command() {
    let dir = TempDir::new("watch");
    let sock = dir.join("a.sock");
    let (node, _) = agent(
        &dir,
        &sock,
        &["--publish", "svc/a=1", "--publish", "other=x"],
    );
    let s = sock.to_str().unwrap();
    let mut watch = spawn(&dir, &["watch", "--prefix", "svc/", "--agent", s]);
    // Every tuple under the prefix first, then the changes.
    watch.expect("the tuple held", |l| l == "svc/a = 1");
    let (code, _, err) = ask(&dir, &sock, &["put", "svc/b", "two words"]);
    assert_eq!(code, 0, "{err}");
    watch.expect("the put", |l| l == "svc/b = two words");
    let (code, _, err) = ask(&dir, &sock, &["del", "svc/a"]);
    assert_eq!(code, 0, "{err}");
    watch.expect("the delete", |l| l == "svc/a deleted");
    let (code, _, err) = ask(&dir, &sock, &["put", "other", "y"]);
    assert_eq!(code, 0, "{err}");
    let later = watch.lines_for(Duration::from_millis(300));
    assert!(later.is_empty(), "outside the prefix: {later:?}");
    watch.signal("-INT");
    assert_eq!(watch.wait_with_stderr("stop on SIGINT").0, 0);

    // --json, and the agent killed in the middle: exit 5, said so.
    let mut watch = spawn(&dir, &["watch", "--json", "--agent", s]);
    watch.expect("a tuple as JSON", |l| {
        l == r#"{"event":"deliver","key":"svc/b","value":"two words"}"#
    });
    node.signal("-KILL");
    let (code, err) = watch.wait_with_stderr("exit when the agent is gone");
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("went away") && err.contains(s), "{err}");

    // The socket it left is stale: no agent (exit 4), and a new agent
    // takes the path over.
    let (code, _, err) = ask(&dir, &sock, &["get", "svc/b"]);
    assert_eq!(code, 4, "{err}");
    let (_again, _) = agent(&dir, &sock, &[]);
    let (code, _, err) = ask(&dir, &sock, &["keys"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn put_ephemeral_through_the_agent_is_held_for_the_command() {
    let dir = TempDir::new("hold");
    let sock = dir.join("a.sock");
    let (agent_proc, _) = agent(&dir, &sock, &[]);
    let s = sock.to_str().unwrap();
    let mut holder = spawn(
        &dir,
        &[
            "put",
            "--ephemeral",
            "svc/web",
            "tcp://10.0.0.6:80",
            "--ttl",
            "900",
            "--agent",
            s,
        ],
    );
    holder.expect("holding", |l| l == "holding svc/web");
    agent_proc.expect("the tuple", |l| l == "svc/web = tcp://10.0.0.6:80");
    // Refreshed while held: it outlives its ttl.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, out, err) = ask(&dir, &sock, &["get", "svc/web"]);
    assert_eq!((code, out.as_str()), (0, "tcp://10.0.0.6:80\n"), "{err}");
    holder.signal("-TERM");
    assert_eq!(holder.wait_with_stderr("release on SIGTERM").0, 0);
    agent_proc.expect("the delete", |l| l == "svc/web deleted");

    // Killed: the agent notices the connection closed and deletes it.
    let holder = spawn(&dir, &["put", "--ephemeral", "svc/db", "x", "--agent", s]);
    holder.expect("holding", |l| l == "holding svc/db");
    holder.signal("-KILL");
    agent_proc.expect("the delete", |l| l == "svc/db deleted");

    // Written over by another command: exit 1.
    let mut holder = spawn(&dir, &["put", "--ephemeral", "svc/q", "mine", "--agent", s]);
    holder.expect("holding", |l| l == "holding svc/q");
    let (code, _, err) = ask(&dir, &sock, &["put", "svc/q", "theirs"]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = holder.wait_with_stderr("exit when written over");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("written over"), "{err}");
}

#[test]
fn no_agent_and_bad_arguments() {
    let dir = TempDir::new("errors");
    let missing = dir.join("none.sock");
    let m = missing.to_str().unwrap();
    for args in [
        &["get", "k", "--agent", m][..],
        &["put", "k", "v", "--agent", m],
        &["del", "k", "--agent", m],
        &["keys", "--agent", m],
        &["members", "--agent", m],
        &["stats", "--agent", m],
        &["watch", "--agent", m],
    ] {
        let (code, out, err) = run(&dir, args);
        assert_eq!((code, out.as_str()), (4, ""), "{args:?}: {err}");
        assert!(
            err.contains(&format!("no agent at {m}")) && err.contains("zgossip node"),
            "{err}"
        );
    }
    // The default path, under XDG_RUNTIME_DIR.
    let (code, _, err) = run(&dir, &["get", "k"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!("{}/zgossip/node.sock", dir.path())),
        "{err}"
    );

    for args in [
        &["get", "k", "--agent", m, "--connect", "tcp://127.0.0.1:1"][..],
        &["get", "k", "--verbose"],
        &[
            "get",
            "k",
            "--curve-server",
            "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
        ],
        &["stats", "--connect", "tcp://127.0.0.1:1"],
        &["node", "--control", m, "--no-control"],
        &["get"],
    ] {
        let (code, _, err) = run(&dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("Usage") || err.contains("usage"), "{err}");
    }
}

#[test]
fn the_control_directory_must_be_private() {
    let dir = TempDir::new("perms");
    // Open to others: refused, and the node does not start.
    let open = dir.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = open.join("a.sock");
    let (code, _, err) = run(
        &dir,
        &[
            "node",
            "--bind",
            "tcp://127.0.0.1:*",
            "--control",
            sock.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("mode 755") && err.contains("chmod 700"),
        "{err}"
    );
    assert!(!sock.exists());

    // A missing directory is made 0700.
    let fresh = dir.join("fresh").join("a.sock");
    let (_node, _) = agent(&dir, &fresh, &[]);
    let mode = std::fs::metadata(dir.join("fresh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    // A second agent at a path in use: refused.
    let (code, _, err) = run(
        &dir,
        &["node", "--no-control", "--control", fresh.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&dir, &["node", "--control", fresh.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("an agent already listens"), "{err}");

    // Something else at the path is not replaced.
    let file = dir.join("file.sock");
    std::fs::write(&file, "mine").unwrap();
    let (code, _, err) = run(&dir, &["node", "--control", file.to_str().unwrap()]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");

    // Another user's directory (needs root to make one).
    let theirs = dir.join("theirs");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&theirs)
        .unwrap();
    let chowned = Command::new("chown")
        .args(["65534", theirs.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if chowned {
        let sock = theirs.join("a.sock");
        let (code, _, err) = run(&dir, &["node", "--control", sock.to_str().unwrap()]);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("belongs to uid 65534"), "{err}");
    } else {
        eprintln!("not root: the other user's directory is not tried");
    }
}

#[test]
fn garbage_on_the_socket_closes_that_connection_only() {
    let dir = TempDir::new("garbage");
    let sock = dir.join("a.sock");
    let (_node, _) = agent(&dir, &sock, &["--publish", "k=v"]);
    let exchange = |bytes: &[u8]| -> String {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        // The agent answers and closes: read to the end, bounded by T.
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let reply = exchange(b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(reply.starts_with("ZGA1"), "{reply:?}");
    assert!(
        reply.contains("not a zgossip agent connection"),
        "{reply:?}"
    );
    let mut oversize = b"ZGA1".to_vec();
    oversize.extend_from_slice(&u32::MAX.to_be_bytes());
    let reply = exchange(&oversize);
    assert!(reply.contains("exceeds the limit"), "{reply:?}");
    let mut bad_frame = b"ZGA1".to_vec();
    bad_frame.extend_from_slice(&6u32.to_be_bytes());
    bad_frame.extend_from_slice(&100u32.to_be_bytes());
    bad_frame.extend_from_slice(b"xx");
    let reply = exchange(&bad_frame);
    assert!(reply.contains("malformed message"), "{reply:?}");
    // A command the agent does not take is refused, the connection kept.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let mut req = b"ZGA1".to_vec();
    for frames in [&["$TERM"][..], &["GET", "k"]] {
        let body: Vec<u8> = frames
            .iter()
            .flat_map(|f| {
                let mut b = (f.len() as u32).to_be_bytes().to_vec();
                b.extend_from_slice(f.as_bytes());
                b
            })
            .collect();
        req.extend_from_slice(&(body.len() as u32).to_be_bytes());
        req.extend(body);
    }
    s.write_all(&req).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("does not take '$TERM'"), "{text:?}");
    assert!(text.contains("VALUE") && text.ends_with("v"), "{text:?}");
    // The node serves on.
    let (code, out, err) = ask(&dir, &sock, &["get", "k"]);
    assert_eq!((code, out.as_str()), (0, "v\n"), "{err}");
}
