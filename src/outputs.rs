//! Outputs with a queue of their own: syslog (RFC 5424 over UDP, over TCP
//! with octet counting, or a local datagram socket such as `/dev/log`).
//!
//! The writer thread hands each line to every queued output with a
//! non-blocking send into that output's bounded queue; a thread per output
//! drains it. A slow or dead consumer therefore never holds up the writer,
//! the analysis or capture: when its queue is full the line is dropped for
//! that output alone and counted (`deguchi_output_dropped_lines_total`, and
//! the exit summary). A lost connection is retried with back-off (0.1 s
//! doubling to 2 s); the line being sent when it broke is sent again
//! after the reconnect.
//!
//! `--syslog URL`, repeatable: `udp://HOST:PORT`, `tcp://HOST:PORT`,
//! `unix:///dev/log`; options as a query: `facility` (`local5`, Suricata's
//! default; `user`, `daemon`, `local0`..`local7`, ...), `app_name`
//! (`deguchi`), `queue` (lines, 4096) and `flows=1` (flow records too;
//! alerts and stats events always).

use crate::time::Ts;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use prometheus_client::metrics::counter::Counter;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a syslog output reaches its collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp(String),
    Tcp(String),
    Unix(String),
}

/// A parsed `--syslog` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogSpec {
    pub transport: Transport,
    pub facility: u8,
    pub app_name: String,
    pub queue: usize,
    pub flows: bool,
    /// The URL without its options: the output's name in metrics and logs.
    pub name: String,
}

const FACILITIES: [(&str, u8); 20] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

impl SyslogSpec {
    /// Parses `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix://PATH`, with
    /// `?facility=..&app_name=..&queue=N&flows=1`.
    ///
    /// # Errors
    /// What is wrong with the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut spec = Self::base(base).map_err(|e| format!("{url}: {e}"))?;
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if !Self::OPTIONS.contains(&k) {
                return Err(format!("{url}: unknown option {k:?}"));
            }
            spec.set(k, v).map_err(|e| format!("{url}: {e}"))?;
        }
        Ok(spec)
    }

    /// The options of a syslog output (URL query keys, and with `url` the
    /// keys of an `[[output.syslog]]` table).
    pub const OPTIONS: [&str; 4] = ["facility", "app_name", "queue", "flows"];

    /// Sets option `k` (one of [`Self::OPTIONS`]) from its text.
    ///
    /// # Errors
    /// What is wrong with the value.
    pub fn set(&mut self, k: &str, v: &str) -> Result<(), String> {
        match k {
            "facility" => {
                self.facility = FACILITIES
                    .iter()
                    .find(|(n, _)| *n == v)
                    .map(|(_, f)| *f)
                    .ok_or_else(|| {
                        let known: Vec<&str> = FACILITIES.iter().map(|f| f.0).collect();
                        format!("unknown facility {v:?} (known: {})", known.join(", "))
                    })?;
            }
            "app_name" => {
                let ok =
                    !v.is_empty() && v.len() <= 48 && v.bytes().all(|b| (33..=126).contains(&b));
                if !ok {
                    return Err("app_name must be 1-48 printable ASCII characters".into());
                }
                v.clone_into(&mut self.app_name);
            }
            "queue" => {
                self.queue = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1 << 20).contains(n))
                    .ok_or_else(|| "queue must be 1..=1048576 lines".to_owned())?;
            }
            "flows" => self.flows = matches!(v, "1" | "true" | "yes"),
            _ => return Err(format!("unknown option {k:?}")),
        }
        Ok(())
    }

    /// The output of `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix://PATH`
    /// (no options) with the default options.
    ///
    /// # Errors
    /// What is wrong with the URL.
    pub fn base(url: &str) -> Result<Self, String> {
        let base = url;
        let (scheme, rest) = base
            .split_once("://")
            .ok_or_else(|| "expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH".to_owned())?;
        if rest.is_empty() {
            return Err("no address".into());
        }
        let transport = match scheme {
            "udp" | "tcp" => {
                let Some((_, port)) = rest.rsplit_once(':') else {
                    return Err("HOST:PORT expected".into());
                };
                port.parse::<u16>()
                    .map_err(|_| format!("bad port {port:?}"))?;
                if scheme == "udp" {
                    Transport::Udp(rest.to_owned())
                } else {
                    Transport::Tcp(rest.to_owned())
                }
            }
            "unix" => Transport::Unix(rest.to_owned()),
            s => return Err(format!("unknown scheme {s:?} (udp, tcp, unix)")),
        };
        Ok(Self {
            transport,
            facility: 21,
            app_name: "deguchi".to_owned(),
            queue: 4096,
            flows: false,
            name: format!("syslog {base}"),
        })
    }
}

/// One line for a queued output.
pub struct Line {
    /// Syslog severity (2 critical .. 6 informational).
    pub severity: u8,
    /// `alert`, `flow` or `stats` (the RFC 5424 MSGID).
    pub msgid: &'static str,
    /// Packet time of the event.
    pub ts: Ts,
    pub json: Arc<str>,
}

/// Per-output counts, for metrics and the exit summary.
#[derive(Clone)]
struct Counts {
    name: String,
    written: Counter,
    dropped: Counter,
    errors: Counter,
    /// Lines in the queue (set as lines go in and out), as
    /// `deguchi_output_queue_lines` and `deguchi_queue_depth`.
    depth: prometheus_client::metrics::gauge::Gauge,
    qdepth: prometheus_client::metrics::gauge::Gauge,
}

impl Counts {
    fn new(name: &str, capacity: usize) -> Self {
        let m = crate::metrics::m();
        let l = crate::metrics::OutputLabel {
            output: name.to_owned(),
        };
        let c = Self {
            name: name.to_owned(),
            written: m.lines.get_or_create_owned(&l),
            dropped: m.lines_dropped.get_or_create_owned(&l),
            errors: m.write_errors.get_or_create_owned(&l),
            depth: m.queued.get_or_create_owned(&l),
            qdepth: m.queue(name, capacity),
        };
        if let Ok(mut all) = ALL.lock() {
            all.push(c.clone());
        }
        c
    }
}

impl Counts {
    fn set_depth(&self, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.depth.set(n);
        self.qdepth.set(n);
    }
}

static ALL: Mutex<Vec<Counts>> = Mutex::new(Vec::new());

/// One line per queued output for the exit summary (empty: none).
#[must_use]
pub fn summary() -> Vec<String> {
    ALL.lock()
        .map(|all| {
            all.iter()
                .map(|c| {
                    format!(
                        "{}: {} lines written, {} dropped (queue full), {} write errors",
                        c.name,
                        c.written.get(),
                        c.dropped.get(),
                        c.errors.get()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An output with its own bounded queue and thread.
pub struct Queued {
    pub flows: bool,
    tx: Option<Sender<Line>>,
    counts: Counts,
    closing: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How long the queue of an output gets to drain at exit.
const DRAIN: Duration = Duration::from_secs(3);

impl Queued {
    /// Starts a syslog output.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn syslog(spec: SyslogSpec) -> std::io::Result<Self> {
        let (tx, rx) = bounded(spec.queue);
        let counts = Counts::new(&spec.name, spec.queue);
        let closing = Arc::new(AtomicBool::new(false));
        let (c, cl) = (counts.clone(), Arc::clone(&closing));
        let flows = spec.flows;
        let thread = std::thread::Builder::new()
            .name("syslog".into())
            .spawn(move || Syslog::new(spec, c).run(&rx, &cl))?;
        Ok(Self {
            flows,
            tx: Some(tx),
            counts,
            closing,
            thread: Some(thread),
        })
    }

    /// Queues a line; never blocks. A full queue drops it (counted).
    pub fn send(&self, line: Line) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(line) {
            Ok(()) => self.counts.set_depth(tx.len()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts.dropped.inc();
            }
        }
    }
}

impl Drop for Queued {
    /// Closes the queue and gives the thread [`DRAIN`] to send what is left
    /// (what it cannot send by then is counted as dropped).
    fn drop(&mut self) {
        self.tx = None;
        let t0 = Instant::now();
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) && t0.elapsed() < DRAIN {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.closing.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Unix(UnixDatagram),
}

struct Syslog {
    spec: SyslogSpec,
    counts: Counts,
    hostname: String,
    conn: Option<Conn>,
    backoff: Duration,
    next_try: Instant,
}

impl Syslog {
    fn new(spec: SyslogSpec, counts: Counts) -> Self {
        Self {
            spec,
            counts,
            hostname: hostname(),
            conn: None,
            backoff: Duration::from_millis(100),
            next_try: Instant::now(),
        }
    }

    fn run(mut self, rx: &Receiver<Line>, closing: &AtomicBool) {
        let mut pending: Option<Line> = None;
        loop {
            let line = match pending.take() {
                Some(l) => l,
                None => match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(l) => l,
                    Err(RecvTimeoutError::Timeout) => {
                        if closing.load(Ordering::Relaxed) {
                            break;
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            self.counts.set_depth(rx.len());
            if closing.load(Ordering::Relaxed) {
                // exit: what could not be sent in time is dropped, counted
                self.counts.dropped.inc_by(1 + rx.len() as u64);
                break;
            }
            if !self.connected() {
                pending = Some(line);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            match self.send(&line) {
                Ok(()) => {
                    self.counts.written.inc();
                    self.backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    self.counts.errors.inc();
                    tracing::warn!("{}: {e}; reconnecting", self.spec.name);
                    self.conn = None;
                    self.next_try = Instant::now() + self.backoff;
                    if matches!(self.spec.transport, Transport::Tcp(_)) {
                        // a stream may have lost it: send it again on the next connection
                        pending = Some(line);
                    } else {
                        self.counts.dropped.inc();
                    }
                }
            }
        }
    }

    /// Whether there is a connection, trying to make one when the back-off allows.
    fn connected(&mut self) -> bool {
        if let Some(Conn::Tcp(s)) = &self.conn
            && peer_closed(s)
        {
            tracing::warn!(
                "{}: collector closed the connection; reconnecting",
                self.spec.name
            );
            self.conn = None;
        }
        if self.conn.is_some() {
            return true;
        }
        if Instant::now() < self.next_try {
            return false;
        }
        match self.connect() {
            Ok(c) => {
                tracing::info!("{}: connected", self.spec.name);
                self.conn = Some(c);
                true
            }
            Err(e) => {
                tracing::debug!("{}: cannot connect: {e}", self.spec.name);
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                false
            }
        }
    }

    fn connect(&self) -> std::io::Result<Conn> {
        match &self.spec.transport {
            Transport::Udp(a) => {
                let addr = first_addr(a)?;
                let bind = if addr.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(bind)?;
                s.connect(addr)?;
                Ok(Conn::Udp(s))
            }
            Transport::Tcp(a) => {
                let s = TcpStream::connect_timeout(&first_addr(a)?, Duration::from_secs(2))?;
                s.set_write_timeout(Some(Duration::from_secs(2)))?;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            Transport::Unix(p) => {
                let s = UnixDatagram::unbound()?;
                s.connect(p)?;
                Ok(Conn::Unix(s))
            }
        }
    }

    fn send(&mut self, l: &Line) -> std::io::Result<()> {
        let msg = rfc5424(
            self.spec.facility,
            l,
            &self.hostname,
            &self.spec.app_name,
            std::process::id(),
        );
        match &mut self.conn {
            Some(Conn::Udp(s)) => s.send(msg.as_bytes()).map(drop),
            Some(Conn::Unix(s)) => s.send(msg.as_bytes()).map(drop),
            Some(Conn::Tcp(s)) => {
                // RFC 6587 octet counting: "LEN SP MSG"
                let mut framed = format!("{} ", msg.len()).into_bytes();
                framed.extend_from_slice(msg.as_bytes());
                s.write_all(&framed)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "not connected",
            )),
        }
    }
}

fn first_addr(a: &str) -> std::io::Result<std::net::SocketAddr> {
    a.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, format!("{a}: no address"))
    })
}

/// Whether the collector closed its end (it never sends: a readable EOF
/// or an error means the connection is gone).
fn peer_closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let closed = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).is_err() || closed
}

/// This host's name as RFC 5424 wants it (printable ASCII, no spaces), or `-`.
fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim();
    if h.is_empty() || h.len() > 255 || !h.bytes().all(|b| (33..=126).contains(&b)) {
        "-".to_owned()
    } else {
        h.to_owned()
    }
}

/// An RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`,
/// the timestamp the event's (packet clock), the message the EVE JSON line.
#[must_use]
pub fn rfc5424(facility: u8, l: &Line, host: &str, app: &str, pid: u32) -> String {
    let pri = u16::from(facility) * 8 + u16::from(l.severity.min(7));
    format!(
        "<{pri}>1 {} {host} {app} {pid} {} - {}",
        crate::time::rfc3339(l.ts),
        l.msgid,
        l.json
    )
}

/// Syslog severity of an alert: high 2 (critical), medium 4 (warning), low 5 (notice).
#[must_use]
pub fn alert_severity(s: crate::alert::Severity) -> u8 {
    match s {
        crate::alert::Severity::High => 2,
        crate::alert::Severity::Medium => 4,
        crate::alert::Severity::Low => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_syslog_urls() {
        let s =
            SyslogSpec::parse("tcp://127.0.0.1:5514?facility=local0&app_name=ids&queue=8&flows=1")
                .unwrap();
        assert_eq!(s.transport, Transport::Tcp("127.0.0.1:5514".into()));
        assert_eq!(
            (s.facility, s.app_name.as_str(), s.queue, s.flows),
            (16, "ids", 8, true)
        );
        assert_eq!(s.name, "syslog tcp://127.0.0.1:5514");
        let u = SyslogSpec::parse("udp://[::1]:514").unwrap();
        assert_eq!(
            (u.transport, u.facility, u.queue),
            (Transport::Udp("[::1]:514".into()), 21, 4096)
        );
        assert_eq!(
            SyslogSpec::parse("unix:///dev/log").unwrap().transport,
            Transport::Unix("/dev/log".into())
        );
        for bad in [
            "127.0.0.1:514",
            "http://x:1",
            "tcp://host",
            "tcp://host:99999",
            "udp://h:1?facility=nope",
            "udp://h:1?queue=0",
            "udp://h:1?app_name=a%20b c",
            "udp://h:1?colour=red",
            "unix://",
        ] {
            assert!(SyslogSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_rfc5424() {
        let l = Line {
            severity: 4,
            msgid: "alert",
            ts: crate::time::from_parts(1_772_409_600, 1_000),
            json: "{\"event_type\":\"alert\"}".into(),
        };
        assert_eq!(
            rfc5424(21, &l, "sensor1", "deguchi", 42),
            "<172>1 2026-03-02T00:00:00.000001Z sensor1 deguchi 42 alert - {\"event_type\":\"alert\"}"
        );
    }
}
