//! What the page shows, as the JSON of `GET /api/state`: the members, this
//! node's links (eager, lazy or plain), the tuples a search matches (at
//! most `TUPLES_CAP`), the propagation delay histogram (cumulative: the
//! page takes the differences between two polls) and a few counters.
//!
//! Members come from `MEMBERS`, tuples from `KEYS` and `GET`, links and
//! the histogram from the samples of `METRICS` (`zgossip_link_*`,
//! labelled with the connection and the peer's overlay id). Every string
//! is a JSON string escaped here, `<`, `>` and `&` included; the page
//! shows them as text (`textContent`), never as markup.

use crate::json::json_text;
use zgossip::{Member, Node};

use crate::metrics_text::{samples, Sample};

/// Most tuples in one answer (the first matches in key order).
pub const TUPLES_CAP: usize = 200;
/// Most members in one answer (this node first).
pub const MEMBERS_CAP: usize = 1000;
/// Longest value sent, in characters; a longer one is cut and marked.
pub const VALUE_CAP: usize = 1000;
/// Longest search taken, in characters (a key has at most 255 bytes).
pub const QUERY_CAP: usize = 255;

/// One link of this node, from the `zgossip_link_*` samples.
#[derive(Debug, Default, PartialEq)]
pub struct Link {
    pub conn: String,
    pub role: String,
    pub peer: String,
    pub peer_id: Option<u64>,
    /// `eager`, `lazy` (a link of the broadcast tree) or `plain`.
    pub mode: &'static str,
    pub rtt_ms: Option<f64>,
    pub bytes_in: f64,
    pub bytes_out: f64,
    pub backlog: f64,
}

/// The propagation delay histogram: `(le in seconds, cumulative count)`,
/// `+Inf` last.
#[derive(Debug, Default, PartialEq)]
pub struct Delay {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
    pub clamped: f64,
}

/// The tuples a search matched.
#[derive(Debug, Default, PartialEq)]
pub struct Tuples {
    pub query: String,
    /// How many keys matched; at most `TUPLES_CAP` of them are in `items`.
    pub total: usize,
    /// Key, value (cut to `VALUE_CAP` characters), whether it was cut.
    pub items: Vec<(String, String, bool)>,
}

/// Everything one answer holds.
#[derive(Debug, Default)]
pub struct State {
    pub members: Vec<Member>,
    pub members_total: usize,
    pub links: Vec<Link>,
    pub tuples: Tuples,
    pub delay: Delay,
    /// A few node-wide numbers by metric name.
    pub counters: Vec<(&'static str, f64)>,
}

/// The metrics shown as counters on the page.
const COUNTERS: [&str; 5] = [
    "zgossip_tuples",
    "zgossip_connections",
    "zgossip_tuples_applied_total",
    "zgossip_overlay_eager_links",
    "zgossip_overlay_lazy_links",
];

/// Reads the node's state for a search `query` (keys containing it,
/// ignoring ASCII case; empty: every key).
pub fn read(node: &Node, query: &str) -> zgossip::Result<State> {
    let mut members = node.members()?;
    let members_total = members.len();
    members.truncate(MEMBERS_CAP);
    let metrics = samples(&node.metrics()?);
    let query: String = query.chars().take(QUERY_CAP).collect();
    let tuples = read_tuples(node, &query)?;
    let counters = COUNTERS
        .iter()
        .filter_map(|name| {
            let s = metrics.iter().find(|s| s.name == *name)?;
            Some((*name, s.value))
        })
        .collect();
    Ok(State {
        members,
        members_total,
        links: links(&metrics),
        tuples,
        delay: delay(&metrics),
        counters,
    })
}

fn read_tuples(node: &Node, query: &str) -> zgossip::Result<Tuples> {
    let needle = query.to_ascii_lowercase();
    let mut keys: Vec<String> = node
        .keys("")?
        .into_iter()
        .filter(|k| k.to_ascii_lowercase().contains(&needle))
        .collect();
    keys.sort_unstable();
    let total = keys.len();
    let mut items = Vec::with_capacity(total.min(TUPLES_CAP));
    for key in keys.into_iter().take(TUPLES_CAP) {
        // Gone since KEYS (deleted, expired): left out.
        if let Some(value) = node.get(&key)? {
            let cut = value.chars().count() > VALUE_CAP;
            let value = if cut {
                value.chars().take(VALUE_CAP).collect()
            } else {
                value
            };
            items.push((key, value, cut));
        }
    }
    Ok(Tuples {
        query: query.to_string(),
        total,
        items,
    })
}

/// The links in the `zgossip_link_*` samples, by connection.
pub fn links(metrics: &[Sample]) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    for s in metrics
        .iter()
        .filter(|s| s.name.starts_with("zgossip_link_"))
    {
        let conn = s.label("conn");
        let at = match links.iter().position(|l| l.conn == conn) {
            Some(at) => at,
            None => {
                links.push(Link {
                    conn: conn.to_string(),
                    role: s.label("role").to_string(),
                    peer: s.label("peer").to_string(),
                    peer_id: s.label("peer_id").parse().ok(),
                    mode: "plain",
                    ..Link::default()
                });
                links.len() - 1
            }
        };
        let link = &mut links[at];
        match s.name.as_str() {
            "zgossip_link_bytes_in_total" => link.bytes_in = s.value,
            "zgossip_link_bytes_out_total" => link.bytes_out = s.value,
            "zgossip_link_backlog_bytes" => link.backlog = s.value,
            "zgossip_link_rtt_seconds" => link.rtt_ms = Some(s.value * 1000.0),
            "zgossip_link_eager" => link.mode = if s.value > 0.0 { "eager" } else { "lazy" },
            _ => {}
        }
    }
    links
}

/// The propagation delay histogram in the samples.
pub fn delay(metrics: &[Sample]) -> Delay {
    const NAME: &str = "zgossip_propagation_delay_seconds";
    let mut d = Delay::default();
    for s in metrics {
        match s.name.strip_prefix(NAME) {
            Some("_bucket") => {
                let le = match s.label("le") {
                    "+Inf" => f64::INFINITY,
                    le => match le.parse() {
                        Ok(v) => v,
                        Err(_) => continue,
                    },
                };
                d.buckets.push((le, s.value));
            }
            Some("_count") => d.count = s.value,
            Some("_sum") => d.sum = s.value,
            _ if s.name == "zgossip_propagation_delay_clamped_total" => d.clamped = s.value,
            _ => {}
        }
    }
    d
}

impl State {
    /// The JSON text of the state.
    pub fn to_json(&self) -> String {
        let members: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "{{\"id\":\"{:016x}\",\"name\":{},\"state\":\"{}\",\"endpoint\":{},\"self\":{}}}",
                    m.id,
                    json_text(&m.name),
                    m.state.name(),
                    json_text(&m.endpoint),
                    i == 0
                )
            })
            .collect();
        let links: Vec<String> = self
            .links
            .iter()
            .map(|l| {
                let name = l
                    .peer_id
                    .and_then(|id| self.members.iter().find(|m| m.id == id))
                    .map_or("null".to_string(), |m| json_text(&m.name));
                format!(
                    "{{\"conn\":{},\"role\":{},\"peer\":{},\"peer_id\":{},\"name\":{name},\
                     \"mode\":\"{}\",\"rtt_ms\":{},\"bytes_in\":{},\"bytes_out\":{},\"backlog\":{}}}",
                    json_text(&l.conn),
                    json_text(&l.role),
                    json_text(&l.peer),
                    l.peer_id
                        .map_or("null".to_string(), |id| format!("\"{id:016x}\"")),
                    l.mode,
                    l.rtt_ms.map_or("null".to_string(), json_number),
                    json_number(l.bytes_in),
                    json_number(l.bytes_out),
                    json_number(l.backlog),
                )
            })
            .collect();
        let items: Vec<String> = self
            .tuples
            .items
            .iter()
            .map(|(k, v, cut)| {
                format!(
                    "{{\"key\":{},\"value\":{},\"cut\":{cut}}}",
                    json_text(k),
                    json_text(v)
                )
            })
            .collect();
        let buckets: Vec<String> = self
            .delay
            .buckets
            .iter()
            .map(|(le, n)| format!("[{},{}]", json_number(*le), json_number(*n)))
            .collect();
        let counters: Vec<String> = self
            .counters
            .iter()
            .map(|(name, v)| format!("\"{name}\":{}", json_number(*v)))
            .collect();
        format!(
            "{{\"members\":[{}],\"members_total\":{},\"links\":[{}],\
             \"tuples\":{{\"query\":{},\"total\":{},\"cap\":{TUPLES_CAP},\"items\":[{}]}},\
             \"delay\":{{\"buckets\":[{}],\"count\":{},\"sum\":{},\"clamped\":{}}},\
             \"counters\":{{{}}}}}",
            members.join(","),
            self.members_total,
            links.join(","),
            json_text(&self.tuples.query),
            self.tuples.total,
            items.join(","),
            buckets.join(","),
            json_number(self.delay.count),
            json_number(self.delay.sum),
            json_number(self.delay.clamped),
            counters.join(","),
        )
    }
}

/// A number as JSON has it: `null` for infinities and NaN.
fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use zgossip::MemberState;

    #[test]
    fn strings_are_escaped_markup_included() {
        assert_eq!(
            json_text("<script>alert(1)</script>"),
            r#""\u003cscript\u003ealert(1)\u003c/script\u003e""#
        );
        assert_eq!(json_text("a\"b\\c\nd\u{1}&"), r#""a\"b\\c\nd\u0001\u0026""#);
        assert_eq!(json_text("\u{2028}é"), "\"\\u2028é\"");
    }

    #[test]
    fn links_and_the_histogram_are_read_from_the_metrics() {
        let text = "zgossip_link_bytes_in_total{conn=\"3\",role=\"outbound\",peer=\"tcp://a:1\",peer_id=\"255\"} 10\n\
                    zgossip_link_bytes_in_total{conn=\"4\",role=\"inbound\",peer=\"\",peer_id=\"\"} 5\n\
                    zgossip_link_rtt_seconds{conn=\"3\",role=\"outbound\",peer=\"tcp://a:1\",peer_id=\"255\"} 0.002\n\
                    zgossip_link_eager{conn=\"3\",role=\"outbound\",peer=\"tcp://a:1\",peer_id=\"255\"} 0\n\
                    zgossip_propagation_delay_seconds_bucket{le=\"0.001\"} 1\n\
                    zgossip_propagation_delay_seconds_bucket{le=\"+Inf\"} 3\n\
                    zgossip_propagation_delay_seconds_sum 0.5\n\
                    zgossip_propagation_delay_seconds_count 3\n\
                    zgossip_propagation_delay_clamped_total 1\n";
        let m = samples(text);
        let l = links(&m);
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].mode, l[0].peer_id, l[0].bytes_in),
            ("lazy", Some(255), 10.0)
        );
        assert_eq!(l[0].rtt_ms, Some(2.0));
        assert_eq!(
            (l[1].mode, l[1].peer_id, l[1].rtt_ms),
            ("plain", None, None)
        );
        let d = delay(&m);
        assert_eq!(d.buckets, vec![(0.001, 1.0), (f64::INFINITY, 3.0)]);
        assert_eq!((d.count, d.sum, d.clamped), (3.0, 0.5, 1.0));
        let state = State {
            links: l,
            delay: d,
            members: vec![Member {
                id: 255,
                name: "<b>".into(),
                state: MemberState::Alive,
                endpoint: String::new(),
            }],
            members_total: 1,
            ..State::default()
        };
        let json = state.to_json();
        assert!(json.contains("\"peer_id\":\"00000000000000ff\",\"name\":\"\\u003cb\\u003e\",\"mode\":\"lazy\",\"rtt_ms\":2"), "{json}");
        assert!(json.contains("\"buckets\":[[0.001,1],[null,3]]"), "{json}");
    }

    /// A node with `n` tuples and one whose key and value are markup.
    fn node_with_tuples(n: usize) -> Node {
        let node = Node::new("page-<test>").unwrap();
        for i in 0..n {
            node.publish(&format!("k/{i:04}"), "v").unwrap();
        }
        node.publish("<script>alert(1)</script>", &"<img onerror=x>".repeat(200))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.status().unwrap() < n + 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        node
    }

    #[test]
    fn the_answer_escapes_tuples_and_caps_them() {
        let node = node_with_tuples(TUPLES_CAP + 50);
        let state = read(&node, "").unwrap();
        assert_eq!(state.tuples.total, TUPLES_CAP + 51);
        assert_eq!(state.tuples.items.len(), TUPLES_CAP);
        let json = state.to_json();
        assert!(!json.contains('<') && !json.contains('>'), "{json}");
        assert!(
            json.contains("\"name\":\"page-\\u003ctest\\u003e\""),
            "{json}"
        );
        assert!(json.contains(&format!(
            "\"total\":{},\"cap\":{TUPLES_CAP}",
            TUPLES_CAP + 51
        )));

        let state = read(&node, "SCRIPT").unwrap();
        assert_eq!(state.tuples.total, 1);
        let (key, value, cut) = &state.tuples.items[0];
        assert_eq!(key, "<script>alert(1)</script>");
        assert!(*cut && value.chars().count() == VALUE_CAP);
        let json = state.to_json();
        assert!(json.contains("\"key\":\"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\""));
        assert!(json.contains("\"query\":\"SCRIPT\""));

        let state = read(&node, &"x".repeat(10_000)).unwrap();
        assert_eq!(
            (state.tuples.total, state.tuples.query.len()),
            (0, QUERY_CAP)
        );
        assert_eq!(state.members.len(), 1);
        assert!(state
            .counters
            .contains(&("zgossip_tuples", (TUPLES_CAP + 51) as f64)));
    }
}
