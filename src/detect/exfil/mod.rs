//! Exfiltration detector: per-internal-host outbound baselines and four ways
//! data leaves.
//!
//! Fed per flow end and per `Progress` event (every MiB a long flow moves),
//! so an upload is seen while it happens. Everything is payload bytes in
//! packet time, oriented from the internal host: "out" is what it sent to the
//! external peer, "in" what it received. Flows between two internal hosts, or
//! two external ones, never count.
//!
//! Per host: 5-minute slots for the last hour and hourly slots for the last
//! day (bytes out and in), learned distributions of its 5-minute and hourly
//! bytes out (`hdrhistogram`, KiB), its lifetime producer/consumer ratio
//! (PCR = (out - in) / (out + in), Zeek/RITA's convention: +1 pure producer,
//! -1 pure consumer). Per host and destination (the name the host used, else
//! the address): the same slots, totals, the days it uploaded there, and
//! whether it is routine (uploaded on two distinct days, or already in use in
//! the host's first hour of observation: the nightly backup we started
//! watching in the middle of).
//!
//! Detectors (one alert per host/destination/kind, updated when the running
//! total quadruples (at most every 5 minutes), when a flow ends with twice
//! the total last reported, or when severity rises; never a storm):
//! - **burst**: bytes out to one destination in 5 min (or 1 h) above an
//!   absolute floor, and the host's whole window `burst_ratio` times its own
//!   p99 for such windows;
//! - **low_and_slow**: bytes out over 24 h to a destination new for this host
//!   and used by at most `rare_max_hosts` hosts on the site, above a floor;
//! - **producer_shift**: a host whose history is a consumer pushes data to a
//!   never-seen destination (a lower floor on unusual ports: the stealer that
//!   sends a few hundred KB to an odd port);
//! - **unusual_channel**: uploads over SMTP submission, FTP data, SMB, or raw
//!   TCP on a high port without TLS/HTTP to a new external destination.
//!
//! Volume detectors need the host's baseline (`learning_s` of observation)
//! and ignore destinations where the host receives as much as it sends
//! (PCR of the pair below `min_pair_pcr`): downloads and symmetric real-time
//! media never count. `unusual_channel` needs no learning.

mod config;

use crate::alert::{Alert, Severity};
use crate::community_id::community_id_v1;
use crate::detect::{Detector, EventCtx, SnapshotError};
use crate::flow::event::ProgressEvent;
use crate::flow::record::FlowRecord;
use crate::homenet::{Direction, is_egress_dest};
use crate::time::{SEC, Ts, rfc3339};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{Map, json};
use std::net::IpAddr;

const MB: u64 = 1 << 20;
const SLOT5: Ts = 300 * SEC;
const HOUR: Ts = 3600 * SEC;
const DAY: Ts = 86_400 * SEC;

pub use config::ExfilConfig;

/// A ring of `N` time slots (bytes), newest at `head`. The slots are held
/// inline, not on the heap: a host's rings sit in its entry, so an update
/// touches one block of memory instead of four.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ring<const N: usize> {
    head: i64,
    /// Stored as a sequence, as when it was a `Vec` (state files unchanged).
    #[serde(with = "slots")]
    v: [u64; N],
}

/// A ring's slots as a length-prefixed sequence.
mod slots {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u64; N], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u64; N], D::Error> {
        let v = Vec::<u64>::deserialize(d)?;
        let n = v.len();
        <[u64; N]>::try_from(v)
            .map_err(|_| D::Error::custom(format!("ring of {n} slots, expected {N}")))
    }
}

impl<const N: usize> Ring<N> {
    fn new() -> Self {
        Self {
            head: i64::MIN,
            v: [0; N],
        }
    }
    #[allow(clippy::cast_possible_wrap)]
    fn n(&self) -> i64 {
        N as i64
    }
    /// Moves to `slot`, returning the completed slots' values (oldest first) via `done`.
    fn advance(&mut self, slot: i64, mut done: impl FnMut(u64)) {
        if self.head == i64::MIN {
            self.head = slot;
            return;
        }
        if slot <= self.head {
            return;
        }
        let steps = (slot - self.head).min(self.n() + 1);
        let first = slot - steps;
        for s in first..slot {
            let i = s.rem_euclid(self.n()) as usize;
            if s > self.head - self.n() && s <= self.head {
                done(self.v[i]);
            } else {
                done(0);
            }
        }
        for s in (self.head + 1)..=slot {
            if s > slot - self.n() {
                let i = s.rem_euclid(self.n()) as usize;
                self.v[i] = 0;
            }
        }
        if slot - self.head > self.n() {
            self.v.iter_mut().for_each(|x| *x = 0);
        }
        self.head = slot;
    }
    fn add(&mut self, slot: i64, x: u64) {
        if self.head == i64::MIN || slot > self.head {
            self.advance(slot, |_| {});
        }
        if slot <= self.head - self.n() {
            return;
        }
        let i = slot.rem_euclid(self.n()) as usize;
        self.v[i] = self.v[i].saturating_add(x);
    }
    /// Sum of the last `k` slots up to `now_slot`.
    fn sum(&self, now_slot: i64, k: i64) -> u64 {
        if self.head == i64::MIN {
            return 0;
        }
        let mut t = 0u64;
        for s in (now_slot - k + 1)..=now_slot {
            if s <= self.head && s > self.head - self.n() {
                t = t.saturating_add(self.v[s.rem_euclid(self.n()) as usize]);
            }
        }
        t
    }
}

/// Smallest value (KiB) the 5-minute histogram tells apart: its p99 is only
/// used above 1 MiB, where buckets of a histogram starting here have exactly
/// the bounds (and so the p99) of one starting at 1 KiB.
const HIST5_LOW: u64 = 64;
/// The same for the hourly histogram, whose p99 is used above 4 MiB.
const HIST1H_LOW: u64 = 256;

fn new_hist(low: u64) -> Histogram<u16> {
    // KiB, `low` .. 4 TiB per window, 1 significant digit (~6 % buckets),
    // u16 counts (saturating: 227 days of 5-minute windows): 0.7 KB
    Histogram::new_with_bounds(low, 1 << 32, 1).unwrap_or_else(|_| {
        Histogram::new(1).unwrap_or_else(|_| unreachable!("1 significant figure is valid"))
    })
}

/// Per-host state: 0.6 KB (three rings), plus 0.7 KB for each of its two
/// histograms once it has one.
pub struct Host {
    pub first_seen: Ts,
    pub last_seen: Ts,
    out5: Ring<12>,
    in5: Ring<12>,
    out1h: Ring<24>,
    /// Bytes out per completed 5-minute slot; `None` until the host has
    /// completed one (a host seen for a few minutes, or every host of a
    /// capture shorter than the slot, never needs the 0.7 KB of counts).
    hist5: Option<Histogram<u16>>,
    /// The same per completed hour.
    hist1h: Option<Histogram<u16>>,
    pub total_out: u64,
    pub total_in: u64,
}

impl Host {
    fn new(ts: Ts) -> Self {
        Self {
            first_seen: ts,
            last_seen: ts,
            out5: Ring::new(),
            in5: Ring::new(),
            out1h: Ring::new(),
            hist5: None,
            hist1h: None,
            total_out: 0,
            total_in: 0,
        }
    }
    fn learned(&self, cfg: &ExfilConfig) -> bool {
        self.last_seen - self.first_seen
            >= i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC
    }
    fn pcr(&self) -> f64 {
        pcr(self.total_out, self.total_in)
    }
    /// Accounts an update; a completed slot goes into its histogram, which
    /// is made on the first one as a clone of the empty `templates` (building
    /// one with `new_with_bounds` costs several times a copy, and a network
    /// with host churn makes many).
    fn account(
        &mut self,
        ts: Ts,
        out: u64,
        inb: u64,
        templates: &(Histogram<u16>, Histogram<u16>),
    ) {
        let (h5, h1) = (&mut self.hist5, &mut self.hist1h);
        let rec = |h: &mut Option<Histogram<u16>>, empty: &Histogram<u16>, v: u64| {
            let h = h.get_or_insert_with(|| empty.clone());
            h.saturating_record((v / 1024).max(1));
        };
        self.out5
            .advance(ts.div_euclid(SLOT5), |v| rec(h5, &templates.0, v));
        self.out1h
            .advance(ts.div_euclid(HOUR), |v| rec(h1, &templates.1, v));
        self.out5.add(ts.div_euclid(SLOT5), out);
        self.in5.add(ts.div_euclid(SLOT5), inb);
        self.out1h.add(ts.div_euclid(HOUR), out);
        self.total_out = self.total_out.saturating_add(out);
        self.total_in = self.total_in.saturating_add(inb);
        self.last_seen = self.last_seen.max(ts);
    }
    fn p99(h: Option<&Histogram<u16>>) -> u64 {
        match h {
            Some(h) if !h.is_empty() => h.value_at_quantile(0.99) * 1024,
            _ => 0,
        }
    }
}

fn pcr(out: u64, inb: u64) -> f64 {
    let t = out as f64 + inb as f64;
    if t <= 0.0 {
        0.0
    } else {
        (out as f64 - inb as f64) / t
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Kind {
    Burst,
    LowAndSlow,
    ProducerShift,
    UnusualChannel,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Burst => "burst",
            Self::LowAndSlow => "low_and_slow",
            Self::ProducerShift => "producer_shift",
            Self::UnusualChannel => "unusual_channel",
        }
    }
    /// Which finding leads an alert (lower first).
    fn priority(self) -> u8 {
        match self {
            Self::Burst => 0,
            Self::UnusualChannel => 1,
            Self::LowAndSlow => 2,
            Self::ProducerShift => 3,
        }
    }
    fn sid(self) -> u32 {
        9_200_001 + self as u32
    }
}

/// A pair's bytes per 5-minute slot (one hour) and per hour (one day).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PairRings {
    out5: Ring<12>,
    in5: Ring<12>,
    out1h: Ring<24>,
    in1h: Ring<24>,
}

impl PairRings {
    fn new() -> Self {
        Self {
            out5: Ring::new(),
            in5: Ring::new(),
            out1h: Ring::new(),
            in1h: Ring::new(),
        }
    }
    fn add(&mut self, ts: Ts, out: u64, inb: u64) {
        let (s5, s1) = (ts.div_euclid(SLOT5), ts.div_euclid(HOUR));
        self.out5.add(s5, out);
        self.in5.add(s5, inb);
        self.out1h.add(s1, out);
        self.in1h.add(s1, inb);
    }
}

/// Findings of a pair in the order they were first made (at most the four
/// kinds, a nibble each: kind + 1, 0 = none).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct Kinds(u16);

impl Kinds {
    const ALL: [Kind; 4] = [
        Kind::Burst,
        Kind::LowAndSlow,
        Kind::ProducerShift,
        Kind::UnusualChannel,
    ];
    fn iter(self) -> impl Iterator<Item = Kind> {
        (0..4)
            .map(move |i| (self.0 >> (4 * i)) & 0xf)
            .take_while(|&n| n != 0)
            .map(|n| Self::ALL[usize::from(n - 1)])
    }
    fn contains(self, k: Kind) -> bool {
        self.iter().any(|x| x == k)
    }
    fn push(&mut self, k: Kind) {
        if !self.contains(k) {
            let n = self.iter().count();
            self.0 |= (k as u16 + 1) << (4 * n);
        }
    }
}

/// Per host and destination. Kept small (most pairs are a request or two):
/// the destination's name is not stored, since a named update always lands
/// in the pair keyed by that name and so carries it when an alert is made.
#[derive(Serialize, Deserialize)]
pub struct Pair {
    pub first_seen: Ts,
    pub last_seen: Ts,
    pub total_out: u64,
    pub total_in: u64,
    /// Slot history, kept once the pair has sent [`ExfilConfig::rings_from`]
    /// bytes: most pairs (a request, a ClientHello) never do, and their
    /// window sums are bounded by their totals, below every window floor.
    rings: Option<Box<PairRings>>,
    upload_days: u8,
    /// Day number (packet time) of `day_out`.
    last_upload_day: i32,
    day_out: u64,
    pub routine: bool,
    /// Already in use in the host's first hour of observation (baseline).
    pub in_baseline: bool,
    dest_ip: IpAddr,
    port: u16,
    proto: u8,
    src_port: u16,
    flow_id: u64,
    /// Severity of the last alert, and bytes out when it was made.
    alerted: Option<Severity>,
    alerted_out: u64,
    last_alert: Ts,
    /// Findings so far.
    kinds: Kinds,
    /// The host talked FTP control (port 21) to this destination.
    ftp_control: bool,
    /// Bytes out on TCP flows to high ports (FTP data).
    high_port_out: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ExfilStats {
    pub hosts_evicted: u64,
    pub pairs_evicted: u64,
    pub alerts: u64,
}

struct Update<'a> {
    ts: Ts,
    host: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    port: u16,
    proto: u8,
    flow_id: u64,
    name: Option<&'a str>,
    out: u64,
    inb: u64,
    /// The flow carried TLS or HTTP (a name from SNI/Host).
    web: bool,
    /// This update is the end of the flow.
    flow_end: bool,
    /// Internal hosts using the destination (the shared baseline's count).
    sharing: usize,
}

impl<'a> Update<'a> {
    /// The update from the internal host's side of a flow given from its
    /// originator's: `src` and `dest` are the (address, port) of originator
    /// and responder, `bytes` the payload [from originator, to originator].
    /// `None` for a flow that is neither outbound nor inbound.
    #[allow(clippy::too_many_arguments)]
    fn oriented(
        dir: Direction,
        ts: Ts,
        src: (IpAddr, u16),
        dest: (IpAddr, u16),
        proto: u8,
        flow_id: u64,
        name: Option<&'a str>,
        bytes: [u64; 2],
        web: bool,
        flow_end: bool,
        sharing: usize,
    ) -> Option<Self> {
        let (host, remote, out, inb) = match dir {
            Direction::Outbound => (src, dest, bytes[0], bytes[1]),
            Direction::Inbound => (dest, src, bytes[1], bytes[0]),
            _ => return None,
        };
        Some(Update {
            ts,
            host: host.0,
            src_port: host.1,
            dest_ip: remote.0,
            port: remote.1,
            proto,
            flow_id,
            name,
            out,
            inb,
            web,
            flow_end,
            sharing,
        })
    }
}

pub struct Exfil {
    cfg: ExfilConfig,
    hosts: super::slabmap::SlabMap<IpAddr, Host>,
    /// Empty 5-minute and hourly histograms, cloned for each new host.
    hist_templates: (Histogram<u16>, Histogram<u16>),
    pairs: super::slabmap::SlabMap<(IpAddr, u64), Pair>,
    pub stats: ExfilStats,
}

use crate::baseline::dest_id;

const SMTP_PORTS: &[u16] = &[25, 465, 587, 2525];
const SMB_PORTS: &[u16] = &[139, 445];
const WEB_PORTS: &[u16] = &[80, 443, 8080, 8443];

impl Exfil {
    #[must_use]
    pub fn new(cfg: ExfilConfig) -> Self {
        Self {
            cfg,
            hosts: super::slabmap::SlabMap::default(),
            hist_templates: (new_hist(HIST5_LOW), new_hist(HIST1H_LOW)),
            pairs: super::slabmap::SlabMap::default(),
            stats: ExfilStats::default(),
        }
    }

    /// Upper bound of the state at the configured caps, bytes.
    #[must_use]
    pub fn state_bytes(&self) -> usize {
        self.cfg.max_hosts * Self::bytes_per_host()
            + self.cfg.max_pairs * (Self::bytes_per_pair() + Self::bytes_per_pair_rings())
    }

    /// Bytes one host costs at most: entry, index slot and both histograms
    /// (made at its first completed 5-minute slot and hour).
    #[must_use]
    pub fn bytes_per_host() -> usize {
        let (h5, h1) = (new_hist(HIST5_LOW), new_hist(HIST1H_LOW));
        // slab entry, plus a 4-byte slot and a control byte in the index
        std::mem::size_of::<Option<(IpAddr, Host)>>()
            + 5 * 8 / 7
            + (h5.distinct_values() + h1.distinct_values()) * std::mem::size_of::<u16>()
    }

    #[must_use]
    pub fn bytes_per_pair() -> usize {
        // slab entry, plus a 4-byte slot and a control byte in the index
        std::mem::size_of::<Option<((IpAddr, u64), Pair)>>() + 5 * 8 / 7
    }

    /// Extra bytes of a pair that keeps slot history ([`ExfilConfig::rings_from`]).
    #[must_use]
    pub fn bytes_per_pair_rings() -> usize {
        std::mem::size_of::<PairRings>()
    }

    fn update(&mut self, u: &Update<'_>, out: &mut Vec<Alert>) {
        if u.out == 0 && u.inb == 0 || !is_egress_dest(u.dest_ip) {
            return;
        }
        let cfg = &self.cfg;
        let (hslot, evicted) = self.hosts.get_or_insert_capped(
            u.host,
            cfg.max_hosts.max(1),
            |h| h.last_seen,
            || Host::new(u.ts),
        );
        self.stats.hosts_evicted += evicted as u64;
        let Some(host) = self.hosts.at_mut(hslot) else {
            return;
        };
        // a destination the host already used in its first hour of
        // observation is what it was doing before we watched: baseline
        let already_doing = u.ts - host.first_seen < HOUR;
        // the pcr and baseline before this update
        let host_pcr_before = host.pcr();
        let host_bytes_before = host.total_out + host.total_in;
        host.account(u.ts, u.out, u.inb, &self.hist_templates);
        let learned = host.learned(cfg);

        let did = dest_id(u.name, u.dest_ip);
        let sharing = u.sharing;
        let key = (u.host, did);
        let found = self.pairs.find(&key);
        if u.out == 0 && found.is_none() {
            // nothing sent there (downloads, scans and floods against the
            // host): the host's totals have it; no pair is created
            return;
        }
        let slot = match found {
            Some(i) => i,
            None => {
                let new = || Pair {
                    first_seen: u.ts,
                    last_seen: u.ts,
                    total_out: 0,
                    total_in: 0,
                    rings: None,
                    upload_days: 0,
                    last_upload_day: i32::MIN,
                    day_out: 0,
                    routine: false,
                    in_baseline: already_doing,
                    dest_ip: u.dest_ip,
                    port: u.port,
                    proto: u.proto,
                    src_port: u.src_port,
                    flow_id: u.flow_id,
                    alerted: None,
                    alerted_out: 0,
                    last_alert: 0,
                    kinds: Kinds::default(),
                    ftp_control: false,
                    high_port_out: 0,
                };
                let (i, evicted) =
                    self.pairs
                        .insert_capped(key, cfg.max_pairs.max(1), |p| p.last_seen, new);
                self.stats.pairs_evicted += evicted as u64;
                i
            }
        };
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        p.first_seen = p.first_seen.min(u.ts);
        let last_before = p.last_seen;
        if u.ts >= p.last_seen {
            p.last_seen = u.ts;
        }
        // an alert names the flow of the update that raised it (its EVE flow
        // record, still to be written, then says `alerted`), even a late one
        p.dest_ip = u.dest_ip;
        p.port = u.port;
        p.proto = u.proto;
        p.src_port = u.src_port;
        p.flow_id = u.flow_id;
        p.total_out = p.total_out.saturating_add(u.out);
        p.total_in = p.total_in.saturating_add(u.inb);
        let s5 = u.ts.div_euclid(SLOT5);
        if p.rings.is_none() && p.total_out >= cfg.rings_from() {
            // what the pair moved before goes to its last activity before this
            let mut r = PairRings::new();
            r.add(last_before, p.total_out - u.out, p.total_in - u.inb);
            p.rings = Some(Box::new(r));
        }
        if let Some(r) = p.rings.as_deref_mut() {
            r.add(u.ts, u.out, u.inb);
        }
        // routine uploads: a MiB or more on two distinct days, or during learning
        let day = i32::try_from(u.ts.div_euclid(DAY)).unwrap_or(i32::MAX);
        if day != p.last_upload_day {
            p.last_upload_day = day;
            p.day_out = 0;
        }
        let before = p.day_out;
        p.day_out = p.day_out.saturating_add(u.out);
        if before < MB && p.day_out >= MB {
            p.upload_days = p.upload_days.saturating_add(1);
            if p.upload_days >= 2 || p.in_baseline {
                p.routine = true;
            }
        }

        let Some(host) = self.hosts.at(hslot) else {
            return;
        };
        // window sums (bytes out, in): 10 minutes, 1 hour, 24 hours
        let [(w5, w5_in), (w1h, w1h_in), (w24, w24_in)] = match p.rings.as_deref() {
            Some(r) => {
                let s1 = u.ts.div_euclid(HOUR);
                [
                    (
                        r.out5.sum(s5, 1).saturating_add(r.out5.sum(s5 - 1, 1)),
                        r.in5.sum(s5, 1).saturating_add(r.in5.sum(s5 - 1, 1)),
                    ),
                    (r.out5.sum(s5, 12), r.in5.sum(s5, 12)),
                    (r.out1h.sum(s1, 24), r.in1h.sum(s1, 24)),
                ]
            }
            None => [(p.total_out, p.total_in); 3],
        };
        let new_for_host = p.first_seen - host.first_seen
            >= i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC
            || p.first_seen >= u.ts - DAY && !p.in_baseline;
        // new against the host's own history (at least an hour of it), used
        // by the findings that need no full baseline
        let new_since_history =
            p.first_seen - host.first_seen >= HOUR && u.ts - p.first_seen <= DAY && !p.routine;
        let site_rare = sharing <= cfg.rare_max_hosts;
        let mut hits: Vec<(Kind, Severity, Map<String, serde_json::Value>)> = Vec::new();

        // unusual channel: needs no learning
        // FTP: control (21) and passive data (high ports) share the pair
        if u.proto == 6 && u.port == 21 {
            p.ftp_control = true;
        } else if u.proto == 6 && u.port >= 1024 {
            p.high_port_out = p.high_port_out.saturating_add(u.out);
        }
        let channel = if SMTP_PORTS.contains(&u.port) && u.proto == 6 {
            Some(("smtp", cfg.unusual_floor, true))
        } else if SMB_PORTS.contains(&u.port) {
            Some(("smb", cfg.unusual_floor, true))
        } else if p.ftp_control && p.high_port_out > 0 {
            // a file stored over FTP data to the internet (AgentTesla)
            Some(("ftp_data", 1, false))
        } else if u.proto == 6 && u.port >= 1024 && !u.web && !WEB_PORTS.contains(&u.port) {
            // in the host's first hour there is no history to be new
            // against: an upload-dominant session to a destination first
            // seen after the sensor came up is the stealer's signal
            let young_upload = u.ts - host.first_seen < HOUR
                && p.first_seen - host.first_seen
                    >= i64::try_from(cfg.raw_young_after_s).unwrap_or(60) * SEC
                && pcr(p.total_out, p.total_in) >= cfg.raw_young_pcr;
            ((new_since_history || young_upload) && site_rare).then_some((
                "raw_tcp",
                cfg.raw_floor,
                true,
            ))
        } else {
            None
        };
        if let Some((ch, floor, producing)) = channel {
            let volume = if ch == "ftp_data" {
                p.high_port_out
            } else {
                p.total_out
            };
            if volume >= floor && (!producing || p.total_out > p.total_in) && !p.routine {
                let mut e = Map::new();
                e.insert("channel".into(), json!(ch));
                hits.push((
                    Kind::UnusualChannel,
                    if p.total_out >= 10 * MB {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
        }

        let pair_pcr_1h = pcr(w1h, w1h_in);
        if learned && !p.routine {
            // burst
            let host5 = host
                .out5
                .sum(s5, 1)
                .saturating_add(host.out5.sum(s5 - 1, 1));
            let host1h = host.out5.sum(s5, 12);
            let b5 = Host::p99(host.hist5.as_ref()).max(MB);
            let b1 = Host::p99(host.hist1h.as_ref()).max(4 * MB);
            let burst5 = w5 >= cfg.burst_floor_5m
                && pcr(w5, w5_in) >= cfg.min_pair_pcr
                && host5 as f64 >= cfg.burst_ratio * b5 as f64;
            let burst1 = w1h >= cfg.burst_floor_1h
                && pair_pcr_1h >= cfg.min_pair_pcr
                && host1h as f64 >= cfg.burst_ratio * b1 as f64;
            if burst5 || burst1 {
                let (win, wb, base, hw) = if burst5 {
                    (300, w5, b5, host5)
                } else {
                    (3600, w1h, b1, host1h)
                };
                let mut e = Map::new();
                e.insert("window_s".into(), json!(win));
                e.insert("bytes_out_window".into(), json!(wb));
                e.insert("host_bytes_out_window".into(), json!(hw));
                e.insert("baseline_p99_bytes".into(), json!(base));
                e.insert(
                    "ratio".into(),
                    json!(((hw as f64 / base as f64) * 10.0).round() / 10.0),
                );
                let sev =
                    if wb >= 4 * cfg.burst_floor_5m.max(cfg.burst_floor_1h / 4) || new_for_host {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                hits.push((Kind::Burst, sev, e));
            }
            // low and slow
            if w24 >= cfg.lowslow_floor_24h
                && new_for_host
                && site_rare
                && pcr(w24, w24_in) >= cfg.min_pair_pcr
            {
                let mut e = Map::new();
                e.insert("window_s".into(), json!(86_400));
                e.insert("bytes_out_window".into(), json!(w24));
                e.insert("bytes_in_window".into(), json!(w24_in));
                hits.push((
                    Kind::LowAndSlow,
                    if w24 >= 10 * cfg.lowslow_floor_24h {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
            let _ = host_bytes_before;
        }
        {
            // producer shift: on an unusual port it needs only evidence that
            // the host consumes (5 MiB in, more in than out); on web ports,
            // where big uploads are ordinary (a backup, a cloud drive), also
            // six hours of the host's history (or its full learning period,
            // if shorter): a job that runs in the small hours right after the
            // sensor starts is not judged against an empty history
            let odd_port = !WEB_PORTS.contains(&u.port) && !u.web;
            let floor = if odd_port && !u.web {
                cfg.producer_floor
            } else {
                cfg.producer_floor_web
            };
            let consumer = host.total_in.saturating_sub(u.inb) >= 5 * MB && host_pcr_before < -0.3;
            let history = host.last_seen - host.first_seen;
            let six_h =
                (6 * HOUR).min(i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC);
            if consumer
                && (odd_port || learned || history >= six_h)
                && new_since_history
                && site_rare
                && w1h >= floor
                && pair_pcr_1h >= 0.5
            {
                let mut e = Map::new();
                e.insert("window_s".into(), json!(3600));
                e.insert("bytes_out_window".into(), json!(w1h));
                e.insert("bytes_in_window".into(), json!(w1h_in));
                e.insert(
                    "host_pcr_baseline".into(),
                    json!((host_pcr_before * 100.0).round() / 100.0),
                );
                e.insert("unusual_port".into(), json!(odd_port));
                hits.push((
                    Kind::ProducerShift,
                    if odd_port {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
        }

        if hits.is_empty() {
            return;
        }
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        let Some(host) = self.hosts.at(hslot) else {
            return;
        };
        // one alert series per host and destination: the strongest finding
        // leads, the others are evidence; again only when severity rises or
        // the running total has quadrupled
        hits.sort_by_key(|(k, s, _)| (*s, k.priority()));
        let sev = hits[0].1;
        let kind = hits[0].0;
        for (k, _, _) in &hits {
            p.kinds.push(*k);
        }
        let at = p.alerted_out;
        let due = match p.alerted {
            None => true,
            Some(s) => {
                sev < s
                    || (p.total_out >= at.saturating_mul(4) && u.ts - p.last_alert >= 300 * SEC)
                    // the flow is over: report the final running total
                    || (u.flow_end && p.total_out >= at.saturating_mul(2))
            }
        };
        if !due {
            return;
        }
        let update = p.alerted.is_some();
        p.alerted = Some(sev);
        p.alerted_out = p.total_out;
        p.last_alert = u.ts;
        self.stats.alerts += 1;
        let mut e = Map::new();
        for (_, _, m) in hits.into_iter().rev() {
            e.extend(m);
        }
        {
            e.insert("kind".into(), json!(kind.as_str()));
            e.insert(
                "kinds".into(),
                json!(p.kinds.iter().map(Kind::as_str).collect::<Vec<_>>()),
            );
            e.insert("bytes_out_total".into(), json!(p.total_out));
            e.insert("bytes_in_total".into(), json!(p.total_in));
            e.insert(
                "pcr".into(),
                json!((pcr(p.total_out, p.total_in) * 100.0).round() / 100.0),
            );
            e.insert(
                "host_pcr".into(),
                json!((host.pcr() * 100.0).round() / 100.0),
            );
            e.insert("host_bytes_out_total".into(), json!(host.total_out));
            e.insert(
                "dest_name".into(),
                u.name.map_or(serde_json::Value::Null, |n| json!(n)),
            );
            e.insert("dest_new_for_host".into(), json!(new_for_host));
            e.insert("hosts_using_dest".into(), json!(sharing));
            e.insert("first_seen".into(), json!(rfc3339(p.first_seen)));
            e.insert("last_seen".into(), json!(rfc3339(p.last_seen)));
            e.insert("update".into(), json!(update));
            // the report's charts: cumulative bytes out (crate::report::evidence)
            let (fine, coarse): (Vec<u64>, Vec<u64>) =
                p.rings.as_deref().map_or_else(Default::default, |r| {
                    let s1 = u.ts.div_euclid(HOUR);
                    (
                        (s5 - 11..=s5).map(|s| r.out5.sum(s, 1)).collect(),
                        (s1 - 23..=s1).map(|s| r.out1h.sum(s, 1)).collect(),
                    )
                });
            e.insert(
                "out_curve".into(),
                crate::report::evidence::out_curve(
                    p.first_seen,
                    u.ts,
                    p.total_out,
                    &fine,
                    &coarse,
                    (
                        Host::p99(host.hist5.as_ref()),
                        Host::p99(host.hist1h.as_ref()),
                    ),
                ),
            );
            let label = u.name.map_or_else(|| p.dest_ip.to_string(), str::to_owned);
            let what = match kind {
                Kind::Burst => "burst of outbound data",
                Kind::LowAndSlow => "low-and-slow upload over 24h",
                Kind::ProducerShift => "consumer host started producing",
                Kind::UnusualChannel => "upload over an unusual channel",
            };
            out.push(Alert {
                ts: u.ts,
                src_ip: u.host,
                src_port: Some(p.src_port),
                dest_ip: p.dest_ip,
                dest_port: Some(p.port),
                proto: p.proto,
                community_id: Some(community_id_v1(
                    0, u.host, p.dest_ip, p.proto, p.src_port, p.port,
                )),
                flow_id: Some(p.flow_id),
                detector: "exfil",
                signature: format!(
                    "deguchi EXFIL {what}: {} sent to {label}:{}",
                    human_bytes(p.total_out),
                    p.port
                ),
                signature_id: kind.sid(),
                category: "Exfiltration",
                severity: sev,
                score: match sev {
                    Severity::High => 0.9,
                    Severity::Medium => 0.7,
                    Severity::Low => 0.4,
                },
                evidence: e,
            });
        }
    }

    /// Hosts tracked now.
    #[must_use]
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= MB {
        format!("{:.1} MiB", b as f64 / MB as f64)
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// A host as stored: histograms as (value, count) pairs.
#[derive(Serialize, Deserialize)]
struct HostSnap {
    first_seen: Ts,
    last_seen: Ts,
    out5: Ring<12>,
    in5: Ring<12>,
    out1h: Ring<24>,
    hist5: Vec<(u64, u64)>,
    hist1h: Vec<(u64, u64)>,
    total_out: u64,
    total_in: u64,
}

/// A histogram's (value, count) pairs; none for a host without one yet.
fn hist_pairs(h: Option<&Histogram<u16>>) -> Vec<(u64, u64)> {
    h.map_or_else(Vec::new, |h| {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), u64::from(v.count_at_value())))
            .collect()
    })
}

/// The histogram of stored pairs; none for no pairs (as before it was made).
fn hist_from(v: &[(u64, u64)], low: u64) -> Option<Histogram<u16>> {
    if v.is_empty() {
        return None;
    }
    let mut h = new_hist(low);
    for &(x, n) in v {
        let _ = h.record_n(x.max(1), u16::try_from(n).unwrap_or(u16::MAX));
    }
    Some(h)
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    hosts: Vec<(IpAddr, HostSnap)>,
    pairs: Vec<((IpAddr, u64), Pair)>,
}

/// Layout version of [`Snapshot`].
const SNAPSHOT_VERSION: u32 = 3;

impl Detector for Exfil {
    fn name(&self) -> &'static str {
        "exfil"
    }

    fn state_counts(&self) -> Vec<u64> {
        vec![
            self.hosts.len() as u64,
            self.stats.hosts_evicted,
            self.pairs.len() as u64,
            self.stats.pairs_evicted,
        ]
    }

    fn state_kinds(&self) -> &'static [crate::metrics::StateKind] {
        use crate::metrics::StateKind::{Entries, Evictions};
        &[
            Entries("hosts"),
            Evictions("hosts"),
            Entries("pairs"),
            Evictions("pairs"),
        ]
    }

    fn state_line(&self, c: &[u64]) -> Option<String> {
        let [hosts, he, pairs, pe] = c else {
            return None;
        };
        Some(format!(
            "exfil {hosts} hosts ({he} evicted), {pairs} pairs ({pe} evicted)"
        ))
    }

    fn save(&mut self) -> Option<Vec<u8>> {
        let hosts = self
            .hosts
            .iter()
            .map(|(ip, h)| {
                (
                    *ip,
                    HostSnap {
                        first_seen: h.first_seen,
                        last_seen: h.last_seen,
                        out5: h.out5.clone(),
                        in5: h.in5.clone(),
                        out1h: h.out1h.clone(),
                        hist5: hist_pairs(h.hist5.as_ref()),
                        hist1h: hist_pairs(h.hist1h.as_ref()),
                        total_out: h.total_out,
                        total_in: h.total_in,
                    },
                )
            })
            .collect();
        let mut snap = Snapshot {
            hosts,
            pairs: self.pairs.take_all(),
        };
        let bytes = postcard::to_stdvec(&snap).ok();
        self.pairs = std::mem::take(&mut snap.pairs).into_iter().collect();
        bytes
    }

    fn snapshot_version(&self) -> u32 {
        SNAPSHOT_VERSION
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let s: Snapshot = postcard::from_bytes(bytes)?;
        self.hosts = s
            .hosts
            .into_iter()
            .map(|(ip, h)| {
                (
                    ip,
                    Host {
                        first_seen: h.first_seen,
                        last_seen: h.last_seen,
                        out5: h.out5,
                        in5: h.in5,
                        out1h: h.out1h,
                        hist5: hist_from(&h.hist5, HIST5_LOW),
                        hist1h: hist_from(&h.hist1h, HIST1H_LOW),
                        total_out: h.total_out,
                        total_in: h.total_in,
                    },
                )
            })
            .collect();
        self.pairs = s.pairs.into_iter().collect();
        Ok(())
    }

    fn on_flow(&mut self, r: &FlowRecord, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        if !matches!(r.proto, 6 | 17) {
            return;
        }
        let d0 = r.payload[0].saturating_sub(r.reported[0]);
        let d1 = r.payload[1].saturating_sub(r.reported[1]);
        let h = r.hints.as_deref();
        let name = h.and_then(|h| h.dest_name());
        let web = name.is_some();
        if let Some(u) = Update::oriented(
            r.direction,
            r.end,
            (r.src_ip, r.src_port),
            (r.dest_ip, r.dest_port),
            r.proto,
            r.flow_id,
            name,
            [d0, d1],
            web,
            true,
            cx.dest.map_or(1, |d| d.hosts),
        ) {
            self.update(&u, out);
        }
    }

    fn on_progress(&mut self, p: &ProgressEvent, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        if !matches!(p.proto, 6 | 17) {
            return;
        }
        let name = p.name.as_deref();
        if let Some(u) = Update::oriented(
            cx.dir,
            p.ts,
            (p.src_ip, p.src_port),
            (p.dest_ip, p.dest_port),
            p.proto,
            p.flow_id,
            name,
            p.delta,
            name.is_some(),
            false,
            cx.dest.map_or(1, |d| d.hosts),
        ) {
            self.update(&u, out);
        }
    }
}

crate::detector_component!("exfil", ExfilConfig, config::parse, |c, env| {
    Exfil::new(ExfilConfig {
        max_hosts: env.share(c.max_hosts),
        max_pairs: env.share(c.max_pairs),
        ..c.clone()
    })
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_from_their_low_bound_give_the_p99_of_one_from_1_kib() {
        // wherever the p99 is used (above its floor), it is exactly the
        // p99 of a histogram that tells every KiB apart
        let mut x: u64 = 0x9e37_79b9;
        for (low, floor) in [(HIST5_LOW, MB), (HIST1H_LOW, 4 * MB)] {
            for round in 0..200 {
                let (mut full, mut ours) = (new_hist(1), new_hist(low));
                for _ in 0..(50 + round) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // KiB per window: a quarter idle, the rest up to a
                    // top that moves from 256 KiB to 16 GiB over the rounds,
                    // so the p99 falls in every octave around the floors
                    let top = (1u64 << (8 + round % 16)) * (4 + round % 5) / 4;
                    let v = if x.is_multiple_of(4) {
                        x % 64
                    } else {
                        (x >> 8) % top
                    }
                    .max(1);
                    full.saturating_record(v);
                    ours.saturating_record(v);
                }
                assert_eq!(
                    Host::p99(Some(&full)).max(floor),
                    Host::p99(Some(&ours)).max(floor),
                    "low {low}, round {round}"
                );
            }
        }
        assert!(new_hist(HIST5_LOW).distinct_values() < new_hist(1).distinct_values());
    }

    #[test]
    fn kinds_keep_discovery_order_without_repeats() {
        let mut k = Kinds::default();
        assert_eq!(k.iter().count(), 0);
        for x in [
            Kind::UnusualChannel,
            Kind::Burst,
            Kind::UnusualChannel,
            Kind::ProducerShift,
            Kind::LowAndSlow,
            Kind::Burst,
        ] {
            k.push(x);
        }
        let v: Vec<_> = k.iter().collect();
        assert_eq!(
            v,
            [
                Kind::UnusualChannel,
                Kind::Burst,
                Kind::ProducerShift,
                Kind::LowAndSlow
            ]
        );
        assert!(k.contains(Kind::LowAndSlow));
    }

    #[test]
    fn ring_sums_and_rolls() {
        let mut r = Ring::<4>::new();
        r.add(10, 5);
        r.add(11, 7);
        assert_eq!(r.sum(11, 2), 12);
        assert_eq!(r.sum(11, 1), 7);
        let mut done = Vec::new();
        r.advance(13, |v| done.push(v));
        assert_eq!(done, vec![7, 0]);
        assert_eq!(r.sum(13, 4), 5 + 7);
        r.add(20, 1);
        assert_eq!(r.sum(20, 4), 1);
        r.add(15, 100); // too old: dropped
        assert_eq!(r.sum(20, 4), 1);
    }

    fn up(e: &mut Exfil, ts_s: i64, dest: [u8; 4], port: u16, out: u64, inb: u64) -> Vec<Alert> {
        let mut v = Vec::new();
        e.update(
            &Update {
                ts: ts_s * SEC,
                host: IpAddr::from([10, 0, 0, 5]),
                src_port: 50000,
                dest_ip: IpAddr::from(dest),
                port,
                proto: 6,
                flow_id: 1,
                name: None,
                out,
                inb,
                web: port == 443,
                flow_end: false,
                sharing: 1,
            },
            &mut v,
        );
        v
    }

    /// A day of ordinary browsing: small uploads, larger downloads.
    fn baseline(e: &mut Exfil) {
        for m in 0..(26 * 60) {
            let d = [93, 184, (m % 7) as u8, 1];
            assert!(up(e, i64::from(m) * 60, d, 443, 20_000, 400_000).is_empty());
        }
    }

    #[test]
    fn burst_after_learning_alerts_once_then_updates_on_doubling() {
        let mut e = Exfil::new(ExfilConfig::default());
        baseline(&mut e);
        let t0 = 26 * 3600;
        let mut alerts = Vec::new();
        for i in 0..300 {
            alerts.extend(up(&mut e, t0 + i, [203, 0, 113, 50], 443, MB, 10_000));
        }
        let bursts: Vec<_> = alerts
            .iter()
            .filter(|a| a.evidence["kind"] == "burst")
            .collect();
        assert!(!bursts.is_empty(), "{alerts:?}");
        assert!(bursts.len() <= 4, "no storm: {}", bursts.len());
        assert_eq!(bursts[0].src_ip, IpAddr::from([10, 0, 0, 5]));
        assert!(bursts[0].evidence["bytes_out_total"].as_u64().unwrap() >= 50 * MB);
    }

    #[test]
    fn downloads_and_symmetric_media_never_count() {
        let mut e = Exfil::new(ExfilConfig::default());
        baseline(&mut e);
        let t0 = 26 * 3600;
        for i in 0..600 {
            assert!(up(&mut e, t0 + i, [198, 51, 100, 1], 443, 20_000, 5 * MB).is_empty());
            assert!(up(&mut e, t0 + i, [198, 51, 100, 2], 3478, MB, MB).is_empty());
        }
    }

    #[test]
    fn smtp_upload_is_an_unusual_channel_without_learning() {
        let mut e = Exfil::new(ExfilConfig::default());
        let a = up(&mut e, 100, [43, 255, 154, 57], 587, 1007, 541);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].evidence["channel"], "smtp");
        assert!(up(&mut e, 110, [43, 255, 154, 57], 587, 10, 10).is_empty());
    }
}
