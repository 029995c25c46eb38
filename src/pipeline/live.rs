//! Live capture: one socket, or an AF_PACKET fanout group.

use super::feeder::{Feeder, Tally};
use super::{Accounting, Summary, thread_cpu_s};
use crate::capture::live::{LiveSource, LiveStats};
use crate::capture::watch::LinkWatch;
use crate::capture::{CaptureError, Next};
use crate::config::Config;
use crate::decode::LinkType;
use crate::time::Ts;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A capture thread looks at the wall clock (flush, statistics, link watch,
/// the idle clock's stamp) once per this many packets read in a row, and
/// whenever the kernel buffer runs empty. Reading it per packet (three
/// `clock_gettime` a packet) was a third of the capture thread's CPU time
/// at 5.5 KB frames (`perf`, `benches/HISTORY.md`); 64 packets are at most
/// a few ms at any rate that fills the buffer faster than it empties.
const CLOCK_EVERY: u32 = 64;

/// The packet clock of a capture thread while its link is idle: the last
/// packet's time plus the wall time since it came, so flows time out and
/// windows close on a quiet link too.
struct IdleClock {
    /// When the last packet came (wall time, stamped at the thread's next
    /// look at the clock: at most [`CLOCK_EVERY`] packets later, or when
    /// the buffer ran empty), and its packet time.
    wall: Instant,
    ts: Option<Ts>,
    /// A packet came since the last stamp.
    unstamped: bool,
    /// Packets read since the wall clock was last looked at.
    unclocked: u32,
}

/// What one [`IdleClock::read`] came to.
enum Read {
    /// A packet, and no need to look at the wall clock yet.
    Frame,
    /// Time to look at the clock (flushes, statistics): the wall time now.
    Tick(Instant),
    /// The socket failed.
    Failed(CaptureError),
}

impl IdleClock {
    fn new() -> Self {
        Self {
            wall: Instant::now(),
            ts: None,
            unstamped: false,
            unclocked: 0,
        }
    }

    /// Reads the next packet of `src` into `feeder` or, the buffer empty,
    /// waits for one (moving the feeder's packet clock on by the idle
    /// time); the wall clock is read once per [`CLOCK_EVERY`] packets in a
    /// row and whenever the buffer ran empty.
    fn read(&mut self, src: &mut LiveSource, feeder: &mut Feeder) -> Read {
        match src.next() {
            Ok(Next::Frame(f)) => {
                self.packet(f.ts);
                feeder.frame(&f);
                self.unclocked += 1;
                if self.unclocked < CLOCK_EVERY {
                    return Read::Frame;
                }
            }
            Ok(Next::Idle | Next::End) => {
                // the buffer ran empty: the last packet came about now
                self.stamp(Instant::now());
                src.wait();
                self.advance(&mut feeder.clock);
            }
            Err(e) => {
                self.unclocked = 0;
                return Read::Failed(e);
            }
        }
        self.unclocked = 0;
        let now = Instant::now();
        self.stamp(now);
        Read::Tick(now)
    }

    fn packet(&mut self, ts: Ts) {
        self.ts = Some(ts);
        self.unstamped = true;
    }

    /// Takes `now` as the wall time of the last packet, if one came since
    /// the last stamp.
    fn stamp(&mut self, now: Instant) {
        if self.unstamped {
            self.wall = now;
            self.unstamped = false;
        }
    }

    /// Moves `clock` on by the idle time since the last packet.
    fn advance(&self, clock: &mut Ts) {
        if let Some(t) = self.ts {
            let idle = i64::try_from(self.wall.elapsed().as_nanos()).unwrap_or(i64::MAX);
            *clock = (*clock).max(t.saturating_add(idle));
        }
    }
}

pub(super) fn live(
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
    let mut idle = IdleClock::new();
    while !stop.load(Ordering::Relaxed) {
        let now = match idle.read(&mut src, feeder) {
            Read::Frame => continue,
            Read::Tick(now) => now,
            Read::Failed(e) => {
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
                idle.stamp(Instant::now());
                watch.poll(idle.wall.elapsed());
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
                Instant::now()
            }
        };
        if now.duration_since(last_flush) >= flush_every {
            last_flush = now;
            feeder.tick();
            let s = carried.plus(&src.stats());
            crate::metrics::m().kernel(s.received, s.dropped, s.if_dropped);
        }
        if now.duration_since(last_poll) >= Duration::from_secs(1) {
            last_poll = now;
            watch.poll(idle.wall.elapsed());
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
    // what the kernel holds already, then the totals
    if summary.input_errors.is_empty() {
        drain(&mut src, feeder);
    }
    summary.live = Some(carried.plus(&src.stats()));
    summary.link = watch.counters;
}

/// `capture.priority` (live): raises this thread's scheduling priority (nice
/// -N) before it starts the pipeline's threads, which inherit it: the
/// capture threads, shards, analysis and the writer. So a capture thread
/// that shares a core with other programs is not kept off it longer than
/// the kernel buffer lasts (at 19 Gb/s of 5.5 KB frames, 64 MiB lasted
/// 27 ms: `benches/HISTORY.md`), nor a shard longer than its queue lasts
/// (raising the capture threads alone made 2 capture threads sharing a
/// core with two busy loops starve the shard: shed). Called before the
/// privileges are dropped. Not permitted (no `CAP_SYS_NICE`, no
/// `RLIMIT_NICE` allowing it), the pipeline runs at the process's priority,
/// and the log says so. The old value comes back when the guard is dropped.
pub(super) fn raise_priority(cfg: &Config) -> Option<crate::capture::live::RaisedPriority> {
    let n = cfg.capture.priority;
    if n == 0 {
        return None;
    }
    match crate::capture::live::raise_thread_priority(n) {
        Ok(p) => {
            tracing::info!(
                "live pipeline threads at nice {} (was {}; capture.priority {n})",
                p.now,
                p.before
            );
            Some(p)
        }
        Err(e) => {
            tracing::info!(
                "live pipeline priority not raised to nice -{n} ({e}; needs CAP_SYS_NICE or an RLIMIT_NICE allowing it, systemd LimitNICE=-{n}): running at the process's priority"
            );
            None
        }
    }
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

/// Reads what the kernel holds already into `feeder`: until the buffer is
/// empty, for at most a second under traffic (a stopping capture).
fn drain(src: &mut LiveSource, feeder: &mut Feeder) {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match src.next() {
            Ok(Next::Frame(f)) => feeder.frame(&f),
            _ => break,
        }
    }
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
    let mut idle = IdleClock::new();
    while !gen_.quit.load(Ordering::Relaxed) {
        let now = match idle.read(src, f) {
            Read::Frame => continue,
            Read::Tick(now) => now,
            Read::Failed(e) => {
                store(src.stats());
                gen_.failed.store(true, Ordering::SeqCst);
                return Some(e);
            }
        };
        if now.duration_since(last_flush) >= flush_every {
            last_flush = now;
            f.tick();
            store(src.stats());
            if idle.ts.is_some() {
                shared
                    .last_packet_ms
                    .fetch_max(ms(idle.wall), Ordering::Relaxed);
            }
        }
    }
    if gen_.drain.load(Ordering::Relaxed) {
        drain(src, f);
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
pub(super) fn live_fanout(
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
