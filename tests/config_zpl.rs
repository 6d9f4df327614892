//! ZPL configuration files: round trips, files as CZMQ writes them,
//! errors, hostile input, and (when libczmq is installed) a comparison with
//! CZMQ's own zconfig reader and writer through `tests/czmq/zpl_probe.c`.

#[path = "support/czmq.rs"]
mod czmq;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use proptest::prelude::*;
use zgossip::config::{Config, ConfigError, ConfigNode};

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

/// A tree as (depth, name, value with None as "") lines, iteratively.
fn shape(config: &Config) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<(&ConfigNode, usize)> = vec![(config.root(), 0)];
    while let Some((node, depth)) = stack.pop() {
        out.push((
            depth,
            node.name().to_string(),
            node.value().unwrap_or("").to_string(),
        ));
        let children: Vec<&ConfigNode> = node.children().collect();
        stack.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
    }
    out
}

/// The text CZMQ's writer makes of a tree: like ours, but every value in
/// double quotes, whatever it holds.
fn czmq_style(config: &Config) -> String {
    let mut out = String::new();
    for comment in config.root().comments() {
        out.push_str(&format!("#{comment}\n"));
    }
    if !config.root().comments().is_empty() {
        out.push('\n');
    }
    for (depth, name, value) in shape(config).into_iter().skip(1) {
        out.push_str(&"    ".repeat(depth - 1));
        out.push_str(&format!("{name} = \"{value}\"\n"));
    }
    out
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("config_zpl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The text CZMQ 4.2.1 writes for the zgossip actor's own tree after
/// `SET server/timeout 1000` and `SET zgossip/bind/endpoint ...`, and for
/// zconfig's self test tree (comments on the root, a value with a space).
const CZMQ_WRITTEN: &str = "#   CURVE certificate\n#   -----------------\n\nheaders\n    \
email = \"some@random.com\"\n    name = \"Justin Kayce\"\ncurve\n    secret-key = \"Top Secret\"\n";

#[test]
fn reads_what_czmq_writes() {
    let c = parse(CZMQ_WRITTEN);
    assert_eq!(
        c.root().comments(),
        ["   CURVE certificate", "   -----------------"]
    );
    assert_eq!(c.get("/headers/email"), Some("some@random.com"));
    assert_eq!(c.get("headers/name"), Some("Justin Kayce"));
    assert_eq!(c.get("curve/secret-key"), Some("Top Secret"));
    // Section headers written bare come back with the value "".
    assert_eq!(c.locate("headers").and_then(ConfigNode::value), Some(""));
    assert_eq!(
        c.to_text(),
        CZMQ_WRITTEN
            .replace("headers\n", "headers = \"\"\n")
            .replace("curve\n", "curve = \"\"\n")
    );
}

#[test]
fn writes_what_czmq_writes() {
    let mut c = Config::new();
    c.put("server/timeout", "1000").unwrap();
    c.put("zgossip/bind/endpoint", "tcp://127.0.0.1:5670")
        .unwrap();
    c.put("zgossip/echo", "hello world").unwrap();
    assert_eq!(
        c.to_text(),
        "server\n    timeout = \"1000\"\nzgossip\n    bind\n        endpoint = \
         \"tcp://127.0.0.1:5670\"\n    echo = \"hello world\"\n"
    );
}

#[test]
fn rfc4_example_reads() {
    let text = "#   ZPL configuration file example\n#\ncontext\n    iothreads = 1\n    \
                verbose = 1      #   Ask for a trace\n\nmain\n    type = zmq_queue\n    \
                frontend\n        option\n            hwm = 1000\n            swap = 25000000\n\
                \x20           subscribe = \"#2\"\n        bind = tcp://eth0:5555\n    backend\n\
                \x20       bind = tcp://eth0:5556\n";
    let c = parse(text);
    assert_eq!(c.get("context/verbose"), Some("1"));
    assert_eq!(c.get("main/frontend/option/subscribe"), Some("#2"));
    assert_eq!(c.get("main/frontend/bind"), Some("tcp://eth0:5555"));
    assert_eq!(c.get("main/backend/bind"), Some("tcp://eth0:5556"));
    let again = parse(&c.to_text());
    assert_eq!(again, c);
    assert_eq!(again.to_text(), c.to_text());
}

#[test]
fn save_and_load_files() {
    let dir = temp_dir();
    let path = dir.join("node.cfg");
    let mut c = parse(CZMQ_WRITTEN);
    c.put("server/timeout", "250").unwrap();
    c.save(&path).unwrap();
    let loaded = Config::load(&path).unwrap();
    assert_eq!(shape(&loaded), shape(&c));
    assert_eq!(loaded.root().comments(), c.root().comments());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), c.to_text());

    // A missing file or directory is an Io error naming the path.
    let missing = dir.join("no/such/dir/node.cfg");
    for err in [
        c.save(&missing).unwrap_err(),
        Config::load(&missing).unwrap_err(),
    ] {
        match &err {
            ConfigError::Io { path, .. } => assert_eq!(path, &missing),
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().contains("no/such/dir/node.cfg"), "{err}");
    }

    // A syntax error in a file names the line and the file.
    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "server\n    timeout = 1\n  verbose = 1\n").unwrap();
    let err = Config::load(&bad).unwrap_err();
    match &err {
        ConfigError::Syntax { line, message } => {
            assert_eq!(*line, 3);
            assert!(message.contains("bad.cfg"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // Invalid UTF-8 is reported with its line, not replaced.
    std::fs::write(&bad, b"a = 1\nb = \xff\n").unwrap();
    assert!(matches!(
        Config::load(&bad),
        Err(ConfigError::Syntax { line: 2, .. })
    ));

    // An empty file is an empty tree (CZMQ loads it too).
    let empty = dir.join("empty.cfg");
    std::fs::write(&empty, "").unwrap();
    assert_eq!(Config::load(&empty).unwrap(), Config::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_dash_writes_stdout() {
    let mut c = Config::new();
    c.put("a", "1").unwrap();
    c.save("-").unwrap();
}

#[test]
fn malformed_inputs_are_rejected_with_lines() {
    let cases: &[(&str, usize)] = &[
        ("a\n   b = 1\n", 2),
        ("a\n     # odd indent, even for a comment\n", 2),
        ("a = 1\n        b = 2\n", 2),
        ("    a = 1\n", 1),
        ("a = \"unterminated\n", 1),
        ("a\nb\nc = 'open\n", 3),
        ("a = \"x\" trailing\n", 1),
        ("a b\n", 1),
        ("=1\n", 1),
        ("a\n\tb = 1\n", 2),
        ("/root = 1\n", 1),
        ("trailing/ = 1\n", 1),
        ("a%b = 1\n", 1),
        ("\u{feff}a = 1\n", 1),
        ("ünï = 1\n", 1),
    ];
    for &(text, want) in cases {
        match Config::parse(text) {
            Err(ConfigError::Syntax { line, message }) => {
                assert_eq!(line, want, "{text:?}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{text:?}: expected a syntax error, got {other:?}"),
        }
    }
}

#[test]
fn hostile_inputs_do_not_overflow_or_hang() {
    // Very deep indentation on one line: rejected at once.
    let mut text = "a\n".to_string();
    text.push_str(&" ".repeat(400_000));
    text.push_str("b\n");
    assert!(matches!(
        Config::parse(&text),
        Err(ConfigError::Syntax { line: 2, .. })
    ));
    // A staircase 3,000 levels deep (18 MB of text) parses and prints.
    let depth = 3_000;
    let mut text = String::with_capacity(depth * depth * 2 + depth * 8);
    for level in 0..depth {
        for _ in 0..level {
            text.push_str("    ");
        }
        text.push_str("n\n");
    }
    let c = parse(&text);
    assert_eq!(c.to_text().lines().count(), depth);
    assert_eq!(parse(&c.to_text()), c);
    // 200,000 siblings and a 4 MB value.
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("k{i} = {i}\n"));
    }
    text.push_str(&format!("big = \"{}\"\n", "x".repeat(4 << 20)));
    let c = parse(&text);
    assert_eq!(c.root().children().count(), 200_001);
    assert_eq!(c.get("big").map(str::len), Some(4 << 20));
    // A path of 100,000 names: put, get, clone, compare and drop.
    let path = vec!["deep"; 100_000].join("/");
    let mut c = Config::new();
    c.put(&path, "bottom").unwrap();
    let copy = c.clone();
    assert_eq!(copy.get(&path), Some("bottom"));
    assert_eq!(copy, c);
}

#[test]
fn put_errors_are_clear() {
    let mut c = Config::new();
    let e = c.put("server//timeout", "1").unwrap_err();
    assert!(matches!(e, ConfigError::BadPath(_)));
    assert!(e.to_string().contains("server//timeout"), "{e}");
    let e = c.put("server/time out", "1").unwrap_err();
    assert!(e.to_string().contains("time out"), "{e}");
    let e = c.put("server/timeout", "1\n2").unwrap_err();
    assert!(matches!(e, ConfigError::BadValue(_)), "{e}");
}

// ----------------------------------------------------------------------
// Property tests

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_@.&+-]{1,6}"
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "[a-z0-9 #'\"=]{0,8}",
        any::<String>().prop_map(|s| s.chars().take(10).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any tree built with put saves and re-parses to the same tree
    /// (nodes that put created without a value come back with "").
    #[test]
    fn put_trees_round_trip(
        entries in proptest::collection::vec(
            (proptest::collection::vec(name(), 1..5), value()), 0..20)
    ) {
        let mut c = Config::new();
        let mut accepted = Vec::new();
        for (names, value) in &entries {
            let path = names.join("/");
            match c.put(&path, value) {
                Ok(()) => accepted.push((path, value.clone())),
                Err(ConfigError::BadValue(_)) => {}
                Err(e) => return Err(TestCaseError::fail(format!("{path}: {e}"))),
            }
        }
        let text = c.to_text();
        let again = Config::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(shape(&again), shape(&c));
        // Last write wins at each path.
        for (path, _) in &accepted {
            let last = accepted.iter().rev().find(|(p, _)| p == path).map(|(_, v)| v.as_str());
            prop_assert_eq!(again.get(path), last);
        }
        // From then on the text is stable.
        prop_assert_eq!(Config::parse(&again.to_text()).unwrap(), again.clone());
        prop_assert_eq!(again.to_text(), Config::parse(&again.to_text()).unwrap().to_text());
    }

    /// Whatever parses prints to text that parses to the same tree.
    #[test]
    fn parsed_text_round_trips(lines in proptest::collection::vec(
        (0usize..3, "[a-z#=/ '\"\t]{0,10}"), 0..12)
    ) {
        let text: String = lines
            .iter()
            .map(|(level, body)| format!("{}{}\n", "    ".repeat(*level), body))
            .collect();
        if let Ok(c) = Config::parse(&text) {
            let printed = c.to_text();
            let again = Config::parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
            prop_assert_eq!(&again, &c);
            prop_assert_eq!(again.to_text(), printed);
        }
    }

    /// Arbitrary text never panics.
    #[test]
    fn any_text_is_handled(text in any::<String>()) {
        let _ = Config::parse(&text);
    }
}

// ----------------------------------------------------------------------
// Differential tests against CZMQ's zconfig

fn probe() -> &'static std::path::Path {
    static PROBE: OnceLock<std::path::PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| czmq::build_c_tool("zpl_probe"))
}

fn run_probe(mode: &str, input: &str) -> String {
    let mut child = Command::new(probe())
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("zpl_probe starts");
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_string();
    // Write from a thread so a large input cannot deadlock on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("zpl_probe runs");
    writer.join().expect("writer thread");
    assert!(out.status.success(), "zpl_probe {mode} failed");
    String::from_utf8(out.stdout).expect("zpl_probe prints UTF-8 for UTF-8 input")
}

/// Texts whose reading CZMQ and we must agree on.
const DIFF_INPUTS: &[&str] = &[
    "",
    "\n\n",
    "a\n",
    "a = 1\n    b = 2\n        c = 3\n    d\ne\n",
    "#top\n#  second\na = 1\n#late comment\n",
    "a = \"x y\"  # c\nb = 'p q'\nc = bare  value  # comment\n",
    "a = #foo\n",
    "a =#foo\n",
    "a = x#y\n",
    "a = # x # y\n",
    "a =\nb=\nc = \"\"\nd = ''\n",
    "a = x  \r\nb\r\n",
    "a = 'it''s'\n",
    "a/b = 1\n",
    "$-_@.&+ = odd\n",
    "\t# tab comment\n\t\n   \na = 1\n",
    "    # indented comment ok at 4\na = 1\n",
    "a = 1 = 2\n",
    "a = \"x\"# y\n",
    "a = 'x'y\n",
    "x\n    y\n        z = deep\n    w = back\nv\n",
    // Errors
    "a\n  b\n",
    "  # two-space comment\n",
    "a\n        b\n",
    "    a\n",
    "a = \"open\n",
    "a = 'open\n",
    "a = \"x\" junk\n",
    "a b\n",
    "= 1\n",
    "\tb\n",
    "/a = 1\n",
    "a/ = 1\n",
    "a:b = 1\n",
];

#[test]
fn czmq_reads_as_we_do() {
    if !czmq::require_czmq() {
        return;
    }
    for text in DIFF_INPUTS {
        let theirs = run_probe("load", text);
        let ours = match Config::parse(text) {
            Ok(c) => c.to_text(),
            Err(_) => "ERROR\n".to_string(),
        };
        assert_eq!(ours, theirs, "input {text:?}");
    }
}

#[test]
fn czmq_writes_a_double_quote_it_cannot_read_back() {
    // The one place we differ on purpose: CZMQ writes "..." around a value
    // holding '"', which nobody can read; we write '...'.
    if !czmq::require_czmq() {
        return;
    }
    let text = "b = 'p \"q\"'\n";
    assert_eq!(run_probe("load", text), "b = \"p \"q\"\"\n");
    assert_eq!(parse(text).to_text(), text);
    assert_eq!(run_probe("load", &run_probe("load", text)), "ERROR\n");
}

#[test]
fn czmq_reads_what_we_write() {
    if !czmq::require_czmq() {
        return;
    }
    let mut c = Config::new();
    for (path, value) in [
        ("server/timeout", "1000"),
        ("zgossip/bind/endpoint", "tcp://127.0.0.1:5670"),
        ("zgossip/echo", "two words"),
        ("quotes/double", "say \"hi\""),
        ("quotes/single", "it's"),
        ("quotes/both", "it's \"x\""),
        ("quotes/hash-first", "#'\"#"),
        ("empty", ""),
        ("spaces", "  padded  "),
    ] {
        c.put(path, value).unwrap();
    }
    let text = c.to_text();
    // CZMQ parses our text to the tree we parse it to (shown the way CZMQ
    // writes it: every value in double quotes).
    assert_eq!(
        run_probe("load", &text),
        czmq_style(&parse(&text)),
        "our text:\n{text}"
    );
}

#[test]
fn czmq_put_writes_as_we_do() {
    if !czmq::require_czmq() {
        return;
    }
    let puts = [
        ("server/timeout", "1000"),
        ("/server/verbose", "1"),
        ("a/b/c/d", "deep"),
        ("a/b", "mid"),
        ("a/x", "two words"),
        ("server/timeout", "250"),
        ("top", ""),
    ];
    let mut c = Config::new();
    let mut input = String::new();
    for (path, value) in puts {
        c.put(path, value).unwrap();
        input.push_str(&format!("{path}\t{value}\n"));
    }
    assert_eq!(run_probe("put", &input), c.to_text());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random line soup: CZMQ and we accept the same texts and build the
    /// same trees (compared through CZMQ's writer, on values it can write).
    #[test]
    fn czmq_agrees_on_random_text(lines in proptest::collection::vec(
        (0usize..3, 0usize..3, "[a-z#=/ '\"\t:]{0,10}"), 0..10)
    ) {
        if !czmq::czmq_available() {
            return Ok(());
        }
        let text: String = lines
            .iter()
            .map(|(level, extra, body)| {
                format!("{}{}{}\n", "    ".repeat(*level), " ".repeat(*extra % 2 * 2), body)
            })
            .collect();
        let theirs = run_probe("load", &text);
        match Config::parse(&text) {
            Ok(c) => {
                // CZMQ writes '"' around every value, even one holding '"'.
                if !shape(&c).iter().any(|(_, _, v)| v.contains('"')) {
                    prop_assert_eq!(c.to_text(), theirs, "input {:?}", text);
                } else {
                    prop_assert_ne!(theirs.as_str(), "ERROR\n", "input {:?}", text);
                }
            }
            Err(_) => prop_assert_eq!(theirs.as_str(), "ERROR\n", "input {:?}", text),
        }
    }
}
