//! The pipeline: threads, bounded channels, batching, back-pressure, shutdown.
//!
//! ```text
//! capture (this thread) --Batch of raw frames--> N flow shards (decode + flow table)
//!        ^                                          |            --Vec<FlowEvent>--> analysis (+ lanes) --Vec<Out>--> writer
//!        +------------- emptied batches ------------+   (recycled: no allocation in steady state)
//! ```
//!
//! - The capture thread only reads and steers: it finds the outermost IP
//!   address pair of each frame ([`crate::decode::steer_pair`], no full
//!   decode), picks the shard from a seeded symmetric hash of the pair, and
//!   puts the frame into that shard's batch: as an offset into a shared chunk
//!   of the file (classic pcap, [`crate::capture::chunked`]) or copied out of
//!   libpcap's buffer (pcapng, stdin, live). Both directions of a flow, its
//!   fragments and everything inside one tunnel land on one shard. Decoding
//!   happens in the shards, so it scales with them.
//! - Event vectors go back from analysis to the shards emptied, batches
//!   from the shards to the capture thread, chunks are reused once no batch
//!   points into them: nothing is allocated per batch in steady state.
//! - Each shard owns its [`Decoder`](crate::decode::Decoder) and [`FlowTable`]: no locks on the hot path.
//! - Live with `capture.threads` N > 1 ([`live_fanout`]): N sockets in one
//!   AF_PACKET fanout group, each read by a capture thread with a feeder of
//!   its own (own pending batches, same shards, pool, steering hash and
//!   queue budget); this thread then only supervises (link watch, summed
//!   statistics, reopening).
//! - Time is the packet clock. Every batch carries the capture clock, and
//!   every shard receives at least one batch per second of packet time (or
//!   per read timeout when live and idle), so idle timeouts fire on time.
//! - Replay applies back-pressure (blocking sends) and never drops. Live
//!   capture never blocks on a slow consumer: a batch that does not fit in a
//!   full shard channel is shed and counted.
//! - Stop (SIGINT/SIGTERM, end of input, output failure): the capture thread
//!   stops reading, sends what it has, and drops its senders; shards flush
//!   every flow, analysis finishes its detectors, the writer flushes; nothing
//!   already concluded is lost.

mod feeder;
mod lanes;
mod live;
mod replay;
mod shard;
mod summary;
mod writer;

pub use summary::{Accounting, Summary};

use crate::analysis::Analyzer;
use crate::capture::chunked::Chunk;
use crate::capture::watch::{Health, LinkWatch};
use crate::config::Config;
use crate::decode::LinkType;
use crate::evidence::{Request, Store};
use crate::flow::table::{FlowEvent, FlowTable};
use crate::sink::{Out, SinkError, Sinks};
use crate::time::{SEC, Ts};
use crossbeam_channel::bounded;
use feeder::Feeder;
use lanes::{analysis_thread, start_helpers};
use live::{live, live_fanout};
use replay::replay;
use shard::{Events, shard_thread};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;
use writer::{EvidenceTx, writer_thread};

use prometheus_client::metrics::gauge::Gauge;

/// Sets a queue's depth gauge (once per batch, from a thread at one end).
#[inline]
fn set_len(g: &Gauge, n: usize) {
    g.set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// One captured frame in a [`Batch`]: its bytes are `bytes[off..off + len]`.
#[derive(Clone, Copy, Debug)]
pub struct RawFrame {
    pub ts: Ts,
    pub wire_len: u32,
    pub off: u32,
    pub len: u32,
    pub link: LinkType,
}

/// Raw frames for one shard, and the bytes they point into: a chunk of the
/// file shared with the other shards (the classic pcap fast path, nothing
/// copied) or bytes copied out of libpcap's buffer (pcapng, stdin, live).
#[derive(Debug, Default)]
pub struct Batch {
    pub frames: Vec<RawFrame>,
    pub bytes: Vec<u8>,
    pub chunk: Option<Chunk>,
    /// Capture clock when the batch was sent.
    pub clock: Ts,
}

impl Batch {
    /// What the batch holds in memory, for the live queue's byte budget.
    #[inline]
    #[must_use]
    pub fn cost(&self) -> usize {
        self.bytes.len() + self.frames.len() * std::mem::size_of::<RawFrame>()
    }

    /// Empties the batch, keeping its capacity.
    fn clear(&mut self) {
        self.frames.clear();
        self.bytes.clear();
        self.chunk = None; // the capture thread reuses the chunk once no batch holds it
    }

    /// The bytes of frame `f` of this batch.
    #[inline]
    #[must_use]
    pub fn data(&self, f: &RawFrame) -> &[u8] {
        let buf = self
            .chunk
            .as_deref()
            .map_or(self.bytes.as_slice(), Vec::as_slice);
        let (off, len) = (f.off as usize, f.len as usize);
        buf.get(off..off + len).unwrap_or(&[])
    }
}

/// Live: slots of each capture->shard channel. The byte budget
/// (`capture.queue_mb`) is what bounds the queue; the slots only have to
/// outnumber the batches that fit in it (small batches sent on the read
/// timeout included).
const LIVE_CHANNEL_SLOTS: usize = 1024;

/// Why live capture shed packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// The shard's queue was full (its byte budget or its slots) and the
    /// batch waiting for room reached its cap.
    QueueFull = 0,
    /// The shard had stopped (a panic): nothing can take its packets.
    ShardGone = 1,
}

impl Shed {
    pub const ALL: [Self; 2] = [Self::QueueFull, Self::ShardGone];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::ShardGone => "shard_gone",
        }
    }
}

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum Input {
    /// pcap/pcapng files read in order as one stream (`-` = stdin).
    Files(Vec<PathBuf>),
    /// A live interface.
    Live(String),
}

/// CPU time (user + system) the calling thread has used, seconds.
#[must_use]
pub fn thread_cpu_s() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD).map_or(0.0, |u| {
        #[allow(clippy::cast_precision_loss)]
        let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// Starts a named pipeline thread; failing to is an error of the run.
fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, SinkError> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| SinkError {
            name: "thread".into(),
            what: "cannot start",
            err: e,
        })
}

/// Set by SIGHUP: the writer reopens its output files.
pub static REOPEN: std::sync::LazyLock<Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Set by a program that exits as soon as [`run`] returns (the `deguchi`
/// binary): the shards and the analysis thread then leave their flow tables
/// and detector state to the operating system instead of freeing them one
/// allocation at a time, as compilers do for their own data at exit (LLVM's
/// `-disable-free`). Everything they concluded has been sent on by then; a
/// 2 M-packet replay saved about 10 ms of a 300 ms run, all of it after the
/// last packet. Leave unset when calling [`run`] more than once.
pub static EXIT_AFTER_RUN: AtomicBool = AtomicBool::new(false);

/// Drops `x`, or leaks it if the process is about to exit ([`EXIT_AFTER_RUN`]).
fn dispose<T>(x: T) {
    if EXIT_AFTER_RUN.load(Ordering::Relaxed) {
        std::mem::forget(x);
    }
}

/// Runs the pipeline to the end of input (or until `stop`).
///
/// # Errors
/// Only failures to start (an output cannot be opened). Input and output
/// errors during the run are reported in the [`Summary`].
pub fn run(cfg: &Config, input: &Input, stop: &Arc<AtomicBool>) -> Result<Summary, SinkError> {
    let started = Instant::now();
    // live: before any thread starts, so every one inherits it
    let _priority = if matches!(input, Input::Live(_)) {
        live::raise_priority(cfg)
    } else {
        None
    };
    let publisher = if cfg.bus.publish {
        let live = matches!(input, Input::Live(_));
        let bus = crate::bus::sensor::connect(&cfg.bus, live, stop).map_err(|e| SinkError {
            name: cfg.bus.servers.join(","),
            what: "cannot reach the bus",
            err: std::io::Error::other(e.to_string()),
        })?;
        Some(crate::bus::sensor::Publisher::new(
            bus,
            cfg.home_net.clone(),
            cfg.partitions,
            matches!(input, Input::Live(_)),
            Arc::clone(stop),
        ))
    } else {
        None
    };
    let is_live = matches!(input, Input::Live(_));
    // replay waits for a slow reader (nothing is lost); live drops, counted
    let policy = crate::sink::QueuePolicy {
        block: !is_live,
        bytes: usize::try_from(u64::from(cfg.output.queue_mb) << 20).unwrap_or(usize::MAX),
    };
    let mut sinks = Sinks::open(
        cfg.output.alerts.as_ref(),
        cfg.output.flows.as_ref(),
        policy,
    )?;
    sinks.state.clone_from(&cfg.state.path);
    sinks.stats_every = cfg.output.stats_interval_s;
    sinks.add_syslog(&cfg.output.syslog)?;
    let shards = cfg.shard_count();
    let tcfg = cfg.table_config(shards);
    let depth = cfg.channel_batches;
    let (ev_tx, ev_rx) = bounded::<Vec<FlowEvent>>(depth * shards);
    let (ev_back, ev_pool) = bounded::<Vec<FlowEvent>>(depth * shards + shards);
    let (out_tx, out_rx) = bounded::<Vec<Out>>(depth * 4);
    // live: a byte budget bounds the queues, the channels only need slots
    let slots = if is_live {
        depth.max(LIVE_CHANNEL_SLOTS)
    } else {
        depth
    };
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let evidence_dir = match &cfg.evidence.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| SinkError {
                name: d.display().to_string(),
                what: "cannot create the evidence directory",
                err: e,
            })?;
            Some(d.clone())
        }
        None => None,
    };
    let mut evidence_txs = Vec::new();
    let (pool_tx, pool_rx) = bounded::<Batch>(slots * shards + shards * 2);
    let mut txs = Vec::new();
    let mut depths = Vec::new();
    let mut shard_handles = Vec::new();
    for i in 0..shards {
        let (tx, rx) = bounded::<Batch>(slots);
        txs.push(tx);
        let table = FlowTable::new(tcfg.clone());
        let ev = Events {
            tx: ev_tx.clone(),
            pool: ev_pool.clone(),
            depth: crate::metrics::m().queue("shard->analysis", depth * shards),
        };
        depths.push(crate::metrics::m().queue(&format!("capture->shard-{i}"), slots));
        let pool_tx = pool_tx.clone();
        let q = is_live.then(|| Arc::clone(&queued_bytes));
        let store = evidence_dir.as_ref().map(|_| {
            let (etx, erx) = bounded::<Request>(1024);
            evidence_txs.push(etx);
            let budget = usize::try_from(cfg.evidence.memory_mb << 20).unwrap_or(usize::MAX);
            Store::new(&cfg.evidence, budget / shards.max(1), erx)
        });
        shard_handles.push(spawn(format!("shard-{i}"), move || {
            shard_thread(i, table, rx, pool_tx, ev, q, store)
        })?);
    }
    drop((ev_tx, ev_pool));
    drop(pool_tx);
    let mut analyzer = Analyzer::from_config(cfg);
    analyzer.keep_flows = sinks.wants_flows();
    if let Some(p) = &cfg.state.path {
        analyzer.state_every = Some(i64::try_from(cfg.state.interval_s).unwrap_or(300) * SEC);
        if let Some(env) = crate::state::load(p) {
            analyzer.restore(env, p);
        }
    }
    // One analysis thread (fewer than 4 cores): the partitions are still
    // dealt to two lanes, both run here, and once the input has ended the second moves
    // to a spare thread, so the flush of the flows still open at the end
    // (40 % of them in the mix benchmark) is analysed on two cores. Not on a
    // single core, where the split would only add the merge.
    let input_done = Arc::new(AtomicBool::new(false));
    let lanes = cfg.analysis_thread_count();
    let (lanes, spare) = if lanes == 1 && cfg.end_of_input_split() && analyzer.split_local(2) {
        (Vec::new(), true)
    } else {
        (analyzer.split_off(lanes), false)
    };
    let helpers = start_helpers(
        lanes,
        spare,
        analyzer.state_every.is_some(),
        Arc::clone(&input_done),
    )?;
    let an = match publisher {
        // sensor mode: the events go to the bus instead
        Some(p) => {
            drop((analyzer, helpers));
            let keep = sinks.writes_flows();
            spawn("publish".into(), move || {
                crate::bus::sensor::publisher_thread(p, keep, &ev_rx, &ev_back, &out_tx)
            })?
        }
        None => spawn("analysis".into(), move || {
            analysis_thread(analyzer, helpers, ev_rx, ev_back, out_tx)
        })?,
    };
    let stop_w = Arc::clone(stop);
    let reopen = Arc::clone(&REOPEN);
    let disk_budget = cfg.evidence.disk_mb << 20;
    let evid_tx = evidence_dir.clone().map(|dir| EvidenceTx {
        dir,
        disk_budget,
        shards: evidence_txs,
        last_prune: Instant::now(),
        made: match input {
            Input::Files(f) if !f.iter().any(|p| p.as_os_str() == "-") => Some(Vec::new()),
            _ => None,
        },
    });
    // link-health events, capture -> writer (never blocking the capture)
    let (health_tx, health_rx) = bounded::<Health>(256);
    let wr = spawn("writer".into(), move || {
        writer_thread(sinks, out_rx, stop_w, reopen, evid_tx, health_rx)
    })?;

    let mut feeder = Feeder {
        pending: (0..shards).map(|_| Batch::default()).collect(),
        txs,
        pool: pool_rx,
        hasher: crate::flow::key::KeyHasher::new(),
        batch_size: cfg.batch_size,
        clock: i64::MIN,
        last_tick: i64::MIN,
        live: is_live,
        packets: 0,
        wire_bytes: 0,
        shed: 0,
        shed_by: [0; 2],
        queued_bytes,
        queue_budget: usize::try_from(u64::from(cfg.capture.queue_mb) << 20).unwrap_or(usize::MAX),
        batches_c: crate::metrics::m().stage("capture"),
        depths,
        dedup: (cfg.capture.dedup_window_ms > 0)
            .then(|| crate::capture::dedup::Dedup::new(cfg.capture.dedup_window_ms)),
        published: [0; 4],
        tally: None,
    };
    let mut summary = Summary {
        shards,
        ..Summary::default()
    };
    match input {
        Input::Files(files) => replay(&mut feeder, files, stop, &mut summary),
        Input::Live(iface) => {
            let watch = LinkWatch::new(iface, cfg.capture.idle_warn_s).with_health(Some(health_tx));
            if cfg.capture.threads > 1 {
                live_fanout(&mut feeder, iface, cfg, stop, &mut summary, watch);
            } else {
                live(&mut feeder, iface, cfg, stop, &mut summary, watch);
            }
        }
    }
    input_done.store(true, Ordering::Relaxed);
    summary.interrupted = stop.load(Ordering::SeqCst);
    // drain: send what is pending, then close the shard channels
    feeder.finish();
    for h in shard_handles {
        if let Ok(o) = h.join() {
            summary
                .cpu
                .push((format!("shard-{}", summary.cpu.len()), o.cpu_s));
            let c = o.counters;
            summary.table.flows_created += c.flows_created;
            summary.table.flows_ended += c.flows_ended;
            summary.table.evicted += c.evicted;
            summary.table.peak_flows += c.peak_flows;
            summary.table.emergencies += c.emergencies;
            summary.decode.add(&o.decode);
            summary.decoded += o.decoded;
            if evidence_dir.is_some() {
                let e = summary.evidence.get_or_insert_default();
                e.files += o.evidence.files;
                e.packets += o.evidence.packets;
                e.evicted += o.evidence.evicted;
                e.errors += o.evidence.errors;
            }
        }
    }
    let capture_cpu = thread_cpu_s();
    if let Ok((c, state)) = an.join() {
        summary.cpu.extend(c);
        summary.detectors = state;
    }
    summary.cpu.insert(0, ("capture".into(), capture_cpu));
    for (i, c) in summary.fanout_cpu.iter().enumerate() {
        summary.cpu.insert(i + 1, (format!("capture-{i}"), *c));
    }
    if let Ok(w) = wr.join() {
        summary.cpu.push(("writer".into(), w.cpu_s));
        summary.cpu.push(("output".into(), w.output_cpu_s));
        summary.flows_written = w.flows;
        summary.alerts_written = w.alerts;
        summary.output_error = w.error;
        summary.output_dropped = w.dropped;
        if let (Input::Files(files), false) = (input, w.made.is_empty() || summary.interrupted) {
            // replay: each alert's pcap again from the files, with the
            // packets after the alert the shards had gone past
            let (n, p) = crate::evidence::rewrite_from_files(files, &w.made, &cfg.evidence);
            if let Some(e) = summary.evidence.as_mut() {
                e.files = n;
                e.packets = p;
            }
        }
    }
    if let Some(d) = &evidence_dir {
        crate::evidence::prune(d, disk_budget);
    }
    summary.packets = feeder.packets;
    summary.wire_bytes = feeder.wire_bytes;
    summary.shed_packets = feeder.shed;
    summary.shed_by = feeder.shed_by;
    summary.duplicates = feeder.duplicates();
    summary.elapsed = started.elapsed();
    Ok(summary)
}
