//! Analysis stage: one thread that receives flow events from every shard,
//! classifies direction against `home_net`, feeds the detectors and passes
//! records and alerts to the writer.

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

pub struct Analyzer {
    /// Snapshot detector state every this much packet time (`None`: never).
    pub state_every: Option<Ts>,
    last_state: Ts,
    pending_state: Option<Vec<u8>>,
    home: HomeNet,
    detectors: Vec<Box<dyn Detector>>,
    alerts: Vec<Alert>,
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
            pending_state: None,
            home,
            detectors,
            alerts: Vec::new(),
            flows_seen: 0,
            keep_flows: true,
            clock: i64::MIN,
        }
    }

    /// Handles one event from a shard; results go to `out`.
    pub fn on_event(&mut self, ev: FlowEvent, out: &mut Vec<Out>) {
        match ev {
            FlowEvent::End(mut r) => {
                r.direction = self.home.direction(r.src_ip, r.dest_ip);
                self.flows_seen += 1;
                for d in &mut self.detectors {
                    d.on_flow(&r, &mut self.alerts);
                }
                self.advance(r.end);
                if self.keep_flows {
                    out.push(Out::Flow(Box::new(r)));
                }
            }
            FlowEvent::Burst(b) => {
                if self.home.direction(b.src_ip, b.dest_ip) == crate::homenet::Direction::Outbound {
                    for d in &mut self.detectors {
                        d.on_burst(&b, &mut self.alerts);
                    }
                }
                self.advance(b.end);
            }
            FlowEvent::Progress(p) => {
                let dir = self.home.direction(p.src_ip, p.dest_ip);
                if matches!(dir, Direction::Outbound | Direction::Inbound) {
                    for d in &mut self.detectors {
                        d.on_progress(&p, dir, &mut self.alerts);
                    }
                }
                self.advance(p.ts);
            }
            FlowEvent::DnsQuery(q) => {
                if self.home.contains(q.client) {
                    for d in &mut self.detectors {
                        d.on_dns_query(&q, &mut self.alerts);
                    }
                }
            }
            FlowEvent::DnsAnswer(a) => {
                for d in &mut self.detectors {
                    d.on_dns(&a, &mut self.alerts);
                }
            }
        }
        out.extend(self.alerts.drain(..).map(|a| Out::Alert(Box::new(a))));
        if let Some(s) = self.pending_state.take() {
            out.push(Out::State(s));
        }
    }

    /// Each detector's [`Detector::state_summary`].
    #[must_use]
    pub fn state_summary(&self) -> Vec<String> {
        self.detectors
            .iter()
            .filter_map(|d| d.state_summary())
            .collect()
    }

    /// Loads a snapshot into the detectors it names.
    pub fn restore(&mut self, env: crate::state::Envelope, from: &std::path::Path) {
        for (name, bytes) in &env.sections {
            match self.detectors.iter_mut().find(|d| d.name() == name) {
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

    fn snapshot(&mut self) -> Vec<u8> {
        let sections = self
            .detectors
            .iter_mut()
            .filter_map(|d| d.save().map(|b| (d.name().to_owned(), b)))
            .collect();
        crate::state::encode(&crate::state::Envelope {
            saved_at: self.clock,
            sections,
        })
    }

    /// Packet time moved on: detectors with windows get a tick (at most once a second).
    fn advance(&mut self, ts: Ts) {
        if ts >= self.clock.saturating_add(crate::time::SEC) {
            self.clock = ts;
            for d in &mut self.detectors {
                d.on_tick(ts, &mut self.alerts);
            }
            if let Some(every) = self.state_every {
                if self.last_state == i64::MIN {
                    self.last_state = ts;
                } else if ts - self.last_state >= every {
                    self.last_state = ts;
                    self.pending_state = Some(self.snapshot());
                }
            }
        }
    }

    /// End of input.
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        for d in &mut self.detectors {
            d.finish(&mut self.alerts);
        }
        out.extend(self.alerts.drain(..).map(|a| Out::Alert(Box::new(a))));
        if self.state_every.is_some() {
            let s = self.snapshot();
            out.push(Out::State(s));
        }
    }
}
