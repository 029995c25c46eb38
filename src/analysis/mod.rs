//! Analysis stage: receives flow events from every shard, classifies
//! their direction against `home_net`, feeds the shared baselines, routes
//! each event to the partition that owns its internal host, runs the
//! detectors and passes records and alerts on to the writer.
//!
//! Partitions ([`partition`]): internal hosts are hashed to
//! `general.partitions` partitions, each with its own instance of every
//! detector; partitions are dealt to lanes, one lane per analysis thread.
//! The analysis thread plans each batch once ([`Analyzer::plan`]: direction,
//! shared-baseline view, partition, ticks and snapshot points), every lane
//! runs its partitions through the same steps ([`Lane::run`]), and
//! [`Analyzer::merge`] puts the results back in event order: per event its
//! record, the alerts of its partition, its tick's alerts (by partition), a
//! snapshot. Since an event's alerts come from one partition, and what a
//! partition sees does not depend on the others, the output is the same for
//! any number of partitions and threads (while no detector cap is reached).

pub mod partition;

pub use partition::{Lane, Partition};

use crate::alert::Alert;
use crate::baseline::{Baseline, BaselineConfig, DestView};
use crate::config::Config;
use crate::detect::{BuildEnv, Detector, SnapshotError};
use crate::flow::event::FlowEvent;
use crate::homenet::{Direction, HomeNet};
use crate::sink::Out;
use crate::time::Ts;

/// What the analysis does at one event of a batch, decided once for every
/// lane (see [`Analyzer::plan`]): each lane then runs its own partitions
/// through the same steps, so lanes need no clock of their own and agree on
/// every tick and snapshot.
#[derive(Clone, Debug)]
pub struct Step {
    /// Direction of a flow event (`End`, `Burst`, `Progress`).
    dir: Direction,
    /// Whether the detectors see the event at all.
    feed: bool,
    /// The partition the event belongs to.
    part: u32,
    /// The shared baseline's view of the event's remote side.
    dest: Option<DestView>,
    /// A DNS query's client is an internal resolver.
    client_is_resolver: bool,
    /// Packet time the detectors are ticked to after the event (`None`: no tick).
    tick: Option<Ts>,
    /// A state snapshot is due after the event.
    snap: bool,
}

/// A lane's results for one batch: alerts tagged (event index, phase: 0
/// from the event's handlers, 1 from the tick after it, partition) and
/// snapshot sections by event index, so that lanes run apart merge into
/// one order.
#[derive(Default)]
pub struct LaneOut {
    alerts: Vec<(u32, u8, u32, Alert)>,
    snaps: Vec<(u32, Sections)>,
}

pub type Sections = Vec<(String, Vec<u8>)>;

/// The state file of `sections` (sorted by name: the same file for any
/// lane layout), saved at packet time `at`.
fn snapshot(at: Ts, mut sections: Sections) -> Out {
    sections.sort_by(|a, b| a.0.cmp(&b.0));
    Out::State(crate::state::encode(&crate::state::Envelope {
        saved_at: at,
        sections,
    }))
}

/// An event's direction against `home_net` and whether the detectors (and
/// the shared baseline) see it.
#[must_use]
pub fn classify(home: &HomeNet, ev: &FlowEvent) -> (Direction, bool) {
    match ev {
        FlowEvent::End(r) => (home.direction(r.src_ip, r.dest_ip), true),
        FlowEvent::Burst(b) => {
            let dir = home.direction(b.src_ip, b.dest_ip);
            (dir, dir == Direction::Outbound)
        }
        FlowEvent::Progress(p) => {
            let dir = home.direction(p.src_ip, p.dest_ip);
            (dir, matches!(dir, Direction::Outbound | Direction::Inbound))
        }
        FlowEvent::DnsQuery(q) => (Direction::Internal, home.contains(q.client)),
        FlowEvent::DnsAnswer(_) => (Direction::Internal, true),
    }
}

pub struct Analyzer {
    /// Snapshot detector state every this much packet time (`None`: never).
    pub state_every: Option<Ts>,
    last_state: Ts,
    home: HomeNet,
    baseline: Baseline,
    partitions: usize,
    /// The lanes this thread runs itself (all of them unless some were
    /// handed to helper threads by [`Self::split_off`]).
    lanes: Vec<Lane>,
    plan: Vec<Step>,
    outs: Vec<LaneOut>,
    pub flows_seen: u64,
    /// Whether flow records go on to the writer (`--flows`); if not, they
    /// are dropped here, after the detectors have seen them.
    pub keep_flows: bool,
    clock: Ts,
    /// The baseline's state sizes, published from the analysis thread.
    baseline_state: crate::metrics::StatePublisher,
}

impl Analyzer {
    /// An analyzer over `parts` (partition `k` at index `k`), all in one lane.
    #[must_use]
    pub fn new(
        home: HomeNet,
        baseline: &BaselineConfig,
        parts: Vec<Vec<Box<dyn Detector>>>,
    ) -> Self {
        let n = parts.len().max(1);
        let baseline = Baseline::new(baseline);
        let mut baseline_state = crate::metrics::StatePublisher::default();
        baseline_state.publish("baseline", Baseline::STATE_KINDS, &baseline.state_counts());
        let parts = parts
            .into_iter()
            .enumerate()
            .map(|(k, detectors)| Partition {
                index: u32::try_from(k).unwrap_or(u32::MAX),
                detectors,
            })
            .collect();
        Self {
            state_every: None,
            last_state: i64::MIN,
            home,
            baseline,
            partitions: n,
            lanes: vec![Lane::new(0, parts, n)],
            plan: Vec::new(),
            outs: Vec::new(),
            flows_seen: 0,
            keep_flows: true,
            clock: i64::MIN,
            baseline_state,
        }
    }

    /// Publishes the baseline's state counts (at most once a second unless `now`).
    fn publish_baseline(&mut self, now: bool) {
        if self.baseline_state.due() || now {
            self.baseline_state.publish(
                "baseline",
                Baseline::STATE_KINDS,
                &self.baseline.state_counts(),
            );
        }
    }

    /// The analyzer of a configuration: `general.partitions` partitions of
    /// every enabled detector.
    #[must_use]
    pub fn from_config(cfg: &Config) -> Self {
        let n = cfg.partitions.max(1);
        let parts = (0..n)
            .map(|k| {
                cfg.detectors.build(&BuildEnv {
                    home_net: cfg.home_net.clone(),
                    partitions: n,
                    partition: k,
                })
            })
            .collect();
        Self::new(cfg.home_net.clone(), &cfg.baseline, parts)
    }

    /// Deals the partitions to `n` lanes (partition `k` to lane `k % n`),
    /// keeps the first and hands back the others, to be run by helper
    /// threads through [`Lane::run`] on the batches and steps this analyzer
    /// plans.
    pub fn split_off(&mut self, n: usize) -> Vec<Lane> {
        for l in &mut self.lanes {
            l.retract_state();
        }
        let mut all: Vec<Partition> = self
            .lanes
            .iter_mut()
            .flat_map(|l| std::mem::take(&mut l.parts))
            .collect();
        all.sort_by_key(|p| p.index);
        let n = n.clamp(1, all.len().max(1));
        let mut groups: Vec<Vec<Partition>> = (0..n).map(|_| Vec::new()).collect();
        for p in all {
            let g = p.index as usize % n;
            if let Some(v) = groups.get_mut(g) {
                v.push(p);
            }
        }
        let mut lanes = groups
            .into_iter()
            .enumerate()
            .map(|(id, g)| Lane::new(id, g, self.partitions));
        self.lanes = lanes.next().into_iter().collect();
        lanes.collect()
    }

    /// Splits the partitions into `n` lanes as [`Self::split_off`] does but
    /// keeps them all on this thread (the same output as one lane); false
    /// if there are fewer than two.
    pub fn split_local(&mut self, n: usize) -> bool {
        let more = self.split_off(n);
        let split = !more.is_empty();
        self.lanes.extend(more);
        split
    }

    /// Takes this thread's last lane away (to run it on another thread);
    /// `None` if only one is left.
    pub fn pop_lane(&mut self) -> Option<Lane> {
        if self.lanes.len() > 1 {
            self.lanes.pop()
        } else {
            None
        }
    }

    /// Takes a lane back as this thread's last (one [`Self::pop_lane`] took).
    pub fn push_lane(&mut self, lane: Lane) {
        self.lanes.push(lane);
    }

    /// Prepares a batch: classifies each flow event's direction against
    /// `home_net` (stored in `End` records), decides which events the
    /// detectors see, feeds the shared baselines, routes each event to its
    /// partition and decides where ticks and snapshots fall.
    pub fn plan(&mut self, evs: &mut [FlowEvent]) -> Vec<Step> {
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        for ev in evs.iter_mut() {
            let (dir, feed) = classify(&self.home, ev);
            let ts = match ev {
                FlowEvent::End(r) => {
                    r.direction = dir;
                    self.flows_seen += 1;
                    Some(r.end)
                }
                FlowEvent::Burst(b) => Some(b.end),
                FlowEvent::Progress(p) => Some(p.ts),
                FlowEvent::DnsQuery(_) | FlowEvent::DnsAnswer(_) => None,
            };
            let (dest, client_is_resolver) = if feed {
                self.baseline.observe(ev, dir, &self.home)
            } else {
                (None, false)
            };
            let part = partition::route(ev, dir, self.partitions);
            let (tick, snap) = ts.map_or((None, false), |ts| self.advance(ts));
            plan.push(Step {
                dir,
                feed,
                part,
                dest,
                client_is_resolver,
                tick,
                snap,
            });
        }
        self.publish_baseline(false);
        plan
    }

    /// Packet time moved on: detectors with windows get a tick (at most once
    /// a second), and maybe a snapshot is due.
    fn advance(&mut self, ts: Ts) -> (Option<Ts>, bool) {
        if ts < self.clock.saturating_add(crate::time::SEC) {
            return (None, false);
        }
        self.clock = ts;
        let mut snap = false;
        if let Some(every) = self.state_every {
            if self.last_state == i64::MIN {
                self.last_state = ts;
            } else if ts - self.last_state >= every {
                self.last_state = ts;
                snap = true;
            }
        }
        (Some(ts), snap)
    }

    /// Runs this thread's lanes through a planned batch, into `outs[0..]`.
    pub fn run_lanes(&mut self, evs: &[FlowEvent], plan: &[Step]) {
        self.outs.resize_with(self.lanes.len(), LaneOut::default);
        for (lane, o) in self.lanes.iter_mut().zip(&mut self.outs) {
            lane.run(evs, plan, o);
        }
    }

    /// The baseline's snapshot section.
    fn baseline_section(&self) -> (String, Vec<u8>) {
        (crate::baseline::SECTION.to_owned(), self.baseline.save())
    }

    /// Merges this thread's lanes' results with `more` (helper lanes) into
    /// `out`, in event order: per event, its flow record (`--flows`), its
    /// partition's alerts, its tick's alerts by partition, a snapshot.
    /// Takes the records out of `evs`, leaving it empty.
    pub fn merge(
        &mut self,
        evs: &mut Vec<FlowEvent>,
        plan: &[Step],
        more: &mut [LaneOut],
        out: &mut Vec<Out>,
    ) {
        let quiet = |l: &LaneOut| l.alerts.is_empty() && l.snaps.is_empty();
        if !self.keep_flows && self.outs.iter().chain(more.iter()).all(quiet) {
            // most batches: no alert, no snapshot, no records to pass on
            evs.clear();
            return;
        }
        let mut outs = std::mem::take(&mut self.outs);
        // every alert of the batch in event order: (event, phase, partition),
        // a stable sort keeping each partition's own order
        let mut alerts: Vec<(u32, u8, u32, Alert)> = outs
            .iter_mut()
            .chain(more.iter_mut())
            .flat_map(|l| l.alerts.drain(..))
            .collect();
        alerts.sort_by_key(|a| (a.0, a.1, a.2));
        let mut alerts = alerts.into_iter().peekable();
        let mut snaps: Vec<(u32, Sections)> = outs
            .iter_mut()
            .chain(more.iter_mut())
            .flat_map(|l| l.snaps.drain(..))
            .collect();
        snaps.sort_by_key(|s| s.0);
        let mut snaps = snaps.into_iter().peekable();
        {
            // records move out only when they go on (`--flows`)
            let mut records = self.keep_flows.then(|| evs.drain(..));
            for (i, st) in plan.iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                if let Some(FlowEvent::End(r)) = records.as_mut().and_then(Iterator::next) {
                    out.push(Out::Flow(Box::new(r)));
                }
                while let Some((.., a)) = alerts.next_if(|a| a.0 == i) {
                    out.push(Out::Alert(Box::new(a)));
                }
                if st.snap {
                    let mut sections: Sections = vec![self.baseline_section()];
                    while let Some((_, s)) = snaps.next_if(|s| s.0 == i) {
                        sections.extend(s);
                    }
                    out.push(snapshot(st.tick.unwrap_or(self.clock), sections));
                }
            }
        }
        evs.clear();
        self.outs = outs;
    }

    /// Gives back the steps [`Self::plan`] made, for reuse.
    pub fn recycle_plan(&mut self, plan: Vec<Step>) {
        self.plan = plan;
    }

    /// Plans, runs and merges a batch on this thread (no helper lanes).
    pub fn on_batch(&mut self, evs: &mut Vec<FlowEvent>, out: &mut Vec<Out>) {
        let plan = self.plan(evs);
        self.run_lanes(evs, &plan);
        self.merge(evs, &plan, &mut [], out);
        self.plan = plan;
    }

    /// End of input on this thread's lanes; `more` the helper lanes' last
    /// results and (if snapshots are on) their sections.
    pub fn finish_with(&mut self, more: Vec<(LaneOut, Sections)>, out: &mut Vec<Out>) {
        self.publish_baseline(true);
        let mut sections = Vec::new();
        if self.state_every.is_some() {
            sections.push(self.baseline_section());
        }
        let mut alerts = Vec::new();
        for lane in &mut self.lanes {
            let mut o = LaneOut::default();
            lane.finish(&mut o);
            alerts.extend(o.alerts);
            if self.state_every.is_some() {
                sections.extend(lane.sections());
            }
        }
        for (o, s) in more {
            alerts.extend(o.alerts);
            sections.extend(s);
        }
        alerts.sort_by_key(|a| a.2);
        out.extend(alerts.into_iter().map(|(.., a)| Out::Alert(Box::new(a))));
        if self.state_every.is_some() {
            out.push(snapshot(self.clock, sections));
        }
    }

    /// End of input (no helper lanes).
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        self.finish_with(Vec::new(), out);
    }

    /// This thread's lanes' state counts, by detector.
    #[must_use]
    pub fn state_counts(&self) -> Vec<(&'static str, Vec<u64>)> {
        let mut all = Vec::new();
        for l in &self.lanes {
            for (name, c) in l.state_counts() {
                partition::add_counts(&mut all, name, &c);
            }
        }
        all
    }

    /// The exit summary's state lines: the baseline's, then each detector's
    /// over every partition (`more`: the helper lanes' counts).
    #[must_use]
    pub fn state_summary(&self, more: &[(&'static str, Vec<u64>)]) -> Vec<String> {
        let mut all = self.state_counts();
        for (name, c) in more {
            partition::add_counts(&mut all, name, c);
        }
        let mut lines = vec![self.baseline.summary()];
        for (name, c) in &all {
            if let Some(line) = self
                .lanes
                .iter()
                .find_map(|l| l.detector(name))
                .and_then(|d| d.state_line(c))
            {
                lines.push(line);
            }
        }
        lines
    }

    /// Loads a snapshot: the baseline, and the partitions' detector sections
    /// when the file has this analyzer's partition count (before
    /// [`Self::split_off`]).
    pub fn restore(&mut self, env: crate::state::Envelope, from: &std::path::Path) {
        self.restore_with(env, from, false);
    }

    /// Loads one partition's snapshot saved by another process (a bus
    /// worker taking a partition over): its detector sections, and its
    /// baseline added to this one ([`Baseline::merge`]) instead of replacing it.
    pub fn restore_merging(&mut self, env: crate::state::Envelope, from: &std::path::Path) {
        self.restore_with(env, from, true);
    }

    /// The baseline, for a bus worker's site-wide sightings.
    pub fn baseline_mut(&mut self) -> &mut Baseline {
        &mut self.baseline
    }

    /// Partition `p`'s detector sections and the baseline's, as a state
    /// file's envelope (a bus worker's per-partition snapshot).
    pub fn partition_snapshot(&mut self, p: u32) -> crate::state::Envelope {
        let mut sections = vec![self.baseline_section()];
        let of = self.partitions;
        for l in &mut self.lanes {
            for part in l.parts.iter_mut().filter(|x| x.index == p) {
                part.sections(of, &mut sections);
            }
        }
        crate::state::Envelope {
            saved_at: self.clock,
            sections,
        }
    }

    fn restore_with(&mut self, env: crate::state::Envelope, from: &std::path::Path, merge: bool) {
        // partitions restored, by detector name
        let mut restored: Vec<(&'static str, usize)> = Vec::new();
        let mut other_layout = 0usize;
        for (name, bytes) in &env.sections {
            if name == crate::baseline::SECTION {
                let r = if merge {
                    self.baseline.merge(bytes)
                } else {
                    self.baseline.load(bytes)
                };
                if let Err(e) = r {
                    tracing::warn!(
                        "state {}: baseline section unreadable ({e}); it starts fresh",
                        from.display()
                    );
                }
                continue;
            }
            let mut it = name.split('/');
            let (Some(det), Some(Ok(part)), Some(Ok(of)), None) = (
                it.next(),
                it.next().map(str::parse::<u32>),
                it.next().map(str::parse::<usize>),
                it.next(),
            ) else {
                tracing::info!(
                    "state {}: section {name:?} not known; ignored",
                    from.display()
                );
                continue;
            };
            if of != self.partitions {
                other_layout += 1;
                continue;
            }
            let found = self
                .lanes
                .iter_mut()
                .flat_map(|l| l.parts.iter_mut())
                .filter(|p| p.index == part)
                .flat_map(|p| p.detectors.iter_mut())
                .find(|d| d.name() == det);
            let Some(d) = found else {
                tracing::info!("state {}: {det} is not enabled; ignored", from.display());
                continue;
            };
            let (version, body) = bytes.split_at(bytes.len().min(4));
            let mut v = [0u8; 4];
            v[..version.len()].copy_from_slice(version);
            let version = u32::from_le_bytes(v);
            let r = if version == d.snapshot_version() {
                d.load(body)
            } else {
                Err(SnapshotError::Version {
                    found: version,
                    expected: d.snapshot_version(),
                })
            };
            match r {
                Ok(()) => match restored.iter_mut().find(|(n, _)| *n == d.name()) {
                    Some((_, k)) => *k += 1,
                    None => restored.push((d.name(), 1)),
                },
                Err(e) => tracing::warn!(
                    "state {}: {name} unreadable ({e}); it starts fresh",
                    from.display()
                ),
            }
        }
        if other_layout > 0 {
            tracing::warn!(
                "state {}: {other_layout} detector sections were saved with another partition count (general.partitions is {}); detector state starts fresh",
                from.display(),
                self.partitions
            );
        }
        // a snapshot taken before any packet has no packet time to show
        let at = if env.saved_at == i64::MIN {
            "before any packet".to_owned()
        } else {
            format!("saved at {}", crate::time::rfc3339(env.saved_at))
        };
        for (name, parts) in restored {
            tracing::info!(
                "state {}: {name} restored ({parts} partitions, {at})",
                from.display()
            );
        }
        self.last_state = self.last_state.max(env.saved_at);
        self.clock = self.clock.max(env.saved_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;
    use crate::flow::event::ProgressEvent;

    /// Alerts on some progress events and on every tick; state = its name
    /// and how many events it saw.
    struct Fake {
        name: &'static str,
        every: u64,
        seen: u64,
    }

    impl Fake {
        fn alert(&self, what: String) -> Alert {
            Alert {
                ts: 0,
                src_ip: [10, 0, 0, 1].into(),
                src_port: None,
                dest_ip: [8, 8, 8, 8].into(),
                dest_port: None,
                proto: 6,
                community_id: None,
                flow_id: None,
                detector: self.name,
                signature: what,
                signature_id: 1,
                category: "test",
                severity: Severity::Low,
                score: 0.1,
                evidence: serde_json::Map::new(),
            }
        }
    }

    impl Detector for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn on_progress(
            &mut self,
            p: &ProgressEvent,
            _cx: &crate::detect::EventCtx<'_>,
            out: &mut Vec<Alert>,
        ) {
            self.seen += 1;
            if p.flow_id.is_multiple_of(self.every) {
                out.push(self.alert(format!("flow {}", p.flow_id)));
            }
        }
        fn on_tick(&mut self, now: Ts, out: &mut Vec<Alert>) {
            out.push(self.alert(format!("tick {now}")));
        }
        fn finish(&mut self, out: &mut Vec<Alert>) {
            out.push(self.alert("finish".into()));
        }
        fn save(&mut self) -> Option<Vec<u8>> {
            Some(format!("{} {}", self.name, self.seen).into_bytes())
        }
    }

    fn analyzer(partitions: usize) -> Analyzer {
        let fakes = || -> Vec<Box<dyn Detector>> {
            ["a", "b", "c"]
                .iter()
                .zip([2, 3, 5])
                .map(|(name, every)| {
                    Box::new(Fake {
                        name,
                        every,
                        seen: 0,
                    }) as Box<dyn Detector>
                })
                .collect()
        };
        let parts = (0..partitions).map(|_| fakes()).collect();
        let mut an = Analyzer::new(HomeNet::default_nets(), &BaselineConfig::default(), parts);
        an.state_every = Some(2 * crate::time::SEC);
        an
    }

    fn batch(from: u64) -> Vec<FlowEvent> {
        (from..from + 40)
            .map(|i| {
                FlowEvent::Progress(ProgressEvent {
                    // 0.6 s apart: a tick every other event, a snapshot every few
                    ts: i64::try_from(i).unwrap() * 600_000_000,
                    start: 0,
                    flow_id: i,
                    src_ip: [10, 0, 0, u8::try_from(i % 7).unwrap()].into(),
                    src_port: 1000,
                    dest_ip: [8, 8, 8, 8].into(),
                    dest_port: 443,
                    proto: 6,
                    delta: [1, 1],
                    name: None,
                })
            })
            .collect()
    }

    fn show(out: &[Out]) -> Vec<String> {
        out.iter()
            .map(|o| match o {
                Out::Flow(r) => format!("flow {}", r.flow_id),
                Out::Alert(a) => format!("{} {}", a.detector, a.signature),
                Out::State(b) => format!("state {b:?}"),
            })
            .collect()
    }

    /// Events of one host go to one partition, the same for every run.
    #[test]
    fn hosts_route_to_stable_partitions() {
        let ip: std::net::IpAddr = [10, 1, 2, 3].into();
        assert_eq!(partition::of_host(ip, 16), partition::of_host(ip, 16));
        assert!(partition::of_host(ip, 16) < 16);
        assert_eq!(partition::of_host(ip, 1), 0);
        let mut seen = [0usize; 4];
        for i in 0..=255u8 {
            seen[partition::of_host([10, 0, 0, i].into(), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 32), "{seen:?}");
    }

    /// Lanes run apart (here one after the other, as the helper threads
    /// would) merge into the single lane's output, ticks, snapshots and the
    /// end included.
    #[test]
    fn lanes_merge_into_the_order_of_one_lane() {
        let mut one = analyzer(5);
        let mut want = Vec::new();
        for b in [0, 40, 80] {
            one.on_batch(&mut batch(b), &mut want);
        }
        one.finish(&mut want);
        assert!(want.iter().any(|o| matches!(o, Out::State(_))));
        for n in [2, 3, 7] {
            let mut an = analyzer(5);
            let mut helpers = an.split_off(n);
            assert_eq!(helpers.len(), n.min(5) - 1);
            let mut got = Vec::new();
            for b in [0, 40, 80] {
                let mut evs = batch(b);
                let plan = an.plan(&mut evs);
                let mut more: Vec<LaneOut> = helpers
                    .iter_mut()
                    .map(|h| {
                        let mut o = LaneOut::default();
                        h.run(&evs, &plan, &mut o);
                        o
                    })
                    .collect();
                an.run_lanes(&evs, &plan);
                an.merge(&mut evs, &plan, &mut more, &mut got);
                an.recycle_plan(plan);
            }
            let ends = helpers
                .iter_mut()
                .map(|h| {
                    let mut o = LaneOut::default();
                    h.finish(&mut o);
                    (o, h.sections())
                })
                .collect();
            an.finish_with(ends, &mut got);
            let (g, w) = (show(&got), show(&want));
            let first = g.iter().zip(&w).position(|(a, b)| a != b);
            assert!(
                first.is_none() && g.len() == w.len(),
                "{n} lanes: first difference at {first:?}: {:?} vs {:?} (lengths {} {})",
                first.and_then(|i| g.get(i)).map(|s| &s[..s.len().min(60)]),
                first.and_then(|i| w.get(i)).map(|s| &s[..s.len().min(60)]),
                g.len(),
                w.len()
            );
        }
    }
}
