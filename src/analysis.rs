//! Analysis stage: one thread that receives flow events from every shard,
//! classifies direction against `home_net`, feeds the detectors and passes
//! records and alerts to the writer.

use crate::alert::Alert;
use crate::flow::record::FlowRecord;
use crate::flow::table::{BurstEvent, DnsAnswer, FlowEvent};
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
    /// A host received DNS answers.
    fn on_dns(&mut self, _d: &DnsAnswer, _out: &mut Vec<Alert>) {}
    /// Packet time advanced to `now`.
    fn on_tick(&mut self, _now: Ts, _out: &mut Vec<Alert>) {}
    /// End of input: last chance to report.
    fn finish(&mut self, _out: &mut Vec<Alert>) {}
}

pub struct Analyzer {
    home: HomeNet,
    detectors: Vec<Box<dyn Detector>>,
    alerts: Vec<Alert>,
    pub flows_seen: u64,
    clock: Ts,
}

impl Analyzer {
    #[must_use]
    pub fn new(home: HomeNet, detectors: Vec<Box<dyn Detector>>) -> Self {
        Self {
            home,
            detectors,
            alerts: Vec::new(),
            flows_seen: 0,
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
                if r.end > self.clock {
                    self.clock = r.end;
                    for d in &mut self.detectors {
                        d.on_tick(self.clock, &mut self.alerts);
                    }
                }
                out.push(Out::Flow(r));
            }
            FlowEvent::Burst(b) => {
                if self.home.direction(b.src_ip, b.dest_ip) == crate::homenet::Direction::Outbound {
                    for d in &mut self.detectors {
                        d.on_burst(&b, &mut self.alerts);
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
    }

    /// End of input.
    pub fn finish(&mut self, out: &mut Vec<Out>) {
        for d in &mut self.detectors {
            d.finish(&mut self.alerts);
        }
        out.extend(self.alerts.drain(..).map(|a| Out::Alert(Box::new(a))));
    }
}
