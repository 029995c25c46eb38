//! A JSON-lines output (a file or stdout) with a bounded queue and a thread
//! of its own: replay waits for room, live drops (counted); SIGHUP reopens.

use super::SinkError;
use crate::alert::Alert;
use crate::flow::record::FlowRecord;
use prometheus_client::metrics::counter::Counter;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes of whole lines gathered before they go to an output's thread.
const CHUNK: usize = 1 << 16;

/// Live: when an output's queue is full, lines keep gathering in the
/// writer up to this many bytes, or the queue's size if smaller (a short
/// stall loses nothing); past it they are dropped, counted.
const HOLD: usize = 4 << 20;

/// Live: how long an output's queue gets to drain at exit.
const DRAIN: Duration = Duration::from_secs(3);

/// What the writer sends to an output's thread.
enum Msg {
    /// Whole lines, and how many.
    Chunk(Vec<u8>, u64),
}

/// State shared by an output and its thread.
struct Shared {
    /// The thread stopped on a write error (its kind and text).
    failed: std::sync::atomic::AtomicBool,
    error: std::sync::Mutex<Option<(io::ErrorKind, String)>>,
    /// SIGHUP: reopen the file before the next write.
    reopen: std::sync::atomic::AtomicBool,
    /// Bytes and lines in the queue (sent, not yet written).
    queued_bytes: std::sync::atomic::AtomicUsize,
    queued_lines: std::sync::atomic::AtomicU64,
}

/// A named JSON-lines output (a file or stdout) with a bounded queue and a
/// thread of its own, so that a slow reader (a stalled pipe, a slow disk)
/// never holds up analysis while capture is live.
///
/// Lines are gathered into chunks of whole lines in the writer thread and
/// handed to the output's thread, which writes them. Policy when the queue
/// is full (`output.queue_mb`, 64 MiB):
/// - replay (`block`): the writer waits. Nothing is live, so back-pressure
///   costs nothing but time, and no line is lost.
/// - live: lines keep gathering in the writer up to [`HOLD`] bytes, then
///   the held lines are dropped; every dropped line is counted
///   (`deguchi_output_dropped_lines_total{output}`, the exit summary) and
///   logged with a warning (the first drop, then at most every 10 s).
///
/// A write error (full disk, stdout closed by its reader) stops the thread;
/// the writer gets it, naming the output, on its next write or flush.
pub struct JsonLines {
    name: String,
    /// Whole lines not yet handed to the thread.
    buf: Vec<u8>,
    buf_lines: u64,
    /// Lines accepted (written, queued or held).
    pub lines: u64,
    tx: Option<crossbeam_channel::Sender<Msg>>,
    /// Emptied chunks back from the thread.
    pool: crossbeam_channel::Receiver<Vec<u8>>,
    shared: std::sync::Arc<Shared>,
    thread: Option<std::thread::JoinHandle<f64>>,
    /// CPU seconds of the thread (once it has ended).
    pub cpu_s: f64,
    /// Wait for room (replay) rather than drop (live).
    block: bool,
    budget: usize,
    dropped_c: Counter,
    depth: prometheus_client::metrics::gauge::Gauge,
    /// Dropped lines not yet logged, and when the last warning was.
    unlogged: u64,
    last_warn: Option<Instant>,
    /// The file behind it (`None`: stdout), for reopening on SIGHUP.
    path: Option<PathBuf>,
}

/// How an output's queue behaves when it is full.
#[derive(Clone, Copy, Debug)]
pub struct QueuePolicy {
    /// Wait for room (replay) instead of dropping (live).
    pub block: bool,
    /// Bytes the queue holds at most.
    pub bytes: usize,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            block: true,
            bytes: 64 << 20,
        }
    }
}

impl JsonLines {
    /// Standard output.
    ///
    /// # Errors
    /// The output's thread cannot start.
    pub fn stdout(q: QueuePolicy) -> Result<Self, SinkError> {
        Self::new("stdout".to_owned(), Box::new(io::stdout()), None, q)
    }

    /// Creates (truncates) a file.
    ///
    /// # Errors
    /// The file cannot be created, or the output's thread cannot start.
    pub fn create(path: &Path, q: QueuePolicy) -> Result<Self, SinkError> {
        let f = File::create(path).map_err(|err| SinkError {
            name: path.display().to_string(),
            what: "cannot create",
            err,
        })?;
        Self::new(
            path.display().to_string(),
            Box::new(f),
            Some(path.to_owned()),
            q,
        )
    }

    /// An output writing to `w` (for tests: any writer).
    ///
    /// # Errors
    /// The output's thread cannot start.
    pub fn new(
        name: String,
        w: Box<dyn Write + Send>,
        path: Option<PathBuf>,
        q: QueuePolicy,
    ) -> Result<Self, SinkError> {
        let label = crate::metrics::OutputLabel {
            output: name.clone(),
        };
        let m = crate::metrics::m();
        let slots = (q.bytes / CHUNK).max(4);
        let (tx, rx) = crossbeam_channel::bounded::<Msg>(slots);
        let (pool_tx, pool) = crossbeam_channel::bounded::<Vec<u8>>(8);
        let shared = std::sync::Arc::new(Shared {
            failed: false.into(),
            error: std::sync::Mutex::new(None),
            reopen: false.into(),
            queued_bytes: 0.into(),
            queued_lines: 0.into(),
        });
        let depth = m.queue(&name, slots);
        let t = OutputThread {
            w,
            path: path.clone(),
            name: name.clone(),
            shared: std::sync::Arc::clone(&shared),
            lines_c: m.lines.get_or_create_owned(&label),
            errors_c: m.write_errors.get_or_create_owned(&label),
            depth: depth.clone(),
            pool: pool_tx,
        };
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || t.run(&rx))
            .map_err(|err| SinkError {
                name: name.clone(),
                what: "cannot start its thread",
                err,
            })?;
        Ok(Self {
            dropped_c: m.lines_dropped.get_or_create_owned(&label),
            name,
            buf: Vec::with_capacity(CHUNK + 4096),
            buf_lines: 0,
            lines: 0,
            tx: Some(tx),
            pool,
            shared,
            thread: Some(thread),
            cpu_s: 0.0,
            block: q.block,
            budget: q.bytes.max(CHUNK),
            depth,
            unlogged: 0,
            last_warn: None,
            path,
        })
    }

    /// Asks the thread to open the path again before its next write
    /// (appending; created if logrotate moved it away); it logs the result.
    /// Stdout stays as it is.
    ///
    /// # Errors
    /// None today (kept for the callers).
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        if self.path.is_some() {
            self.shared
                .reopen
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// The error the thread stopped on, if it did.
    fn failed(&self) -> Result<(), SinkError> {
        if !self
            .shared
            .failed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Ok(());
        }
        let (kind, text) = self
            .shared
            .error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or((io::ErrorKind::Other, "output stopped".to_owned()));
        Err(SinkError {
            name: self.name.clone(),
            what: "write failed",
            err: io::Error::new(kind, text),
        })
    }

    /// One line is in `buf`: hands the chunk over once it is full.
    fn added(&mut self) -> Result<(), SinkError> {
        self.buf.push(b'\n');
        self.buf_lines += 1;
        self.lines += 1;
        if self.buf.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Hands the gathered lines to the thread (see the policy at [`JsonLines`]).
    fn hand_over(&mut self) -> Result<(), SinkError> {
        self.failed()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            return self.failed();
        };
        use std::sync::atomic::Ordering::Relaxed;
        let (len, n) = (self.buf.len(), self.buf_lines);
        if !self.block {
            let queued = self.shared.queued_bytes.load(Relaxed);
            let room = !tx.is_full() && (queued == 0 || queued + len <= self.budget);
            if !room {
                if len >= HOLD.min(self.budget) {
                    self.drop_held();
                }
                return Ok(());
            }
        }
        let fresh = self
            .pool
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK + 4096));
        let chunk = std::mem::replace(&mut self.buf, fresh);
        self.buf_lines = 0;
        self.shared.queued_bytes.fetch_add(len, Relaxed);
        self.shared.queued_lines.fetch_add(n, Relaxed);
        // live: this thread is the only sender and there was room
        let sent = tx.send(Msg::Chunk(chunk, n)).is_ok();
        self.depth.set(i64::try_from(tx.len()).unwrap_or(i64::MAX));
        if !sent {
            self.shared.queued_bytes.fetch_sub(len, Relaxed);
            self.shared.queued_lines.fetch_sub(n, Relaxed);
            return self.failed();
        }
        Ok(())
    }

    /// Live, queue full for too long: the held lines are dropped, counted
    /// and (rate-limited) logged.
    fn drop_held(&mut self) {
        let n = self.buf_lines;
        self.buf.clear();
        self.buf_lines = 0;
        self.dropped_c.inc_by(n);
        self.unlogged += n;
        if self
            .last_warn
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(
                "{}: the reader is too slow, output queue full: {} lines dropped ({} in all; see deguchi_output_dropped_lines_total)",
                self.name,
                self.unlogged,
                self.dropped_c.get()
            );
            self.unlogged = 0;
            self.last_warn = Some(Instant::now());
        }
    }

    /// Writes one flow record line.
    ///
    /// # Errors
    /// The output failed.
    pub fn flow(&mut self, r: &FlowRecord, alerted: bool) -> Result<(), SinkError> {
        let at = self.buf.len();
        if let Err(e) = serde_json::to_writer(&mut self.buf, &r.to_eve(alerted)) {
            return Err(self.ser(at, e));
        }
        self.added()
    }

    /// Writes one alert line.
    ///
    /// # Errors
    /// The output failed.
    pub fn alert(&mut self, a: &Alert) -> Result<(), SinkError> {
        let at = self.buf.len();
        if let Err(e) = a.write_json(&mut self.buf) {
            return Err(self.ser(at, e));
        }
        self.added()
    }

    /// Writes one line as it is (a newline follows).
    ///
    /// # Errors
    /// The output failed.
    pub fn raw(&mut self, line: &str) -> Result<(), SinkError> {
        self.buf.extend_from_slice(line.as_bytes());
        self.added()
    }

    /// A line that does not serialise (never expected): an error of the output.
    /// The part of the line written from `at` on is taken back.
    fn ser(&mut self, at: usize, e: serde_json::Error) -> SinkError {
        self.buf.truncate(at);
        SinkError {
            name: self.name.clone(),
            what: "write failed",
            err: io::Error::from(e),
        }
    }

    /// Hands what is gathered to the thread, which writes and flushes it.
    ///
    /// # Errors
    /// The output failed.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.hand_over()
    }

    /// Lines dropped so far (live, queue full).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped_c.get()
    }

    /// The output's name (a path, or `stdout`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Lines gathered or queued that are not written yet.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.buf_lines
            + self
                .shared
                .queued_lines
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The end: hands over what is left and waits for the thread to write
    /// it all (replay: however long it takes; live: [`DRAIN`] at most, what
    /// is not written by then is counted as dropped).
    ///
    /// # Errors
    /// The output failed.
    pub fn close(&mut self) -> Result<(), SinkError> {
        // live: one DRAIN for the lines still gathered and the queue together
        let t0 = Instant::now();
        if !self.block {
            // the queue may have room by now
            while !self.buf.is_empty() && self.failed().is_ok() && t0.elapsed() < DRAIN {
                self.hand_over()?;
                if !self.buf.is_empty() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        } else {
            self.hand_over()?;
        }
        self.tx = None;
        while !self.block
            && self.thread.as_ref().is_some_and(|t| !t.is_finished())
            && t0.elapsed() < DRAIN
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // lines that never got into the queue, and (live, reader stalled:
        // the thread is left behind, the process is ending) those in it
        let mut lost = self.buf_lines;
        match self.thread.take() {
            Some(t) if self.block || t.is_finished() => {
                self.cpu_s = t.join().unwrap_or(0.0);
            }
            Some(_) => {
                lost = self.pending();
            }
            None => {}
        }
        self.buf.clear();
        self.buf_lines = 0;
        if lost > 0 && self.failed().is_ok() {
            self.dropped_c.inc_by(lost);
            tracing::warn!(
                "{}: {lost} lines not written at exit: the reader did not take them",
                self.name
            );
        }
        self.depth.set(0);
        self.failed()
    }
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.close();
        }
    }
}

/// An output's thread: writes the chunks it is handed.
struct OutputThread {
    w: Box<dyn Write + Send>,
    path: Option<PathBuf>,
    name: String,
    shared: std::sync::Arc<Shared>,
    /// `deguchi_output_lines_total` and `deguchi_output_write_errors_total` of this output.
    lines_c: Counter,
    errors_c: Counter,
    depth: prometheus_client::metrics::gauge::Gauge,
    pool: crossbeam_channel::Sender<Vec<u8>>,
}

impl OutputThread {
    /// Writes until the writer closes the queue or a write fails; its CPU seconds.
    fn run(mut self, rx: &crossbeam_channel::Receiver<Msg>) -> f64 {
        self.write_all(rx);
        crate::pipeline::thread_cpu_s()
    }

    fn write_all(&mut self, rx: &crossbeam_channel::Receiver<Msg>) {
        use std::sync::atomic::Ordering::{Relaxed, SeqCst};
        loop {
            let msg = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            };
            if self.shared.reopen.swap(false, SeqCst) {
                self.reopen();
            }
            let Some(Msg::Chunk(mut b, n)) = msg else {
                continue;
            };
            self.depth.set(i64::try_from(rx.len()).unwrap_or(i64::MAX));
            let mut r = self.w.write_all(&b);
            if r.is_ok() && rx.is_empty() {
                // nothing more waiting: to the OS now (a live alert never waits)
                r = self.w.flush();
            }
            self.shared.queued_bytes.fetch_sub(b.len(), Relaxed);
            self.shared.queued_lines.fetch_sub(n, Relaxed);
            if let Err(e) = r {
                self.fail(&e);
                return;
            }
            self.lines_c.inc_by(n);
            b.clear();
            let _ = self.pool.try_send(b);
        }
        if let Err(e) = self.w.flush() {
            self.fail(&e);
        }
    }

    fn fail(&self, e: &io::Error) {
        self.errors_c.inc();
        if let Ok(mut slot) = self.shared.error.lock() {
            *slot = Some((e.kind(), e.to_string()));
        }
        self.shared
            .failed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// SIGHUP: flushes, then opens the path again (appending); the old
    /// handle is kept if that fails.
    fn reopen(&mut self) {
        let Some(p) = self.path.clone() else {
            return;
        };
        let r = self.w.flush().and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
        });
        match r {
            Ok(f) => {
                self.w = Box::new(f);
                tracing::info!("SIGHUP: output files reopened ({})", self.name);
            }
            Err(e) => {
                self.errors_c.inc();
                tracing::error!("SIGHUP: {}: {e}; still writing to the old file", self.name);
            }
        }
    }
}

#[cfg(test)]
mod queue_tests {
    use super::{CHUNK, HOLD, JsonLines, QueuePolicy};
    use std::io::Write;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};

    /// A reader that takes nothing until released, then keeps every byte.
    #[derive(Clone, Default)]
    struct Stalled(Arc<(Mutex<Taken>, Condvar)>);

    /// (released, the bytes written).
    type Taken = (bool, Vec<u8>);

    impl Stalled {
        fn release(&self) {
            self.0.0.lock().unwrap().0 = true;
            self.0.1.notify_all();
        }
        fn bytes(&self) -> Vec<u8> {
            self.0.0.lock().unwrap().1.clone()
        }
    }

    impl Write for Stalled {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut g = self.0.0.lock().unwrap();
            while !g.0 {
                g = self.0.1.wait(g).unwrap();
            }
            g.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn metric(
        f: &prometheus_client::metrics::family::Family<
            crate::metrics::OutputLabel,
            prometheus_client::metrics::counter::Counter,
        >,
        name: &str,
    ) -> u64 {
        f.get(&crate::metrics::OutputLabel {
            output: name.to_owned(),
        })
        .map_or(0, |c| c.get())
    }

    #[test]
    fn live_output_with_a_stalled_reader_drops_counted_and_never_blocks() {
        let w = Stalled::default();
        let name = "test: stalled live";
        let mut o = JsonLines::new(
            name.into(),
            Box::new(w.clone()),
            None,
            QueuePolicy {
                block: false,
                bytes: 4 * CHUNK,
            },
        )
        .unwrap();
        let line = format!(
            "{{\"event_type\":\"alert\",\"pad\":\"{}\"}}",
            "x".repeat(100)
        );
        let n = 4 * (HOLD.min(4 * CHUNK) + 4 * CHUNK) / line.len();
        let t0 = Instant::now();
        for _ in 0..n {
            o.raw(&line).unwrap();
        }
        o.flush().unwrap();
        // the producer went on while nothing was written
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        let m = crate::metrics::m();
        let dropped = o.dropped();
        assert!(dropped > 0, "lines dropped");
        assert_eq!(metric(&m.lines_dropped, name), dropped);
        assert_eq!(metric(&m.lines, name), 0, "nothing written yet");
        assert_eq!(dropped + o.pending(), n as u64, "every line accounted for");
        // the reader wakes up: what was queued or held is written
        w.release();
        o.close().unwrap();
        let written = w.bytes().iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(written + o.dropped(), n as u64);
        assert_eq!(metric(&m.lines, name), written);
    }

    #[test]
    fn replay_output_waits_for_a_slow_reader_and_loses_nothing() {
        let w = Stalled::default();
        let name = "test: slow replay";
        let mut o = JsonLines::new(
            name.into(),
            Box::new(w.clone()),
            None,
            QueuePolicy {
                block: true,
                bytes: 4 * CHUNK,
            },
        )
        .unwrap();
        let w2 = w.clone();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            w2.release();
        });
        let n = 20_000;
        for i in 0..n {
            o.raw(&format!("{{\"n\":{i},\"pad\":\"{}\"}}", "y".repeat(60)))
                .unwrap();
        }
        o.close().unwrap();
        release.join().unwrap();
        assert_eq!(o.dropped(), 0);
        let text = String::from_utf8(w.bytes()).unwrap();
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), n);
        assert!(
            got[n - 1].starts_with(&format!("{{\"n\":{}", n - 1)),
            "in order"
        );
        assert_eq!(metric(&crate::metrics::m().lines, name), n as u64);
    }

    #[test]
    fn a_write_error_reaches_the_writer_naming_the_output() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut o = JsonLines::new(
            "test: full".into(),
            Box::new(Full),
            None,
            QueuePolicy::default(),
        )
        .unwrap();
        o.raw("{}").unwrap();
        let e = o.close().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("test: full: write failed: No space left"),
            "{e}"
        );
    }
}
