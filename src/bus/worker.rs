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

use super::wire::{Batch, Run, Sightings, VERSION};
use super::{Bus, BusError};
use crate::alert::Alert;
use crate::analysis::Analyzer;
use crate::config::Config;
use crate::flow::event::FlowEvent;
use crate::sink::{Out, Sinks};
use crate::time::Ts;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
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
}

impl WorkerSummary {
    #[must_use]
    pub fn render(&self) -> String {
        format!(
            "deguchi analyze: worker {}: {} generations, last owning {} partitions {:?}\n\
             deguchi analyze: {} batches, {} events analysed ({} already applied, skipped)\n\
             deguchi analyze: {} alerts written, {} duplicates not written again\n\
             deguchi analyze: site baseline: {} sightings sent, {} applied; {} snapshots saved\n",
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
            self.snapshots
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

/// Per run (sensor), on one partition: how far it got and what waits.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RunState {
    watermark: Ts,
    eof: bool,
    /// Last event the detectors saw: (batch sequence, index in the batch + 1).
    applied: (u64, u32),
    /// Its key.
    applied_key: Ts,
    /// Last event taken off the queue (to the pre-pass), not yet applied.
    #[serde(skip)]
    released: (u64, u32),
    #[serde(skip)]
    queue: VecDeque<Queued>,
}

#[derive(Debug)]
struct Queued {
    key: Ts,
    seq: u64,
    idx: u32,
    stream_seq: u64,
    ev: FlowEvent,
}

/// An event past the merge and the sightings pre-pass, waiting for the
/// other workers' sightings up to its key.
#[derive(Debug)]
struct Held {
    key: Ts,
    part: u32,
    run: Run,
    seq: u64,
    idx: u32,
    stream_seq: u64,
    ev: FlowEvent,
}

/// One owned partition's merge state.
#[derive(Default, Debug, Serialize, Deserialize)]
struct PartState {
    runs: BTreeMap<Run, RunState>,
    /// Highest stream sequence received on this partition's subject.
    last_stream_seq: u64,
}

/// A partition's snapshot in the object store.
#[derive(Serialize, Deserialize)]
struct PartSnapshot {
    version: u16,
    partition: u32,
    partitions: u32,
    /// Read the subject again from here.
    resume_from: u64,
    merge: PartState,
    /// The analyzer's state file (partition's detector sections + baseline).
    state: Vec<u8>,
}

const SNAPSHOT_VERSION: u16 = 1;

/// The rendezvous owner of partition `p` among `members`.
fn owner(p: u32, members: &[String]) -> Option<&String> {
    members.iter().max_by_key(|m| {
        // FNV-1a then a splitmix64 finaliser: FNV alone mixes the last
        // bytes (the partition) too little into the high bits
        let mut x = crate::fnv1a(m.bytes().chain(p.to_le_bytes()));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31), m.as_str())
    })
}

/// The partitions `me` owns among `members`.
#[must_use]
pub fn owned_by(me: &str, members: &[String], partitions: usize) -> Vec<u32> {
    (0..u32::try_from(partitions).unwrap_or(u32::MAX))
        .filter(|&p| owner(p, members).is_some_and(|o| o == me))
        .collect()
}

/// The epoch of a membership: a hash of the sorted worker ids.
fn epoch_of(members: &[String]) -> u64 {
    crate::fnv1a(members.iter().flat_map(|m| m.bytes().chain([0])))
}

struct Worker {
    bus: Bus,
    cfg: Config,
    opts: WorkerOpts,
    id: String,
    stop: Arc<AtomicBool>,
    leases: async_nats::jetstream::kv::Store,
    store: async_nats::jetstream::object_store::ObjectStore,
    sinks: Sinks,
    sum: WorkerSummary,
}

/// One generation: a fixed membership, a fixed set of owned partitions.
struct Generation {
    owned: Vec<u32>,
    epoch: u64,
    /// The other workers, whose sightings watermarks gate detection.
    others: Vec<String>,
    parts: HashMap<u32, PartState>,
    /// Pre-pass: the first sightings this worker's partitions make, found
    /// as soon as the merge releases events (a baseline of its own, fed in
    /// the same order as the analyzer's).
    pre: crate::baseline::Baseline,
    home: crate::homenet::HomeNet,
    held: VecDeque<Held>,
    analyzer: Analyzer,
    /// Other workers' sightings, by key.
    remote: std::collections::BinaryHeap<std::cmp::Reverse<(Ts, u64, std::net::IpAddr)>>,
    /// Other workers' sightings watermarks in this epoch.
    remote_wm: HashMap<String, Ts>,
    /// Sightings to publish, and the watermark last published.
    outgoing: Vec<(Ts, u64, std::net::IpAddr)>,
    sent_wm: Ts,
    rx: tokio::sync::mpsc::Receiver<Incoming>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Runs seen on any owned partition.
    runs: BTreeMap<Run, ()>,
}

enum Incoming {
    Events(u32, u64, bytes::Bytes),
    Sightings(bytes::Bytes),
    Failed(String),
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
                if js.get_stream(&conf.name).await.is_err() {
                    tokio::time::timeout(super::ATTEMPT, js.get_or_create_stream(conf))
                        .await
                        .map_err(|_| "timed out".to_owned())?
                        .map_err(|e| e.to_string())?;
                }
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
                tokio::time::timeout(super::ATTEMPT, js.create_object_store(conf))
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
    r.map(|()| w.sum)
}

impl Worker {
    fn renew_lease(&self) -> Result<(), String> {
        let kv = self.leases.clone();
        let key = format!("w.{}", self.id);
        self.bus
            .rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), kv.put(key, bytes::Bytes::new())).await
            })
            .map_err(|_| "lease renewal timed out".to_owned())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn release_lease(&self) {
        let kv = self.leases.clone();
        let key = format!("w.{}", self.id);
        let _ = self.bus.rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(2), kv.delete(key)).await
        });
    }

    /// The workers whose leases are live, sorted.
    fn members(&self) -> Result<Vec<String>, String> {
        let kv = self.leases.clone();
        self.bus
            .rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(3), async {
                    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
                    let mut v = Vec::new();
                    while let Some(k) = keys.next().await {
                        let k = k.map_err(|e| e.to_string())?;
                        if let Some(id) = k.strip_prefix("w.") {
                            v.push(id.to_owned());
                        }
                    }
                    Ok::<_, String>(v)
                })
                .await
            })
            .map_err(|_| "listing leases timed out".to_owned())?
            .map(|mut v| {
                v.sort();
                v
            })
    }

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

    fn object_name(&self, p: u32) -> String {
        format!("part-{p}-of-{}", self.cfg.partitions.max(1))
    }

    /// An object of the state store (`None`: there is none, or the store
    /// did not answer). A store just made may leave the first requests
    /// unanswered (seen with nats-server 2.9 and three replicas): short
    /// attempts, a few of them.
    fn fetch(&self, name: &str) -> Option<Vec<u8>> {
        use async_nats::jetstream::object_store::GetErrorKind;
        use tokio::io::AsyncReadExt as _;
        for _ in 0..5 {
            let store = self.store.clone();
            let owned = name.to_owned();
            let r = self.bus.rt.block_on(async move {
                tokio::time::timeout(super::ATTEMPT, async {
                    match store.get(&owned).await {
                        Ok(mut o) => {
                            let mut v = Vec::new();
                            o.read_to_end(&mut v)
                                .await
                                .map(|_| Some(v))
                                .map_err(|e| e.to_string())
                        }
                        Err(e) if e.kind() == GetErrorKind::NotFound => Ok(None),
                        Err(e) => Err(e.to_string()),
                    }
                })
                .await
            });
            match r {
                Ok(Ok(v)) => return v,
                Ok(Err(e)) => tracing::debug!("bus: state store {name}: {e}"),
                Err(_) => tracing::debug!("bus: state store {name}: timed out"),
            }
        }
        tracing::warn!("bus: state store: {name} unreadable");
        None
    }

    /// Writes an object of the state store (a few short attempts).
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..3 {
            let store = self.store.clone();
            let name = name.to_owned();
            let mut data = bytes;
            let r = self.bus.rt.block_on(async move {
                tokio::time::timeout(super::ATTEMPT * 2, store.put(name.as_str(), &mut data)).await
            });
            match r {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "timed out".into(),
            }
        }
        Err(last)
    }

    fn load_snapshot(&self, p: u32) -> Option<PartSnapshot> {
        let t0 = Instant::now();
        let got = self.fetch(&self.object_name(p));
        tracing::debug!("bus: snapshot {p} loaded in {:?}", t0.elapsed());
        let bytes = got.or_else(|| {
            let d = self.opts.state_dir.as_ref()?;
            std::fs::read(d.join(format!("{}.state", self.object_name(p)))).ok()
        })?;
        match postcard::from_bytes::<PartSnapshot>(&bytes) {
            Ok(s) if s.version == SNAPSHOT_VERSION && s.partition == p => Some(s),
            Ok(_) => {
                tracing::warn!("bus: snapshot of partition {p}: another version; starts fresh");
                None
            }
            Err(e) => {
                tracing::warn!("bus: snapshot of partition {p} unreadable ({e}); starts fresh");
                None
            }
        }
    }

    fn save_snapshot(&mut self, g: &mut Generation, p: u32) {
        let env = g.analyzer.partition_snapshot(p);
        let resume_from = g.resume_from(p);
        let Some(st) = g.parts.get(&p) else {
            return;
        };
        let snap = PartSnapshot {
            version: SNAPSHOT_VERSION,
            partition: p,
            partitions: u32::try_from(self.cfg.partitions.max(1)).unwrap_or(u32::MAX),
            resume_from,
            merge: PartState {
                runs: st
                    .runs
                    .iter()
                    .map(|(k, r)| {
                        // a run with events not yet analysed is saved as
                        // far as the analysis got: reading again from
                        // `resume_from` brings its watermark and end back
                        let pending = !r.queue.is_empty()
                            || g.held.iter().any(|h| h.part == p && h.run == *k);
                        (
                            k.clone(),
                            RunState {
                                watermark: if pending { r.applied_key } else { r.watermark },
                                eof: r.eof && !pending,
                                applied_key: r.applied_key,
                                applied: r.applied,
                                released: r.applied,
                                queue: VecDeque::new(),
                            },
                        )
                    })
                    .collect(),
                last_stream_seq: st.last_stream_seq,
            },
            state: crate::state::encode(&env),
        };
        let Ok(bytes) = postcard::to_stdvec(&snap) else {
            return;
        };
        if let Some(d) = &self.opts.state_dir {
            let path = d.join(format!("{}.state", self.object_name(p)));
            let tmp = path.with_extension("tmp");
            if std::fs::create_dir_all(d)
                .and_then(|()| std::fs::write(&tmp, &bytes))
                .and_then(|()| std::fs::rename(&tmp, &path))
                .is_err()
            {
                tracing::warn!("bus: cannot write {}", path.display());
            }
        }
        match self.put(&self.object_name(p), &bytes) {
            Ok(()) => self.sum.snapshots += 1,
            Err(e) => tracing::warn!("bus: snapshot of partition {p}: {e}"),
        }
    }

    fn start_generation(
        &mut self,
        owned: Vec<u32>,
        members: &[String],
    ) -> Result<Generation, WorkerError> {
        let mut analyzer = Analyzer::from_config(&self.cfg);
        analyzer.keep_flows = false;
        let mut pre = crate::baseline::Baseline::new(&self.cfg.baseline);
        pre.keep_sightings();
        let mut parts = HashMap::new();
        let mut starts = Vec::new();
        for &p in &owned {
            let (st, from) = match self.load_snapshot(p) {
                Some(s) => {
                    if let Ok(env) = crate::state::decode(&s.state) {
                        for (name, bytes) in &env.sections {
                            if name == crate::baseline::SECTION && pre.merge(bytes).is_err() {
                                tracing::warn!("bus: partition {p}: baseline unreadable");
                            }
                        }
                        analyzer.restore_merging(env, std::path::Path::new(&self.object_name(p)));
                    }
                    (s.merge, s.resume_from)
                }
                None => (PartState::default(), 1),
            };
            let mut st = st;
            st.last_stream_seq = from.saturating_sub(1);
            for r in st.runs.values_mut() {
                r.released = r.applied;
            }
            parts.insert(p, st);
            starts.push((p, from));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Incoming>(256);
        let mut tasks = Vec::new();
        let c = self.bus.cfg.clone();
        for (p, from) in starts {
            let js = self.bus.js.clone();
            let tx = tx.clone();
            let stream = c.events_stream.clone();
            let subject = c.events_subject(p);
            tasks.push(self.bus.rt.spawn(async move {
                consume(js, stream, subject, from, tx, move |seq, payload| {
                    Incoming::Events(p, seq, payload)
                })
                .await;
            }));
        }
        {
            let js = self.bus.js.clone();
            let tx = tx.clone();
            let stream = c.sightings_stream.clone();
            let subject = c.sightings_subject();
            tasks.push(self.bus.rt.spawn(async move {
                consume(js, stream, subject, 1, tx, |_, payload| {
                    Incoming::Sightings(payload)
                })
                .await;
            }));
        }
        let mut runs = BTreeMap::new();
        for st in parts.values() {
            for r in st.runs.keys() {
                runs.insert(r.clone(), ());
            }
        }
        Ok(Generation {
            owned,
            epoch: epoch_of(members),
            others: members.iter().filter(|m| **m != self.id).cloned().collect(),
            parts,
            pre,
            home: self.cfg.home_net.clone(),
            held: VecDeque::new(),
            analyzer,
            remote: std::collections::BinaryHeap::new(),
            remote_wm: HashMap::new(),
            outgoing: Vec::new(),
            sent_wm: i64::MIN,
            rx,
            tasks,
            runs,
        })
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
                        for p in g.owned.clone() {
                            if now.contains(&p) {
                                self.save_snapshot(g, p);
                            }
                        }
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

    /// Marks the owned partitions analysed to the end of the known runs.
    fn mark_done(&mut self, g: &Generation) {
        let runs: Vec<Run> = g.runs.keys().cloned().collect();
        let Ok(bytes) = postcard::to_stdvec(&runs) else {
            return;
        };
        for &p in &g.owned {
            if let Err(e) = self.put(&format!("done-{}", self.object_name(p)), &bytes) {
                tracing::warn!("bus: partition {p}: end mark not saved: {e}");
            }
        }
    }

    /// Every partition (all workers') is marked done for every run this
    /// worker knows.
    fn all_done(&self, g: &Generation) -> bool {
        let n = u32::try_from(self.cfg.partitions.max(1)).unwrap_or(u32::MAX);
        (0..n).all(|p| {
            let got = self.fetch(&format!("done-{}", self.object_name(p)));
            got.and_then(|b| postcard::from_bytes::<Vec<Run>>(&b).ok())
                .is_some_and(|runs| g.runs.keys().all(|r| runs.contains(r)))
        })
    }

    fn save_all(&mut self, g: &mut Generation) {
        for p in g.owned.clone() {
            self.save_snapshot(g, p);
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
            let js = self.bus.js.clone();
            let msg = async_nats::jetstream::message::PublishMessage::build()
                .payload(bytes::Bytes::from(line.clone()))
                .message_id(&id);
            let subject = subject.clone();
            async move {
                let ack = js
                    .send_publish(subject, msg)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(5), ack)
                    .await
                    .map_err(|_| "no acknowledgement".to_owned())?
                    .map_err(|e| e.to_string())
            }
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
            let js = self.bus.js.clone();
            let subject = subject.clone();
            let bytes = bytes::Bytes::from(bytes.clone());
            async move {
                let ack = js
                    .publish(subject, bytes)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::time::timeout(Duration::from_secs(5), ack)
                    .await
                    .map_err(|_| "no acknowledgement".to_owned())?
                    .map_err(|e| e.to_string())
            }
        });
        match r {
            Ok(_) => g.sent_wm = wm,
            Err(e) => tracing::warn!("{e}; the other workers wait for this one"),
        }
    }
}

enum End {
    Rebalance,
    Done,
}

impl Generation {
    /// The key below which every owned partition has heard from every
    /// known run (`i64::MIN` before any run is known).
    fn input_watermark(&self) -> Ts {
        if self.runs.is_empty() {
            return i64::MIN;
        }
        let mut w = i64::MAX;
        for st in self.parts.values() {
            for run in self.runs.keys() {
                let rw = match st.runs.get(run) {
                    Some(r) if r.eof && r.queue.is_empty() => i64::MAX,
                    Some(r) if r.eof => r.queue.back().map_or(i64::MAX, |q| q.key),
                    Some(r) => r.watermark,
                    None => i64::MIN,
                };
                w = w.min(rw);
            }
        }
        w
    }

    /// Stage 1: releases every event the sensors' watermarks have passed,
    /// in key order, through the sightings pre-pass into `held`.
    fn merge(&mut self) -> usize {
        let w = self.input_watermark();
        let mut ready: Vec<Held> = Vec::new();
        for (&p, st) in &mut self.parts {
            for (run, r) in &mut st.runs {
                while r.queue.front().is_some_and(|q| q.key <= w) {
                    if let Some(q) = r.queue.pop_front() {
                        r.released = (q.seq, q.idx);
                        ready.push(Held {
                            key: q.key,
                            part: p,
                            run: run.clone(),
                            seq: q.seq,
                            idx: q.idx,
                            stream_seq: q.stream_seq,
                            ev: q.ev,
                        });
                    }
                }
            }
        }
        let n = ready.len();
        ready.sort_by(|a, b| {
            (a.key, &a.run, a.part, a.seq, a.idx).cmp(&(b.key, &b.run, b.part, b.seq, b.idx))
        });
        for h in ready {
            let (dir, feed) = crate::analysis::classify(&self.home, &h.ev);
            if feed {
                self.pre.observe(&h.ev, dir, &self.home);
                for (id, host, _) in self.pre.take_sightings() {
                    self.outgoing.push((h.key, id, host));
                }
            }
            self.held.push_back(h);
        }
        n
    }

    /// The other workers' sightings watermark: detection may pass keys
    /// below it.
    fn sightings_watermark(&self) -> Ts {
        self.others
            .iter()
            .map(|o| self.remote_wm.get(o).copied().unwrap_or(i64::MIN))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Stage 2: runs the detectors over held events every other worker's
    /// sightings have passed, each after the sightings up to its key.
    fn detect(&mut self, out: &mut Vec<Out>) -> u64 {
        let g = self.sightings_watermark();
        let passed = |k: Ts| g == i64::MAX || k < g;
        let mut n = 0u64;
        let mut evs: Vec<FlowEvent> = Vec::new();
        while let Some(k) = self.held.front().map(|h| h.key).filter(|&k| passed(k)) {
            // sightings up to this key first
            while let Some(std::cmp::Reverse(s)) = self.remote.peek().copied() {
                if s.0 > k {
                    break;
                }
                self.remote.pop();
                self.analyzer.baseline_mut().sighting(s.1, s.2, s.0);
            }
            let limit = self.remote.peek().map_or(i64::MAX, |r| r.0.0);
            evs.clear();
            while evs.len() < 1024 {
                let Some(h) = self.held.front() else { break };
                if !(passed(h.key) && h.key < limit) {
                    break;
                }
                let Some(h) = self.held.pop_front() else {
                    break;
                };
                if let Some(r) = self
                    .parts
                    .get_mut(&h.part)
                    .and_then(|st| st.runs.get_mut(&h.run))
                {
                    r.applied = (h.seq, h.idx);
                    r.applied_key = h.key;
                }
                evs.push(h.ev);
            }
            if evs.is_empty() {
                break;
            }
            n += evs.len() as u64;
            self.analyzer.on_batch(&mut evs, out);
        }
        n
    }

    /// Every known run has ended on every owned partition, every event is
    /// analysed, and every other worker has said the same.
    fn all_ended(&self) -> bool {
        !self.runs.is_empty()
            && self.held.is_empty()
            && self.input_watermark() == i64::MAX
            && self.sightings_watermark() == i64::MAX
    }

    /// The stream sequence partition `p` is to be read again from after a
    /// restore: the first that holds an event the detectors have not seen.
    fn resume_from(&self, p: u32) -> u64 {
        let Some(st) = self.parts.get(&p) else {
            return 1;
        };
        let queued = st
            .runs
            .values()
            .filter_map(|r| r.queue.front().map(|q| q.stream_seq));
        let held = self
            .held
            .iter()
            .filter(|h| h.part == p)
            .map(|h| h.stream_seq);
        queued.chain(held).min().unwrap_or(st.last_stream_seq + 1)
    }
}

/// Reads `subject` of `stream` from sequence `from` with an ordered
/// consumer (recreated by the client when a server goes away), forwarding
/// each message's stream sequence and payload.
async fn consume(
    js: async_nats::jetstream::Context,
    stream: String,
    subject: String,
    from: u64,
    tx: tokio::sync::mpsc::Sender<Incoming>,
    wrap: impl Fn(u64, bytes::Bytes) -> Incoming,
) {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let mut from = from.max(1);
    loop {
        let started = async {
            let s = js.get_stream(&stream).await.map_err(|e| e.to_string())?;
            let c = s
                .create_consumer(OrderedConfig {
                    filter_subject: subject.clone(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            c.messages().await.map_err(|e| e.to_string())
        }
        .await;
        let mut msgs = match started {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Incoming::Failed(format!("{subject}: {e}"))).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(m) = msgs.next().await {
            match m {
                Ok(m) => {
                    let seq = m.info().map_or(0, |i| i.stream_sequence);
                    if seq > 0 {
                        from = seq + 1;
                    }
                    if tx.send(wrap(seq, m.message.payload.clone())).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Incoming::Failed(format!("{subject}: {e}"))).await;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_leavers_share() {
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let two: Vec<String> = ["a", "c"].iter().map(|s| (*s).to_owned()).collect();
        let mut all = Vec::new();
        for m in &three {
            all.extend(owned_by(m, &three, 64));
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..64).collect::<Vec<u32>>(),
            "each partition has one owner"
        );
        for m in ["a", "c"] {
            let before = owned_by(m, &three, 64);
            let after = owned_by(m, &two, 64);
            assert!(
                before.iter().all(|p| after.contains(p)),
                "{m} keeps its partitions"
            );
        }
        for m in &three {
            let n = owned_by(m, &three, 64).len();
            assert!((12..=32).contains(&n), "{m} owns {n} of 64");
        }
        let two: Vec<String> = ["w1", "w2"].iter().map(|s| (*s).to_owned()).collect();
        let n = owned_by("w1", &two, 16).len();
        assert!((4..=12).contains(&n), "w1 owns {n} of 16");
    }
}
