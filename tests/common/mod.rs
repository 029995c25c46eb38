//! Shared test helpers: build small captures with etherparse and run deguchi.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use std::path::Path;
use std::process::{Command, Output};

/// A classic pcap (µs, little-endian, Ethernet) from (ts_us, frame) pairs.
pub fn pcap_bytes(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (ts, f) in frames {
        v.extend_from_slice(&u32::try_from(ts / 1_000_000).unwrap().to_le_bytes());
        v.extend_from_slice(&u32::try_from(ts % 1_000_000).unwrap().to_le_bytes());
        let n = u32::try_from(f.len()).unwrap();
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(f);
    }
    v
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

pub fn read_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

pub fn total_pkts(flows: &[serde_json::Value]) -> u64 {
    flows
        .iter()
        .map(|f| {
            f["flow"]["pkts_toserver"].as_u64().unwrap()
                + f["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum()
}

/// A classic pcap from (ts_us, captured bytes, wire length) records: records
/// may be cut short, as a mirror-port capture with a small snaplen cuts them.
pub fn pcap_records(recs: &[(u64, Vec<u8>, u32)]) -> Vec<u8> {
    let mut v = pcap_bytes(&[]);
    for (ts, f, wire) in recs {
        v.extend_from_slice(&u32::try_from(ts / 1_000_000).unwrap().to_le_bytes());
        v.extend_from_slice(&u32::try_from(ts % 1_000_000).unwrap().to_le_bytes());
        v.extend_from_slice(&u32::try_from(f.len()).unwrap().to_le_bytes());
        v.extend_from_slice(&wire.to_le_bytes());
        v.extend_from_slice(f);
    }
    v
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

pub fn alert_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every alert line is one JSON object"))
        .collect()
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
}

impl Live {
    /// Starts `deguchi live ARGS` and waits for "capturing on lo"; `None`
    /// (after a note) when capture is not permitted here, unless
    /// DEGUCHI_REQUIRE_LIVE is set.
    pub fn start(args: &[&str]) -> Option<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deguchi"))
            .arg("live")
            .args(args)
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
                Ok(l) if l.contains("capturing on lo") => {
                    return Some(Self {
                        child: Some(child),
                        reader: Some(reader),
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
            std::env::var("DEGUCHI_REQUIRE_LIVE").is_err(),
            "live capture did not start:\n{log}"
        );
        eprintln!("skipping: cannot capture on lo here:\n{log}");
        None
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
