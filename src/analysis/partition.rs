//! Analysis partitions: internal hosts are hashed to a fixed number of
//! partitions, each owning its hosts' detector state; a lane (a thread's
//! share) runs some of them through every planned batch.

use super::{LaneOut, Sections, Step};
use crate::alert::Alert;
use crate::detect::{Detector, EventCtx};
use crate::flow::event::FlowEvent;
use crate::homenet::Direction;
use std::net::IpAddr;

/// The partition of an internal host among `n`: a stable hash (FNV-1a of
/// the address), the same in every process and every run.
#[must_use]
pub fn of_host(ip: IpAddr, n: usize) -> u32 {
    let h = match ip {
        IpAddr::V4(a) => crate::fnv1a(a.octets()),
        IpAddr::V6(a) => crate::fnv1a(a.octets()),
    };
    of_hash(h, n)
}

/// The partition of a stable 64-bit key among `n`.
#[must_use]
pub fn of_hash(h: u64, n: usize) -> u32 {
    u32::try_from(h % (n.max(1) as u64)).unwrap_or(0)
}

/// Where an event goes: the partition of its internal host (the originator
/// of an outbound or internal flow, the responder of an inbound one; the
/// client of a DNS answer), or for a DNS query the partition of the
/// registered domain it asks about, since the DNS tunnel detector keeps its
/// state per domain (all clients of a tunnel in one place).
#[must_use]
pub fn route(ev: &FlowEvent, dir: Direction, n: usize) -> u32 {
    let host = |src: IpAddr, dest: IpAddr| {
        if dir == Direction::Inbound { dest } else { src }
    };
    match ev {
        FlowEvent::End(r) => of_host(host(r.src_ip, r.dest_ip), n),
        FlowEvent::Burst(b) => of_host(host(b.src_ip, b.dest_ip), n),
        FlowEvent::Progress(p) => of_host(host(p.src_ip, p.dest_ip), n),
        FlowEvent::DnsAnswer(a) => of_host(a.client, n),
        FlowEvent::DnsQuery(q) => {
            let name = q.name.trim_end_matches('.');
            let key = crate::detect::dns_tunnel::registered_domain(name).unwrap_or(name);
            of_hash(crate::fnv1a(key.bytes().map(|b| b.to_ascii_lowercase())), n)
        }
    }
}

/// One partition: an instance of every enabled detector, for its hosts.
pub struct Partition {
    pub index: u32,
    pub detectors: Vec<Box<dyn Detector>>,
}

impl Partition {
    /// Feeds one event to every detector.
    fn feed(&mut self, ev: &FlowEvent, st: &Step, out: &mut Vec<Alert>) {
        let cx = EventCtx {
            dir: st.dir,
            dest: st.dest.as_ref(),
            client_is_resolver: st.client_is_resolver,
        };
        for d in &mut self.detectors {
            match ev {
                FlowEvent::End(r) => d.on_flow(r, &cx, out),
                FlowEvent::Burst(b) => d.on_burst(b, &cx, out),
                FlowEvent::Progress(p) => d.on_progress(p, &cx, out),
                FlowEvent::DnsQuery(q) => d.on_dns_query(q, &cx, out),
                FlowEvent::DnsAnswer(a) => d.on_dns(a, &cx, out),
            }
        }
    }

    /// The detectors' serialised state: sections named
    /// `detector/partition/partitions`, each the detector's snapshot version
    /// (u32, little-endian) then its bytes.
    pub(super) fn sections(&mut self, of: usize, into: &mut Sections) {
        for d in &mut self.detectors {
            if let Some(b) = d.save() {
                let mut v = d.snapshot_version().to_le_bytes().to_vec();
                v.extend_from_slice(&b);
                into.push((format!("{}/{}/{of}", d.name(), self.index), v));
            }
        }
    }
}

/// The partitions one thread runs.
pub struct Lane {
    pub(super) parts: Vec<Partition>,
    /// `slot[p]`: index in `parts` of partition `p`, if this lane has it.
    slot: Vec<Option<usize>>,
    /// Partitions in all.
    of: usize,
    scratch: Vec<Alert>,
    metrics: Box<LaneMetrics>,
}

/// A lane's metrics.
struct LaneMetrics {
    /// `deguchi_analysis_events_total` and `..._alerts_total` of this lane.
    events: prometheus_client::metrics::counter::Counter,
    alerts: prometheus_client::metrics::counter::Counter,
    /// The detectors' state sizes, published from the thread running the lane.
    state: crate::metrics::StatePublisher,
}

impl Lane {
    /// Lane `id` of the partitions `parts` (of `of` in all).
    pub(super) fn new(id: usize, parts: Vec<Partition>, of: usize) -> Self {
        let mut slot = vec![None; of];
        for (i, p) in parts.iter().enumerate() {
            if let Some(s) = slot.get_mut(p.index as usize) {
                *s = Some(i);
            }
        }
        let m = crate::metrics::m();
        let l = crate::metrics::LaneLabel {
            lane: id.to_string(),
        };
        let mut lane = Self {
            parts,
            slot,
            of,
            scratch: Vec::new(),
            metrics: Box::new(LaneMetrics {
                events: m.lane_events.get_or_create_owned(&l),
                alerts: m.lane_alerts.get_or_create_owned(&l),
                state: crate::metrics::StatePublisher::default(),
            }),
        };
        lane.publish_state();
        lane
    }

    /// Publishes the state counts of this lane's detectors (see
    /// [`crate::metrics::StatePublisher`]).
    pub fn publish_state(&mut self) {
        let kinds: Vec<(&'static str, &'static [crate::metrics::StateKind])> = self
            .parts
            .first()
            .map(|p| {
                p.detectors
                    .iter()
                    .map(|d| (d.name(), d.state_kinds()))
                    .collect()
            })
            .unwrap_or_default();
        for (name, counts) in self.state_counts() {
            if let Some((_, k)) = kinds.iter().find(|(n, _)| *n == name) {
                self.metrics.state.publish(name, k, &counts);
            }
        }
    }

    /// Takes back what [`Self::publish_state`] published (the partitions
    /// move to other lanes).
    pub(super) fn retract_state(&mut self) {
        self.metrics.state.retract();
    }

    /// Runs this lane's partitions through a batch: each event goes to the
    /// partition the plan routed it to, if it is this lane's.
    pub fn run(&mut self, evs: &[FlowEvent], plan: &[Step], out: &mut LaneOut) {
        let (mut fed, alerts0) = (0u64, out.alerts.len());
        for (i, (ev, st)) in evs.iter().zip(plan).enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if st.feed
                && let Some(&Some(k)) = self.slot.get(st.part as usize)
                && let Some(p) = self.parts.get_mut(k)
            {
                p.feed(ev, st, &mut self.scratch);
                fed += 1;
                out.alerts
                    .extend(self.scratch.drain(..).map(|a| (i, 0, st.part, a)));
            }
            if let Some(ts) = st.tick {
                for p in &mut self.parts {
                    for d in &mut p.detectors {
                        d.on_tick(ts, &mut self.scratch);
                    }
                    out.alerts
                        .extend(self.scratch.drain(..).map(|a| (i, 1, p.index, a)));
                }
            }
            if st.snap {
                out.snaps.push((i, self.sections()));
            }
        }
        // per batch: two atomic adds; the state counts once a second
        self.metrics.events.inc_by(fed);
        self.metrics
            .alerts
            .inc_by(out.alerts.len().saturating_sub(alerts0) as u64);
        if self.metrics.state.due() {
            self.publish_state();
        }
    }

    /// End of input: the detectors' last reports (tagged as event `u32::MAX`).
    pub fn finish(&mut self, out: &mut LaneOut) {
        for p in &mut self.parts {
            for d in &mut p.detectors {
                d.finish(&mut self.scratch);
            }
            self.metrics.alerts.inc_by(self.scratch.len() as u64);
            out.alerts
                .extend(self.scratch.drain(..).map(|a| (u32::MAX, 0, p.index, a)));
        }
        self.publish_state();
    }

    /// Every partition's serialised state.
    pub fn sections(&mut self) -> Sections {
        let mut v = Vec::new();
        for p in &mut self.parts {
            p.sections(self.of, &mut v);
        }
        v
    }

    /// Each detector's [`Detector::state_counts`], summed over this
    /// lane's partitions, by detector name (registry order).
    #[must_use]
    pub fn state_counts(&self) -> Vec<(&'static str, Vec<u64>)> {
        let mut all: Vec<(&'static str, Vec<u64>)> = Vec::new();
        for p in &self.parts {
            for d in &p.detectors {
                add_counts(&mut all, d.name(), &d.state_counts());
            }
        }
        all
    }

    /// A detector instance named `name`, to format a summary line.
    pub(super) fn detector(&self, name: &str) -> Option<&dyn Detector> {
        self.parts
            .iter()
            .flat_map(|p| p.detectors.iter())
            .find(|d| d.name() == name)
            .map(|d| &**d)
    }
}

/// Adds `counts` to `name`'s sums in `all`.
pub(super) fn add_counts(
    all: &mut Vec<(&'static str, Vec<u64>)>,
    name: &'static str,
    counts: &[u64],
) {
    match all.iter_mut().find(|(n, _)| *n == name) {
        Some((_, sum)) => {
            for (s, c) in sum.iter_mut().zip(counts) {
                *s += c;
            }
        }
        None => all.push((name, counts.to_vec())),
    }
}
