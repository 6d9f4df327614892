//! mDNS / DNS-SD for `DISCOVER mdns=1`: the node's service registered
//! with the `mdns-sd` daemon, and the others browsed for. The daemon runs
//! a thread of its own; a small bridge thread takes its browse events,
//! copies what the node needs (bounded) and posts them on a channel,
//! waking the node, so the event loop never waits on it. The record's
//! format and the reading of services heard are `dnssd.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

use super::dnssd::{self, Record, Service, SERVICE_TYPE};
use crate::error::{Error, Result};

/// Services held at once (those resolved and not removed); more are
/// ignored and counted.
pub(crate) const MAX_SERVICES: usize = 1024;
/// Events the bridge holds for the node; beyond, they are dropped and
/// counted (the daemon itself ends a browse whose channel fills).
const BRIDGE_CAPACITY: usize = 1024;
/// Addresses copied from one service.
const MAX_ADDRESSES: usize = 16;
/// Longest TXT key copied (longer keys are no key of ours).
const MAX_TXT_KEY: usize = 64;

/// What the bridge hands the node.
#[derive(Debug)]
pub(crate) enum Event {
    Resolved(Service),
    Removed(String),
}

/// Counters for `STATS` and `METRICS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MdnsStats {
    /// Registrations of the node's service (at start, and again when its
    /// key, cluster or port changed).
    pub announced: u64,
    /// Services resolved that read as peers (the node's own included).
    pub found: u64,
    /// Services whose record is garbage (or beyond the limits): never
    /// dialled.
    pub ignored: u64,
    /// Services that said goodbye or expired.
    pub removed: u64,
}

/// The node's mDNS daemon, its service and the services it heard.
pub(crate) struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
    record: Record,
    events: Receiver<Event>,
    /// Events the bridge dropped (the node lagging).
    dropped: Arc<AtomicU64>,
    /// Live services by full name (not the node's own).
    live: HashMap<String, Service>,
    pub stats: MdnsStats,
}

impl Mdns {
    /// Starts the daemon on `interface` (a name; `None`: every
    /// interface), IPv6 too when `ipv6`, registers `record` and browses
    /// for `_zgossip._tcp`. `wake` is called from the bridge thread when
    /// events wait.
    pub(crate) fn start(
        record: Record,
        interface: Option<&str>,
        ipv6: bool,
        wake: Box<dyn Fn() + Send>,
    ) -> Result<Mdns> {
        let fail = |what: &str, e: mdns_sd::Error| {
            Error::command(format!("DISCOVER mdns=1: cannot {what}: {e}"))
        };
        let daemon = ServiceDaemon::new().map_err(|e| fail("start the mDNS daemon", e))?;
        if let Some(name) = interface {
            daemon
                .disable_interface(IfKind::All)
                .and_then(|_| daemon.enable_interface(IfKind::Name(name.to_string())))
                .map_err(|e| fail("choose the interface", e))?;
        }
        if !ipv6 {
            daemon
                .disable_interface(IfKind::IPv6)
                .map_err(|e| fail("choose the interface", e))?;
        }
        let browse = daemon.browse(SERVICE_TYPE).map_err(|e| fail("browse", e))?;
        let (tx, events) = mpsc::sync_channel(BRIDGE_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("zgossip-mdns".into())
            .spawn(move || bridge(browse, tx, counted, wake))
            .map_err(|e| Error::io("DISCOVER mdns=1: cannot start a thread", e))?;
        let mut m = Mdns {
            daemon,
            fullname: String::new(),
            record: record.clone(),
            events,
            dropped,
            live: HashMap::new(),
            stats: MdnsStats::default(),
        };
        m.register(record)?;
        Ok(m)
    }

    /// Announces `record` from now on (a new key, cluster or port);
    /// nothing when it did not change.
    pub(crate) fn announce(&mut self, record: Record) -> Result<()> {
        if record == self.record {
            return Ok(());
        }
        if record.instance != self.record.instance {
            let _ = self.daemon.unregister(&self.fullname);
        }
        self.register(record)
    }

    fn register(&mut self, record: Record) -> Result<()> {
        let txt: Vec<(&str, &str)> = record
            .txt
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            &record.instance,
            &record.host,
            "",
            record.port,
            &txt[..],
        )
        .map_err(|e| Error::command(format!("DISCOVER mdns=1: bad service record: {e}")))?
        .enable_addr_auto();
        self.fullname = info.get_fullname().to_string();
        self.daemon
            .register(info)
            .map_err(|e| Error::command(format!("DISCOVER mdns=1: cannot register: {e}")))?;
        self.record = record;
        self.stats.announced += 1;
        Ok(())
    }

    /// The services resolved since the last call (new, or changed), for
    /// the discovery; removed ones are forgotten here.
    pub(crate) fn take(&mut self) -> Vec<Service> {
        let mut out = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            match ev {
                Event::Resolved(s) if s.fullname.eq_ignore_ascii_case(&self.fullname) => {}
                Event::Resolved(s) => {
                    if !self.live.contains_key(&s.fullname) && self.live.len() >= MAX_SERVICES {
                        self.stats.ignored += 1;
                        continue;
                    }
                    self.live.insert(s.fullname.clone(), s.clone());
                    out.push(s);
                }
                Event::Removed(name) => {
                    if self.live.remove(&name).is_some() {
                        self.stats.removed += 1;
                    }
                }
            }
        }
        self.stats.ignored += self.dropped.swap(0, Ordering::Relaxed);
        out
    }

    /// A service read as garbage: not kept, counted.
    pub(crate) fn reject(&mut self, fullname: &str) {
        self.live.remove(fullname);
        self.stats.ignored += 1;
    }

    /// The services alive now (heard, not removed), to refresh the
    /// discovery's peers as beacons would.
    pub(crate) fn live(&self) -> impl Iterator<Item = &Service> {
        self.live.values()
    }

    /// `STATS` counters, in order.
    pub(crate) fn counters(&self) -> [(&'static str, u64); 5] {
        [
            ("mdns-announced", self.stats.announced),
            ("mdns-found", self.stats.found),
            ("mdns-ignored", self.stats.ignored),
            ("mdns-removed", self.stats.removed),
            ("mdns-services", self.live.len() as u64),
        ]
    }
}

impl Drop for Mdns {
    /// Says goodbye (the service unregistered) and stops the daemon,
    /// without waiting: the daemon's thread sends the goodbye and ends,
    /// which ends the bridge.
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// The bridge thread: the daemon's browse events in, bounded copies out.
fn bridge(
    browse: mdns_sd::Receiver<ServiceEvent>,
    tx: SyncSender<Event>,
    dropped: Arc<AtomicU64>,
    wake: Box<dyn Fn() + Send>,
) {
    while let Ok(ev) = browse.recv() {
        let event = match ev {
            ServiceEvent::ServiceResolved(s) => Event::Resolved(service_of(&s)),
            ServiceEvent::ServiceRemoved(_, name) => Event::Removed(name),
            ServiceEvent::SearchStopped(_) => break,
            _ => continue,
        };
        match tx.try_send(event) {
            Ok(()) => wake(),
            Err(TrySendError::Full(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
                wake();
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
}

/// What the node keeps of a resolved service: bounded in addresses and
/// keys (the reading rejects a service with too many keys).
fn service_of(s: &mdns_sd::ResolvedService) -> Service {
    let mut addresses: Vec<IpAddr> = s.addresses.iter().map(|a| a.to_ip_addr()).collect();
    addresses.sort();
    addresses.truncate(MAX_ADDRESSES);
    let txt = s
        .txt_properties
        .iter()
        .take(dnssd::MAX_TXT_KEYS + 1)
        .map(|p| {
            let key: String = p.key().chars().take(MAX_TXT_KEY).collect();
            (key, p.val().map(<[u8]>::to_vec))
        })
        .collect();
    Service {
        fullname: s.fullname.clone(),
        port: s.port,
        addresses,
        txt,
    }
}
