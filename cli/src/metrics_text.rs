//! Reads back the samples of the node's own `METRICS` text (Prometheus
//! text exposition format 0.0.4, `docs/metrics.md`): the page takes its
//! links and its propagation delay histogram from them. Only what that
//! text uses: `name{label="value",...} number`, label values escaped
//! with `\\`, `\"` and `\n`; comments skipped, a line it cannot read
//! skipped too.

/// One sample line.
#[derive(Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// The value of a label, empty when absent.
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Every sample of `text`, in order.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = label_set(after)?;
        labels = parsed;
        rest = tail;
    }
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Labels up to the closing `}`; the text after it.
fn label_set(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        if let Some(tail) = s.strip_prefix('}') {
            return Some((labels, tail));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        s = &after[end + 1..];
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_escaped_labels_are_read() {
        let text = "# HELP x y\n# TYPE x gauge\nx 2\n\
                    a_bucket{le=\"0.5\"} 3\na_bucket{le=\"+Inf\"} 4\n\
                    l{conn=\"7\",peer=\"tcp://e\\\"v}il\\\\\\n\",peer_id=\"\"} 1.5\n\
                    broken{le=\"1\" 2\nnot_a_number x\n";
        let s = samples(text);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!((s[0].name.as_str(), s[0].value), ("x", 2.0));
        assert_eq!(s[1].label("le"), "0.5");
        assert_eq!(s[2].label("le"), "+Inf");
        assert_eq!(s[3].label("peer"), "tcp://e\"v}il\\\n");
        assert_eq!(s[3].label("peer_id"), "");
        assert_eq!(s[3].label("absent"), "");
        assert_eq!(s[3].value, 1.5);
    }
}
