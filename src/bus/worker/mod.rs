//! Worker mode (`deguchi analyze --bus URL`): a share of the analysis
//! partitions, their events from every sensor merged in packet-time order,
//! the detectors, alerts out.
//!
//! **Ownership.** Each worker holds a lease in the KV bucket
//! `<prefix>_workers` (key `w.<id>`, renewed every third of `bus.lease_s`;
//! the bucket's entries expire after `bus.lease_s`, so a killed worker's
//! lease lapses). Partition `p` belongs to the live worker with the highest
//! rendezvous weight FNV-1a(id, p) (Thaler and Ravishankar's highest random
//! weight, as Zeek's cluster framework uses it over Broker): a worker
//! joining or leaving moves only its own share. When the set of live
//! workers changes, each worker saves the partitions it keeps and starts a
//! new *generation*: it restores every partition it now owns from its last
//! snapshot and reads that partition's subject again from the stream
//! sequence stored with it.
//!
//! **Merge.** Every sensor run sends each partition batches whose events
//! carry a key (the sensor's packet clock, never decreasing) and a
//! watermark (no later event of the run has a smaller key). An event is
//! released to the detectors once every known run's watermark on every
//! owned partition has passed its key (a run that ended counts as
//! infinitely late); released events go in key order. Each partition
//! remembers per run how far it has applied (batch sequence, index), so a
//! replay from an older stream sequence applies nothing twice.
//!
//! **Alerts.** Each alert has a deterministic id ([`crate::alert::Alert::id`]).
//! It is published to `<prefix>.alerts` with that id as the JetStream
//! message id; when the stream reports a duplicate (another worker, or an
//! earlier generation, made the same alert), it is not written again.
//!
//! **Site-wide baseline.** A worker's baseline sees its own partitions'
//! hosts; the first sightings it makes of (destination, host) go to
//! `<prefix>.sight`, and every worker applies every worker's sightings, so
//! destination popularity counts the hosts of all partitions and sensors.

mod generation;
mod store;

pub use store::owned_by;

use super::wire::{Batch, Sightings, VERSION};
use super::{Bus, BusError};
use crate::alert::Alert;
use crate::config::Config;
use crate::sink::{Out, Sinks};
use generation::{Generation, Incoming, Queued};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `deguchi analyze` options.
#[derive(Clone, Debug, Default)]
pub struct WorkerOpts {
    /// Exit once every sensor run has ended and everything before its end
    /// is analysed.
    pub eof: bool,
    /// Also keep each partition's snapshot in this directory.
    pub state_dir: Option<PathBuf>,
    /// This worker's id (default: host name and process id).
    pub id: Option<String>,
}

/// What a worker did, for the exit summary.
#[derive(Default, Debug)]
pub struct WorkerSummary {
    pub id: String,
    pub generations: u64,
    pub batches: u64,
    pub events: u64,
    pub skipped: u64,
    pub alerts_written: u64,
    pub alerts_duplicate: u64,
    pub sightings_sent: u64,
    pub sightings_applied: u64,
    pub snapshots: u64,
    pub owned: Vec<u32>,
    /// CPU seconds of the whole process (user + system).
    pub cpu_s: f64,
}

impl WorkerSummary {
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "deguchi analyze: worker {}: {} generations, last owning {} partitions {:?}\n\
             deguchi analyze: {} batches, {} events analysed ({} already applied, skipped)\n\
             deguchi analyze: {} alerts written, {} duplicates not written again\n\
             deguchi analyze: site baseline: {} sightings sent, {} applied; {} snapshots saved\n\
             deguchi analyze: {:.2} CPU seconds ({:.2} µs per event analysed)\n",
            self.id,
            self.generations,
            self.owned.len(),
            self.owned,
            self.batches,
            self.events,
            self.skipped,
            self.alerts_written,
            self.alerts_duplicate,
            self.sightings_sent,
            self.sightings_applied,
            self.snapshots,
            self.cpu_s,
            self.cpu_s * 1e6 / f64::from(u32::try_from(self.events.max(1)).unwrap_or(u32::MAX))
        )
    }
}

/// A worker failure.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{0}")]
    Bus(#[from] BusError),
    #[error("{0}")]
    Output(#[from] crate::sink::SinkError),
    #[error("{0}")]
    Mismatch(String),
}

struct Worker {
    pub(super) bus: Bus,
    pub(super) cfg: Config,
    pub(super) opts: WorkerOpts,
    pub(super) id: String,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) leases: async_nats::jetstream::kv::Store,
    pub(super) store: async_nats::jetstream::object_store::ObjectStore,
    pub(super) sinks: Sinks,
    pub(super) sum: WorkerSummary,
}

/// Runs a worker until `stop` (or, with `--eof`, until every sensor run
/// has ended and been analysed).
///
/// # Errors
/// The bus unreachable at start, an output that cannot be written, or
/// sensors routing to another partition count.
pub fn run(
    cfg: &Config,
    opts: &WorkerOpts,
    stop: &Arc<AtomicBool>,
) -> Result<WorkerSummary, WorkerError> {
    let id = opts.id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "worker".into()),
            std::process::id()
        )
    });
    let bus = Bus::connect(
        &cfg.bus,
        &format!("deguchi-worker-{id}"),
        Duration::from_secs(30),
    )?;
    let c = &cfg.bus;
    let leases = bus.retry(
        Instant::now() + Duration::from_secs(30),
        "creating the lease bucket",
        || {
            // the bucket's stream made here, as `create_key_value` would make
            // it: that call first asks for account details that servers
            // before 2.10 (Debian 12's 2.9) answer in a shape the client
            // cannot read
            use async_nats::jetstream::stream;
            let js = bus.js.clone();
            let bucket = format!("{}_workers", c.prefix);
            let conf = stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                max_messages_per_subject: 1,
                max_age: Duration::from_secs(c.lease_s),
                num_replicas: c.replicas,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                ..Default::default()
            };
            async move {
                super::ensure_stream(&js, conf).await?;
                js.get_key_value(bucket).await.map_err(|e| e.to_string())
            }
        },
    )?;
    let store = bus.retry(
        Instant::now() + Duration::from_secs(30),
        "creating the state store",
        || {
            let js = bus.js.clone();
            let conf = async_nats::jetstream::object_store::Config {
                bucket: format!("{}_state", c.prefix),
                num_replicas: c.replicas,
                ..Default::default()
            };
            async move {
                if let Ok(s) = js.get_object_store(&conf.bucket).await {
                    return Ok(s);
                }
                tokio::time::timeout(crate::bus::ATTEMPT, js.create_object_store(conf))
                    .await
                    .map_err(|_| "timed out".to_owned())?
                    .map_err(|e| e.to_string())
            }
        },
    )?;
    // a worker waits for a slow reader: its input stays on the bus
    let policy = crate::sink::QueuePolicy {
        block: true,
        bytes: usize::try_from(u64::from(cfg.output.queue_mb) << 20).unwrap_or(usize::MAX),
    };
    let mut sinks = Sinks::open(cfg.output.alerts.as_ref(), None, policy)?;
    sinks.add_syslog(&cfg.output.syslog)?;
    let mut w = Worker {
        bus,
        cfg: cfg.clone(),
        opts: opts.clone(),
        id: id.clone(),
        stop: Arc::clone(stop),
        leases,
        store,
        sinks,
        sum: WorkerSummary {
            id,
            ..WorkerSummary::default()
        },
    };
    // the lease renewed from the bus runtime, whatever this thread is doing
    // (restoring a large snapshot, a long batch)
    let renewer = {
        let kv = w.leases.clone();
        let key = format!("w.{}", w.id);
        let every = Duration::from_secs((cfg.bus.lease_s / 3).max(1));
        w.bus.rt.spawn(async move {
            loop {
                if let Err(e) = kv.put(&key, bytes::Bytes::new()).await {
                    tracing::warn!("bus: lease renewal: {e}");
                }
                tokio::time::sleep(every).await;
            }
        })
    };
    let r = w.main_loop();
    renewer.abort();
    w.release_lease();
    let _ = w.sinks.flush();
    w.sum.cpu_s =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
            let t = |v: nix::sys::time::TimeVal| v.tv_sec() as f64 + v.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        });
    r.map(|()| w.sum)
}

impl Worker {
    fn main_loop(&mut self) -> Result<(), WorkerError> {
        let n = self.cfg.partitions.max(1);
        // a lease first, then a moment for the others' to show
        let mut members = loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            match self.renew_lease().and_then(|()| self.members()) {
                Ok(m) if m.contains(&self.id) => break m,
                Ok(_) => {}
                Err(e) => tracing::warn!("bus: lease: {e}; retrying"),
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        tracing::info!("bus: worker {} joins {:?}", self.id, members);
        loop {
            let owned = owned_by(&self.id, &members, n);
            let mut g = self.start_generation(owned, &members)?;
            self.sum.generations += 1;
            self.sum.owned.clone_from(&g.owned);
            let m = &crate::metrics::m().bus;
            m.generations.inc();
            m.owned_partitions
                .set(i64::try_from(g.owned.len()).unwrap_or(i64::MAX));
            tracing::info!(
                "bus: generation {}: worker {} owns {} of {n} partitions {:?}",
                self.sum.generations,
                self.id,
                g.owned.len(),
                g.owned
            );
            match self.run_generation(&mut g, &mut members)? {
                End::Rebalance => {
                    for t in &g.tasks {
                        t.abort();
                    }
                }
                End::Done => {
                    for t in &g.tasks {
                        t.abort();
                    }
                    return Ok(());
                }
            }
        }
    }

    fn run_generation(
        &mut self,
        g: &mut Generation,
        members: &mut Vec<String>,
    ) -> Result<End, WorkerError> {
        let every = Duration::from_secs(self.cfg.bus.snapshot_s);
        let renew = Duration::from_secs((self.cfg.bus.lease_s / 3).max(1));
        let mut last_snap = Instant::now();
        let mut last_renew = Instant::now();
        let mut quiet_since: Option<Instant> = None;
        let mut finished = false;
        let mut last_done_check = Instant::now();
        let mut out = Vec::new();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                self.save_all(g);
                return Ok(End::Done);
            }
            let got = self.bus.rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), g.rx.recv()).await
            });
            let mut moved = false;
            if let Ok(Some(first)) = got {
                self.take(g, first)?;
                moved = true;
                // whatever else is waiting, without blocking
                while let Ok(m) = g.rx.try_recv() {
                    self.take(g, m)?;
                }
            }
            if g.merge() > 0 {
                moved = true;
            }
            self.share_sightings(g);
            let n = g.detect(&mut out);
            if n > 0 {
                moved = true;
                self.sum.events += n;
                let m = &crate::metrics::m().bus;
                m.analysed_events.inc_by(n);
                m.held_events
                    .set(i64::try_from(g.held.len()).unwrap_or(i64::MAX));
                if g.newest > g.detected && g.detected > i64::MIN {
                    #[allow(clippy::cast_precision_loss)]
                    m.lag_seconds
                        .set((g.newest - g.detected) as f64 / crate::time::SEC as f64);
                }
            }
            self.emit(&mut out)?;
            if last_renew.elapsed() >= renew {
                last_renew = Instant::now();
                match self.members() {
                    Ok(m) if m != *members && m.contains(&self.id) => {
                        tracing::info!("bus: workers now {m:?}");
                        *members = m;
                        // keep what stays ours; the rest restarts from its
                        // last snapshot at its new owner
                        let now = owned_by(&self.id, members, self.cfg.partitions.max(1));
                        let keep: Vec<u32> = g
                            .owned
                            .iter()
                            .copied()
                            .filter(|p| now.contains(p))
                            .collect();
                        self.save_snapshots(g, &keep);
                        return Ok(End::Rebalance);
                    }
                    Ok(_) | Err(_) => {}
                }
            }
            if last_snap.elapsed() >= every {
                last_snap = Instant::now();
                self.save_all(g);
            }
            if finished {
                // ours are done: wait for every partition's (a dead
                // worker's move to us when its lease lapses)
                if last_done_check.elapsed() >= Duration::from_millis(500) {
                    last_done_check = Instant::now();
                    if self.all_done(g) {
                        return Ok(End::Done);
                    }
                }
            } else if self.opts.eof && g.all_ended() {
                // everything of every run is in; a moment for a late run
                let q = quiet_since.get_or_insert_with(Instant::now);
                if !moved && q.elapsed() >= Duration::from_secs(2) {
                    g.analyzer.finish(&mut out);
                    self.emit(&mut out)?;
                    self.save_all(g);
                    self.mark_done(g);
                    finished = true;
                    tracing::info!(
                        "bus: partitions {:?} analysed to the end of every sensor's input",
                        g.owned
                    );
                }
                if moved {
                    quiet_since = Some(Instant::now());
                }
            } else {
                quiet_since = None;
            }
        }
    }

    /// Takes one message in.
    fn take(&mut self, g: &mut Generation, m: Incoming) -> Result<(), WorkerError> {
        match m {
            Incoming::Failed(e) => {
                tracing::warn!("bus: consumer: {e}");
                Ok(())
            }
            Incoming::Sightings(b) => {
                let Ok(s) = postcard::from_bytes::<Sightings>(&b) else {
                    return Ok(());
                };
                if s.version != VERSION || s.worker == self.id {
                    return Ok(());
                }
                self.sum.sightings_applied += s.dests.len() as u64;
                for d in s.dests {
                    g.remote.push(std::cmp::Reverse(d));
                }
                if s.epoch == g.epoch {
                    let w = g.remote_wm.entry(s.worker).or_insert(i64::MIN);
                    *w = (*w).max(s.watermark);
                }
                Ok(())
            }
            Incoming::Events(p, stream_seq, b) => {
                let batch: Batch = match postcard::from_bytes(&b) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(
                            "bus: partition {p} message {stream_seq} unreadable ({e}); skipped"
                        );
                        return Ok(());
                    }
                };
                if batch.version != VERSION {
                    tracing::warn!(
                        "bus: partition {p} message {stream_seq}: wire version {} (this worker reads {VERSION}); skipped",
                        batch.version
                    );
                    return Ok(());
                }
                let n = self.cfg.partitions.max(1);
                if batch.partitions as usize != n {
                    return Err(WorkerError::Mismatch(format!(
                        "sensor {} routes to {} partitions, this worker has general.partitions = {n}",
                        batch.run.sensor, batch.partitions
                    )));
                }
                self.sum.batches += 1;
                crate::metrics::m().bus.consumed_batches.inc();
                g.newest = g.newest.max(batch.watermark);
                let Some(st) = g.parts.get_mut(&p) else {
                    return Ok(());
                };
                st.last_stream_seq = st.last_stream_seq.max(stream_seq);
                g.runs.entry(batch.run.clone()).or_insert(());
                let r = st.runs.entry(batch.run).or_default();
                r.watermark = r.watermark.max(batch.watermark);
                r.eof |= batch.eof;
                for (i, (key, ev)) in batch.events.into_iter().enumerate() {
                    let idx = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    let at = (batch.seq, idx);
                    if at <= r.released || r.queue.back().is_some_and(|q| at <= (q.seq, q.idx)) {
                        self.sum.skipped += 1;
                        crate::metrics::m().bus.redelivered_events.inc();
                        continue;
                    }
                    r.queue.push_back(Queued {
                        key,
                        seq: batch.seq,
                        idx,
                        stream_seq,
                        ev,
                    });
                }
                Ok(())
            }
        }
    }

    /// Publishes new alerts (de-duplicated by id on the alert stream) and
    /// writes those that were new.
    fn emit(&mut self, out: &mut Vec<Out>) -> Result<(), WorkerError> {
        for o in out.drain(..) {
            let Out::Alert(a) = o else { continue };
            if self.publish_alert(&a) {
                self.sinks.write(&Out::Alert(a))?;
                self.sum.alerts_written += 1;
            } else {
                self.sum.alerts_duplicate += 1;
                crate::metrics::m().bus.duplicate_alerts.inc();
            }
        }
        self.sinks.flush()?;
        Ok(())
    }

    /// True unless the alert stream already holds this alert's id.
    fn publish_alert(&self, a: &Alert) -> bool {
        let mut line = Vec::new();
        if a.write_json(&mut line).is_err() {
            return true;
        }
        let id = format!("{:016x}", a.id());
        let subject = self.cfg.bus.alerts_subject();
        let until = Instant::now() + Duration::from_secs(30);
        let r = self.bus.retry(until, "publishing an alert", || {
            let msg = async_nats::jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::from(line.clone()))
                .message_id(&id);
            publish_acked(self.bus.js.clone(), subject.clone(), msg)
        });
        match r {
            Ok(ack) => !ack.duplicate,
            Err(e) => {
                // never lose an alert: written, though maybe twice
                tracing::warn!("{e}; alert written without de-duplication");
                true
            }
        }
    }

    /// Publishes the pre-pass's first sightings and this worker's watermark.
    fn share_sightings(&mut self, g: &mut Generation) {
        let wm = g.input_watermark();
        if g.outgoing.is_empty() && wm <= g.sent_wm {
            return;
        }
        let dests = std::mem::take(&mut g.outgoing);
        self.sum.sightings_sent += dests.len() as u64;
        let s = Sightings {
            version: VERSION,
            worker: self.id.clone(),
            epoch: g.epoch,
            watermark: wm,
            dests,
        };
        let Ok(bytes) = postcard::to_stdvec(&s) else {
            return;
        };
        let subject = self.cfg.bus.sightings_subject();
        let until = Instant::now() + Duration::from_secs(30);
        let r = self.bus.retry(until, "sharing sightings", || {
            let msg = async_nats::jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::from(bytes.clone()));
            publish_acked(self.bus.js.clone(), subject.clone(), msg)
        });
        match r {
            Ok(_) => g.sent_wm = wm,
            Err(e) => tracing::warn!("{e}; the other workers wait for this one"),
        }
    }
}

/// Publishes `msg` on `subject` and waits (5 s at most) for the stream's
/// acknowledgement (one attempt: callers retry).
async fn publish_acked(
    js: async_nats::jetstream::Context,
    subject: String,
    msg: async_nats::jetstream::message::PublishMessage,
) -> Result<async_nats::jetstream::publish::PublishAck, String> {
    let ack = js
        .send_publish(subject, msg)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), ack)
        .await
        .map_err(|_| "no acknowledgement".to_owned())?
        .map_err(|e| e.to_string())
}

enum End {
    Rebalance,
    Done,
}
