//! Writer stage: JSON lines for alerts (stdout or a file) and flow records.
//!
//! One object per line, then `\n`; strings from the wire (SNI, Host, DNS
//! names) are JSON-escaped by serde_json, so control characters cannot forge a
//! second line. Each file/stdout output has a bounded queue and a thread of
//! its own ([`JsonLines`], which states the policy when it is full: replay
//! waits, live drops, counted). Lines are handed over whenever the input
//! channel runs dry, so a live alert never waits in a buffer. A write error
//! (full disk, closed stdout) is returned as an error naming the output; it
//! never panics.

use crate::alert::Alert;
use crate::flow::record::FlowRecord;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod lines;

pub use lines::{JsonLines, QueuePolicy};

/// What the writer receives.
#[derive(Debug)]
pub enum Out {
    Flow(Box<FlowRecord>),
    Alert(Box<Alert>),
    /// A detector-state snapshot to write atomically (see `state`).
    State(Vec<u8>),
}

/// An output failure, naming the output.
/// (The I/O error is part of the message, not a separate `source`, so an
/// error chain prints it once.)
#[derive(Debug, thiserror::Error)]
#[error("{name}: {what}: {err}")]
pub struct SinkError {
    pub name: String,
    pub what: &'static str,
    pub err: io::Error,
}

impl SinkError {
    /// Standard output was closed by its reader (`deguchi replay ... | head`):
    /// the end of the run, not a failure, as for `grep | head`.
    #[must_use]
    pub fn is_stdout_closed(&self) -> bool {
        self.name == "stdout" && self.err.kind() == io::ErrorKind::BrokenPipe
    }
}

/// The writer's outputs.
pub struct Sinks {
    pub alerts: JsonLines,
    pub flows: Option<JsonLines>,
    pub state: Option<PathBuf>,
    /// Snapshots that could not be written (logged each time).
    pub state_errors: u64,
    /// Flow records go to the alert stream (both on stdout: one writer, so
    /// lines never interleave).
    flows_with_alerts: bool,
    /// Flows named by alerts whose records are still to come.
    pub alerted: Alerted,
    /// Seconds between EVE `stats` events into the alert stream (0: none).
    pub stats_every: u64,
    started: Instant,
    last_stats: Instant,
    /// Outputs with a queue and thread of their own (syslog).
    queued: Vec<crate::outputs::Queued>,
}

impl Sinks {
    /// Opens the configured outputs.
    ///
    /// # Errors
    /// An output file cannot be created.
    pub fn open(
        alerts: Option<&PathBuf>,
        flows: Option<&PathBuf>,
        q: QueuePolicy,
    ) -> Result<Self, SinkError> {
        let alerts_to_stdout = alerts.is_none();
        let alerts = match alerts {
            Some(p) => JsonLines::create(p, q)?,
            None => JsonLines::stdout(q)?,
        };
        let mut flows_with_alerts = false;
        let flows = match flows {
            Some(p) if p.as_os_str() == "-" && alerts_to_stdout => {
                flows_with_alerts = true;
                None
            }
            Some(p) if p.as_os_str() == "-" => Some(JsonLines::stdout(q)?),
            Some(p) => Some(JsonLines::create(p, q)?),
            None => None,
        };
        Ok(Self {
            alerts,
            flows,
            state: None,
            state_errors: 0,
            flows_with_alerts,
            alerted: Alerted::new(Alerted::CAP),
            stats_every: 0,
            started: Instant::now(),
            last_stats: Instant::now(),
            queued: Vec::new(),
        })
    }

    /// Writes one item.
    ///
    /// # Errors
    /// The I/O error of the output it went to.
    pub fn write(&mut self, o: &Out) -> Result<(), SinkError> {
        match o {
            Out::Flow(r) => {
                let alerted = self.alerted.take(r.flow_id);
                self.forward(true, 6, "flow", r.end, || {
                    serde_json::to_string(&r.to_eve(alerted))
                        .ok()
                        .map(Into::into)
                });
                match self.flows.as_mut() {
                    Some(f) => f.flow(r, alerted),
                    None if self.flows_with_alerts => self.alerts.flow(r, alerted),
                    None => Ok(()),
                }
            }
            Out::Alert(a) => {
                crate::metrics::m().alert(a.detector, a.severity.as_str());
                let sev = crate::outputs::alert_severity(a.severity);
                self.forward(false, sev, "alert", a.ts, || {
                    let mut v = Vec::new();
                    a.write_json(&mut v).ok()?;
                    String::from_utf8(v).ok().map(Into::into)
                });
                self.alerts.alert(a)
            }
            Out::State(bytes) => {
                if let Some(p) = &self.state {
                    match crate::state::write_atomic(p, bytes) {
                        Ok(()) => tracing::debug!(
                            "state saved to {} ({} bytes)",
                            p.display(),
                            bytes.len()
                        ),
                        Err(e) => {
                            // the previous snapshot stays in place; keep running
                            self.state_errors += 1;
                            tracing::error!("cannot save state: {e}");
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Writes an EVE `stats` event into the alert stream when one is due
    /// (every `stats_every` seconds; `last`: the one at the end of the run).
    /// A failure is counted and logged, never fatal: the next alert finds
    /// a broken output as well.
    pub fn stats_if_due(&mut self, last: bool) {
        if self.stats_every == 0
            || !last && self.last_stats.elapsed() < Duration::from_secs(self.stats_every)
        {
            return;
        }
        self.last_stats = Instant::now();
        let m = crate::metrics::m();
        let clock = m.clock.load(std::sync::atomic::Ordering::Relaxed).max(0);
        let (stats, ext) = m.stats(self.started.elapsed().as_secs());
        let line = serde_json::to_string(&StatsLine {
            timestamp: crate::time::eve(clock),
            event_type: "stats",
            stats: &stats,
            deguchi: &ext,
        })
        .unwrap_or_default();
        if let Err(e) = self.alerts.raw(&line) {
            tracing::debug!("stats event: {e}");
        }
        self.forward(false, 6, "stats", clock, || Some(line.into()));
    }

    /// A link-health event on the alert stream (and the queued outputs):
    /// Suricata's EVE `engine` event (what Suricata writes for its own log
    /// messages: `log_level`, `engine.message`, `engine.module`), with
    /// `in_iface`, and deguchi's `deguchi.health` (the event's name) and
    /// `deguchi.link` (the counts so far).
    pub fn health(&mut self, h: &crate::capture::watch::Health) {
        let line = health_line(h);
        if let Err(e) = self.alerts.raw(&line) {
            tracing::debug!("health event: {e}");
        }
        let severity = if h.warning { 4 } else { 6 };
        self.forward(false, severity, "health", h.ts, || Some(line.into()));
    }

    /// Hands a line to the queued outputs (never blocks); `json` is made
    /// only if one of them takes the line.
    fn forward(
        &self,
        flow: bool,
        severity: u8,
        msgid: &'static str,
        ts: crate::time::Ts,
        json: impl FnOnce() -> Option<std::sync::Arc<str>>,
    ) {
        let mut to = self.queued.iter().filter(|q| !flow || q.flows).peekable();
        if to.peek().is_none() {
            return;
        }
        let Some(json) = json() else { return };
        for q in to {
            q.send(crate::outputs::Line {
                severity,
                msgid,
                ts,
                json: std::sync::Arc::clone(&json),
            });
        }
    }

    /// Starts a queued syslog output per spec (`[[output.syslog]]`, `--syslog`).
    ///
    /// # Errors
    /// A thread cannot start.
    pub fn add_syslog(&mut self, specs: &[crate::outputs::SyslogSpec]) -> Result<(), SinkError> {
        for spec in specs {
            let q = crate::outputs::Queued::syslog(spec.clone()).map_err(|err| SinkError {
                name: spec.name.clone(),
                what: "cannot start syslog output",
                err,
            })?;
            self.queued.push(q);
        }
        Ok(())
    }

    /// Notes the flows that a batch's alerts name, before any of the
    /// batch is written: the analysis stage passes a flow's record on
    /// before the alerts its end raised (both in one batch), and alerts
    /// raised by a flow's bursts or progress before its record. Either
    /// way the record, when written, says `"alerted": true`.
    pub fn note_alerts(&mut self, batch: &[Out]) {
        if !self.wants_flows() {
            return;
        }
        for o in batch {
            if let Out::Alert(a) = o
                && let Some(id) = a.flow_id
            {
                self.alerted.insert(id);
            }
        }
    }

    /// Reopens the file outputs (SIGHUP, logrotate's convention).
    ///
    /// # Errors
    /// The first output that cannot be reopened.
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        self.alerts.reopen()?;
        if let Some(f) = self.flows.as_mut() {
            f.reopen()?;
        }
        Ok(())
    }

    /// Whether flow records go anywhere: a flow output, or a queued output
    /// that takes them (syslog `flows`).
    #[must_use]
    pub fn wants_flows(&self) -> bool {
        self.writes_flows() || self.queued.iter().any(|q| q.flows)
    }

    /// Whether flow records are written to a flow output.
    #[must_use]
    pub fn writes_flows(&self) -> bool {
        self.flows.is_some() || self.flows_with_alerts
    }

    /// Flushes every output.
    ///
    /// # Errors
    /// The first output that fails.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.alerts.flush()?;
        if let Some(f) = self.flows.as_mut() {
            f.flush()?;
        }
        Ok(())
    }

    /// CPU seconds of the file/stdout outputs' threads (after [`Self::close`]).
    #[must_use]
    pub fn output_cpu_s(&self) -> f64 {
        self.alerts.cpu_s + self.flows.as_ref().map_or(0.0, |f| f.cpu_s)
    }

    /// The file/stdout outputs that dropped lines: (name, lines).
    #[must_use]
    pub fn dropped(&self) -> Vec<(String, u64)> {
        std::iter::once(&self.alerts)
            .chain(self.flows.as_ref())
            .filter(|o| o.dropped() > 0)
            .map(|o| (o.name().to_owned(), o.dropped()))
            .collect()
    }

    /// The end of the run: every file/stdout output writes what it holds
    /// (see [`JsonLines::close`]).
    ///
    /// # Errors
    /// The first output that failed.
    pub fn close(&mut self) -> Result<(), SinkError> {
        let a = self.alerts.close();
        let f = self.flows.as_mut().map_or(Ok(()), JsonLines::close);
        a.and(f)
    }
}

/// A link-health event (EVE `engine`), its keys in EVE's order.
#[derive(serde::Serialize)]
struct HealthLine<'a> {
    timestamp: String,
    event_type: &'static str,
    log_level: &'static str,
    in_iface: &'a str,
    engine: HealthEngine<'a>,
    deguchi: HealthExt,
}

#[derive(serde::Serialize)]
struct HealthEngine<'a> {
    message: &'a str,
    module: &'static str,
}

#[derive(serde::Serialize)]
struct HealthExt {
    health: &'static str,
    link: crate::capture::watch::LinkCounters,
}

/// The EVE line of a link-health event (see [`Sinks::health`]).
#[must_use]
pub fn health_line(h: &crate::capture::watch::Health) -> String {
    serde_json::to_string(&HealthLine {
        timestamp: crate::time::eve(h.ts),
        event_type: "engine",
        log_level: if h.warning { "Warning" } else { "Info" },
        in_iface: &h.iface,
        engine: HealthEngine {
            message: &h.message,
            module: "capture",
        },
        deguchi: HealthExt {
            health: h.event,
            link: h.counters,
        },
    })
    .unwrap_or_default()
}

/// An EVE `stats` event, its keys in EVE's order.
#[derive(serde::Serialize)]
struct StatsLine<'a> {
    timestamp: String,
    event_type: &'static str,
    stats: &'a serde_json::Value,
    deguchi: &'a serde_json::Value,
}

/// Flow ids named by alerts, until the flow's record is written: a set
/// bounded by `cap` (the oldest forgotten first, and counted in
/// `forgotten`). Every detector names the flow of the event that raised
/// the alert, a flow still open or ending in that batch, so an entry
/// lives only as long as an alerted flow stays open.
pub struct Alerted {
    ids: std::collections::HashSet<u64, ahash::RandomState>,
    order: std::collections::VecDeque<u64>,
    cap: usize,
    /// Ids dropped for the cap before their record came.
    pub forgotten: u64,
}

impl Alerted {
    /// Open flows named by alerts that are remembered at once (8 MiB at most).
    pub const CAP: usize = 1 << 18;

    #[must_use]
    pub fn new(cap: usize) -> Self {
        Self {
            ids: std::collections::HashSet::default(),
            order: std::collections::VecDeque::new(),
            cap: cap.max(1),
            forgotten: 0,
        }
    }

    /// Remembers `id` (no-op if it already is).
    pub fn insert(&mut self, id: u64) {
        if !self.ids.insert(id) {
            return;
        }
        self.order.push_back(id);
        while self.ids.len() > self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    if self.ids.remove(&old) {
                        self.forgotten += 1;
                    }
                }
                None => break,
            }
        }
        // ids taken since leave stale entries in `order`: compact when they dominate
        if self.order.len() > 2 * self.cap.max(self.ids.len()) {
            let ids = &self.ids;
            self.order.retain(|x| ids.contains(x));
        }
    }

    /// Whether `id` was named by an alert; forgets it.
    pub fn take(&mut self, id: u64) -> bool {
        self.ids.remove(&id)
    }

    /// Ids remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Alerted;

    #[test]
    fn alerted_ids_are_taken_once_and_bounded() {
        let mut a = Alerted::new(3);
        a.insert(1);
        a.insert(1);
        assert!(a.take(1));
        assert!(!a.take(1));
        for i in 10..15 {
            a.insert(i);
        }
        assert_eq!((a.len(), a.forgotten), (3, 2));
        assert!(!a.take(10) && !a.take(11) && a.take(14));
        // take-then-insert churn keeps the queue bounded too
        for i in 100..10_000 {
            a.insert(i);
            assert!(a.take(i));
        }
        assert!(a.order.len() <= 2 * 3 + 1);
    }
}
