//! Analysis stage: a thread that receives flow events from every shard,
//! classifies direction against `home_net`, feeds the detectors and passes
//! records and alerts to the writer.
//!
//! The detectors may be split into lanes ([`Analyzer::split_off`]) that run
//! on helper threads: the analysis thread plans each batch once
//! ([`Analyzer::plan`]: directions, which events the detectors see, ticks
//! and snapshot points), every lane runs its detectors through the same
//! steps ([`Lane::run`]), and [`Analyzer::merge`] puts the results back in
//! the order one lane gives: per event its record, its handlers' alerts in
//! detector order, its tick's alerts, a snapshot.

use crate::alert::Alert;
use crate::flow::record::FlowRecord;
use crate::flow::table::{BurstEvent, DnsAnswer, DnsQuery, FlowEvent, ProgressEvent};
use crate::homenet::Direction;
use crate::homenet::HomeNet;
use crate::sink::Out;
use crate::time::Ts;

/// A detector: fed per flow event (never per packet), emits alerts.
pub trait Detector: Send {
    fn name(&self) -> &'static str;
    /// A flow ended.
    fn on_flow(&mut self, _r: &FlowRecord, _out: &mut Vec<Alert>) {}
    /// A burst of activity inside a long-lived flow ended (see [`BurstEvent`]).
    fn on_burst(&mut self, _b: &BurstEvent, _out: &mut Vec<Alert>) {}
    /// A flow moved more payload (outbound or inbound flows only; `dir` from its originator).
    fn on_progress(&mut self, _p: &ProgressEvent, _dir: Direction, _out: &mut Vec<Alert>) {}
    /// A host sent a DNS query.
    fn on_dns_query(&mut self, _q: &DnsQuery, _out: &mut Vec<Alert>) {}
    /// A host received DNS answers.
    fn on_dns(&mut self, _d: &DnsAnswer, _out: &mut Vec<Alert>) {}
    /// Packet time advanced to `now`.
    fn on_tick(&mut self, _now: Ts, _out: &mut Vec<Alert>) {}
    /// End of input: last chance to report.
    fn finish(&mut self, _out: &mut Vec<Alert>) {}
    /// One line on the state the detector holds (entries, evictions), for
    /// the exit summary: evictions mean a cap was reached and series lost.
    fn state_summary(&self) -> Option<String> {
        None
    }
    /// Serialised state for a snapshot (`None`: nothing to keep).
    fn save(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Restores a snapshot taken by `save`.
    ///
    /// # Errors
    /// The snapshot does not decode.
    fn load(&mut self, _bytes: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// What the analysis does at one event of a batch, decided once for every
/// lane (see [`Analyzer::plan`]): each lane then runs its own detectors
/// through the same steps, so lanes need no clock of their own and agree on
/// every tick and snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Direction of a flow event (`End`, `Burst`, `Progress`).
    dir: Direction,
    /// Whether the detectors see the event at all.
    feed: bool,
    /// Packet time the detectors are ticked to after the event (`None`: no tick).
    tick: Option<Ts>,
    /// A state snapshot is due after the event.
    snap: bool,
}

/// A lane's results for one batch: alerts tagged (event index, phase: 0
/// from the event's handlers, 1 from the tick after it) and snapshot
/// sections by event index, so that lanes run apart merge into the order a
/// single lane gives.
#[derive(Default)]
pub struct LaneOut {
    alerts: Vec<(u32, u8, Alert)>,
    snaps: Vec<(u32, Sections)>,
}

type Sections = Vec<(String, Vec<u8>)>;

/// The state file of every lane's `sections`, saved at packet time `at`.
fn snapshot(at: Ts, sections: Sections) -> Out {
    Out::State(crate::state::encode(&crate::state::Envelope {
        saved_at: at,
        sections,
    }))
}

/// A group of detectors, run by the analysis thread itself or by a helper
/// thread of its own (`general.analysis_threads`).
pub struct Lane {
    detectors: Vec<Box<dyn Detector>>,
    scratch: Vec<Alert>,
}

impl Lane {
    fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        Self {
            detectors,
            scratch: Vec::new(),
        }
    }

    /// Runs this lane's detectors through a batch.
    pub fn run(&mut self, evs: &[FlowEvent], plan: &[Step], out: &mut LaneOut) {
        for (i, (ev, st)) in evs.iter().zip(plan).enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            if st.feed {
                for d in &mut self.detectors {
                    match ev {
                        FlowEvent::End(r) => d.on_flow(r, &mut self.scratch),
                        FlowEvent::Burst(b) => d.on_burst(b, &mut self.scratch),
                        FlowEvent::Progress(p) => d.on_progress(p, st.dir, &mut self.scratch),
                        FlowEvent::DnsQuery(q) => d.on_dns_query(q, &mut self.scratch),
                        FlowEvent::DnsAnswer(a) => d.on_dns(a, &mut self.scratch),
                    }
                }
                out.alerts.extend(self.scratch.drain(..).map(|a| (i, 0, a)));
            }
            if let Some(ts) = st.tick {
                for d in &mut self.detectors {
                    d.on_tick(ts, &mut self.scratch);
                }
                out.alerts.extend(self.scratch.drain(..).map(|a| (i, 1, a)));
            }
            if st.snap {
                out.snaps.push((i, self.sections()));
            }
        }
    }

    /// End of input: the detectors' last reports (tagged as event `u32::MAX`).
    pub fn finish(&mut self, out: &mut LaneOut) {
        for d in &mut self.detectors {
            d.finish(&mut self.scratch);
        }
        out.alerts
            .extend(self.scratch.drain(..).map(|a| (u32::MAX, 0, a)));
    }

    /// The detectors' serialised state, by detector name.
    pub fn sections(&mut self) -> Sections {
        self.detectors
            .iter_mut()
            .filter_map(|d| d.save().map(|b| (d.name().to_owned(), b)))
            .collect()
    }

    /// Each detector's [`Detector::state_summary`].
    #[must_use]
    pub fn state_summary(&self) -> Vec<String> {
        self.detectors
            .iter()
            .filter_map(|d| d.state_summary())
            .collect()
    }
}

pub struct Analyzer {
    /// Snapshot detector state every this much packet time (`None`: never).
    pub state_every: Option<Ts>,
    last_state: Ts,
    home: HomeNet,
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
}

impl Analyzer {
    #[must_use]
    pub fn new(home: HomeNet, detectors: Vec<Box<dyn Detector>>) -> Self {
        Self {
            state_every: None,
            last_state: i64::MIN,
            home,
            lanes: vec![Lane::new(detectors)],
            plan: Vec::new(),
            outs: Vec::new(),
            flows_seen: 0,
            keep_flows: true,
            clock: i64::MIN,
        }
    }

    /// Splits the detectors into up to `n` lanes, keeping their order
    /// (lane 0 the first detectors), and hands back every lane but the
    /// first, to be run by helper threads through [`Lane::run`] on the
    /// batches and steps this analyzer plans. The first detector gets a
    /// lane of its own (the beacon detector, when enabled, costs about as
    /// much as the others together).
    pub fn split_off(&mut self, n: usize) -> Vec<Lane> {
        let mut all: Vec<Box<dyn Detector>> = self
            .lanes
            .iter_mut()
            .flat_map(|l| std::mem::take(&mut l.detectors))
            .collect();
        let n = n.clamp(1, all.len().max(1));
        // the other lanes share what the first leaves, in order
        let mut tail = if n > 1 { all.split_off(1) } else { Vec::new() }.into_iter();
        let per = tail.len().div_ceil((n - 1).max(1));
        self.lanes = vec![Lane::new(all)];
        let mut rest = Vec::new();
        while tail.len() > 0 {
            rest.push(Lane::new(tail.by_ref().take(per).collect()));
        }
        rest
    }

    /// Splits the detectors into `n` lanes as [`Self::split_off`] does but
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
    /// detectors see, and where ticks and snapshots fall.
    pub fn plan(&mut self, evs: &mut [FlowEvent]) -> Vec<Step> {
        let mut plan = std::mem::take(&mut self.plan);
        plan.clear();
        for ev in evs.iter_mut() {
            let (dir, feed, ts) = match ev {
                FlowEvent::End(r) => {
                    r.direction = self.home.direction(r.src_ip, r.dest_ip);
                    self.flows_seen += 1;
                    (r.direction, true, Some(r.end))
                }
                FlowEvent::Burst(b) => {
                    let dir = self.home.direction(b.src_ip, b.dest_ip);
                    (dir, dir == Direction::Outbound, Some(b.end))
                }
                FlowEvent::Progress(p) => {
                    let dir = self.home.direction(p.src_ip, p.dest_ip);
                    (
                        dir,
                        matches!(dir, Direction::Outbound | Direction::Inbound),
                        Some(p.ts),
                    )
                }
                FlowEvent::DnsQuery(q) => (Direction::Internal, self.home.contains(q.client), None),
                FlowEvent::DnsAnswer(_) => (Direction::Internal, true, None),
            };
            let (tick, snap) = ts.map_or((None, false), |ts| self.advance(ts));
            plan.push(Step {
                dir,
                feed,
                tick,
                snap,
            });
        }
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

    /// Merges this thread's lanes' results with `more` (helper lanes, in
    /// lane order) into `out`, in the order a single lane gives: per event,
    /// its flow record (`--flows`), its handlers' alerts, its tick's
    /// alerts, a snapshot. Takes the records out of `evs`, leaving it empty.
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
        {
            let mut lanes: Vec<_> = outs
                .iter_mut()
                .chain(more.iter_mut())
                .map(|l| (l.alerts.drain(..).peekable(), l.snaps.drain(..).peekable()))
                .collect();
            // records move out only when they go on (`--flows`)
            let mut records = self.keep_flows.then(|| evs.drain(..));
            for (i, st) in plan.iter().enumerate() {
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                if let Some(FlowEvent::End(r)) = records.as_mut().and_then(Iterator::next) {
                    out.push(Out::Flow(Box::new(r)));
                }
                for phase in 0..2u8 {
                    for (alerts, _) in &mut lanes {
                        while let Some((_, _, a)) =
                            alerts.next_if(|(j, ph, _)| (*j, *ph) == (i, phase))
                        {
                            out.push(Out::Alert(Box::new(a)));
                        }
                    }
                }
                if st.snap {
                    let sections = lanes
                        .iter_mut()
                        .filter_map(|(_, snaps)| snaps.next_if(|(j, _)| *j == i))
                        .flat_map(|(_, s)| s)
                        .collect();
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
    /// results and (if snapshots are on) their sections, in lane order.
    pub fn finish_with(&mut self, more: Vec<(LaneOut, Sections)>, out: &mut Vec<Out>) {
        let mut sections = Vec::new();
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
        out.extend(alerts.into_iter().map(|(_, _, a)| Out::Alert(Box::new(a))));
        if self.state_every.is_some() {
            out.push(snapshot(self.clock, sections));
        }
    }

    /// End of input (no helper lanes).
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        self.finish_with(Vec::new(), out);
    }

    /// Each detector's [`Detector::state_summary`] (this thread's lanes).
    #[must_use]
    pub fn state_summary(&self) -> Vec<String> {
        self.lanes.iter().flat_map(Lane::state_summary).collect()
    }

    /// Loads a snapshot into the detectors it names (before [`Self::split_off`]).
    pub fn restore(&mut self, env: crate::state::Envelope, from: &std::path::Path) {
        for (name, bytes) in &env.sections {
            let found = self
                .lanes
                .iter_mut()
                .flat_map(|l| l.detectors.iter_mut())
                .find(|d| d.name() == name);
            match found {
                Some(d) => match d.load(bytes) {
                    Ok(()) => tracing::info!(
                        "state {}: {name} restored (saved at {})",
                        from.display(),
                        crate::time::rfc3339(env.saved_at)
                    ),
                    Err(e) => tracing::warn!(
                        "state {}: {name} section unreadable ({e}); it starts fresh",
                        from.display()
                    ),
                },
                None => tracing::info!("state {}: {name} is not enabled; ignored", from.display()),
            }
        }
        self.last_state = env.saved_at;
        self.clock = self.clock.max(env.saved_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Severity;

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
        fn on_progress(&mut self, p: &ProgressEvent, _dir: Direction, out: &mut Vec<Alert>) {
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

    fn analyzer() -> Analyzer {
        let d: Vec<Box<dyn Detector>> = ["a", "b", "c"]
            .iter()
            .zip([2, 3, 5])
            .map(|(name, every)| {
                Box::new(Fake {
                    name,
                    every,
                    seen: 0,
                }) as Box<dyn Detector>
            })
            .collect();
        let mut an = Analyzer::new(HomeNet::default_nets(), d);
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
                    src_ip: [10, 0, 0, 1].into(),
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

    /// Lanes run apart (here one after the other, as the helper threads
    /// would) merge into the single lane's output, ticks, snapshots and the
    /// end included.
    #[test]
    fn lanes_merge_into_the_order_of_one_lane() {
        let mut one = analyzer();
        let mut want = Vec::new();
        for b in [0, 40, 80] {
            one.on_batch(&mut batch(b), &mut want);
        }
        one.finish(&mut want);
        assert!(want.iter().any(|o| matches!(o, Out::State(_))));
        for n in [2, 3, 7] {
            let mut an = analyzer();
            let mut helpers = an.split_off(n);
            assert_eq!(helpers.len(), n.min(3) - 1);
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
            assert_eq!(show(&got), show(&want), "{n} lanes");
        }
    }
}
