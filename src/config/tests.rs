use super::*;

fn parse(text: &str) -> Config {
    match Config::parse(text) {
        Ok(c) => c,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn syntax_line(text: &str) -> (usize, String) {
    match Config::parse(text) {
        Err(ConfigError::Syntax { line, message }) => (line, message),
        other => panic!("{text:?} should be a syntax error, got {other:?}"),
    }
}

#[test]
fn new_is_an_empty_root() {
    let c = Config::new();
    assert_eq!(c.root().name(), "root");
    assert_eq!(c.root().value(), None);
    assert_eq!(c.root().children().count(), 0);
    assert_eq!(c.to_text(), "");
    assert_eq!(c, Config::default());
    assert_eq!(parse(""), c);
}

#[test]
fn czmq_selftest_sample() {
    let c = parse(
        "malamute\n    endpoint = ipc://@/malamute\n    producer = STREAM\n    consumer\n        \
         STREAM2 = .*\n        STREAM3 = HAM\nserver\n    verbose = true\n",
    );
    assert_eq!(c.get("malamute/endpoint"), Some("ipc://@/malamute"));
    assert_eq!(c.get("/malamute/producer"), Some("STREAM"));
    let consumer = c.locate("malamute/consumer").unwrap();
    assert_eq!(consumer.value(), Some(""));
    let names: Vec<_> = consumer.children().map(|n| (n.name(), n.value())).collect();
    assert_eq!(names, [("STREAM2", Some(".*")), ("STREAM3", Some("HAM"))]);
    assert_eq!(c.get("server/verbose"), Some("true"));
    assert_eq!(c.get("server/missing"), None);
    assert_eq!(c.get_or("server/missing", "dflt"), "dflt");
    assert_eq!(c.get_or("server/verbose", "dflt"), "true");
}

#[test]
fn values_quoted_bare_and_commented() {
    let c = parse(
        "a = \"x y\"   # c\nb = 'p \"q\" r'\nc = bare value   # comment\nd=1\ne =\nf\ng # c\n",
    );
    assert_eq!(c.get("a"), Some("x y"));
    assert_eq!(c.get("b"), Some("p \"q\" r"));
    assert_eq!(c.get("c"), Some("bare value"));
    assert_eq!(c.get("d"), Some("1"));
    assert_eq!(c.get("e"), Some(""));
    assert_eq!(c.get("f"), Some(""));
    assert_eq!(c.get("g"), Some(""));
}

#[test]
fn czmq_quirk_value_starting_with_hash() {
    // CZMQ keeps "#foo" after "= " but gives "" after "=".
    assert_eq!(parse("a = #foo # x\n").get("a"), Some("#foo # x"));
    assert_eq!(parse("a =#foo\n").get("a"), Some(""));
    assert_eq!(parse("a = x#y\n").get("a"), Some("x"));
}

#[test]
fn trailing_whitespace_and_crlf() {
    let c = parse("a = x \r\nb\r\n    c = 'y' \t\r\n");
    assert_eq!(c.get("a"), Some("x"));
    assert_eq!(c.get("b/c"), Some("y"));
}

#[test]
fn nul_ends_a_line() {
    let c = parse("a = x\0junk\nb = y\n");
    assert_eq!(c.get("a"), Some("x"));
    assert_eq!(c.get("b"), Some("y"));
}

#[test]
fn comments_go_to_root_and_print_first() {
    let c = parse("#  one\na = 1\n    # indented, dropped\n#two\nb = 2 # inline, dropped\n");
    assert_eq!(c.root().comments(), ["  one", "two"]);
    assert_eq!(c.to_text(), "#  one\n#two\n\na = \"1\"\nb = \"2\"\n");
}

#[test]
fn exact_czmq_output() {
    let mut c = Config::new();
    c.put("server/timeout", "1000").unwrap();
    c.put("/server/verbose", "0").unwrap();
    c.put("zgossip/bind/endpoint", "tcp://*:5670").unwrap();
    assert_eq!(
        c.to_text(),
        "server\n    timeout = \"1000\"\n    verbose = \"0\"\nzgossip\n    bind\n        \
         endpoint = \"tcp://*:5670\"\n"
    );
    // Parsed section headers have the value "", which CZMQ writes.
    let again = parse(&c.to_text());
    assert_eq!(
        again.to_text(),
        "server = \"\"\n    timeout = \"1000\"\n    verbose = \"0\"\nzgossip = \"\"\n    \
         bind = \"\"\n        endpoint = \"tcp://*:5670\"\n"
    );
}

#[test]
fn put_replaces_first_match_and_keeps_order() {
    let mut c = parse("a\n    x = 1\n    x = 2\nb = 3\n");
    c.put("a/x", "9").unwrap();
    c.put("c", "4").unwrap();
    let xs: Vec<_> = c
        .locate("a")
        .unwrap()
        .children()
        .map(|n| n.value().unwrap())
        .collect();
    assert_eq!(xs, ["9", "2"]);
    let top: Vec<_> = c.root().children().map(ConfigNode::name).collect();
    assert_eq!(top, ["a", "b", "c"]);
}

#[test]
fn put_rejects_bad_paths_and_values() {
    let mut c = Config::new();
    for path in [
        "", "/", "a//b", "a/", "//a", "a b", "a=b", "é", "a#", "a\tb",
    ] {
        match c.put(path, "v") {
            Err(ConfigError::BadPath(m)) => assert!(!m.is_empty()),
            other => panic!("{path:?}: {other:?}"),
        }
    }
    for value in [
        "a\nb", "a\0", "'\"#", " '\"", "'\" ", "x'\"#y", "'\"", "\"x'",
    ] {
        match c.put("k", value) {
            Err(ConfigError::BadValue(m)) => assert!(!m.is_empty()),
            other => panic!("{value:?}: {other:?}"),
        }
    }
    assert_eq!(c, Config::new(), "failed puts change nothing");
    // Names may use every RFC 4 character.
    c.put("$-_@.&+/Az09", "v").unwrap();
    assert_eq!(c.get("$-_@.&+/Az09"), Some("v"));
}

#[test]
fn awkward_values_round_trip() {
    for value in [
        "", " lead", "trail ", "a\"b", "a'b", "#x", "x#y", "a\"b'c", "#\"'#", "\r\t", "é ü",
    ] {
        let mut c = Config::new();
        c.put("k", value).unwrap();
        let again = parse(&c.to_text());
        assert_eq!(again.get("k"), Some(value), "text: {:?}", c.to_text());
    }
}

#[test]
fn syntax_errors_have_line_numbers() {
    assert_eq!(syntax_line("a\n  b\n").0, 2);
    assert_eq!(syntax_line("a\n\n  # comment\n").0, 3);
    assert_eq!(syntax_line("a\n        b\n").0, 2);
    assert_eq!(syntax_line("    a\n").0, 1);
    let (line, m) = syntax_line("a = 1\nb = \"open\n");
    assert_eq!(line, 2);
    assert!(m.contains("missing closing \""), "{m}");
    assert_eq!(syntax_line("a = 'x\n").0, 1);
    assert_eq!(syntax_line("a = 'x' y\n").0, 1);
    assert_eq!(syntax_line("a b\n").0, 1);
    assert_eq!(syntax_line("= 1\n").0, 1);
    assert_eq!(syntax_line("/a = 1\n").0, 1);
    assert_eq!(syntax_line("a/ = 1\n").0, 1);
    assert_eq!(syntax_line("a:b = 1\n").0, 1);
    let (line, m) = syntax_line("a\n\tb = 1\n");
    assert_eq!(line, 2);
    assert!(m.contains("tab"), "{m}");
}

#[test]
fn tabs_and_blank_lines_that_czmq_accepts() {
    let c = parse("\t# tab comment\n\t\n   \n\na = 1\n");
    assert_eq!(c.get("a"), Some("1"));
    assert!(c.root().comments().is_empty());
}

#[test]
fn inner_slash_names_parse_but_are_not_paths() {
    let c = parse("a/b = 1\n");
    assert_eq!(c.root().child("a/b").unwrap().value(), Some("1"));
    assert_eq!(c.get("a/b"), None);
}

#[test]
fn deep_tree_by_put_does_not_recurse() {
    let depth = 100_000;
    let path = vec!["n"; depth].join("/");
    let mut c = Config::new();
    c.put(&path, "deep").unwrap();
    assert_eq!(c.get(&path), Some("deep"));
    let copy = c.clone();
    assert_eq!(copy, c);
    let mut other = c.clone();
    other.put(&path, "changed").unwrap();
    assert_ne!(other, c);
    let debug = format!("{:?}", Config::new());
    assert!(debug.contains("root"));
    drop(copy);
    drop(other);
    drop(c);
}

#[test]
fn deep_text_parses_and_prints() {
    let depth = 2_000;
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&" ".repeat(level * 4));
        text.push_str("n = \"v\"\n");
    }
    let c = parse(&text);
    assert_eq!(c.to_text(), text);
    assert_eq!(parse(&c.to_text()), c);
}

#[test]
fn errors_display() {
    let e = ConfigError::Syntax {
        line: 3,
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "ZPL syntax error at line 3: boom");
    let e = Config::load("/nonexistent/zgossip.cfg").unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/zgossip.cfg"), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}
