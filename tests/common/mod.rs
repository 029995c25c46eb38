//! Shared test helpers: build small captures with etherparse and run
//! deguchi; deguchi's output lines parsed into typed structs ([`Alert`],
//! [`Flow`]), so a renamed or missing field fails to parse instead of reading
//! as `null`.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use serde::Deserialize;
use std::path::Path;
use std::process::{Command, Output};

/// One alert line (EVE `event_type` "alert"). Every field the sensor always
/// writes is required; the ones it leaves out for some alerts (no ports, no
/// single flow) are `Option`. Unknown fields are accepted: EVE is an open
/// schema that grows (Suricata's readers ignore what they do not know).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alert {
    pub timestamp: String,
    pub event_type: String,
    pub flow_id: Option<u64>,
    pub src_ip: String,
    pub src_port: Option<u16>,
    pub dest_ip: String,
    pub dest_port: Option<u16>,
    pub proto: String,
    pub community_id: Option<String>,
    pub detector: String,
    pub alert: Signature,
    pub score: f64,
    pub severity: String,
    /// Per detector; see the README's alert schema.
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

impl Alert {
    /// The evidence as a detector's evidence struct ([`BeaconEvidence`],
    /// [`ExfilEvidence`], ...).
    pub fn evidence_as<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(serde_json::Value::Object(self.evidence.clone()))
            .unwrap_or_else(|e| panic!("{} evidence: {e}: {:?}", self.detector, self.evidence))
    }
}

/// The evidence fields every beacon alert carries (those the tests read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BeaconEvidence {
    pub beats: u64,
    pub period_s: f64,
    pub jitter: f64,
    pub channel: String,
    pub dest_name: Option<String>,
    pub first_seen: String,
    pub last_seen: String,
}

/// The evidence fields every exfil alert carries (those the tests read).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExfilEvidence {
    pub kind: String,
    pub kinds: Vec<String>,
    /// only with an `unusual_channel` finding
    pub channel: Option<String>,
    pub bytes_out_total: u64,
    pub update: bool,
    pub first_seen: String,
    pub last_seen: String,
}

/// The Suricata-style `alert` object of an [`Alert`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Signature {
    pub action: String,
    pub gid: u32,
    pub signature_id: u32,
    pub rev: u32,
    pub signature: String,
    pub category: String,
    pub severity: u8,
}

/// One flow record (EVE `event_type` "flow", `--flows`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Flow {
    pub timestamp: String,
    pub flow_id: u64,
    pub event_type: String,
    pub src_ip: String,
    pub src_port: Option<u16>,
    pub dest_ip: String,
    pub dest_port: Option<u16>,
    pub proto: String,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
    pub community_id: String,
    pub vlan: Option<Vec<u16>>,
    pub flow: FlowBody,
    pub tcp: Option<FlowTcp>,
    pub tls: Option<FlowTls>,
    pub http: Option<FlowHttp>,
    /// What Suricata has no name for.
    pub deguchi: FlowExt,
}

/// The `flow` object of a [`Flow`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowBody {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: String,
    pub end: String,
    pub age: i64,
    pub state: String,
    /// Suricata's: `timeout`, `forced`, `shutdown`.
    pub reason: String,
    pub alerted: bool,
}

/// The `deguchi` object of a [`Flow`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowExt {
    pub direction: String,
    pub duration: f64,
    pub payload_bytes_toserver: u64,
    pub payload_bytes_toclient: u64,
    pub bursts: u32,
    pub tunnel: Option<String>,
    /// deguchi's own: `closed`, `timeout`, `evicted`, `shutdown`.
    pub end_reason: String,
    /// `ports` or `first_packet`: the originator was not seen opening the flow.
    pub direction_inferred: Option<String>,
    pub dns: Option<FlowDns>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowTcp {
    pub tcp_flags: String,
    pub tcp_flags_ts: String,
    pub tcp_flags_tc: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowTls {
    pub sni: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowHttp {
    pub hostname: Option<String>,
    pub http_method: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlowDns {
    pub queries: Vec<String>,
    pub answers: Vec<String>,
    pub rcode: Option<u8>,
}

/// Parses one output line as `T`, checking its `event_type`.
fn parse_event<T: serde::de::DeserializeOwned>(line: &str, event_type: &str) -> T {
    #[derive(Deserialize)]
    struct Tag {
        event_type: String,
    }
    let tag: Tag = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("not a JSON line with an event_type ({e}): {line}"));
    assert_eq!(tag.event_type, event_type, "{line}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Parses an alert line.
pub fn parse_alert(line: &str) -> Alert {
    parse_event(line, "alert")
}

/// Parses a flow-record line.
pub fn parse_flow(line: &str) -> Flow {
    parse_event(line, "flow")
}

/// The alerts a run wrote on stdout.
pub fn alerts(out: &Output) -> Vec<Alert> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(parse_alert)
        .collect()
}

/// The flow records of a `--flows` file (none when it does not exist).
pub fn read_flows(p: &Path) -> Vec<Flow> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(parse_flow)
        .collect()
}

/// Packets of both directions over `flows`.
pub fn flow_pkts(flows: &[Flow]) -> u64 {
    flows
        .iter()
        .map(|f| f.flow.pkts_toserver + f.flow.pkts_toclient)
        .sum()
}

/// The records of a classic little-endian µs pcap (as [`pcap_records`]
/// writes them): (ts_us, captured bytes, wire length).
pub fn read_pcap(bytes: &[u8]) -> Vec<(u64, Vec<u8>, u32)> {
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4, "a classic little-endian µs pcap");
    let mut v = Vec::new();
    let mut i = 24;
    while i + 16 <= bytes.len() {
        let ts = u64::from(u32_at(i)) * 1_000_000 + u64::from(u32_at(i + 4));
        let cap = u32_at(i + 8) as usize;
        v.push((ts, bytes[i + 16..i + 16 + cap].to_vec(), u32_at(i + 12)));
        i += 16 + cap;
    }
    v
}

/// A classic pcap (µs, little-endian, Ethernet) from (ts_us, frame) pairs,
/// every frame whole.
pub fn pcap_bytes(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    deguchi_synth::pcap::pcap_bytes(
        frames
            .iter()
            .map(|(ts, f)| (*ts, f.as_slice(), u32::try_from(f.len()).unwrap())),
    )
}

pub const T0: u64 = 1_772_409_600_000_000; // 2026-03-02T00:00:00Z in µs

/// A TCP segment between two IPv4 hosts.
pub fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(1);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// A UDP datagram between two IPv4 hosts.
pub fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// One complete TCP session client 10.0.0.5:40000 -> 93.184.216.34:443, `n` data segments.
pub fn tcp_session(start_us: u64, n: usize) -> Vec<(u64, Vec<u8>)> {
    let payloads = vec![vec![0x42; 100]; n];
    tcp_exchange(
        start_us,
        ([10, 0, 0, 5], 40000),
        ([93, 184, 216, 34], 443),
        &payloads,
    )
}

/// A complete TCP session from `client` to `server` (address, port), 1 ms
/// apart: handshake, one client segment per payload, FIN/FIN/ACK.
pub fn tcp_exchange(
    start_us: u64,
    (c, cp): ([u8; 4], u16),
    (s, sp): ([u8; 4], u16),
    payloads: &[Vec<u8>],
) -> Vec<(u64, Vec<u8>)> {
    let mut v = vec![
        (start_us, tcp(c, cp, s, sp, "S", &[])),
        (start_us + 1000, tcp(s, sp, c, cp, "SA", &[])),
        (start_us + 2000, tcp(c, cp, s, sp, "A", &[])),
    ];
    let mut t = start_us + 3000;
    for p in payloads {
        v.push((t, tcp(c, cp, s, sp, "AP", p)));
        t += 1000;
    }
    v.push((t, tcp(c, cp, s, sp, "FA", &[])));
    v.push((t + 1000, tcp(s, sp, c, cp, "FA", &[])));
    v.push((t + 2000, tcp(c, cp, s, sp, "A", &[])));
    v
}

pub fn deguchi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args(args)
        .output()
        .unwrap()
}

/// A classic pcap from (ts_us, captured bytes, wire length) records: records
/// may be cut short, as a mirror-port capture with a small snaplen cuts them.
pub fn pcap_records(recs: &[(u64, Vec<u8>, u32)]) -> Vec<u8> {
    deguchi_synth::pcap::pcap_bytes(recs.iter().map(|(ts, f, wire)| (*ts, f.as_slice(), *wire)))
}

/// A TCP segment carrying `len` payload bytes, captured up to the TCP header
/// plus 16 bytes; returns (captured, wire length).
pub fn tcp_big(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, len: usize) -> (Vec<u8>, u32) {
    let mut f = tcp(src, sport, dst, dport, "AP", &vec![0x5a; len]);
    let wire = u32::try_from(f.len()).unwrap();
    f.truncate(54 + 16);
    (f, wire)
}

/// A complete TCP connection: handshake, `up` bytes client->server and
/// `down` bytes back (in segments of at most 60 000 bytes), FIN/FIN/ACK.
pub fn tcp_conn(
    t0_us: u64,
    c: [u8; 4],
    sport: u16,
    s: [u8; 4],
    dport: u16,
    up: usize,
    down: usize,
) -> Vec<(u64, Vec<u8>, u32)> {
    let mut v = Vec::new();
    let mut t = t0_us;
    let mut push = |t: u64, f: Vec<u8>| {
        let w = u32::try_from(f.len()).unwrap();
        v.push((t, f, w));
    };
    push(t, tcp(c, sport, s, dport, "S", &[]));
    t += 20_000;
    push(t, tcp(s, dport, c, sport, "SA", &[]));
    t += 20_000;
    push(t, tcp(c, sport, s, dport, "A", &[]));
    let seg = |t: &mut u64, from_c: bool, mut n: usize, v: &mut Vec<(u64, Vec<u8>, u32)>| {
        while n > 0 {
            let k = n.min(60_000);
            let (f, w) = if from_c {
                tcp_big(c, sport, s, dport, k)
            } else {
                tcp_big(s, dport, c, sport, k)
            };
            *t += 1_000;
            v.push((*t, f, w));
            n -= k;
        }
    };
    seg(&mut t, true, up, &mut v);
    t += 20_000;
    seg(&mut t, false, down, &mut v);
    t += 20_000;
    let fin = |t: u64, f: Vec<u8>| {
        let w = u32::try_from(f.len()).unwrap();
        (t, f, w)
    };
    v.push(fin(t, tcp(c, sport, s, dport, "FA", &[])));
    v.push(fin(t + 20_000, tcp(s, dport, c, sport, "FA", &[])));
    v.push(fin(t + 40_000, tcp(c, sport, s, dport, "A", &[])));
    v
}

/// xorshift64* for reproducible test traffic.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A clock datagram: one UDP packet 10.0.1.250:40001 -> 192.0.2.99:9 at
/// `ts_us`, to move the packet clock (and with it flow expiry) forward.
pub fn clock_tick(ts_us: u64) -> (u64, Vec<u8>, u32) {
    let f = udp([10, 0, 1, 250], 40001, [192, 0, 2, 99], 9, b"tick");
    let w = u32::try_from(f.len()).unwrap();
    (ts_us, f, w)
}

/// `deguchi replay - --workers 1 --flows - ARGS` reading a pipe the test
/// keeps open, so the replay cannot end by itself: it stops on a signal
/// only. Alerts and flow records (both on stdout) arrive line by line.
pub struct StdinReplay {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    /// The output lines read so far.
    pub seen: Vec<String>,
}

impl StdinReplay {
    /// Starts the replay and writes `input` to its stdin (left open).
    pub fn start(extra: &[&str], input: &[u8]) -> Self {
        use std::io::{BufRead, Read, Write};
        let mut child = Command::new(env!("CARGO_BIN_EXE_deguchi"))
            .args(["replay", "-", "--workers", "1", "--flows", "-"])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines() {
                let _ = tx.send(l.expect("UTF-8 lines"));
            }
        });
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        stdin.flush().unwrap();
        Self {
            child,
            stdin: Some(stdin),
            lines,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (at most `secs` seconds) for an output line `pred` accepts;
    /// panics (after killing the replay) when none comes.
    pub fn wait_for_line(&mut self, secs: u64, pred: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(l) = self.lines.recv_timeout(left) else {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("no awaited line within {secs} s; got {:?}", self.seen);
            };
            let hit = pred(&l);
            self.seen.push(l);
            if hit {
                return;
            }
        }
    }

    /// SIGTERM, stdin still open; waits (at most `secs` seconds) for the
    /// exit: (exit status, stderr, the lines written after the signal).
    pub fn sigterm(mut self, secs: u64) -> (std::process::ExitStatus, String, Vec<String>) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let t = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > std::time::Duration::from_secs(secs) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("still running {secs} s after SIGTERM with stdin open");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        drop(self.stdin.take());
        let err = self.stderr.join().unwrap();
        (status, err, self.lines.iter().collect())
    }
}

/// A capture under ../shared/pcaps/real/, or `None` with a message when it
/// is absent (a user's clone does not have the shared folder).
pub fn real_capture(name: &str) -> Option<std::path::PathBuf> {
    let p = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps/real"))
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not present", p.display());
        None
    }
}

/// An EVE timestamp (`2024-03-03T22:57:40.556097+0000`) or RFC 3339.
pub fn eve_time(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

// ---- processes and HTTP for the live tests (metrics, syslog) ----

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port: (status line, body).
pub fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// The value of `query` in Prometheus (first series), if any.
pub fn query(prom: u16, q: &str) -> Option<f64> {
    let (_, body) = get(prom, &format!("/api/v1/query?query={q}"))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// A child process ended (SIGTERM, then SIGKILL after 10 s) when dropped.
pub struct Kill(pub Child);

impl Drop for Kill {
    fn drop(&mut self) {
        terminate(&mut self.0);
    }
}

/// SIGTERM, up to 10 s to exit, then SIGKILL.
fn terminate(c: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &c.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if matches!(c.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

/// A running `deguchi live`, its stderr collected line by line; ended
/// (SIGTERM) when dropped, so a failing test leaves no capture running.
pub struct Live {
    child: Option<Child>,
    reader: Option<std::thread::JoinHandle<String>>,
    /// stderr lines as they come
    lines: mpsc::Receiver<String>,
}

impl Live {
    /// Starts `deguchi live ARGS` and waits for "capturing on lo"; `None`
    /// (after a note) when capture is not permitted here, unless
    /// DEGUCHI_REQUIRE_LIVE is set.
    pub fn start(args: &[&str]) -> Option<Self> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deguchi"));
        cmd.arg("live").args(args);
        Self::spawn(cmd, "lo")
    }

    /// Starts `cmd` (a `deguchi live -i IFACE` command line) and waits for
    /// "capturing on IFACE", as [`Live::start`].
    pub fn spawn(mut cmd: Command, iface: &str) -> Option<Self> {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (ltx, lrx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = ltx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match lrx.recv_timeout(Duration::from_millis(200)) {
                Ok(l) if l.contains(&format!("capturing on {iface} ")) => {
                    return Some(Self {
                        child: Some(child),
                        reader: Some(reader),
                        lines: lrx,
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                _ => {}
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let log = reader.join().unwrap();
        assert!(
            std::env::var_os("DEGUCHI_REQUIRE_LIVE").is_none_or(|v| v == "0"),
            "live capture did not start:\n{log}"
        );
        eprintln!("skipping: cannot capture on {iface} here:\n{log}");
        None
    }

    /// Waits (at most `secs` seconds) for a stderr line containing `needle`.
    pub fn wait_for(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, sig: &str) {
        let id = self.id();
        let st = Command::new("kill")
            .args([sig, &id.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// SIGTERM, then (exit status, stderr, how long the stop took).
    pub fn stop(mut self) -> (std::process::ExitStatus, String, Duration) {
        self.signal("-TERM");
        let t = Instant::now();
        let status = self.child.take().unwrap().wait().unwrap();
        let log = self.reader.take().unwrap().join().unwrap();
        (status, log, t.elapsed())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            terminate(c);
        }
    }
}

pub fn have(bin: &str) -> bool {
    Path::new(bin).exists()
}

/// Whether tshark runs here; a failure when `DEGUCHI_REQUIRE_TSHARK=1` (CI)
/// and it does not, otherwise a note (the caller skips).
pub fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("DEGUCHI_REQUIRE_TSHARK").as_deref() != Ok("1"),
            "tshark is required (DEGUCHI_REQUIRE_TSHARK=1) but not installed"
        );
        eprintln!("SKIP: tshark not installed");
    }
    ok
}
