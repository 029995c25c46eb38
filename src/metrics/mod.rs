//! Run-time counters: Prometheus metrics (`--metrics ADDR:PORT` serves
//! `/metrics`) and the EVE `stats` events (`output.stats_interval`).
//!
//! One process-wide set ([`m`]) of `prometheus-client` counters, which are
//! plain atomics: the capture thread publishes its totals per batch, each
//! flow shard the change of its counters per batch ([`ShardDelta`]), the
//! writer its lines, alerts and errors as it writes them. Reading them (a
//! scrape, a stats event) never stops the pipeline.

use crate::decode::{DecodeCounters, DecodeError};
use crate::flow::table::TableCounters;
use crate::time::Ts;

mod http;

pub use http::serve;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropBy {
    /// `kernel` (buffer full) or `interface`.
    pub by: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertLabels {
    pub detector: &'static str,
    pub severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThreadLabel {
    /// The thread's name: `capture` (the main thread), `shard-N`,
    /// `analysis`, `analysis-N`, `writer`, `output`, `syslog`, `metrics`.
    pub thread: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputLabel {
    pub output: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// `capture`, `shard-N`, `analysis`, `writer`.
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    pub shard: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    /// The analysis lane (a share of the partitions run by one thread).
    pub lane: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// `capture->shard-N`, `shard->analysis`, `analysis->writer`, or an
    /// output's name for its own queue.
    pub queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// A detector's name, or `baseline`.
    pub detector: &'static str,
    /// What is kept: `series`, `hosts`, `pairs`, `domains`, `destinations`, ...
    pub state: &'static str,
}

/// Every counter deguchi keeps for metrics and stats events.
pub struct Metrics {
    pub packets: Counter,
    pub bytes: Counter,
    pub decoded: Counter,
    pub undecoded: Family<Reason, Counter>,
    pub capture_dropped: Family<DropBy, Counter>,
    pub shed: Counter,
    /// Packets dropped as SPAN duplicates (`capture.dedup_window_ms`).
    pub duplicates: Counter,
    pub flows_active: Gauge,
    pub flows_ended: Counter,
    pub flows_evicted: Counter,
    pub emergencies: Counter,
    pub alerts: Family<AlertLabels, Counter>,
    pub lines: Family<OutputLabel, Counter>,
    pub lines_dropped: Family<OutputLabel, Counter>,
    pub write_errors: Family<OutputLabel, Counter>,
    /// Lines waiting in a queued output's queue (syslog).
    pub queued: Family<OutputLabel, Gauge>,
    /// Batches handled by each stage thread.
    pub stage_batches: Family<StageLabel, Counter>,
    /// Packets each flow shard took from its queue.
    pub shard_packets: Family<ShardLabel, Counter>,
    /// Flow events each flow shard emitted.
    pub shard_events: Family<ShardLabel, Counter>,
    /// Events fed to the detectors of each analysis lane.
    pub lane_events: Family<LaneLabel, Counter>,
    /// Alerts the detectors of each analysis lane raised.
    pub lane_alerts: Family<LaneLabel, Counter>,
    /// Items waiting in each bounded queue between stages, and its size.
    pub queue_depth: Family<QueueLabel, Gauge>,
    pub queue_capacity: Family<QueueLabel, Gauge>,
    /// Entries of detector (and baseline) state, and evictions for caps.
    pub state_entries: Family<StateLabels, Gauge>,
    pub state_evictions: Family<StateLabels, Counter>,
    /// The bus (see [`crate::bus`]): a sensor's publishing, a worker's
    /// consuming.
    pub bus: BusMetrics,
    /// Packet clock (nanoseconds; `i64::MIN` before the first packet).
    pub clock: AtomicI64,
    /// Alerts written, all detectors.
    alerts_all: AtomicU64,
    /// Kernel totals as last read from libpcap (they are absolute).
    kernel: [AtomicU64; 3],
    /// CPU seconds per pipeline thread, read from /proc at each scrape.
    thread_cpu: Family<ThreadLabel, Counter<f64, AtomicU64>>,
    /// The process's CPU seconds and resident memory, read at each scrape.
    process_cpu: Counter<f64, AtomicU64>,
    process_rss: Gauge,
    registry: Registry,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics.
#[must_use]
/// The bus's metrics (`deguchi_bus_*`).
#[derive(Default)]
pub struct BusMetrics {
    pub published_events: Counter,
    pub published_batches: Counter,
    pub published_bytes: Counter,
    pub resent_batches: Counter,
    pub shed_events: Counter,
    pub consumed_batches: Counter,
    pub analysed_events: Counter,
    pub redelivered_events: Counter,
    pub duplicate_alerts: Counter,
    pub generations: Counter,
    pub owned_partitions: Gauge,
    pub held_events: Gauge,
    pub lag_seconds: Gauge<f64, AtomicU64>,
}

pub fn m() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix("deguchi");
        let m = Self {
            packets: Counter::default(),
            bytes: Counter::default(),
            decoded: Counter::default(),
            undecoded: Family::default(),
            capture_dropped: Family::default(),
            shed: Counter::default(),
            duplicates: Counter::default(),
            flows_active: Gauge::default(),
            flows_ended: Counter::default(),
            flows_evicted: Counter::default(),
            emergencies: Counter::default(),
            alerts: Family::default(),
            lines: Family::default(),
            lines_dropped: Family::default(),
            write_errors: Family::default(),
            queued: Family::default(),
            stage_batches: Family::default(),
            shard_packets: Family::default(),
            shard_events: Family::default(),
            lane_events: Family::default(),
            lane_alerts: Family::default(),
            queue_depth: Family::default(),
            queue_capacity: Family::default(),
            state_entries: Family::default(),
            state_evictions: Family::default(),
            bus: BusMetrics::default(),
            clock: AtomicI64::new(i64::MIN),
            alerts_all: AtomicU64::new(0),
            kernel: Default::default(),
            thread_cpu: Family::default(),
            process_cpu: Counter::default(),
            process_rss: Gauge::default(),
            registry: Registry::default(),
        };
        // (name, help, metric): counters get `_total`, the prefix `deguchi_`
        macro_rules! register {
            ($(($name:literal, $help:literal, $metric:expr)),* $(,)?) => {
                $(r.register($name, $help, $metric.clone());)*
            };
        }
        register!(
            (
                "bus_published_events",
                "Flow events a sensor published to the bus",
                m.bus.published_events
            ),
            (
                "bus_published_batches",
                "Event batches a sensor published (one partition each)",
                m.bus.published_batches
            ),
            (
                "bus_published_bytes",
                "Bytes of event batches a sensor published",
                m.bus.published_bytes
            ),
            (
                "bus_resent_batches",
                "Batches sent again for want of an acknowledgement",
                m.bus.resent_batches
            ),
            (
                "bus_shed_events",
                "Events a live sensor gave up on while the bus was unreachable",
                m.bus.shed_events
            ),
            (
                "bus_consumed_batches",
                "Event batches a worker took from the bus",
                m.bus.consumed_batches
            ),
            (
                "bus_analysed_events",
                "Events a worker's detectors analysed",
                m.bus.analysed_events
            ),
            (
                "bus_redelivered_events",
                "Events a worker received again after a restore and skipped (already analysed)",
                m.bus.redelivered_events
            ),
            (
                "bus_duplicate_alerts",
                "Alerts a worker made that the alert stream already held (not written again)",
                m.bus.duplicate_alerts
            ),
            (
                "bus_generations",
                "Times a worker started over with a new set of partitions",
                m.bus.generations
            ),
            (
                "bus_owned_partitions",
                "Partitions this worker owns",
                m.bus.owned_partitions
            ),
            (
                "bus_held_events",
                "Events a worker holds until every sensor's and worker's watermark passes them",
                m.bus.held_events
            ),
            (
                "bus_lag_seconds",
                "Packet time between the newest event a worker received and the last it analysed",
                m.bus.lag_seconds
            ),
            (
                "packets",
                "Packets captured or read (seen by the capture thread)",
                m.packets
            ),
            ("packets_decoded", "Packets decoded to a flow", m.decoded),
            (
                "packets_undecoded",
                "Packets not decoded, by reason",
                m.undecoded
            ),
            (
                "capture_dropped_packets",
                "Packets the kernel or the interface dropped (live capture)",
                m.capture_dropped
            ),
            (
                "packets_shed",
                "Packets shed by deguchi because a flow shard was behind (live capture)",
                m.shed
            ),
            (
                "packets_duplicate",
                "Packets dropped as SPAN duplicates (capture.dedup_window_ms)",
                m.duplicates
            ),
            ("flows_active", "Flows in the flow tables", m.flows_active),
            ("flows_ended", "Flows ended", m.flows_ended),
            (
                "flows_evicted",
                "Flows ended early for the flow memory cap",
                m.flows_evicted
            ),
            (
                "flow_emergencies",
                "Times a flow table entered emergency mode",
                m.emergencies
            ),
            (
                "alerts",
                "Alerts written, by detector and severity",
                m.alerts
            ),
            ("output_lines", "Lines written, by output", m.lines),
            (
                "output_dropped_lines",
                "Lines dropped because their output could not take them, by output",
                m.lines_dropped
            ),
            (
                "output_write_errors",
                "Write errors, by output",
                m.write_errors
            ),
            (
                "output_queue_lines",
                "Lines waiting in a queued output's queue, by output",
                m.queued
            ),
            (
                "stage_batches",
                "Batches handled by each pipeline stage (capture: sent to the shards; shard-N: taken; analysis: event batches analysed; writer: output batches written)",
                m.stage_batches
            ),
            (
                "shard_packets",
                "Packets each flow shard took from its queue",
                m.shard_packets
            ),
            (
                "shard_flow_events",
                "Flow events (records, bursts, progress, DNS) each flow shard emitted",
                m.shard_events
            ),
            (
                "analysis_events",
                "Flow events fed to the detectors of each analysis lane",
                m.lane_events
            ),
            (
                "analysis_alerts",
                "Alerts raised by the detectors of each analysis lane",
                m.lane_alerts
            ),
            (
                "queue_depth",
                "Items waiting in each bounded queue between stages (batches; lines or chunks for an output's own queue)",
                m.queue_depth
            ),
            (
                "queue_capacity",
                "Items each bounded queue between stages holds at most",
                m.queue_capacity
            ),
            (
                "detector_state_entries",
                "Entries of state each detector (and the shared baseline) holds, by kind, all partitions",
                m.state_entries
            ),
            (
                "detector_state_evictions",
                "Entries of detector (and baseline) state dropped for a cap, by kind",
                m.state_evictions
            ),
            (
                "thread_cpu_seconds",
                "CPU seconds (user and system) used by each pipeline thread",
                m.thread_cpu
            ),
            (
                "process_cpu_seconds",
                "CPU seconds used by the process",
                m.process_cpu
            ),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            m.process_rss.clone(),
        );
        r.register_with_unit(
            "wire",
            "Wire bytes of the packets seen",
            Unit::Bytes,
            m.bytes.clone(),
        );
        for e in DecodeError::ALL {
            let _ = m.undecoded.get_or_create(&Reason { reason: e.as_str() });
        }
        for by in ["kernel", "interface"] {
            let _ = m.capture_dropped.get_or_create(&DropBy { by });
        }
        Self { registry: r, ..m }
    }

    /// CPU per thread and the process's CPU and memory, from /proc (Linux).
    fn read_proc(&self) {
        let mut total = 0.0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                    continue;
                };
                let Some((name, secs)) = task_cpu(&stat) else {
                    continue;
                };
                total += secs;
                // the main thread bears the program's name: it is the capture stage
                let thread = if name == "deguchi" { "capture" } else { name };
                let c = self.thread_cpu.get_or_create(&ThreadLabel {
                    thread: thread.to_owned(),
                });
                // a later thread of the same name (shards of a second run)
                // never moves the counter back
                let prev = f64::from_bits(c.inner().load(Ordering::Relaxed));
                c.inner().store(secs.max(prev).to_bits(), Ordering::Relaxed);
            }
        }
        let prev = f64::from_bits(self.process_cpu.inner().load(Ordering::Relaxed));
        self.process_cpu
            .inner()
            .store(total.max(prev).to_bits(), Ordering::Relaxed);
        let rss_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            })
            .unwrap_or(0);
        self.process_rss.set(rss_kb.saturating_mul(1024));
    }

    /// What a capture thread read since its last call: packets, wire
    /// bytes, packets shed, SPAN duplicates dropped; and its packet clock.
    pub fn capture(&self, packets: u64, bytes: u64, shed: u64, duplicates: u64, clock: Ts) {
        self.packets.inc_by(packets);
        self.bytes.inc_by(bytes);
        self.shed.inc_by(shed);
        self.duplicates.inc_by(duplicates);
        self.clock.fetch_max(clock, Ordering::Relaxed);
    }

    /// The batch counter of a stage (`capture`, `shard-N`, `analysis`, `writer`).
    #[must_use]
    pub fn stage(&self, stage: &str) -> Counter {
        self.stage_batches.get_or_create_owned(&StageLabel {
            stage: stage.to_owned(),
        })
    }

    /// The depth gauge of a bounded queue holding at most `capacity` items
    /// (its capacity gauge set). The thread that owns an end sets the depth
    /// from `len()` once per batch: atomics only, no lock.
    #[must_use]
    pub fn queue(&self, name: &str, capacity: usize) -> Gauge {
        let l = QueueLabel {
            queue: name.to_owned(),
        };
        self.queue_capacity
            .get_or_create(&l)
            .set(i64::try_from(capacity).unwrap_or(i64::MAX));
        self.queue_depth.get_or_create_owned(&l)
    }

    /// libpcap's totals: received, dropped by the kernel, by the interface.
    pub fn kernel(&self, received: u64, dropped: u64, if_dropped: u64) {
        self.kernel[0].store(received, Ordering::Relaxed);
        for (i, (by, v)) in [("kernel", dropped), ("interface", if_dropped)]
            .into_iter()
            .enumerate()
        {
            self.kernel[i + 1].store(v, Ordering::Relaxed);
            self.capture_dropped
                .get_or_create(&DropBy { by })
                .inner()
                .fetch_max(v, Ordering::Relaxed);
        }
    }

    /// One alert written.
    pub fn alert(&self, detector: &'static str, severity: &'static str) {
        self.alerts
            .get_or_create(&AlertLabels { detector, severity })
            .inc();
        self.alerts_all.fetch_add(1, Ordering::Relaxed);
    }

    /// The `/metrics` page in OpenMetrics text (what Prometheus asks for).
    #[must_use]
    pub fn encode(&self) -> String {
        self.read_proc();
        let mut s = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }

    /// The `/metrics` page in Prometheus' classic text format (0.0.4), for
    /// clients that do not ask for OpenMetrics (curl, `promtool check
    /// metrics`): a counter's `HELP` and `TYPE` name its `_total` series,
    /// and there is no `UNIT` or `EOF` line.
    #[must_use]
    pub fn encode_prometheus(&self) -> String {
        http::classic_text(&self.encode())
    }

    /// The body of an EVE `stats` event: Suricata's names where it has
    /// them; the rest for the event's `deguchi` object.
    #[must_use]
    pub fn stats(&self, uptime_s: u64) -> (serde_json::Value, serde_json::Value) {
        let c = |x: &Counter| x.get();
        let k = |i: usize| self.kernel[i].load(Ordering::Relaxed);
        let undecoded: u64 = DecodeError::ALL
            .iter()
            .map(|e| {
                self.undecoded
                    .get(&Reason { reason: e.as_str() })
                    .map_or(0, |x| x.get())
            })
            .sum();
        let alerts = self.alerts_all.load(Ordering::Relaxed);
        let active = u64::try_from(self.flows_active.get()).unwrap_or(0);
        let mut capture = serde_json::Map::new();
        if k(0) > 0 {
            capture.insert("kernel_packets".into(), k(0).into());
            capture.insert("kernel_drops".into(), k(1).into());
            capture.insert("kernel_ifdrops".into(), k(2).into());
        }
        let mut stats = serde_json::json!({
            "uptime": uptime_s,
            "decoder": {
                "pkts": c(&self.packets),
                "bytes": c(&self.bytes),
                "invalid": undecoded,
            },
            "flow": {
                "active": active,
                "total": c(&self.flows_ended) + active,
                "emerg_mode_entered": c(&self.emergencies),
            },
            "detect": { "alert": alerts },
        });
        if !capture.is_empty() {
            stats["capture"] = capture.into();
        }
        let ext = serde_json::json!({
            "packets_decoded": c(&self.decoded),
            "packets_shed": c(&self.shed),
            "packets_duplicate": c(&self.duplicates),
            "flows_ended": c(&self.flows_ended),
            "flows_evicted": c(&self.flows_evicted),
        });
        (stats, ext)
    }
}

/// What one of a detector's [`crate::detect::Detector::state_counts`] is,
/// for the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateKind {
    /// Entries held now (`deguchi_detector_state_entries{state=..}`).
    Entries(&'static str),
    /// Entries dropped for a cap so far (`deguchi_detector_state_evictions_total{state=..}`).
    Evictions(&'static str),
    /// Not published.
    Other,
}

/// A thread's name and CPU seconds from its `/proc/.../stat` line
/// (utime and stime, fields 14 and 15, in USER_HZ = 100 ticks a second).
fn task_cpu(stat: &str) -> Option<(&str, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut f = stat.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    #[allow(clippy::cast_precision_loss)]
    Some((name, (utime + stime) as f64 / 100.0))
}

/// Publishes the state counts of the detectors one thread owns (a lane's
/// partitions, the baseline) as the change since its last call, so that
/// several threads add up to the whole: called at most once a second
/// ([`Self::due`]) from the thread that owns the state, never per event.
#[derive(Default)]
pub struct StatePublisher {
    last: Vec<(&'static str, &'static [StateKind], Vec<u64>)>,
    at: Option<std::time::Instant>,
}

impl StatePublisher {
    /// How often the state is published.
    pub const EVERY: Duration = Duration::from_secs(1);

    /// Whether a publication is due (the first call: yes).
    pub fn due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self.at.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            return false;
        }
        self.at = Some(now);
        true
    }

    /// `detector`'s counts now (`kinds` says what each is).
    pub fn publish(&mut self, detector: &'static str, kinds: &'static [StateKind], counts: &[u64]) {
        let i = match self.last.iter().position(|(d, ..)| *d == detector) {
            Some(i) => i,
            None => {
                self.last.push((detector, kinds, vec![0; kinds.len()]));
                self.last.len() - 1
            }
        };
        let Some((_, _, last)) = self.last.get_mut(i) else {
            return;
        };
        let m = m();
        for ((kind, last), &now) in kinds.iter().zip(last.iter_mut()).zip(counts) {
            let l = |state| StateLabels { detector, state };
            match *kind {
                StateKind::Entries(state) => {
                    let d = i64::try_from(now).unwrap_or(i64::MAX)
                        - i64::try_from(*last).unwrap_or(i64::MAX);
                    m.state_entries.get_or_create(&l(state)).inc_by(d);
                }
                StateKind::Evictions(state) => {
                    let c = m.state_evictions.get_or_create(&l(state));
                    if now > *last {
                        c.inc_by(now - *last);
                    }
                }
                StateKind::Other => {}
            }
            *last = now;
        }
    }

    /// Takes back the entries published (the state moves to another
    /// publisher); evictions stay counted.
    pub fn retract(&mut self) {
        for (d, kinds, last) in std::mem::take(&mut self.last) {
            let zero: Vec<u64> = kinds
                .iter()
                .zip(&last)
                .map(|(k, &v)| {
                    if matches!(k, StateKind::Evictions(_)) {
                        v
                    } else {
                        0
                    }
                })
                .collect();
            self.last.push((d, kinds, last));
            self.publish(d, kinds, &zero);
        }
    }
}

/// A flow shard's counters as last published, to publish the change.
#[derive(Default)]
pub struct ShardDelta {
    decoded: u64,
    errors: [u64; DecodeError::ALL.len()],
    created: u64,
    ended: u64,
    evicted: u64,
    emergencies: u64,
}

impl ShardDelta {
    /// Adds what changed since the last call to the process-wide counters.
    pub fn publish(&mut self, decoded: u64, d: &DecodeCounters, t: &TableCounters) {
        let m = m();
        let up = |last: &mut u64, now: u64, c: &Counter| {
            if now > *last {
                c.inc_by(now - *last);
                *last = now;
            }
        };
        up(&mut self.decoded, decoded, &m.decoded);
        for (i, e) in DecodeError::ALL.iter().enumerate() {
            if let (Some(last), Some(&now)) = (self.errors.get_mut(i), d.errors.get(i))
                && now > *last
            {
                m.undecoded
                    .get_or_create(&Reason { reason: e.as_str() })
                    .inc_by(now - *last);
                *last = now;
            }
        }
        let created = t.flows_created.saturating_sub(self.created);
        let ended = t.flows_ended.saturating_sub(self.ended);
        m.flows_active
            .inc_by(i64::try_from(created).unwrap_or(i64::MAX));
        m.flows_active.dec_by(i64::try_from(ended).unwrap_or(0));
        self.created = t.flows_created;
        up(&mut self.ended, t.flows_ended, &m.flows_ended);
        up(&mut self.evicted, t.evicted, &m.flows_evicted);
        up(&mut self.emergencies, t.emergencies, &m.emergencies);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn classic_text_names_counters_by_their_total_series() {
        let om = "# HELP x_packets Packets.\n# TYPE x_packets counter\nx_packets_total 3\n\
                  # HELP x_wire Bytes.\n# TYPE x_wire counter\n# UNIT x_wire bytes\nx_wire_total 9\n\
                  # HELP x_active Active.\n# TYPE x_active gauge\nx_active 1\n# EOF\n";
        assert_eq!(
            super::http::classic_text(om),
            "# HELP x_packets_total Packets.\n# TYPE x_packets_total counter\nx_packets_total 3\n\
             # HELP x_wire_total Bytes.\n# TYPE x_wire_total counter\nx_wire_total 9\n\
             # HELP x_active Active.\n# TYPE x_active gauge\nx_active 1\n"
        );
    }

    #[test]
    fn reads_thread_cpu_from_proc_stat() {
        let stat = "1234 (shard-0) S 1 1234 1234 0 -1 4194368 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(super::task_cpu(stat), Some(("shard-0", 3.0)));
        assert_eq!(
            super::task_cpu("1 (a) b) R 0 0 0 0 0 0 0 0 0 0 7 3"),
            Some(("a) b", 0.1))
        );
        assert_eq!(super::task_cpu("garbage"), None);
        let page = super::m().encode_prometheus();
        assert!(
            page.contains("deguchi_process_cpu_seconds_total "),
            "{page}"
        );
        assert!(
            page.contains("deguchi_process_resident_memory_bytes "),
            "{page}"
        );
        assert!(
            page.contains("deguchi_thread_cpu_seconds_total{thread="),
            "{page}"
        );
    }

    #[test]
    fn state_publishers_add_up_and_take_back_their_entries() {
        use super::{StateKind, StateLabels, StatePublisher};
        const KINDS: &[StateKind] = &[
            StateKind::Entries("things"),
            StateKind::Evictions("things"),
            StateKind::Other,
        ];
        let m = super::m();
        let l = StateLabels {
            detector: "test-detector",
            state: "things",
        };
        let entries = || m.state_entries.get(&l).map_or(0, |g| g.get());
        let evicted = || m.state_evictions.get(&l).map_or(0, |c| c.get());
        let (mut a, mut b) = (StatePublisher::default(), StatePublisher::default());
        assert!(a.due() && !a.due(), "at most once a second");
        a.publish("test-detector", KINDS, &[10, 2, 99]);
        b.publish("test-detector", KINDS, &[5, 0, 7]);
        assert_eq!((entries(), evicted()), (15, 2));
        a.publish("test-detector", KINDS, &[4, 3, 99]);
        assert_eq!((entries(), evicted()), (9, 3));
        // a's partitions move elsewhere: its entries go, its evictions stay
        a.retract();
        assert_eq!((entries(), evicted()), (5, 3));
        b.publish("test-detector", KINDS, &[6, 1, 7]);
        assert_eq!((entries(), evicted()), (6, 4));
    }

    #[test]
    fn the_page_names_every_counter_with_total() {
        let page = super::m().encode_prometheus();
        for l in page.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut w = l.split(' ').skip(2);
            let (name, kind) = (w.next().unwrap_or(""), w.next().unwrap_or(""));
            assert!(name.starts_with("deguchi_"), "{l}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
        }
    }
}
