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
//! - Each shard owns its [`Decoder`] and [`FlowTable`]: no locks on the hot path.
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

use crate::analysis::{Analyzer, Lane, LaneOut, Sections, Step};
use crate::capture::chunked::{Chunk, ChunkedFile, Rec};
use crate::capture::file::FileSource;
use crate::capture::live::{LiveSource, LiveStats};
use crate::capture::watch::{Health, LinkWatch};
use crate::capture::{CaptureError, Frame, Next};
use crate::config::Config;
use crate::decode::{DecodeCounters, DecodeError, DecodeWarning, Decoder, LinkType, PacketMeta};
use crate::evidence::{EvidenceCounters, Request, Store};
use crate::flow::table::{FlowEvent, FlowTable, Located, TableCounters};
use crate::sink::{Out, SinkError, Sinks};
use crate::time::{SEC, Ts};
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
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

/// A batch is sent early once its frames hold this many bytes (live capture
/// with a large snaplen), so batches in flight stay small.
const BATCH_BYTES: usize = 1 << 20;

/// Live: a shard's batch waiting for room in a full queue keeps growing up
/// to this many times a batch's size (frames or bytes) before it is shed.
const HOLD_BATCHES: usize = 4;

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

/// What a run did, for the exit summary and the exit code.
#[derive(Debug, Default)]
pub struct Summary {
    pub packets: u64,
    pub wire_bytes: u64,
    pub decoded: u64,
    pub decode: DecodeCounters,
    pub table: TableCounters,
    pub flows_written: u64,
    pub alerts_written: u64,
    pub shed_packets: u64,
    /// Shed packets by reason ([`Shed`]).
    pub shed_by: [u64; 2],
    /// Packets dropped as SPAN duplicates (`capture.dedup_window_ms`).
    pub duplicates: u64,
    /// Evidence pcaps written (`--evidence`), all shards.
    pub evidence: Option<EvidenceCounters>,
    pub elapsed: Duration,
    pub input_errors: Vec<CaptureError>,
    pub output_error: Option<SinkError>,
    /// File/stdout outputs that dropped lines (live, reader too slow): (name, lines).
    pub output_dropped: Vec<(String, u64)>,
    pub live: Option<LiveStats>,
    /// Link changes and silences (live).
    pub link: crate::capture::watch::LinkCounters,
    pub interrupted: bool,
    pub shards: usize,
    /// CPU time each stage's thread used: (stage, seconds).
    pub cpu: Vec<(String, f64)>,
    /// One line per detector on the state it held at the end.
    pub detectors: Vec<String>,
    /// CPU seconds of each fanout capture thread (`capture.threads` > 1).
    pub fanout_cpu: Vec<f64>,
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

impl Summary {
    /// Human-readable summary for stderr.
    #[must_use]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = String::new();
        #[allow(clippy::cast_precision_loss)]
        let pps = self.packets as f64 / secs;
        let _ = writeln!(
            s,
            "deguchi: {} packets, {} wire bytes, {} decoded to flows, {} flows ({} written), {} alerts, {:.2} s, {:.0} packets/s, {} shard(s)",
            self.packets,
            self.wire_bytes,
            self.decoded,
            self.table.flows_created,
            self.flows_written,
            self.alerts_written,
            secs,
            pps,
            self.shards
        );
        let errs: Vec<String> = DecodeError::ALL
            .iter()
            .filter(|e| self.decode.errors[**e as usize] > 0)
            .map(|e| format!("{}={}", e.as_str(), self.decode.errors[*e as usize]))
            .collect();
        let warns: Vec<String> = DecodeWarning::ALL
            .iter()
            .filter(|w| self.decode.warnings[**w as usize] > 0)
            .map(|w| format!("{}={}", w.as_str(), self.decode.warnings[*w as usize]))
            .collect();
        let _ = writeln!(
            s,
            "deguchi: not decoded: {}; anomalies: {}; tunneled={} fragments={}; flows evicted={} peak={} emergency={}; shed packets={}{}{}",
            if errs.is_empty() {
                "none".to_owned()
            } else {
                errs.join(" ")
            },
            if warns.is_empty() {
                "none".to_owned()
            } else {
                warns.join(" ")
            },
            self.decode.tunneled,
            self.decode.fragments,
            self.table.evicted,
            self.table.peak_flows,
            self.table.emergencies,
            self.shed_packets,
            if self.shed_packets == 0 {
                String::new()
            } else {
                let by: Vec<String> = Shed::ALL
                    .iter()
                    .map(|r| format!("{}={}", r.as_str(), self.shed_by[*r as usize]))
                    .collect();
                format!(" ({})", by.join(" "))
            },
            if self.duplicates == 0 {
                String::new()
            } else {
                format!("; SPAN duplicates removed={}", self.duplicates)
            }
        );
        if !self.cpu.is_empty() {
            let parts: Vec<String> = self
                .cpu
                .iter()
                .map(|(n, c)| format!("{n}={c:.2}"))
                .collect();
            let _ = writeln!(s, "deguchi: cpu seconds by stage: {}", parts.join(" "));
        }
        if !self.detectors.is_empty() {
            let _ = writeln!(s, "deguchi: detector state: {}", self.detectors.join("; "));
        }
        for (name, n) in &self.output_dropped {
            let _ = writeln!(
                s,
                "deguchi: output {name}: {n} lines dropped (queue full: the reader was too slow)"
            );
        }
        if let Some(e) = self.evidence {
            let _ = writeln!(
                s,
                "deguchi: evidence: {} pcaps, {} packets, {} flows' rings evicted for room, {} write errors",
                e.files, e.packets, e.evicted, e.errors
            );
        }
        if let Some(l) = self.live {
            let a = Accounting::of(&l, self.packets, self.shed_packets, self.duplicates);
            let k = self.link;
            let _ = writeln!(
                s,
                "deguchi: capture: {}; link down={} up={} idle={} reopened={}",
                a.totals(),
                k.down,
                k.up,
                k.idle,
                k.reopened
            );
        }
        s
    }
}

/// Where every packet the kernel counted went:
/// `processed = received - dropped - shed - unread`, always (all 64-bit).
/// `unread` is what the kernel counted but deguchi had not read when the
/// totals were taken: packets in the capture buffer, or arrived after the
/// last read at exit; 0 on a link quiet at the time. Negative only when the
/// kernel's counters could not be read at the end (interface gone) and are
/// older than the last packets read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
    pub shed: u64,
    /// SPAN duplicates dropped (`capture.dedup_window_ms`).
    pub duplicates: u64,
    pub processed: u64,
    pub unread: i64,
}

impl Accounting {
    /// From the kernel's totals and deguchi's: packets read, packets shed.
    #[must_use]
    pub fn of(l: &LiveStats, read: u64, shed: u64, duplicates: u64) -> Self {
        let signed = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        Self {
            received: l.received,
            dropped: l.dropped,
            if_dropped: l.if_dropped,
            shed,
            duplicates,
            processed: read.saturating_sub(shed).saturating_sub(duplicates),
            unread: signed(l.received) - signed(l.dropped) - signed(read),
        }
    }

    /// `received=.. dropped_by_kernel=.. dropped_by_interface=.. shed=..
    /// [duplicates=..] processed=.. unread=..` (duplicates when any)
    #[must_use]
    pub fn totals(&self) -> String {
        let dups = if self.duplicates > 0 {
            format!(" duplicates={}", self.duplicates)
        } else {
            String::new()
        };
        format!(
            "received={} dropped_by_kernel={} dropped_by_interface={} shed={}{dups} processed={} unread={}",
            self.received, self.dropped, self.if_dropped, self.shed, self.processed, self.unread
        )
    }

    /// The periodic line: what changed since `prev`, `secs` ago, as deltas
    /// and rates, then the totals.
    #[must_use]
    pub fn since(&self, prev: &Self, secs: f64, wire_bytes: u64) -> String {
        let secs = secs.max(1e-3);
        #[allow(clippy::cast_precision_loss)]
        let rate = |x: u64| x as f64 / secs;
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let processed = d(self.processed, prev.processed);
        format!(
            "last {secs:.0} s: received +{} ({:.0}/s) dropped_by_kernel +{} dropped_by_interface +{} shed +{} processed +{} ({:.0}/s, {:.1} Mbit/s read); totals: {}",
            d(self.received, prev.received),
            rate(d(self.received, prev.received)),
            d(self.dropped, prev.dropped),
            d(self.if_dropped, prev.if_dropped),
            d(self.shed, prev.shed),
            processed,
            rate(processed),
            rate(wire_bytes) * 8.0 / 1e6,
            self.totals()
        )
    }
}

struct ShardOut {
    evidence: EvidenceCounters,
    cpu_s: f64,
    counters: TableCounters,
    decode: DecodeCounters,
    decoded: u64,
}

/// Event vectors travel shard -> analysis and come back emptied, so neither
/// side allocates them in steady state (nor frees on another thread).
struct Events {
    tx: Sender<Vec<FlowEvent>>,
    pool: Receiver<Vec<FlowEvent>>,
    /// `deguchi_queue_depth{queue="shard->analysis"}`.
    depth: Gauge,
}

impl Events {
    /// Sends `v` (if it holds events) and leaves an empty recycled vector in
    /// its place; false once analysis is gone.
    fn send(&self, v: &mut Vec<FlowEvent>) -> bool {
        if v.is_empty() {
            return true;
        }
        let next = self.pool.try_recv().unwrap_or_default();
        let ok = self.tx.send(std::mem::replace(v, next)).is_ok();
        set_len(&self.depth, self.tx.len());
        ok
    }
}

/// Packets a shard decodes ahead of updating them (see [`FlowTable::locate`]).
const AHEAD: usize = 8;
/// Packets between a packet's hint-slot prefetch and its entry prefetch.
const STAGE2: usize = 4;

/// A packet decoded and located, waiting for its flow update.
#[derive(Default)]
struct Ahead {
    m: PacketMeta,
    at: Located,
    hints: Vec<u8>,
}

impl Ahead {
    fn apply(&self, table: &mut FlowTable, clock: &mut Ts, events: &mut Vec<FlowEvent>) {
        // expire in packet time as packets arrive, not only per batch
        if self.m.ts >= clock.saturating_add(SEC) {
            *clock = self.m.ts;
            table.expire(*clock, events);
        }
        table.update_located(&self.m, &self.at, &self.hints, events);
    }
}

fn shard_thread(
    id: usize,
    mut table: FlowTable,
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    tx: Events,
    queued_bytes: Option<Arc<AtomicUsize>>,
    mut evidence: Option<Store>,
) -> ShardOut {
    let mut decoder = Decoder::default();
    // packets decoded and located ahead of their update, each with its own
    // hint bytes: while packet i updates its flow, the entries of packets
    // i+1..i+AHEAD-1 are already on their way into the cache
    let mut ring: [Ahead; AHEAD] = std::array::from_fn(|_| Ahead::default());
    let (mut head, mut queued) = (0usize, 0usize);
    let mut decoded = 0u64;
    let mut events = Vec::new();
    let mut clock = i64::MIN;
    let mut published = crate::metrics::ShardDelta::default();
    let m = crate::metrics::m();
    let label = crate::metrics::ShardLabel {
        shard: id.to_string(),
    };
    let batches_c = m.stage(&format!("shard-{id}"));
    let packets_c = m.shard_packets.get_or_create_owned(&label);
    let events_c = m.shard_events.get_or_create_owned(&label);
    let depth = m.queue(&format!("capture->shard-{id}"), rx.capacity().unwrap_or(0));
    for mut b in &rx {
        batches_c.inc();
        set_len(&depth, rx.len());
        packets_c.inc_by(b.frames.len() as u64);
        if let Some(q) = &queued_bytes {
            // off the live queue: its bytes no longer count against the budget
            q.fetch_sub(b.cost(), Ordering::Relaxed);
        }
        for f in &b.frames {
            if queued == AHEAD {
                ring[head].apply(&mut table, &mut clock, &mut events);
                head = (head + 1) % AHEAD;
                queued -= 1;
            }
            let slot = &mut ring[(head + queued) % AHEAD];
            slot.hints.clear();
            let (m, hints) = (&mut slot.m, &mut slot.hints);
            if decoder
                .decode_into(f.link, b.data(f), f.wire_len, f.ts, hints, m)
                .is_err()
            {
                continue;
            }
            decoded += 1;
            if let Some(ev) = evidence.as_mut() {
                ev.record(&slot.m, f.link, b.data(f));
            }
            slot.at = table.locate(&slot.m);
            queued += 1;
            if queued > STAGE2 {
                // the packet STAGE2 behind this one: its hint slot has had
                // time to arrive; now its flow entry starts loading
                table.prefetch_entry(&ring[(head + queued - 1 - STAGE2) % AHEAD].at);
            }
        }
        while queued > 0 {
            ring[head].apply(&mut table, &mut clock, &mut events);
            head = (head + 1) % AHEAD;
            queued -= 1;
        }
        clock = clock.max(b.clock);
        table.expire(clock, &mut events);
        published.publish(decoded, &decoder.counters, &table.counters);
        events_c.inc_by(events.len() as u64);
        if !tx.send(&mut events) {
            break;
        }
        if let Some(ev) = evidence.as_mut() {
            ev.serve();
        }
        b.clear();
        let _ = recycle.try_send(b);
    }
    loop {
        let done = table.flush_some(1024, &mut events);
        events_c.inc_by(events.len() as u64);
        if !tx.send(&mut events) || done {
            break;
        }
    }
    published.publish(decoded, &decoder.counters, &table.counters);
    // analysis may finish now; the alerts of the final flush still ask for
    // their packets until the writer is done
    drop(tx);
    let ev_counters = evidence
        .as_mut()
        .map_or_else(EvidenceCounters::default, |ev| {
            ev.serve_to_end();
            ev.counters
        });
    let out = ShardOut {
        evidence: ev_counters,
        cpu_s: thread_cpu_s(),
        counters: table.counters.clone(),
        decode: decoder.counters,
        decoded,
    };
    dispose(table);
    out
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

/// A batch for the helper lanes: the events and their steps, read-only.
type Job = Arc<(Vec<FlowEvent>, Vec<Step>)>;

/// What a helper lane hands back at the end: its last alerts, its state
/// sections (for the final snapshot), its state counts, its CPU seconds.
type LaneEnd = (LaneOut, Sections, Vec<(&'static str, Vec<u64>)>, f64);

/// A detector lane on a thread of its own: runs every batch the analysis
/// thread plans, alongside the analysis thread's own lane. The thread gets
/// its lane through `give`: at once, or (the end-of-input split, see
/// [`run`]) only when the input has ended.
struct Helper {
    /// `Some` until the lane is handed over.
    give: Option<Sender<Lane>>,
    jobs: Sender<Job>,
    results: Receiver<LaneOut>,
    handle: std::thread::JoinHandle<Option<LaneEnd>>,
    /// The lane has stopped (reported once).
    dead: bool,
}

impl Helper {
    /// Starts a helper thread waiting for its lane.
    fn start(k: usize, snapshots: bool) -> Result<Self, SinkError> {
        let (give, lane_rx) = bounded::<Lane>(1);
        let (jobs, job_rx) = bounded::<Job>(1);
        let (res_tx, results) = bounded::<LaneOut>(1);
        let handle = spawn(format!("analysis-{k}"), move || {
            // no lane: the input ended before one was handed over
            let lane = lane_rx.recv().ok()?;
            Some(helper_thread(lane, &job_rx, &res_tx, snapshots))
        })?;
        Ok(Self {
            give: Some(give),
            jobs,
            results,
            handle,
            dead: false,
        })
    }

    /// Hands the lane over; gives it back if the thread is gone.
    fn give(&mut self, lane: Lane) -> Result<(), Lane> {
        match self.give.take() {
            Some(g) => g.send(lane).map_err(|e| e.into_inner()),
            None => Err(lane),
        }
    }
}

fn helper_thread(
    mut lane: Lane,
    jobs: &Receiver<Job>,
    results: &Sender<LaneOut>,
    snapshots: bool,
) -> LaneEnd {
    for job in jobs {
        let mut o = LaneOut::default();
        lane.run(&job.0, &job.1, &mut o);
        // the analysis thread takes the batch back once every lane is done
        drop(job);
        if results.send(o).is_err() {
            break;
        }
    }
    let mut o = LaneOut::default();
    lane.finish(&mut o);
    let sections = if snapshots {
        lane.sections()
    } else {
        Vec::new()
    };
    let end = (o, sections, lane.state_counts(), thread_cpu_s());
    dispose(lane);
    end
}

/// CPU seconds of the analysis thread and of each helper lane, and the
/// detectors' state summaries.
type AnalysisEnd = (Vec<(String, f64)>, Vec<String>);

/// The analysis thread's helpers: `active` run their lanes from the start;
/// `spare` (the end-of-input split) get the analyzer's last local lane
/// once `input_done` is set.
struct Helpers {
    active: Vec<Helper>,
    spare: Option<Helper>,
    input_done: Arc<AtomicBool>,
}

/// Starts a thread for each helper lane, and a spare one if `spare`.
fn start_helpers(
    lanes: Vec<Lane>,
    spare: bool,
    snapshots: bool,
    input_done: Arc<AtomicBool>,
) -> Result<Helpers, SinkError> {
    let mut active = Vec::new();
    for (k, lane) in lanes.into_iter().enumerate() {
        let mut h = Helper::start(k + 1, snapshots)?;
        // the thread was just started and waits for it
        if h.give(lane).is_ok() {
            active.push(h);
        }
    }
    let spare = if spare {
        Some(Helper::start(1, snapshots)?)
    } else {
        None
    };
    Ok(Helpers {
        active,
        spare,
        input_done,
    })
}

fn analysis_thread(
    mut an: Analyzer,
    mut hs: Helpers,
    rx: Receiver<Vec<FlowEvent>>,
    back: Sender<Vec<FlowEvent>>,
    tx: Sender<Vec<Out>>,
) -> AnalysisEnd {
    let mut out = Vec::new();
    let mut more = Vec::new();
    let m = crate::metrics::m();
    let batches_c = m.stage("analysis");
    let in_depth = m.queue("shard->analysis", rx.capacity().unwrap_or(0));
    let out_depth = m.queue("analysis->writer", tx.capacity().unwrap_or(0));
    for mut evs in &rx {
        batches_c.inc();
        set_len(&in_depth, rx.len());
        if hs.spare.is_some() && hs.input_done.load(Ordering::Relaxed) {
            // the end of input: what is left is the flush of every open
            // flow, with the capture and shard threads idle; the last lane
            // moves to the spare thread and the two work side by side
            if let (Some(mut h), Some(lane)) = (hs.spare.take(), an.pop_lane()) {
                match h.give(lane) {
                    Ok(()) => hs.active.push(h),
                    Err(lane) => an.push_lane(lane),
                }
            }
        }
        let helpers = &mut hs.active;
        if helpers.is_empty() {
            an.on_batch(&mut evs, &mut out);
        } else {
            let plan = an.plan(&mut evs);
            let job: Job = Arc::new((evs, plan));
            for h in helpers.iter() {
                let _ = h.jobs.send(Arc::clone(&job));
            }
            an.run_lanes(&job.0, &job.1);
            more.clear();
            for (k, h) in helpers.iter_mut().enumerate() {
                match h.results.recv() {
                    Ok(o) => more.push(o),
                    Err(_) => {
                        // only a panic in a detector ends a lane early
                        if !h.dead {
                            h.dead = true;
                            tracing::error!(
                                "analysis lane {} stopped; its detectors report nothing more",
                                k + 1
                            );
                        }
                        more.push(LaneOut::default());
                    }
                }
            }
            // every helper dropped its handle before answering
            let mut job = job;
            let (batch, plan) = loop {
                match Arc::try_unwrap(job) {
                    Ok(x) => break x,
                    Err(j) => {
                        job = j;
                        std::thread::yield_now();
                    }
                }
            };
            evs = batch;
            an.merge(&mut evs, &plan, &mut more, &mut out);
            an.recycle_plan(plan);
        }
        let _ = back.try_send(evs);
        if !out.is_empty() && tx.send(std::mem::take(&mut out)).is_err() {
            break;
        }
        set_len(&out_depth, tx.len());
    }
    let mut ends = Vec::new();
    let mut cpu = Vec::new();
    let mut counts = Vec::new();
    // a spare that never got its lane ends with nothing
    drop(hs.spare.take());
    for (k, h) in hs.active.into_iter().enumerate() {
        drop(h.jobs);
        if let Ok(Some((o, sections, s, c))) = h.handle.join() {
            ends.push((o, sections));
            counts.extend(s);
            cpu.push((format!("analysis-{}", k + 1), c));
        }
    }
    let summary = an.state_summary(&counts);
    an.finish_with(ends, &mut out);
    if !out.is_empty() {
        let _ = tx.send(out);
    }
    cpu.insert(0, ("analysis".to_owned(), thread_cpu_s()));
    dispose(an);
    (cpu, summary)
}

struct WriterOut {
    dropped: Vec<(String, u64)>,
    output_cpu_s: f64,
    cpu_s: f64,
    flows: u64,
    alerts: u64,
    error: Option<SinkError>,
    /// Replay: every alert's pcap, to be written again from the files.
    made: Vec<crate::evidence::Made>,
}

/// The writer's side of `--evidence`: names each alert's pcap and asks the
/// shards for it.
struct EvidenceTx {
    dir: PathBuf,
    disk_budget: u64,
    shards: Vec<Sender<Request>>,
    last_prune: Instant,
    /// Replay of files: the pcaps named, for the second pass
    /// ([`crate::evidence::rewrite_from_files`]); `None` live or from stdin.
    made: Option<Vec<crate::evidence::Made>>,
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

fn writer_thread(
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

/// The capture side: steering, per-shard pending batches, channels.
struct Feeder {
    pending: Vec<Batch>,
    txs: Vec<Sender<Batch>>,
    pool: Receiver<Batch>,
    hasher: crate::flow::key::KeyHasher,
    batch_size: usize,
    clock: Ts,
    last_tick: Ts,
    live: bool,
    packets: u64,
    wire_bytes: u64,
    shed: u64,
    shed_by: [u64; 2],
    /// Live: bytes in the shard queues (sent, not yet taken by a shard),
    /// and the most they may hold.
    queued_bytes: Arc<AtomicUsize>,
    queue_budget: usize,
    /// `deguchi_stage_batches_total{stage="capture"}` and the depth of
    /// each shard's queue.
    batches_c: Counter,
    depths: Vec<Gauge>,
    /// SPAN duplicate removal (`capture.dedup_window_ms`).
    dedup: Option<crate::capture::dedup::Dedup>,
    /// Totals already added to the process metrics.
    published: [u64; 4],
    /// Fanout: this feeder's totals for the supervising thread (packets,
    /// wire bytes, shed, duplicates), stored at each send.
    tally: Option<Arc<Tally>>,
}

/// A capture thread's totals, read by the thread that supervises it.
#[derive(Default)]
struct Tally {
    packets: std::sync::atomic::AtomicU64,
    wire_bytes: std::sync::atomic::AtomicU64,
    shed: std::sync::atomic::AtomicU64,
    duplicates: std::sync::atomic::AtomicU64,
}

impl Feeder {
    /// Packets dropped as SPAN duplicates.
    fn duplicates(&self) -> u64 {
        self.dedup.as_ref().map_or(0, |d| d.dropped)
    }

    /// Adds what changed since the last call to the process metrics (and
    /// the fanout tally).
    fn publish(&mut self) {
        let now = [self.packets, self.wire_bytes, self.shed, self.duplicates()];
        let d = |i: usize| now[i] - self.published[i];
        crate::metrics::m().capture(d(0), d(1), d(2), d(3), self.clock);
        self.published = now;
        if let Some(t) = &self.tally {
            t.packets.store(now[0], Ordering::Relaxed);
            t.wire_bytes.store(now[1], Ordering::Relaxed);
            t.shed.store(now[2], Ordering::Relaxed);
            t.duplicates.store(now[3], Ordering::Relaxed);
        }
    }

    /// A feeder for one more capture thread (fanout): the same shards,
    /// batch pool, steering hash, queue budget and settings, its own
    /// pending batches and counts.
    fn for_thread(&self, window_ms: u64) -> Self {
        Self {
            pending: (0..self.txs.len()).map(|_| Batch::default()).collect(),
            txs: self.txs.clone(),
            pool: self.pool.clone(),
            hasher: self.hasher.clone(),
            batch_size: self.batch_size,
            clock: self.clock,
            last_tick: self.last_tick,
            live: self.live,
            packets: 0,
            wire_bytes: 0,
            shed: 0,
            shed_by: [0; 2],
            queued_bytes: Arc::clone(&self.queued_bytes),
            queue_budget: self.queue_budget,
            dedup: (window_ms > 0).then(|| crate::capture::dedup::Dedup::new(window_ms)),
            published: [0; 4],
            tally: Some(Arc::new(Tally::default())),
            batches_c: self.batches_c.clone(),
            depths: self.depths.clone(),
        }
    }

    /// Adds the totals of a fanout thread's feeder, once it is finished.
    fn absorb(&mut self, o: &Self) {
        self.packets += o.packets;
        self.wire_bytes += o.wire_bytes;
        self.shed += o.shed;
        for (a, b) in self.shed_by.iter_mut().zip(o.shed_by) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (self.dedup.as_mut(), o.dedup.as_ref()) {
            a.dropped += b.dropped;
        }
        self.clock = self.clock.max(o.clock);
        self.published = [self.packets, self.wire_bytes, self.shed, self.duplicates()];
    }

    fn fresh(&self) -> Batch {
        self.pool.try_recv().unwrap_or_else(|_| Batch {
            frames: Vec::with_capacity(self.batch_size),
            ..Batch::default()
        })
    }

    fn send(&mut self, s: usize) {
        self.publish();
        if self.live {
            self.send_live(s);
        } else {
            let fresh = self.fresh();
            let mut b = std::mem::replace(&mut self.pending[s], fresh);
            b.clock = self.clock;
            let _ = self.txs[s].send(b);
            self.batches_c.inc();
        }
        if let (Some(g), Some(tx)) = (self.depths.get(s), self.txs.get(s)) {
            set_len(g, tx.len());
        }
    }

    /// Live: never blocks. A batch that does not fit (the shard's channel
    /// full, or the queues' byte budget spent) stays pending and keeps
    /// taking frames, to go with the next send that finds room; only once it
    /// reaches [`HOLD_BATCHES`] batches' worth is it shed, counted, and
    /// reused as the next pending batch.
    fn send_live(&mut self, s: usize) {
        let Some(b) = self.pending.get_mut(s) else {
            return;
        };
        let cost = b.cost();
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        // a channel not full now takes it (unless another capture thread
        // filled it meanwhile: then the batch stays pending, below)
        let room = !self.txs[s].is_full() && (queued == 0 || queued + cost <= self.queue_budget);
        if !room {
            if b.frames.len() >= self.batch_size * HOLD_BATCHES
                || b.bytes.len() >= BATCH_BYTES * HOLD_BATCHES
            {
                self.shed(s, Shed::QueueFull);
            }
            return;
        }
        let fresh = self.fresh();
        let mut b = std::mem::replace(&mut self.pending[s], fresh);
        b.clock = self.clock;
        self.queued_bytes.fetch_add(cost, Ordering::Relaxed);
        match self.txs[s].try_send(b) {
            Ok(()) => {
                self.batches_c.inc();
            }
            Err(TrySendError::Full(b)) => {
                // fanout: another capture thread took the last slot; the
                // batch waits, as when there was no room
                self.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                drop(std::mem::replace(&mut self.pending[s], b));
            }
            Err(TrySendError::Disconnected(b)) => {
                self.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                // the shard is gone (or, impossibly, the channel filled):
                // the batch comes back as the pending one, emptied
                drop(std::mem::replace(&mut self.pending[s], b));
                self.shed(s, Shed::ShardGone);
            }
        }
    }

    /// The end of input: every pending batch is sent, waiting for room (the
    /// shards are draining, so live capture waits too, rather than shed
    /// what it has read), and the shard channels are closed.
    fn finish(&mut self) {
        for s in 0..self.txs.len() {
            let Some(p) = self.pending.get_mut(s) else {
                continue;
            };
            let mut b = std::mem::take(p);
            b.clock = self.clock;
            if self.live {
                self.queued_bytes.fetch_add(b.cost(), Ordering::Relaxed);
            }
            let _ = self.txs[s].send(b);
            self.batches_c.inc();
        }
        self.txs.clear();
        // the shards drain their queues to the end
        for g in &self.depths {
            g.set(0);
        }
    }

    /// Sheds shard `s`'s pending batch: counted, emptied, kept for reuse.
    fn shed(&mut self, s: usize, why: Shed) {
        if let Some(b) = self.pending.get_mut(s) {
            let n = b.frames.len() as u64;
            self.shed += n;
            self.shed_by[why as usize] += n;
            b.clear();
        }
    }

    /// The shard of a frame: a seeded hash of its outer IP pair.
    #[inline]
    fn shard_of(&self, link: LinkType, data: &[u8]) -> usize {
        let n = self.txs.len();
        match (n > 1).then(|| crate::decode::steer_pair(link, data)) {
            Some(Some(pair)) => {
                let h = self.hasher.pair(pair);
                // multiply-shift range reduction
                usize::try_from((u128::from(h) * n as u128) >> 64).unwrap_or(0)
            }
            _ => 0,
        }
    }

    #[inline]
    fn count(&mut self, ts: Ts, wire_len: u32) {
        self.packets += 1;
        self.wire_bytes += u64::from(wire_len);
        if ts > self.clock {
            self.clock = ts;
        }
    }

    /// Sends the pending batches that hold frames.
    fn send_filled(&mut self) {
        for s in 0..self.txs.len() {
            if self.pending.get(s).is_some_and(|b| !b.frames.is_empty()) {
                self.send(s);
            }
        }
    }

    /// The records of one chunk of a classic pcap file: steered, not copied.
    /// Every batch holding them is sent before the next chunk, so a batch
    /// points into one chunk only.
    fn chunk(&mut self, chunk: &Chunk, recs: &[Rec], link: LinkType) {
        if self.pending.iter().any(|b| {
            !b.bytes.is_empty() || b.chunk.as_ref().is_some_and(|c| !Arc::ptr_eq(c, chunk))
        }) {
            self.send_filled();
        }
        for r in recs {
            self.count(r.ts, r.wire_len);
            let data = chunk
                .get(r.off as usize..(r.off + r.len) as usize)
                .unwrap_or(&[]);
            if let Some(d) = self.dedup.as_mut()
                && d.is_duplicate(r.ts, r.wire_len, data)
            {
                continue;
            }
            let s = self.shard_of(link, data);
            let Some(b) = self.pending.get_mut(s) else {
                continue;
            };
            if b.chunk.is_none() {
                b.chunk = Some(Arc::clone(chunk));
            }
            b.frames.push(RawFrame {
                ts: r.ts,
                wire_len: r.wire_len,
                off: r.off,
                len: r.len,
                link,
            });
            if b.frames.len() >= self.batch_size {
                self.send(s);
            }
            if self.clock >= self.last_tick.saturating_add(SEC) {
                self.tick();
            }
        }
        self.send_filled();
    }

    /// One frame borrowed from libpcap: copied into its shard's batch.
    #[inline]
    fn frame(&mut self, f: &Frame<'_>) {
        self.count(f.ts, f.wire_len);
        if let Some(d) = self.dedup.as_mut()
            && d.is_duplicate(f.ts, f.wire_len, f.data)
        {
            return;
        }
        let s = self.shard_of(f.link, f.data);
        if self.pending.get(s).is_some_and(|b| b.chunk.is_some()) {
            self.send_filled();
        }
        let Some(b) = self.pending.get_mut(s) else {
            return;
        };
        let (Ok(off), Ok(len)) = (u32::try_from(b.bytes.len()), u32::try_from(f.data.len())) else {
            return;
        };
        b.bytes.extend_from_slice(f.data);
        b.frames.push(RawFrame {
            ts: f.ts,
            wire_len: f.wire_len,
            off,
            len,
            link: f.link,
        });
        if b.frames.len() >= self.batch_size || b.bytes.len() >= BATCH_BYTES {
            self.send(s);
        }
        if self.clock >= self.last_tick.saturating_add(SEC) {
            self.tick();
        }
    }

    /// Sends every pending batch (even empty ones, as clock ticks).
    fn tick(&mut self) {
        self.last_tick = self.clock;
        for s in 0..self.txs.len() {
            self.send(s);
        }
    }
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

/// Reads a classic pcap file through [`ChunkedFile`] (see there).
fn replay_chunked(
    feeder: &mut Feeder,
    mut src: ChunkedFile,
    stop: &AtomicBool,
    summary: &mut Summary,
    progress: bool,
) {
    let mut recs = Vec::with_capacity(crate::capture::chunked::CHUNK / 64);
    let mut last_progress = Instant::now();
    let link = src.link();
    loop {
        match src.next_chunk(&mut recs) {
            Ok(Some(chunk)) => feeder.chunk(&chunk, &recs, link),
            Ok(None) => break,
            Err(e) => {
                tracing::error!("{e}");
                summary.input_errors.push(e);
                break;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            show_progress(
                src.name(),
                feeder.packets,
                Some(src.position()),
                Some(src.size),
            );
        }
    }
}

/// The progress line of a replay on a terminal (stderr).
fn show_progress(name: &str, packets: u64, position: Option<u64>, size: Option<u64>) {
    let pct = match (position, size) {
        #[allow(clippy::cast_precision_loss)]
        (Some(p), Some(s)) if s > 0 => format!(" {:.0}%", p as f64 * 100.0 / s as f64),
        _ => String::new(),
    };
    crate::stderr::say(&format!("\rdeguchi: {name} {packets} packets{pct}   "));
}

fn replay(feeder: &mut Feeder, files: &[PathBuf], stop: &Arc<AtomicBool>, summary: &mut Summary) {
    let progress = std::io::stderr().is_terminal();
    // DEGUCHI_READER=libpcap: every file through libpcap (troubleshooting, tests)
    let libpcap_only = std::env::var_os("DEGUCHI_READER").is_some_and(|v| v == "libpcap");
    let mut last_progress = Instant::now();
    for path in files {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut src = match FileSource::open_stoppable(path, stop) {
            Ok(s) => s,
            Err(_) if stop.load(Ordering::Relaxed) => break,
            Err(e) => {
                tracing::error!("{e}");
                summary.input_errors.push(e);
                continue;
            }
        };
        if let Some(fast) = src.chunked().filter(|_| !libpcap_only) {
            drop(src);
            replay_chunked(feeder, fast, stop, summary, progress);
            continue;
        }
        loop {
            match src.next() {
                Ok(Next::Frame(f)) => feeder.frame(&f),
                Ok(Next::End) => break,
                Ok(Next::Idle) => {}
                // input cut short by a stop request (stdin relay closed)
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(e) => {
                    tracing::error!("{e}");
                    summary.input_errors.push(e);
                    break;
                }
            }
            if feeder.packets & 0xff == 0 && stop.load(Ordering::Relaxed) {
                break;
            }
            if feeder.packets & 0xffff == 0
                && progress
                && last_progress.elapsed() >= Duration::from_secs(1)
            {
                last_progress = Instant::now();
                show_progress(src.name(), feeder.packets, src.position(), src.size);
            }
        }
    }
    if progress && feeder.packets > 0xffff {
        crate::stderr::say("\n");
    }
}

fn live(
    feeder: &mut Feeder,
    iface: &str,
    cfg: &Config,
    stop: &AtomicBool,
    summary: &mut Summary,
    mut watch: LinkWatch,
) {
    let mut src = match LiveSource::open(iface, &cfg.capture) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            summary.input_errors.push(e);
            return;
        }
    };
    if !drop_privileges(iface, cfg, summary) {
        return;
    }
    tracing::info!(
        "capturing on {iface} (link {:?}, snaplen {}, promisc {}, bpf {:?})",
        src.link(),
        cfg.capture.snaplen,
        cfg.capture.promisc,
        cfg.capture.bpf
    );
    let stats_every = Duration::from_secs(cfg.capture.stats_interval_s);
    let mut last_stats = Instant::now();
    // libpcap's 32-bit counters are read every second into 64-bit totals
    let mut last_poll = Instant::now();
    let mut prev = Accounting::default();
    let mut prev_bytes = 0u64;
    // kernel totals of the captures closed before (the interface went away)
    let mut carried = LiveStats::default();
    let flush_every = Duration::from_millis(u64::from(cfg.capture.read_timeout_ms));
    let mut last_flush = Instant::now();
    // packet clock while idle: last packet time + wall time since
    let mut last_pkt_wall = Instant::now();
    let mut last_pkt_ts: Option<Ts> = None;
    while !stop.load(Ordering::Relaxed) {
        match src.next() {
            Ok(Next::Frame(f)) => {
                last_pkt_ts = Some(f.ts);
                last_pkt_wall = Instant::now();
                feeder.frame(&f);
            }
            Ok(Next::Idle | Next::End) => {
                src.wait();
                if let Some(t) = last_pkt_ts {
                    let idle =
                        i64::try_from(last_pkt_wall.elapsed().as_nanos()).unwrap_or(i64::MAX);
                    feeder.clock = feeder.clock.max(t.saturating_add(idle));
                }
            }
            Err(e) => {
                // without privileges (--user) the capture cannot be reopened
                if cfg.capture.user.is_some() {
                    tracing::error!("{e}");
                    summary.input_errors.push(e);
                    break;
                }
                tracing::error!("{e}; reopening {iface} when it returns");
                watch.send(
                    "gone",
                    true,
                    format!("{e}; reopening {iface} when it returns"),
                );
                carried = carried.plus(&src.stats());
                watch.poll(last_pkt_wall.elapsed());
                match reopen(stop, || LiveSource::open(iface, &cfg.capture)) {
                    Some(s) => {
                        src = s;
                        watch.counters.reopened += 1;
                        watch.report("reopened", false, format!("capture reopened on {iface}"));
                    }
                    None => {
                        // stopped while waiting: the totals are all carried
                        summary.live = Some(carried);
                        summary.link = watch.counters;
                        return;
                    }
                }
            }
        }
        if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            feeder.tick();
            let s = carried.plus(&src.stats());
            crate::metrics::m().kernel(s.received, s.dropped, s.if_dropped);
        }
        if last_poll.elapsed() >= Duration::from_secs(1) {
            last_poll = Instant::now();
            watch.poll(last_pkt_wall.elapsed());
            let stats = carried.plus(&src.stats());
            if last_stats.elapsed() >= stats_every {
                let secs = last_stats.elapsed().as_secs_f64();
                last_stats = Instant::now();
                let now = Accounting::of(&stats, feeder.packets, feeder.shed, feeder.duplicates());
                let bytes = feeder.wire_bytes - prev_bytes;
                tracing::info!("capture stats: {}", now.since(&prev, secs, bytes));
                (prev, prev_bytes) = (now, feeder.wire_bytes);
            }
        }
    }
    // what the kernel holds already: read until the buffer is empty (for at
    // most a second under traffic), then take the totals
    let until = Instant::now() + Duration::from_secs(1);
    while summary.input_errors.is_empty() && Instant::now() < until {
        match src.next() {
            Ok(Next::Frame(f)) => feeder.frame(&f),
            _ => break,
        }
    }
    summary.live = Some(carried.plus(&src.stats()));
    summary.link = watch.counters;
}

/// `--user`: drops privileges once the capture is open; false (the error
/// recorded) when that fails.
fn drop_privileges(iface: &str, cfg: &Config, summary: &mut Summary) -> bool {
    if let Some(user) = &cfg.capture.user {
        match crate::capture::privdrop::drop_to(user, cfg.capture.group.as_deref()) {
            Ok((uid, gid)) => tracing::info!("privileges dropped to {user} (uid {uid}, gid {gid})"),
            Err(e) => {
                tracing::error!("{e}");
                summary.input_errors.push(CaptureError::Live {
                    input: iface.to_owned(),
                    msg: format!("cannot drop privileges: {e}"),
                });
                return false;
            }
        }
    }
    true
}

/// Reopens the capture (`open`) once the interface is back: tries after
/// 1 s, doubling to 30 s between tries; `None` when stopped first.
fn reopen<T>(stop: &AtomicBool, open: impl Fn() -> Result<T, CaptureError>) -> Option<T> {
    let mut backoff = Duration::from_secs(1);
    loop {
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match open() {
            Ok(s) => return Some(s),
            Err(e) => tracing::debug!("{e}; next try in {} s", backoff.as_secs()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// What a fanout capture thread shares with its supervisor, besides its
/// feeder's [`Tally`].
struct WorkerShared {
    /// Kernel statistics of the thread's socket, as last read.
    kernel: [std::sync::atomic::AtomicU64; 3],
    /// Wall time of the last packet read, ms since the capture started.
    last_packet_ms: std::sync::atomic::AtomicU64,
}

/// Flags from the supervisor to the capture threads of one generation
/// (the sockets opened together), and back.
#[derive(Default)]
struct Generation {
    /// Stop reading (the run stops, or another socket failed).
    quit: AtomicBool,
    /// Before stopping, read what the kernel holds (the run stops).
    drain: AtomicBool,
    /// A socket failed (the interface is gone).
    failed: AtomicBool,
}

/// One fanout capture thread: reads its socket into its feeder until told
/// to quit, or until the socket fails (returned).
fn capture_worker(
    src: &mut LiveSource,
    f: &mut Feeder,
    flush_every: Duration,
    gen_: &Generation,
    shared: &WorkerShared,
    started: Instant,
) -> Option<CaptureError> {
    let ms = |t: Instant| u64::try_from(t.duration_since(started).as_millis()).unwrap_or(0);
    let store = |s: LiveStats| {
        for (a, v) in shared
            .kernel
            .iter()
            .zip([s.received, s.dropped, s.if_dropped])
        {
            a.store(v, Ordering::Relaxed);
        }
    };
    let mut last_flush = Instant::now();
    let mut last_pkt_wall = Instant::now();
    let mut last_pkt_ts: Option<Ts> = None;
    while !gen_.quit.load(Ordering::Relaxed) {
        match src.next() {
            Ok(Next::Frame(fr)) => {
                last_pkt_ts = Some(fr.ts);
                last_pkt_wall = Instant::now();
                f.frame(&fr);
            }
            Ok(Next::Idle | Next::End) => {
                src.wait();
                if let Some(t) = last_pkt_ts {
                    let idle =
                        i64::try_from(last_pkt_wall.elapsed().as_nanos()).unwrap_or(i64::MAX);
                    f.clock = f.clock.max(t.saturating_add(idle));
                }
            }
            Err(e) => {
                store(src.stats());
                gen_.failed.store(true, Ordering::SeqCst);
                return Some(e);
            }
        }
        if last_flush.elapsed() >= flush_every {
            last_flush = Instant::now();
            f.tick();
            store(src.stats());
            if last_pkt_ts.is_some() {
                shared
                    .last_packet_ms
                    .fetch_max(ms(last_pkt_wall), Ordering::Relaxed);
            }
        }
    }
    if gen_.drain.load(Ordering::Relaxed) {
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            match src.next() {
                Ok(Next::Frame(fr)) => f.frame(&fr),
                _ => break,
            }
        }
    }
    f.publish();
    store(src.stats());
    None
}

/// [`capture_worker`], and the CPU seconds its thread used.
fn capture_worker_cpu(
    src: &mut LiveSource,
    f: &mut Feeder,
    flush_every: Duration,
    gen_: &Generation,
    shared: &WorkerShared,
    started: Instant,
) -> (Option<CaptureError>, f64) {
    let e = capture_worker(src, f, flush_every, gen_, shared, started);
    (e, thread_cpu_s())
}

/// Live capture on `capture.threads` sockets in one AF_PACKET fanout group
/// (flow hash, defragmented: both directions of a flow reach one socket),
/// each read by a thread of its own into its own [`Feeder`]; every thread
/// feeds every shard, and the shards steer by the flow's address pair as
/// always. This thread supervises: the link watch, the kernel statistics
/// (summed over the sockets), the periodic line, and, when the interface
/// goes away, reopening every socket once it returns.
fn live_fanout(
    feeder: &mut Feeder,
    iface: &str,
    cfg: &Config,
    stop: &AtomicBool,
    summary: &mut Summary,
    mut watch: LinkWatch,
) {
    use crate::capture::live::{fanout_group, open_group};
    let n = cfg.capture.threads;
    let group = fanout_group();
    let mut srcs = match open_group(iface, &cfg.capture, n, group) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("{e}");
            summary.input_errors.push(e);
            return;
        }
    };
    if !drop_privileges(iface, cfg, summary) {
        return;
    }
    tracing::info!(
        "capturing on {iface} with {n} sockets in AF_PACKET fanout group {group} (link {:?}, snaplen {}, promisc {}, bpf {:?})",
        srcs.first().map_or(LinkType::Ethernet, LiveSource::link),
        cfg.capture.snaplen,
        cfg.capture.promisc,
        cfg.capture.bpf
    );
    let mut feeders: Vec<Feeder> = (0..n)
        .map(|_| feeder.for_thread(cfg.capture.dedup_window_ms))
        .collect();
    let shared: Vec<WorkerShared> = (0..n)
        .map(|_| WorkerShared {
            kernel: Default::default(),
            last_packet_ms: std::sync::atomic::AtomicU64::new(0),
        })
        .collect();
    let tallies: Vec<Arc<Tally>> = feeders.iter().filter_map(|f| f.tally.clone()).collect();
    let mut cpu_by_thread = vec![0.0; n];
    let started = Instant::now();
    let flush_every = Duration::from_millis(u64::from(cfg.capture.read_timeout_ms));
    let stats_every = Duration::from_secs(cfg.capture.stats_interval_s);
    let mut last_stats = Instant::now();
    let mut prev = Accounting::default();
    let mut prev_bytes = 0u64;
    // kernel totals of the sockets closed before (the interface went away)
    let mut carried = LiveStats::default();
    // wall time since the last packet any capture thread read
    let since_packet = || {
        let last_ms = shared
            .iter()
            .map(|w| w.last_packet_ms.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        started
            .elapsed()
            .saturating_sub(Duration::from_millis(last_ms))
    };
    let kernel_now = |carried: &LiveStats| {
        let mut s = *carried;
        for w in &shared {
            let k = |i: usize| w.kernel[i].load(Ordering::Relaxed);
            s = s.plus(&LiveStats {
                received: k(0),
                dropped: k(1),
                if_dropped: k(2),
            });
        }
        s
    };
    loop {
        let g = Generation::default();
        let errors: Vec<Option<CaptureError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = srcs
                .iter_mut()
                .zip(feeders.iter_mut())
                .zip(&shared)
                .enumerate()
                .map(|(i, ((src, f), sh))| {
                    let g = &g;
                    std::thread::Builder::new()
                        .name(format!("capture-{i}"))
                        .spawn_scoped(sc, move || {
                            capture_worker_cpu(src, f, flush_every, g, sh, started)
                        })
                })
                .collect();
            let mut last_poll = Instant::now();
            while !handles.iter().any(Result::is_err) {
                std::thread::sleep(Duration::from_millis(50));
                if stop.load(Ordering::Relaxed) {
                    g.drain.store(true, Ordering::SeqCst);
                    break;
                }
                if g.failed.load(Ordering::SeqCst) {
                    break;
                }
                if last_poll.elapsed() < Duration::from_secs(1) {
                    continue;
                }
                last_poll = Instant::now();
                let last_ms = shared
                    .iter()
                    .map(|w| w.last_packet_ms.load(Ordering::Relaxed))
                    .max()
                    .unwrap_or(0);
                let since = started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(last_ms));
                watch.poll(since);
                let stats = kernel_now(&carried);
                crate::metrics::m().kernel(stats.received, stats.dropped, stats.if_dropped);
                if last_stats.elapsed() >= stats_every {
                    let secs = last_stats.elapsed().as_secs_f64();
                    last_stats = Instant::now();
                    let (read, shed, dups, bytes) = tallies.iter().fold((0, 0, 0, 0), |a, x| {
                        (
                            a.0 + x.packets.load(Ordering::Relaxed),
                            a.1 + x.shed.load(Ordering::Relaxed),
                            a.2 + x.duplicates.load(Ordering::Relaxed),
                            a.3 + x.wire_bytes.load(Ordering::Relaxed),
                        )
                    });
                    let now = Accounting::of(&stats, read, shed, dups);
                    tracing::info!(
                        "capture stats: {}",
                        now.since(&prev, secs, bytes - prev_bytes)
                    );
                    (prev, prev_bytes) = (now, bytes);
                }
            }
            g.quit.store(true, Ordering::SeqCst);
            handles
                .into_iter()
                .enumerate()
                .map(|(i, h)| match h.map(std::thread::ScopedJoinHandle::join) {
                    Ok(Ok((e, cpu))) => {
                        if let Some(c) = cpu_by_thread.get_mut(i) {
                            *c += cpu;
                        }
                        e
                    }
                    Ok(Err(_)) => Some(CaptureError::Live {
                        input: iface.to_owned(),
                        msg: "capture thread panicked".into(),
                    }),
                    Err(e) => Some(CaptureError::Live {
                        input: iface.to_owned(),
                        msg: format!("cannot start a capture thread: {e}"),
                    }),
                })
                .collect()
        });
        // every socket's last totals are carried, and the next sockets
        // start from zero
        carried = kernel_now(&carried);
        for w in &shared {
            for k in &w.kernel {
                k.store(0, Ordering::Relaxed);
            }
        }
        let Some(e) = errors.into_iter().flatten().next() else {
            break; // stopped
        };
        if cfg.capture.user.is_some() || stop.load(Ordering::Relaxed) {
            tracing::error!("{e}");
            summary.input_errors.push(e);
            break;
        }
        tracing::error!("{e}; reopening {iface} when it returns");
        watch.send(
            "gone",
            true,
            format!("{e}; reopening {iface} when it returns"),
        );
        watch.poll(since_packet());
        // the old sockets leave the fanout group first: a group holds
        // sockets of one device only
        srcs.clear();
        match reopen(stop, || open_group(iface, &cfg.capture, n, group)) {
            Some(v) => {
                srcs = v;
                watch.counters.reopened += 1;
                watch.report(
                    "reopened",
                    false,
                    format!("capture reopened on {iface} ({n} sockets)"),
                );
            }
            None => break,
        }
    }
    let per: Vec<String> = feeders.iter().map(|f| f.packets.to_string()).collect();
    tracing::info!(
        "packets read by the {n} capture threads: {}",
        per.join(" + ")
    );
    for mut f in feeders {
        f.finish();
        feeder.absorb(&f);
    }
    summary.live = Some(carried);
    summary.link = watch.counters;
    summary.fanout_cpu = cpu_by_thread;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A live feeder for one shard whose channel holds `slots` batches.
    fn live_feeder(slots: usize, budget: usize) -> (Feeder, Receiver<Batch>) {
        let (tx, rx) = bounded::<Batch>(slots);
        let (_pool_tx, pool) = bounded::<Batch>(4);
        let f = Feeder {
            pending: vec![Batch::default()],
            txs: vec![tx],
            pool,
            hasher: crate::flow::key::KeyHasher::new(),
            batch_size: 4,
            clock: 0,
            last_tick: i64::MAX, // no ticks
            live: true,
            packets: 0,
            wire_bytes: 0,
            shed: 0,
            shed_by: [0; 2],
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            queue_budget: budget,
            batches_c: Counter::default(),
            depths: Vec::new(),
            dedup: None,
            published: [0; 4],
            tally: None,
        };
        (f, rx)
    }

    fn frame(f: &mut Feeder) {
        let data = [0u8; 60];
        f.frame(&Frame {
            ts: 1,
            wire_len: 60,
            link: LinkType::Ethernet,
            data: &data,
        });
    }

    #[test]
    fn live_queue_holds_then_sheds_and_reuses() {
        let (mut f, rx) = live_feeder(1, usize::MAX);
        // the first batch goes; the channel (1 slot) is then full
        for _ in 0..4 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        // the next batch waits and keeps filling up to HOLD_BATCHES batches
        for _ in 0..4 * HOLD_BATCHES - 1 {
            frame(&mut f);
        }
        assert_eq!(f.shed, 0, "nothing shed while the pending batch has room");
        assert_eq!(f.pending[0].frames.len(), 4 * HOLD_BATCHES - 1);
        let cap = f.pending[0].frames.capacity();
        frame(&mut f);
        assert_eq!(f.shed, (4 * HOLD_BATCHES) as u64);
        assert_eq!(f.shed_by[Shed::QueueFull as usize], f.shed);
        // the shed batch is the next pending one, emptied, capacity kept
        assert!(f.pending[0].frames.is_empty());
        assert_eq!(f.pending[0].frames.capacity(), cap);
        // room again: the waiting batch goes with the next send
        let b = rx.recv().unwrap();
        f.queued_bytes.fetch_sub(b.cost(), Ordering::Relaxed);
        for _ in 0..4 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(f.packets - f.shed, 8);
        // the end of input sends what waits, full channel or not
        frame(&mut f);
        let t = std::thread::spawn(move || rx.iter().map(|b| b.frames.len()).sum::<usize>());
        f.finish();
        assert_eq!(t.join().unwrap(), 5);
    }

    #[test]
    fn live_queue_byte_budget_and_gone_shard() {
        // budget of one batch: the second waits though the channel has slots
        let (mut f, rx) = live_feeder(64, 4 * 60 + 4 * std::mem::size_of::<RawFrame>());
        for _ in 0..8 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(f.pending[0].frames.len(), 4);
        drop(rx);
        frame(&mut f);
        // still no room (nobody takes from the queue): held, not shed
        assert_eq!(f.shed, 0);
        f.queued_bytes.store(0, Ordering::Relaxed);
        frame(&mut f);
        assert_eq!(f.shed_by[Shed::ShardGone as usize], 10 - 4);
        assert_eq!(f.shed_by[Shed::QueueFull as usize], 0);
    }

    #[test]
    fn accounting_balances() {
        let l = LiveStats {
            received: (1u64 << 32) + 1000,
            dropped: 10,
            if_dropped: 0,
        };
        // read everything the kernel kept, shed 7 of it
        let read = l.received - l.dropped;
        let a = Accounting::of(&l, read, 7, 0);
        assert_eq!(a.unread, 0);
        assert_eq!(a.processed, a.received - a.dropped - a.shed);
        // 5 still in the kernel buffer
        let b = Accounting::of(&l, read - 5, 7, 0);
        assert_eq!(b.unread, 5);
        assert_eq!(
            i64::try_from(b.processed).unwrap(),
            i64::try_from(b.received - b.dropped - b.shed).unwrap() - b.unread
        );
        // 3 SPAN duplicates removed among what was read
        let c = Accounting::of(&l, read, 7, 3);
        assert_eq!(c.processed, c.received - c.dropped - c.shed - c.duplicates);
        assert!(c.totals().contains(" duplicates=3 "), "{}", c.totals());
        assert!(!a.totals().contains("duplicates"), "{}", a.totals());
        let line = b.since(&Accounting::default(), 2.0, 2_000_000);
        assert!(line.contains("processed +"), "{line}");
        assert!(line.contains("8.0 Mbit/s"), "{line}");
        assert!(line.contains("totals: received="), "{line}");
    }
}
