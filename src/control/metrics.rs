//! `METRICS`: the node's counters, gauges and histogram in the Prometheus
//! text exposition format, version 0.0.4 (docs/metrics.md lists them).
//!
//! Written by hand rather than with a metrics crate: the values are a
//! snapshot the node reads in one call (the `STATS` counters, the engine's
//! links and histogram), where the crates (`prometheus-client`,
//! `prometheus`) keep live metric objects in a registry; and
//! `prometheus-client` writes the OpenMetrics text, not 0.0.4. The format
//! is a few lines per metric; what needs care, the escaping of label
//! values (peer endpoints are peer-controlled text) and of help text, is
//! here and tested.

use std::fmt::Write as _;

use crate::engine::{DelayHistogram, Engine, LinkInfo};

/// The content type of the text (for an HTTP endpoint serving it).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    /// A gauge of milliseconds, exposed in seconds.
    GaugeMs,
    /// An id, exposed as `<name>{<label>="<value>"} 1`.
    Info(&'static str),
}

/// Each `STATS` counter: its name there, its metric name, kind and help.
const STATS_METRICS: &[(&str, &str, Kind, &str)] = {
    use Kind::*;
    &[
        ("tuples", "zgossip_tuples", Gauge, "Live tuples held."),
        ("tombstones", "zgossip_tombstones", Gauge, "Deleted tuples held until collected (tombstones)."),
        ("connections", "zgossip_connections", Gauge, "Connections whose handshake ended."),
        ("frames-in", "zgossip_frames_in_total", Counter, "ZGP frames received."),
        ("frames-out", "zgossip_frames_out_total", Counter, "ZGP frames queued for peers."),
        ("tuples-applied", "zgossip_tuples_applied_total", Counter, "Writes received from peers that changed the store."),
        ("sync-tuples-out", "zgossip_sync_tuples_out_total", Counter, "Tuples sent by set reconciliation."),
        ("expired", "zgossip_tuples_expired_total", Counter, "Tuples whose time to live ran out here."),
        ("tombstones-collected", "zgossip_tombstones_collected_total", Counter, "Tombstones collected after their grace period."),
        ("future-versions", "zgossip_future_versions_total", Counter, "Writes refused because their clock was too far ahead of ours."),
        ("expired-on-arrival", "zgossip_tuples_expired_on_arrival_total", Counter, "Writes dropped because their time to live had run out when they arrived."),
        ("invalid-sent", "zgossip_invalid_sent_total", Counter, "INVALID messages sent to clients."),
        ("malformed", "zgossip_malformed_frames_total", Counter, "Malformed frames received (the connection is closed)."),
        ("sessions-expired", "zgossip_sessions_expired_total", Counter, "Client sessions expired for silence."),
        ("oversize-tuples", "zgossip_oversize_tuples_total", Counter, "Tuples refused by the size rule."),
        ("idle-closed", "zgossip_idle_closed_connections_total", Counter, "Inbound connections closed for silence."),
        ("oversize-skipped", "zgossip_oversize_skipped_tuples_total", Counter, "Tuples not offered to a peer whose frame limit they exceed."),
        ("backlog-closed", "zgossip_backlog_closed_connections_total", Counter, "Connections closed to keep all backlogs within limits/max-backlog-total."),
        ("overlay-active", "zgossip_overlay_active_peers", Gauge, "Peers in the overlay's active view."),
        ("overlay-passive", "zgossip_overlay_passive_peers", Gauge, "Peers in the overlay's passive view."),
        ("overlay-eager", "zgossip_overlay_eager_links", Gauge, "Eager links of the broadcast tree (writes pushed)."),
        ("overlay-lazy", "zgossip_overlay_lazy_links", Gauge, "Lazy links of the broadcast tree (writes announced)."),
        ("overlay-anchor", "zgossip_overlay_anchor_info", Info("anchor"), "The smallest node id this node knows in its part of the overlay (its own while it has no link)."),
        ("overlay-joins", "zgossip_overlay_joins_total", Counter, "JOIN messages taken."),
        ("overlay-forward-joins", "zgossip_overlay_forward_joins_total", Counter, "FORWARDJOIN messages taken."),
        ("overlay-neighbors-accepted", "zgossip_overlay_neighbors_accepted_total", Counter, "NEIGHBOR requests accepted."),
        ("overlay-neighbors-refused", "zgossip_overlay_neighbors_refused_total", Counter, "NEIGHBOR requests refused."),
        ("overlay-shuffles", "zgossip_overlay_shuffles_total", Counter, "SHUFFLE messages taken."),
        ("overlay-disconnects", "zgossip_overlay_disconnects_total", Counter, "DISCONNECT messages taken."),
        ("overlay-promotions", "zgossip_overlay_promotions_total", Counter, "Passive peers promoted to the active view."),
        ("overlay-evictions", "zgossip_overlay_evictions_total", Counter, "Active peers evicted to make room."),
        ("overlay-merges", "zgossip_overlay_merges_total", Counter, "Overlay partitions merged (a smaller anchor heard)."),
        ("overlay-rekeys", "zgossip_overlay_rekeys_total", Counter, "New keys of peers taken from the peers themselves (a key rotation)."),
        ("overlay-ignored", "zgossip_overlay_ignored_messages_total", Counter, "Overlay messages ignored."),
        ("tree-announced", "zgossip_tree_announced_writes_total", Counter, "Writes announced on lazy links."),
        ("tree-announce-frames", "zgossip_tree_announce_frames_total", Counter, "IHAVE frames sent."),
        ("tree-unannounced", "zgossip_tree_unannounced_writes_total", Counter, "Announcements dropped (the other end announced first)."),
        ("tree-grafted", "zgossip_tree_grafted_writes_total", Counter, "Missing writes pulled with GRAFT."),
        ("tree-prunes-sent", "zgossip_tree_prunes_sent_total", Counter, "PRUNE messages sent."),
        ("tree-prunes-received", "zgossip_tree_prunes_received_total", Counter, "PRUNE messages received."),
        ("tree-prunes-held", "zgossip_tree_prunes_held_total", Counter, "Prunes held back (the link was needed)."),
        ("tree-repairs", "zgossip_tree_repairs_total", Counter, "Lazy links made eager again to repair the tree."),
        ("tree-missing-dropped", "zgossip_tree_missing_dropped_total", Counter, "Announced writes given up waiting for."),
        ("tree-graft-timeout", "zgossip_tree_graft_timeout_seconds", GaugeMs, "How long the tree waits for an announced write before pulling it."),
        ("tree-duplicates", "zgossip_tree_duplicates_total", Counter, "Pushed duplicates that came on a link of the root's tree (the repair that overtook it is pruned)."),
        ("tree-root", "zgossip_tree_root_info", Info("root"), "The broadcast tree's root as this node knows it (the smallest node id of the connected overlay)."),
        ("tree-level", "zgossip_tree_level", Gauge, "This node's distance to the tree's root, in hops (255: detached)."),
        ("tree-detached", "zgossip_tree_detached", Gauge, "1 while this node has lost its way to the tree's root and waits for the root's next number."),
        ("tree-parent-changes", "zgossip_tree_parent_changes_total", Counter, "Times this node took another parent toward the tree's root."),
        ("tree-root-changes", "zgossip_tree_root_changes_total", Counter, "Times this node took another root."),
        ("tree-root-expiries", "zgossip_tree_root_expiries_total", Counter, "Roots given up because their number stopped advancing (overlay/root-timeout)."),
        ("tree-detachments", "zgossip_tree_detachments_total", Counter, "Times this node lost its parent with no other way to the root."),
        ("tree-root-adverts-sent", "zgossip_tree_root_adverts_sent_total", Counter, "ROOT messages sent."),
        ("tree-root-adverts-received", "zgossip_tree_root_adverts_received_total", Counter, "ROOT messages received."),
        ("tree-root-adverts-refused", "zgossip_tree_root_adverts_refused_total", Counter, "ROOT messages naming a root given up, at a number it had then."),
        ("tree-root-requests-sent", "zgossip_tree_root_requests_sent_total", Counter, "ROOT-REQUEST messages sent (detached) or passed on to a parent."),
        ("tree-root-requests-answered", "zgossip_tree_root_requests_answered_total", Counter, "New numbers this node sent, as the root, when asked."),
        ("members-alive", "zgossip_members_alive", Gauge, "Other members held as alive."),
        ("members-suspect", "zgossip_members_suspect", Gauge, "Other members held as suspect (an observer lost them)."),
        ("members-gone", "zgossip_members_gone", Gauge, "Members held as failed or left, until forgotten (membership/gone-keep)."),
        ("members-records-in", "zgossip_members_records_in_total", Counter, "Member records received."),
        ("members-records-out", "zgossip_members_records_out_total", Counter, "Member records sent."),
        ("members-records-stale", "zgossip_members_records_stale_total", Counter, "Member records received that changed nothing."),
        ("members-records-dropped", "zgossip_members_records_dropped_total", Counter, "Member records dropped because the table was full (membership/max-members)."),
        ("members-records-refused", "zgossip_members_records_refused_total", Counter, "Records of forgotten or replaced members, refused."),
        ("members-suspicions", "zgossip_members_suspicions_total", Counter, "Members that became suspect here."),
        ("members-suspicions-withheld", "zgossip_members_suspicions_withheld_total", Counter, "Lost links not taken as the peer's fault because this node had stalled."),
        ("members-unreachable", "zgossip_members_unreachable_total", Counter, "Members suspected because a dial to them found no one there."),
        ("members-refutations", "zgossip_members_refutations_total", Counter, "Times this node said it was alive against a suspicion."),
        ("members-failures", "zgossip_members_failures_total", Counter, "Members that became failed here."),
        ("members-leaves", "zgossip_members_leaves_total", Counter, "Leaves this node announced (0 or 1)."),
        ("members-replaced", "zgossip_members_replaced_total", Counter, "Members replaced by a newer start under the same name."),
        ("members-digests-sent", "zgossip_members_digests_sent_total", Counter, "Member table digests sent."),
        ("members-digests-received", "zgossip_members_digests_received_total", Counter, "Member table digests received."),
        ("members-stalls", "zgossip_members_stalls_total", Counter, "Times this node found its own clock had stalled."),
        ("ephemeral-deleted", "zgossip_ephemeral_deleted_total", Counter, "Ephemeral tuples deleted here because their writer left or failed."),
        ("ephemeral-rewritten", "zgossip_ephemeral_rewritten_total", Counter, "This node's ephemeral tuples written again after another node took it as failed."),
        ("input-held", "zgossip_input_held_bytes", Gauge, "Bytes of incomplete frames held by all connections."),
        ("stalled-closed", "zgossip_stalled_closed_connections_total", Counter, "Connections closed because a frame stalled (limits/frame-timeout)."),
        ("input-refused", "zgossip_input_refused_connections_total", Counter, "Connections closed for limits/input-buffers."),
        ("fd-refused", "zgossip_fd_refused_connections_total", Counter, "Connections refused at the file descriptor limit."),
        ("plain-dials", "zgossip_plain_dials_total", Counter, "Plain (NULL) dials made while the node has a CURVE key pair."),
        ("curve-handshakes", "zgossip_curve_handshakes_total", Counter, "CURVE handshakes clients completed with one of this node's keys."),
        ("curve-handshakes-secondary", "zgossip_curve_handshakes_secondary_total", Counter, "CURVE handshakes clients completed with a held key other than the primary (clients not yet moved to the new key)."),
        ("curve-retired-refused", "zgossip_curve_retired_refused_total", Counter, "CURVE handshakes refused because the client addressed a key this node retired."),
        ("curve-unknown-refused", "zgossip_curve_unknown_refused_total", Counter, "CURVE handshakes refused because the client addressed a key this node never held (or forgot)."),
        ("curve-client-refused", "zgossip_curve_client_refused_total", Counter, "CURVE handshakes refused because the client's key is not admitted (CURVE ALLOW, CURVE dir)."),
        ("curve-client-closed", "zgossip_curve_client_closed_connections_total", Counter, "Open connections closed because their client's key was removed from the admitted keys."),
        ("replies-pending", "zgossip_replies_pending", Gauge, "Replies and deliveries waiting for the application."),
        ("replies-coalesced", "zgossip_replies_coalesced_total", Counter, "Deliveries folded into a later one of the same key."),
        ("handoff-reads", "zgossip_handoff_reads_total", Counter, "Always 0 (kept so that STATS keeps its names)."),
        ("cluster-refused", "zgossip_cluster_refused_total", Counter, "Handshakes that failed because the peer is of another cluster."),
        ("bytes-in", "zgossip_bytes_in_total", Counter, "Bytes read from all connections."),
        ("bytes-out", "zgossip_bytes_out_total", Counter, "Bytes written to all connections."),
        ("dns-seeds", "zgossip_dns_seeds", Gauge, "DNS seeds (JOIN dns:NAME:PORT) this node resolves."),
        ("dns-resolutions", "zgossip_dns_resolutions_total", Counter, "Resolutions of DNS seeds that gave addresses."),
        ("dns-failures", "zgossip_dns_failures_total", Counter, "Resolutions of DNS seeds that failed or gave no address (tried again an interval later)."),
        ("dns-addresses", "zgossip_dns_addresses", Gauge, "Addresses in the last answers of the DNS seeds, summed."),
        ("dns-joins", "zgossip_dns_joins_total", Counter, "Joins dialled to addresses of DNS seeds."),
        ("dns-dropped", "zgossip_dns_dropped_addresses_total", Counter, "Addresses of DNS answers left out (beyond what a seed keeps, undialable, or this node's own)."),
        ("discovery-answers", "zgossip_discovery_answers_total", Counter, "Discovery beacons answered."),
        ("discovery-other-cluster", "zgossip_discovery_other_cluster_total", Counter, "Discovery beacons of another cluster ignored."),
        ("discovery-peers", "zgossip_discovery_peers", Gauge, "Peers heard by discovery."),
        ("discovery-beacons", "zgossip_discovery_beacons_total", Counter, "Discovery beacons received."),
        ("discovery-rejected", "zgossip_discovery_rejected_total", Counter, "Discovery beacons rejected."),
        ("discovery-ignored-plain", "zgossip_discovery_ignored_plain_total", Counter, "Plain discovery beacons ignored by a CURVE node."),
        ("discovery-ignored-curve", "zgossip_discovery_ignored_curve_total", Counter, "CURVE discovery beacons ignored by a plain node."),
        ("discovery-not-allowed", "zgossip_discovery_not_allowed_total", Counter, "Discovery beacons from peers the access rules refuse."),
        ("discovery-dials", "zgossip_discovery_dials_total", Counter, "Peers found by discovery handed to the overlay."),
        ("discovery-refused", "zgossip_discovery_refused_total", Counter, "Discovered peers refused (the candidate list was full)."),
        ("mdns-announced", "zgossip_mdns_announced_total", Counter, "Registrations of this node's DNS-SD service (DISCOVER mdns=1; again when its key, cluster or endpoint changed)."),
        ("mdns-found", "zgossip_mdns_found_total", Counter, "mDNS services resolved that read as peers (handed to discovery, which applies its rules)."),
        ("mdns-ignored", "zgossip_mdns_ignored_total", Counter, "mDNS services ignored: garbage TXT records, no usable address, or beyond the limits."),
        ("mdns-removed", "zgossip_mdns_removed_total", Counter, "mDNS services that said goodbye or expired."),
        ("mdns-services", "zgossip_mdns_services", Gauge, "mDNS services alive now (heard, not removed)."),
        ("discovery-beacons-ipv4", "zgossip_discovery_beacons_ipv4_total", Counter, "Discovery datagrams received over IPv4."),
        ("discovery-beacons-ipv6", "zgossip_discovery_beacons_ipv6_total", Counter, "Discovery datagrams received over IPv6."),
        ("discovery-family-switches", "zgossip_discovery_family_switches_total", Counter, "Peers heard over both families taken from their IPv6 address to their IPv4 one (DISCOVER ipv6=both)."),
        ("store-loaded", "zgossip_store_loaded_total", Counter, "Records loaded from the data directory."),
        ("store-expired-on-load", "zgossip_store_expired_on_load_total", Counter, "Records whose time to live ran out while the node was down."),
        ("store-records-written", "zgossip_store_records_written_total", Counter, "Records written to the data directory."),
        ("store-bytes-written", "zgossip_store_written_bytes_total", Counter, "Bytes written to the data directory."),
        ("store-fsyncs", "zgossip_store_fsyncs_total", Counter, "Times the data file was forced to disk."),
        ("store-compactions", "zgossip_store_compactions_total", Counter, "Compactions of the data file."),
        ("store-torn-tails", "zgossip_store_torn_tails_total", Counter, "Torn or damaged tails cut from the data file on load."),
        ("store-write-errors", "zgossip_store_write_errors_total", Counter, "Writes or syncs of the data directory that failed."),
    ]
};

/// The text for `METRICS`: every `STATS` counter (`stats`, as `STATS`
/// gives them), the engine's links and its propagation delay histogram.
pub(crate) fn exposition<'a>(
    stats: impl IntoIterator<Item = (&'a str, u64)>,
    engine: &Engine,
) -> String {
    let mut t = Text::default();
    for (name, value) in stats {
        t.stat(name, value);
    }
    t.delay(engine.delay_histogram());
    t.links(&engine.links());
    t.out
}

#[derive(Default)]
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(help, &mut self.out);
        let _ = writeln!(self.out, "\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_label_value(v, &mut self.out);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        self.out.push_str(value);
        self.out.push('\n');
    }

    /// One `STATS` counter; a name the table lacks becomes an untyped
    /// metric of its own (nothing is left out).
    fn stat(&mut self, stat: &str, value: u64) {
        let Some(&(_, name, kind, help)) = STATS_METRICS.iter().find(|m| m.0 == stat) else {
            let name = format!(
                "zgossip_{}",
                stat.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            );
            self.family(&name, "untyped", &format!("STATS {stat}."));
            self.sample(&name, &[], &value.to_string());
            return;
        };
        let help = format!("{help} (STATS {stat})");
        match kind {
            Kind::Counter => {
                self.family(name, "counter", &help);
                self.sample(name, &[], &value.to_string());
            }
            Kind::Gauge => {
                self.family(name, "gauge", &help);
                self.sample(name, &[], &value.to_string());
            }
            Kind::GaugeMs => {
                self.family(name, "gauge", &help);
                self.sample(name, &[], &seconds(value));
            }
            Kind::Info(label) => {
                self.family(name, "gauge", &help);
                self.sample(name, &[(label, &value.to_string())], "1");
            }
        }
    }

    fn delay(&mut self, h: &DelayHistogram) {
        const NAME: &str = "zgossip_propagation_delay_seconds";
        self.family(
            NAME,
            "histogram",
            "Time from a write's version stamp (the wall clock of the node that made it) to \
             its arrival here, for every write applied from a ZGP/2 peer. Clock skew between \
             the nodes adds to it or takes from it.",
        );
        let bucket = format!("{NAME}_bucket");
        for (le, n) in h.cumulative() {
            let le = le.map_or_else(|| "+Inf".to_string(), seconds);
            self.sample(&bucket, &[("le", &le)], &n.to_string());
        }
        self.sample(&format!("{NAME}_sum"), &[], &seconds(h.sum_ms));
        self.sample(&format!("{NAME}_count"), &[], &h.count.to_string());
        const CLAMPED: &str = "zgossip_propagation_delay_clamped_total";
        self.family(
            CLAMPED,
            "counter",
            "Writes stamped later than their arrival here (the writer's clock ahead of ours), \
             counted in the histogram as a delay of 0.",
        );
        self.sample(CLAMPED, &[], &h.clamped.to_string());
    }

    fn links(&mut self, links: &[LinkInfo]) {
        type Get = fn(&LinkInfo) -> Option<String>;
        let families: [(&str, &str, &str, Get); 7] = [
            ("zgossip_link_frames_in_total", "counter", "ZGP frames received on the link since its handshake.", |l| {
                Some(l.traffic.frames_in.to_string())
            }),
            ("zgossip_link_frames_out_total", "counter", "ZGP frames queued for the link since its handshake.", |l| {
                Some(l.traffic.frames_out.to_string())
            }),
            ("zgossip_link_bytes_in_total", "counter", "Bytes read from the link (handshake included).", |l| {
                Some(l.traffic.bytes_in.to_string())
            }),
            ("zgossip_link_bytes_out_total", "counter", "Bytes of ZMTP frames handed to the link since its handshake (before any CURVE encryption).", |l| {
                Some(l.traffic.bytes_out.to_string())
            }),
            ("zgossip_link_backlog_bytes", "gauge", "Bytes waiting to be sent on the link.", |l| {
                Some(l.backlog_bytes.to_string())
            }),
            ("zgossip_link_rtt_seconds", "gauge", "Last round trip measured on the link (PING to PONG; links this node dialled).", |l| {
                l.rtt_ms.map(seconds)
            }),
            ("zgossip_link_eager", "gauge", "1 if the broadcast tree pushes writes on the link, 0 if it announces them (tree links only).", |l| {
                l.eager.map(|e| u8::from(e).to_string())
            }),
        ];
        for (name, kind, help, get) in families {
            self.family(name, kind, help);
            for l in links {
                let Some(v) = get(l) else { continue };
                let conn = l.conn.to_string();
                let peer_id = l.peer_id.map(|id| id.to_string()).unwrap_or_default();
                let role = if l.inbound { "inbound" } else { "outbound" };
                let labels = [
                    ("conn", conn.as_str()),
                    ("role", role),
                    ("peer", l.endpoint.as_str()),
                    ("peer_id", peer_id.as_str()),
                ];
                self.sample(name, &labels, &v);
            }
        }
    }
}

/// Milliseconds as a decimal number of seconds, exactly (`2500` is
/// `2.5`).
fn seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        return s.to_string();
    }
    let f = format!("{frac:03}");
    format!("{s}.{}", f.trim_end_matches('0'))
}

/// A label value as the format wants it: backslash, double quote and line
/// feed escaped (`\\`, `\"`, `\n`); anything else as it is.
pub(crate) fn escape_label_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: backslash and line feed escaped.
fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Now, Settings, Traffic};

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut s = String::new();
        escape_label_value("tcp://a\"b\\c\nd}", &mut s);
        assert_eq!(s, r#"tcp://a\"b\\c\nd}"#);
        let mut h = String::new();
        escape_help("a\\b\nc\"", &mut h);
        assert_eq!(h, "a\\\\b\\nc\"");
    }

    #[test]
    fn seconds_are_exact() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(1), "0.001");
        assert_eq!(seconds(2_500), "2.5");
        assert_eq!(seconds(60_000), "60");
        assert_eq!(seconds(1_010), "1.01");
    }

    /// Every name STATS gives has its metric (the discovery counters are
    /// checked by name: they need a running beacon).
    #[test]
    fn every_stats_counter_has_a_metric() {
        let e = Engine::new("e", 1, Settings::default());
        let store = crate::control::reply::store_counters(&Default::default());
        let names = crate::control::reply::engine_counters(&e)
            .into_iter()
            .chain(crate::control::reply::overlay_counters(&e))
            .chain(store)
            .chain(crate::control::reply::seed_counters(&e))
            .chain(crate::reactor::dns::DnsSeeds::new(1).counters())
            .chain(crate::control::access::Access::default().counters(0))
            .map(|(n, _)| n)
            .chain([
                "replies-pending",
                "replies-coalesced",
                "handoff-reads",
                "cluster-refused",
                "bytes-in",
                "bytes-out",
                "discovery-answers",
                "discovery-other-cluster",
                "discovery-peers",
                "discovery-beacons",
                "discovery-rejected",
                "discovery-ignored-plain",
                "discovery-ignored-curve",
                "discovery-not-allowed",
                "discovery-dials",
                "discovery-refused",
                "mdns-announced",
                "mdns-found",
                "mdns-ignored",
                "mdns-removed",
                "mdns-services",
                "discovery-beacons-ipv4",
                "discovery-beacons-ipv6",
                "discovery-family-switches",
            ]);
        for n in names {
            assert!(
                STATS_METRICS.iter().any(|m| m.0 == n),
                "no metric for STATS {n}"
            );
        }
        for (i, m) in STATS_METRICS.iter().enumerate() {
            assert!(m.1.starts_with("zgossip_"));
            assert!(m.1.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            assert_eq!(m.2 == Kind::Counter, m.1.ends_with("_total"), "{}", m.1);
            assert!(
                !STATS_METRICS[..i].iter().any(|o| o.1 == m.1),
                "{} twice",
                m.1
            );
        }
    }

    #[test]
    fn the_text_has_help_type_and_samples() {
        let mut e = Engine::new("e", 1, Settings::default());
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_700_000_000_000,
        };
        e.publish("a", "1", None, now);
        let stats = crate::control::reply::engine_counters(&e)
            .into_iter()
            .chain(crate::control::reply::overlay_counters(&e))
            .chain([("bytes-out", 42), ("some-new-counter", 3)]);
        let text = exposition(stats, &e);
        assert!(text.contains(
            "# HELP zgossip_tuples Live tuples held. (STATS tuples)\n\
             # TYPE zgossip_tuples gauge\nzgossip_tuples 1\n"
        ));
        assert!(
            text.contains("# TYPE zgossip_frames_out_total counter\nzgossip_frames_out_total 0\n")
        );
        assert!(text.contains("\nzgossip_bytes_out_total 42\n"));
        assert!(text.contains("\nzgossip_overlay_anchor_info{anchor=\"1\"} 1\n"));
        assert!(text.contains("\nzgossip_tree_graft_timeout_seconds "));
        assert!(
            text.contains("# TYPE zgossip_some_new_counter untyped\nzgossip_some_new_counter 3\n")
        );
        assert!(text.contains("# TYPE zgossip_propagation_delay_seconds histogram\n"));
        assert!(text.contains("zgossip_propagation_delay_seconds_bucket{le=\"0.001\"} 0\n"));
        assert!(text.contains("zgossip_propagation_delay_seconds_bucket{le=\"+Inf\"} 0\n"));
        assert!(text.contains("zgossip_propagation_delay_seconds_count 0\n"));
        assert!(text.contains("# TYPE zgossip_link_backlog_bytes gauge\n"));
        assert!(text.ends_with('\n'));
        // Every line a comment or `name[{labels}] value`.
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn links_are_labelled_and_escaped() {
        let mut t = Text::default();
        t.links(&[LinkInfo {
            conn: 7,
            inbound: false,
            endpoint: "tcp://evil\"} 1\nzgossip_fake 2".into(),
            peer_id: Some(99),
            traffic: Traffic {
                frames_in: 1,
                frames_out: 2,
                bytes_in: 3,
                bytes_out: 4,
            },
            backlog_bytes: 5,
            rtt_ms: Some(1_500),
            eager: Some(true),
        }]);
        let labels =
            r#"{conn="7",role="outbound",peer="tcp://evil\"} 1\nzgossip_fake 2",peer_id="99"}"#;
        for (name, v) in [
            ("zgossip_link_frames_in_total", "1"),
            ("zgossip_link_frames_out_total", "2"),
            ("zgossip_link_bytes_in_total", "3"),
            ("zgossip_link_bytes_out_total", "4"),
            ("zgossip_link_backlog_bytes", "5"),
            ("zgossip_link_rtt_seconds", "1.5"),
            ("zgossip_link_eager", "1"),
        ] {
            assert!(
                t.out.contains(&format!("\n{name}{labels} {v}\n")),
                "{name}:\n{}",
                t.out
            );
        }
        assert!(!t.out.lines().any(|l| l.starts_with("zgossip_fake")));
    }
}
