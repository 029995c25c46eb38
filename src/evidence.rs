//! Evidence pcaps (`--evidence DIR`): the packets of an alerted flow, as a
//! pcap an analyst opens in Wireshark.
//!
//! ```text
//! shard: decode -> Store::record (the flow's ring of recent packets)
//! writer: alert -> evidence.pcap = DIR/<id>.pcap -> Request to every shard
//! shard (between batches): Request -> the matching rings written to the
//!        file, which then takes the flow's next packets up to a cap
//! ```
//!
//! - Each shard keeps, per flow (canonical 5-tuple and VLAN), a ring of its
//!   last `packets_before` packets; all rings of a shard together hold at
//!   most `memory_mb / shards` bytes, the oldest flow's ring going first.
//!   Rings outlive their flow in the table (a beacon alert comes when the
//!   flow has ended). Evicted rings are kept for reuse: no allocation per
//!   packet once the rings have grown.
//! - Both directions of a flow are on one shard (steering by address
//!   pair), so one shard answers a request; the others have no ring for it.
//! - The shards keep serving requests after the end of input until the
//!   writer is done, so alerts concluded at the final flush get their pcap.
//! - `DIR` holds at most `disk_mb`: the oldest pcaps are removed first
//!   (checked by the writer at most once a second, and at the end).
//! - Replay of files: the shards run far ahead of analysis, so by the time
//!   an alert asks, its flow's later packets have gone by (and a busy
//!   flow's ring holds packets from after the alert instead of before it).
//!   Once the run is over, [`rewrite_from_files`] reads the input files
//!   again and writes every alert's pcap anew: the flow's last
//!   `packets_before` packets up to the alert's time, then its next
//!   `packets_after` packets, exactly, however far the shards had got.
//!   (Not for stdin, which cannot be read twice: its pcaps are the shards'.)

use crate::alert::Alert;
use crate::decode::{LinkType, PacketMeta};
use crate::flow::key::FlowKey;
use crate::time::{SEC, Ts};
use crossbeam_channel::Receiver;
use std::collections::{HashMap, VecDeque};
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `[evidence]` settings.
#[derive(Clone, Debug)]
pub struct EvidenceConfig {
    /// Where the pcaps go; `None` = no evidence kept.
    pub dir: Option<PathBuf>,
    /// Memory for the rings of all shards together, MiB.
    pub memory_mb: u64,
    /// Disk for `dir`, MiB; the oldest pcaps are removed beyond it.
    pub disk_mb: u64,
    /// Packets kept per flow before an alert.
    pub packets_before: usize,
    /// Packets of the flow written after the alert.
    pub packets_after: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            dir: None,
            memory_mb: 64,
            disk_mb: 1024,
            packets_before: 64,
            packets_after: 64,
        }
    }
}

/// The flow an alert names: its addresses, protocol and (if any) ports, in
/// either direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowMatch {
    a: u128,
    b: u128,
    pa: Option<u16>,
    pb: Option<u16>,
    proto: u8,
}

fn addr(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl FlowMatch {
    #[must_use]
    pub fn of_alert(a: &Alert) -> Self {
        Self {
            a: addr(a.src_ip),
            b: addr(a.dest_ip),
            pa: a.src_port,
            pb: a.dest_port,
            proto: a.proto,
        }
    }

    fn side(addr: u128, port: u16, want: u128, wport: Option<u16>) -> bool {
        addr == want && wport.is_none_or(|p| p == port)
    }

    /// Whether the flow `k` is this one (either direction).
    #[must_use]
    pub fn matches(&self, k: &FlowKey) -> bool {
        k.proto == self.proto
            && ((Self::side(k.a, k.pa, self.a, self.pa) && Self::side(k.b, k.pb, self.b, self.pb))
                || (Self::side(k.b, k.pb, self.a, self.pa)
                    && Self::side(k.a, k.pa, self.b, self.pb)))
    }
}

/// An alert's request for its flow's packets.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: PathBuf,
    pub flow: FlowMatch,
}

/// The file name (without directory) of an alert's pcap: packet-clock
/// second, signature id and flow id (or a hash of the tuple), so two alerts
/// share a file only when they name the same flow in the same second.
#[must_use]
pub fn file_name(a: &Alert) -> String {
    let id = a.flow_id.unwrap_or_else(|| {
        let m = FlowMatch::of_alert(a);
        let mut x: u64 = 0xcbf2_9ce4_8422_2325;
        for v in [
            (m.a >> 64) as u64,
            m.a as u64,
            (m.b >> 64) as u64,
            m.b as u64,
            u64::from(m.pa.unwrap_or(0)) << 16 | u64::from(m.pb.unwrap_or(0)),
            u64::from(m.proto),
        ] {
            x = (x ^ v).wrapping_mul(0x0100_0000_01b3);
        }
        x & ((1 << 51) - 1)
    });
    format!("{}-{}-{id:x}.pcap", a.ts.div_euclid(SEC), a.signature_id)
}

#[derive(Clone, Copy, Debug)]
struct Rec {
    ts: Ts,
    wire_len: u32,
    len: u32,
    link: LinkType,
}

/// One flow's recent packets: headers and their bytes, oldest first.
#[derive(Default)]
struct Ring {
    recs: VecDeque<Rec>,
    bytes: VecDeque<u8>,
}

impl Ring {
    fn pop(&mut self) -> usize {
        let Some(r) = self.recs.pop_front() else {
            return 0;
        };
        let n = (r.len as usize).min(self.bytes.len());
        self.bytes.drain(..n);
        n
    }

    fn clear(&mut self) {
        self.recs.clear();
        self.bytes.clear();
    }
}

/// A pcap still taking its flow's packets after the alert.
struct Armed {
    flow: FlowMatch,
    w: PcapWriter,
    left: usize,
}

/// Writes classic pcap with nanosecond timestamps.
struct PcapWriter {
    w: BufWriter<std::fs::File>,
    path: PathBuf,
}

impl PcapWriter {
    fn create(path: &Path, link: LinkType, snaplen: u32) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let mut w = BufWriter::new(f);
        w.write_all(&0xa1b2_3c4d_u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&[0; 8])?;
        w.write_all(&snaplen.to_le_bytes())?;
        w.write_all(&link.dlt().to_le_bytes())?;
        Ok(Self {
            w,
            path: path.to_owned(),
        })
    }

    fn packet(&mut self, ts: Ts, wire_len: u32, data: &[u8]) -> std::io::Result<()> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let (s, ns) = (ts.div_euclid(SEC), ts.rem_euclid(SEC));
        let w = &mut self.w;
        w.write_all(&u32::try_from(s).unwrap_or(0).to_le_bytes())?;
        w.write_all(&u32::try_from(ns).unwrap_or(0).to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&wire_len.max(len).to_le_bytes())?;
        w.write_all(data)
    }
}

/// Counts of one shard's evidence store.
#[derive(Clone, Copy, Debug, Default)]
pub struct EvidenceCounters {
    /// Pcaps written.
    pub files: u64,
    /// Packets written to them.
    pub packets: u64,
    /// Flows whose rings were evicted for room.
    pub evicted: u64,
    /// Write failures (logged).
    pub errors: u64,
}

/// A shard's rings and the pcaps still open.
pub struct Store {
    rings: HashMap<FlowKey, Ring, ahash::RandomState>,
    /// Ring creation order, oldest first: the eviction order.
    order: VecDeque<FlowKey>,
    free: Vec<Ring>,
    bytes: usize,
    budget: usize,
    per_flow: usize,
    after: usize,
    armed: Vec<Armed>,
    requests: Receiver<Request>,
    pub counters: EvidenceCounters,
}

/// Rings kept for reuse at most (their buffers stay allocated).
const FREE_RINGS: usize = 4096;

impl Store {
    /// A shard's store: `budget` bytes of rings, requests from `requests`.
    #[must_use]
    pub fn new(cfg: &EvidenceConfig, budget: usize, requests: Receiver<Request>) -> Self {
        Self {
            rings: HashMap::default(),
            order: VecDeque::new(),
            free: Vec::new(),
            bytes: 0,
            budget,
            per_flow: cfg.packets_before.max(1),
            after: cfg.packets_after,
            armed: Vec::new(),
            requests,
            counters: EvidenceCounters::default(),
        }
    }

    /// Keeps a decoded packet (`data`: its captured bytes).
    pub fn record(&mut self, m: &PacketMeta, link: LinkType, data: &[u8]) {
        let (key, _) = FlowKey::of(m);
        if !self.armed.is_empty() {
            self.after_alert(&key, m, data);
        }
        let Ok(len) = u32::try_from(data.len()) else {
            return;
        };
        let ring = match self.rings.get_mut(&key) {
            Some(r) => r,
            None => {
                self.order.push_back(key);
                self.rings
                    .entry(key)
                    .or_insert(self.free.pop().unwrap_or_default())
            }
        };
        while ring.recs.len() >= self.per_flow {
            self.bytes -= ring.pop();
        }
        ring.recs.push_back(Rec {
            ts: m.ts,
            wire_len: m.wire_len,
            len,
            link,
        });
        ring.bytes.extend(data);
        self.bytes += data.len();
        while self.bytes > self.budget {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(mut r) = self.rings.remove(&old) {
                self.bytes -= r.bytes.len();
                self.counters.evicted += 1;
                if self.free.len() < FREE_RINGS {
                    r.clear();
                    self.free.push(r);
                }
            }
        }
    }

    fn after_alert(&mut self, key: &FlowKey, m: &PacketMeta, data: &[u8]) {
        let mut errors = 0;
        for a in &mut self.armed {
            if a.left > 0 && a.flow.matches(key) {
                a.left -= 1;
                if a.w.packet(m.ts, m.wire_len, data).is_err() {
                    errors += 1;
                    a.left = 0;
                }
                self.counters.packets += 1;
            }
        }
        self.counters.errors += errors;
        self.armed.retain(|a| a.left > 0);
    }

    /// Serves the requests waiting (between batches).
    pub fn serve(&mut self) {
        while let Ok(r) = self.requests.try_recv() {
            self.write(&r);
        }
    }

    /// Serves requests until the writer is done (after the end of input),
    /// then closes every pcap.
    pub fn serve_to_end(&mut self) {
        while let Ok(r) = self.requests.recv() {
            self.write(&r);
        }
        self.armed.clear();
    }

    /// Writes the rings matching `r` to its file, merged in time order.
    fn write(&mut self, r: &Request) {
        let mut recs: Vec<(Ts, usize, &Ring, usize, usize)> = Vec::new();
        for (k, ring) in &self.rings {
            if !r.flow.matches(k) {
                continue;
            }
            let mut off = 0usize;
            for (i, rec) in ring.recs.iter().enumerate() {
                recs.push((rec.ts, i, ring, off, rec.len as usize));
                off += rec.len as usize;
            }
        }
        let Some(&(_, i0, ring0, _, _)) = recs.first() else {
            return;
        };
        let link = ring0.recs[i0].link;
        recs.sort_by_key(|x| x.0);
        let res = (|| -> std::io::Result<PcapWriter> {
            let mut w = PcapWriter::create(&r.path, link, 262_144)?;
            let mut buf = Vec::new();
            for &(ts, i, ring, off, len) in &recs {
                let rec = ring.recs[i];
                if rec.link != link {
                    continue;
                }
                buf.clear();
                buf.extend(ring.bytes.range(off..off + len));
                w.packet(ts, rec.wire_len, &buf)?;
            }
            w.w.flush()?;
            Ok(w)
        })();
        match res {
            Ok(w) => {
                self.counters.files += 1;
                self.counters.packets += recs.len() as u64;
                if self.after > 0 {
                    self.armed.push(Armed {
                        flow: r.flow,
                        w,
                        left: self.after,
                    });
                }
            }
            // a second alert on the same flow in the same second: the
            // first one's file stands
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                self.counters.errors += 1;
                tracing::warn!("evidence {}: {e}", r.path.display());
            }
        }
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Err(e) = self.w.w.flush() {
            tracing::warn!("evidence {}: {e}", self.w.path.display());
        }
    }
}

/// An alert's pcap, for [`rewrite_from_files`]: its file, flow and time.
#[derive(Clone, Debug)]
pub struct Made {
    pub path: PathBuf,
    pub flow: FlowMatch,
    pub ts: Ts,
}

/// What [`rewrite_from_files`] collects for one pcap.
#[derive(Default)]
struct Collect {
    /// The flow's last packets up to the alert's time (ts, wire len, link, bytes).
    before: VecDeque<(Ts, u32, LinkType, Vec<u8>)>,
    after: Vec<(Ts, u32, LinkType, Vec<u8>)>,
}

/// Replay: writes the pcap of every alert in `made` again from the input
/// `files` (read a second time, in order): the flow's last
/// `cfg.packets_before` packets at or before the alert's time, then its next
/// `cfg.packets_after`; also for an alert whose flow's ring the shard had
/// evicted. The first alert naming a file decides it; the caller prunes
/// the directory to its budget afterwards. Returns (pcaps written, packets
/// in them).
pub fn rewrite_from_files(files: &[PathBuf], made: &[Made], cfg: &EvidenceConfig) -> (u64, u64) {
    use crate::capture::Next;
    use crate::capture::file::FileSource;
    let mut seen = std::collections::HashSet::new();
    let made: Vec<&Made> = made
        .iter()
        .filter(|m| seen.insert(m.path.clone()))
        .collect();
    if made.is_empty() {
        return (0, 0);
    }
    // the alerts by protocol and address pair (a packet's candidates)
    let mut index: HashMap<(u8, u128, u128), Vec<usize>, ahash::RandomState> = HashMap::default();
    for (i, m) in made.iter().enumerate() {
        let f = m.flow;
        index
            .entry((f.proto, f.a.min(f.b), f.a.max(f.b)))
            .or_default()
            .push(i);
    }
    let mut acc: Vec<Collect> = made.iter().map(|_| Collect::default()).collect();
    let before = cfg.packets_before.max(1);
    let mut decoder = crate::decode::Decoder::default();
    let (mut m, mut hints) = (PacketMeta::default(), Vec::new());
    for path in files {
        let Ok(mut src) = FileSource::open(path) else {
            continue;
        };
        while let Ok(Next::Frame(f)) = src.next() {
            hints.clear();
            if decoder
                .decode_into(f.link, f.data, f.wire_len, f.ts, &mut hints, &mut m)
                .is_err()
            {
                continue;
            }
            let (key, _) = FlowKey::of(&m);
            let Some(cands) = index.get(&(key.proto, key.a.min(key.b), key.a.max(key.b))) else {
                continue;
            };
            for &i in cands {
                let (Some(want), Some(c)) = (made.get(i), acc.get_mut(i)) else {
                    continue;
                };
                if !want.flow.matches(&key) {
                    continue;
                }
                let rec = (f.ts, f.wire_len, f.link, f.data.to_vec());
                if f.ts <= want.ts {
                    if c.before.len() == before {
                        c.before.pop_front();
                    }
                    c.before.push_back(rec);
                } else if c.after.len() < cfg.packets_after {
                    c.after.push(rec);
                }
            }
        }
    }
    let (mut files_n, mut packets) = (0, 0);
    for (want, c) in made.iter().zip(acc) {
        let recs: Vec<_> = c.before.into_iter().chain(c.after).collect();
        let Some(link) = recs.first().map(|r| r.2) else {
            continue;
        };
        let tmp = want.path.with_extension("pcap.tmp");
        let res = (|| -> std::io::Result<u64> {
            let _ = std::fs::remove_file(&tmp);
            let mut w = PcapWriter::create(&tmp, link, 262_144)?;
            let mut n = 0;
            for (ts, wire, l, data) in &recs {
                if *l == link {
                    w.packet(*ts, *wire, data)?;
                    n += 1;
                }
            }
            w.w.flush()?;
            drop(w);
            std::fs::rename(&tmp, &want.path)?;
            Ok(n)
        })();
        match res {
            Ok(n) => {
                files_n += 1;
                packets += n;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!("evidence {}: {e}", want.path.display());
            }
        }
    }
    (files_n, packets)
}

/// Removes the oldest `*.pcap` files of `dir` until they take at most
/// `budget` bytes.
pub fn prune(dir: &Path, budget: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pcap"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, p) in files {
        if total <= budget {
            break;
        }
        if std::fs::remove_file(&p).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(src: u128, sport: u16, dst: u128, dport: u16, ts: Ts) -> PacketMeta {
        PacketMeta {
            ts,
            wire_len: 100,
            src,
            dst,
            sport,
            dport,
            proto: 6,
            ..PacketMeta::default()
        }
    }

    #[test]
    fn rings_are_bounded_per_flow_and_in_total() {
        let cfg = EvidenceConfig {
            packets_before: 3,
            ..EvidenceConfig::default()
        };
        let (_tx, rx) = crossbeam_channel::bounded(1);
        let mut s = Store::new(&cfg, 1000, rx);
        for i in 0..10 {
            s.record(&meta(1, 10, 2, 20, i), LinkType::Raw, &[0u8; 100]);
        }
        assert_eq!(s.rings.len(), 1);
        assert_eq!(s.bytes, 300);
        // 20 more flows of one 100-byte packet: the oldest go
        for i in 0..20 {
            s.record(&meta(3, i, 2, 20, 100), LinkType::Raw, &[0u8; 100]);
        }
        assert!(s.bytes <= 1000);
        assert!(!s.rings.contains_key(&FlowKey::of(&meta(1, 10, 2, 20, 0)).0));
        assert!(s.counters.evicted > 0);
    }

    #[test]
    fn match_is_either_direction_and_ports_optional() {
        let (k, _) = FlowKey::of(&meta(5, 1000, 9, 443, 0));
        let m = FlowMatch {
            a: 9,
            b: 5,
            pa: Some(443),
            pb: Some(1000),
            proto: 6,
        };
        assert!(m.matches(&k));
        assert!(
            FlowMatch {
                pa: None,
                pb: None,
                ..m
            }
            .matches(&k)
        );
        assert!(!FlowMatch { pa: Some(80), ..m }.matches(&k));
        assert!(!FlowMatch { proto: 17, ..m }.matches(&k));
    }
}
