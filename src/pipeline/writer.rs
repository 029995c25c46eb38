//! The writer thread: outputs, evidence requests, health events.

use super::{set_len, thread_cpu_s};
use crate::capture::watch::Health;
use crate::evidence::Request;
use crate::sink::{Out, SinkError, Sinks};
use crossbeam_channel::{Receiver, Sender};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(super) struct WriterOut {
    pub(super) dropped: Vec<(String, u64)>,
    pub(super) output_cpu_s: f64,
    pub(super) cpu_s: f64,
    pub(super) flows: u64,
    pub(super) alerts: u64,
    pub(super) error: Option<SinkError>,
    /// Replay: every alert's pcap, to be written again from the files.
    pub(super) made: Vec<crate::evidence::Made>,
}

/// The writer's side of `--evidence`: names each alert's pcap and asks the
/// shards for it.
pub(super) struct EvidenceTx {
    pub(super) dir: PathBuf,
    pub(super) disk_budget: u64,
    pub(super) shards: Vec<Sender<Request>>,
    pub(super) last_prune: Instant,
    /// Replay of files: the pcaps named, for the second pass
    /// ([`crate::evidence::rewrite_from_files`]); `None` live or from stdin.
    pub(super) made: Option<Vec<crate::evidence::Made>>,
}

impl EvidenceTx {
    fn attach(&mut self, a: &mut crate::alert::Alert) {
        let path = self.dir.join(crate::evidence::file_name(a));
        a.evidence.insert(
            "pcap".into(),
            serde_json::Value::String(path.display().to_string()),
        );
        let r = Request {
            path,
            flow: crate::evidence::FlowMatch::of_alert(a),
        };
        if let Some(m) = self.made.as_mut() {
            m.push(crate::evidence::Made {
                path: r.path.clone(),
                flow: r.flow,
                ts: a.ts,
            });
        }
        for tx in &self.shards {
            // a shard far behind misses this one rather than stall output
            let _ = tx.try_send(r.clone());
        }
        if self.last_prune.elapsed() >= Duration::from_secs(1) {
            self.last_prune = Instant::now();
            crate::evidence::prune(&self.dir, self.disk_budget);
        }
    }
}

pub(super) fn writer_thread(
    mut sinks: Sinks,
    rx: Receiver<Vec<Out>>,
    stop: Arc<AtomicBool>,
    reopen: Arc<AtomicBool>,
    mut evidence: Option<EvidenceTx>,
    health: Receiver<Health>,
) -> WriterOut {
    let mut error = None;
    let (mut flows, mut alerts) = (0, 0);
    let m = crate::metrics::m();
    let batches_c = m.stage("writer");
    let depth = m.queue("analysis->writer", rx.capacity().unwrap_or(0));
    loop {
        sinks.stats_if_due(false);
        while let Ok(h) = health.try_recv() {
            if error.is_none() {
                sinks.health(&h);
            }
        }
        if reopen.swap(false, Ordering::SeqCst) {
            match sinks.reopen() {
                // each output's thread reopens its file and logs it
                Ok(()) => tracing::debug!("SIGHUP: reopening the output files"),
                Err(e) => tracing::error!("SIGHUP: {e}; still writing to the old files"),
            }
        }
        let mut batch = match rx.try_recv() {
            Ok(b) => b,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                if error.is_none()
                    && let Err(e) = sinks.flush()
                {
                    error = Some(e);
                    stop.store(true, Ordering::SeqCst);
                }
                // wake up now and then so a SIGHUP is served while idle
                match rx.recv_timeout(Duration::from_millis(500)) {
                    Ok(b) => b,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            Err(crossbeam_channel::TryRecvError::Disconnected) => break,
        };
        batches_c.inc();
        set_len(&depth, rx.len());
        if error.is_some() {
            // keep draining so upstream never blocks; state still gets saved
            for o in &batch {
                if matches!(o, Out::State(_)) {
                    let _ = sinks.write(o);
                }
            }
            continue;
        }
        sinks.note_alerts(&batch);
        for o in &mut batch {
            if let (Some(ev), Out::Alert(a)) = (evidence.as_mut(), &mut *o) {
                ev.attach(a);
            }
            if let Err(e) = sinks.write(o) {
                error = Some(e);
                stop.store(true, Ordering::SeqCst);
                break;
            }
            match o {
                Out::Flow(_) => flows += u64::from(sinks.writes_flows()),
                Out::Alert(_) => alerts += 1,
                Out::State(_) => {}
            }
        }
    }
    while let Ok(h) = health.try_recv() {
        if error.is_none() {
            sinks.health(&h);
        }
    }
    if error.is_none() {
        sinks.stats_if_due(true);
    }
    // every line handed over is written (replay), or given its time (live)
    if let Err(e) = sinks.close()
        && error.is_none()
    {
        error = Some(e);
    }
    WriterOut {
        dropped: sinks.dropped(),
        output_cpu_s: sinks.output_cpu_s(),
        cpu_s: thread_cpu_s(),
        flows,
        alerts,
        error,
        made: evidence.and_then(|e| e.made).unwrap_or_default(),
    }
}
