//! Replies that read the engine: `STATUS`, `GET`, `KEYS` and `STATS`.

use crate::engine::Engine;
use crate::store::Store;

/// `STATUS n`: the number of live tuples.
pub(crate) fn status(store: &Store) -> Vec<String> {
    vec!["STATUS".into(), store.len().to_string()]
}

/// `VALUE key value`, or `VALUE key` when the key is not held.
pub(crate) fn value(store: &Store, key: &str) -> Vec<String> {
    let mut reply = vec!["VALUE".to_string(), key.to_string()];
    if let Some(v) = store.value(key) {
        reply.push(v.to_string());
    }
    reply
}

/// `KEYS key...`: the live keys starting with `prefix`.
pub(crate) fn keys(store: &Store, prefix: &str) -> Vec<String> {
    let mut reply = vec!["KEYS".to_string()];
    reply.extend(
        store
            .live()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.to_string()),
    );
    reply
}

/// The engine's counters, in the order `STATS` gives them.
pub(crate) fn engine_counters(engine: &Engine) -> [(&'static str, u64); 18] {
    let st = engine.stats();
    let store = engine.store();
    [
        ("tuples", store.len() as u64),
        ("tombstones", (store.entries() - store.len()) as u64),
        ("connections", engine.connection_count() as u64),
        ("frames-in", st.frames_in),
        ("frames-out", st.frames_out),
        ("tuples-applied", st.tuples_applied),
        ("sync-tuples-out", st.sync_tuples_out),
        ("expired", st.expired),
        ("tombstones-collected", st.tombstones_collected),
        ("future-versions", st.future_versions),
        ("expired-on-arrival", st.expired_on_arrival),
        ("invalid-sent", st.invalid_sent),
        ("malformed", st.malformed),
        ("sessions-expired", st.sessions_expired),
        ("oversize-tuples", st.oversize_tuples),
        ("idle-closed", st.idle_closed),
        ("oversize-skipped", st.oversize_skipped),
        ("backlog-closed", st.backlog_closed),
    ]
}

/// The overlay's sizes and counters, for `STATS` (docs/overlay.md says
/// what each means).
pub(crate) fn overlay_counters(engine: &Engine) -> [(&'static str, u64); 39] {
    let o = engine.overlay_stats();
    let (v, t, r) = (o.views, o.tree, o.root);
    let (root, level, detached) = engine.tree_root();
    [
        ("overlay-active", o.active as u64),
        ("overlay-passive", o.passive as u64),
        ("overlay-eager", o.eager as u64),
        ("overlay-lazy", o.lazy as u64),
        ("overlay-anchor", engine.overlay_anchor()),
        ("overlay-joins", v.joins),
        ("overlay-forward-joins", v.forward_joins),
        ("overlay-neighbors-accepted", v.neighbors_accepted),
        ("overlay-neighbors-refused", v.neighbors_refused),
        ("overlay-shuffles", v.shuffles),
        ("overlay-disconnects", v.disconnects),
        ("overlay-promotions", v.promotions),
        ("overlay-evictions", v.evictions),
        ("overlay-merges", v.merges),
        ("overlay-rekeys", v.rekeys),
        ("overlay-ignored", v.ignored),
        ("tree-announced", t.announced),
        ("tree-announce-frames", t.announce_frames),
        ("tree-unannounced", t.unannounced),
        ("tree-grafted", t.grafted),
        ("tree-prunes-sent", t.prunes_sent),
        ("tree-prunes-received", t.prunes_received),
        ("tree-prunes-held", t.prunes_held),
        ("tree-repairs", t.repairs),
        ("tree-missing-dropped", t.missing_dropped),
        ("tree-graft-timeout", o.graft_timeout_ms),
        ("tree-duplicates", t.tree_duplicates),
        ("tree-root", root),
        ("tree-level", u64::from(level)),
        ("tree-detached", u64::from(detached)),
        ("tree-parent-changes", r.parent_changes),
        ("tree-root-changes", r.root_changes),
        ("tree-root-expiries", r.expiries),
        ("tree-detachments", r.detachments),
        ("tree-root-adverts-sent", r.adverts_sent),
        ("tree-root-adverts-received", r.adverts_received),
        ("tree-root-adverts-refused", r.adverts_refused),
        ("tree-root-requests-sent", r.requests_sent),
        ("tree-root-requests-answered", r.requests_answered),
    ]
}

/// What the overlay did with DNS seeds' answers, for `STATS` (after the
/// reactor's `dns-*` counters of resolutions).
pub(crate) fn seed_counters(engine: &Engine) -> [(&'static str, u64); 2] {
    let v = engine.overlay_stats().views;
    [("dns-joins", v.seed_joins), ("dns-dropped", v.seed_dropped)]
}

/// The membership's sizes and counters, for `STATS`.
pub(crate) fn membership_counters(engine: &Engine) -> [(&'static str, u64); 20] {
    let m = engine.membership_stats();
    let st = engine.stats();
    let (alive, suspect, gone) = engine.member_counts();
    [
        ("members-alive", alive as u64),
        ("members-suspect", suspect as u64),
        ("members-gone", gone as u64),
        ("members-records-in", m.records_in),
        ("members-records-out", m.records_out),
        ("members-records-stale", m.records_stale),
        ("members-records-dropped", m.records_dropped),
        ("members-records-refused", m.records_refused),
        ("members-suspicions", m.suspicions),
        ("members-suspicions-withheld", m.suspicions_withheld),
        ("members-unreachable", m.unreachable),
        ("members-refutations", m.refutations),
        ("members-failures", m.failures),
        ("members-leaves", m.leaves),
        ("members-replaced", m.replaced),
        ("members-digests-sent", m.digests_sent),
        ("members-digests-received", m.digests_received),
        ("members-stalls", m.stalls),
        ("ephemeral-deleted", st.ephemeral_deleted),
        ("ephemeral-rewritten", st.ephemeral_rewritten),
    ]
}

/// `MEMBERS`, then four frames per member, itself first: its id (16 hex
/// digits), name, state and endpoint.
pub(crate) fn members(engine: &Engine) -> Vec<String> {
    let list = engine.members();
    let mut reply = Vec::with_capacity(1 + 4 * list.len());
    reply.push("MEMBERS".to_string());
    for m in list {
        reply.push(format!("{:016x}", m.id));
        reply.push(m.name);
        reply.push(m.state.name().to_string());
        reply.push(m.endpoint);
    }
    reply
}

/// The data directory's counters, for `STATS` (all 0 without one).
pub(crate) fn store_counters(s: &crate::persist::Counters) -> [(&'static str, u64); 8] {
    [
        ("store-loaded", s.loaded),
        ("store-expired-on-load", s.expired_on_load),
        ("store-records-written", s.records_written),
        ("store-bytes-written", s.bytes_written),
        ("store-fsyncs", s.fsyncs),
        ("store-compactions", s.compactions),
        ("store-torn-tails", s.torn_tails),
        ("store-write-errors", s.write_errors),
    ]
}

/// `STATS name value ...` from counters.
pub(crate) fn stats<'a>(counters: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<String> {
    let mut reply = vec!["STATS".to_string()];
    for (name, value) in counters {
        reply.push(name.to_string());
        reply.push(value.to_string());
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Now, Settings};

    #[test]
    fn replies_read_the_store() {
        let mut e = Engine::new("e", 1, Settings::default());
        let now = Now {
            mono_ms: 0,
            wall_ms: 1_700_000_000_000,
        };
        e.publish("app/a", "1", None, now);
        e.publish("app/b", "2", None, now);
        e.publish("other", "3", None, now);
        e.unpublish("app/b", now);
        assert_eq!(status(e.store()), ["STATUS", "2"]);
        assert_eq!(value(e.store(), "app/a"), ["VALUE", "app/a", "1"]);
        assert_eq!(value(e.store(), "app/b"), ["VALUE", "app/b"]);
        assert_eq!(keys(e.store(), "app/"), ["KEYS", "app/a"]);
        let counters = engine_counters(&e);
        assert_eq!(counters[0], ("tuples", 2));
        assert_eq!(counters[1], ("tombstones", 1));
        let reply = stats(counters.into_iter().chain([("extra", 7)]));
        assert_eq!(&reply[..3], ["STATS", "tuples", "2"]);
        assert_eq!(&reply[reply.len() - 2..], ["extra", "7"]);
        assert_eq!(reply.len(), 1 + 2 * 19);
    }
}
