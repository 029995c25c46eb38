//! Beacon detector: periodic check-ins from an internal host to an external
//! destination, learned online in packet time.
//!
//! Series are kept per (internal host, destination, port, protocol), where the
//! destination is the name the host used (TLS SNI, HTTP Host, or the name in a
//! DNS answer the host received for that address) or else the IP. A beat is a
//! connection (a flow with one burst of activity) or a burst of activity after
//! silence inside a long-lived TCP session or UDP flow (`FlowEvent::Burst`).
//! Beats closer than `coalesce_ms` are one beat. Each new beat re-scores the
//! series ([`periodicity::evaluate`]): incremental, no batch pass.
//!
//! Quiet on office noise:
//! - destinations many internal hosts use (BAYWATCH's popularity idea): at
//!   least `popular_min_hosts` hosts and `popular_fraction` of the active ones;
//!   a destination several hosts only just started using waits
//!   `popular_settle_s` before it can alert (the morning ramp of a chat client).
//!   Popularity is counted per *name* when there is one, so one host talking
//!   to a popular cloud IP under its own SNI is still scored;
//! - allowlists of CIDRs, domain suffixes and protocol/ports (NTP by default);
//! - one alert per series, again only when severity rises or after `realert_s`.
//!
//! Memory is bounded by `max_pairs` series of at most `max_samples` beats
//! (12 bytes each); the coldest series are evicted first. At the defaults
//! (100 000 series, 64 beats) the worst case is about 100 MB; see
//! [`Beacon::state_bytes`].

use super::evict_oldest;
use super::periodicity::{self, Beat, Periodicity, Scratch};
use crate::alert::{Alert, Severity};
use crate::analysis::Detector;
use crate::community_id::community_id_v1;
use crate::flow::record::FlowRecord;
use crate::flow::table::{BurstEvent, DnsAnswer};
use crate::homenet::Direction;
use crate::time::{SEC, Ts, rfc3339};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::net::IpAddr;

/// Beacon detector settings (`[beacon]` in the config file).
#[derive(Clone, Debug)]
pub struct BeaconConfig {
    pub enabled: bool,
    /// Beats before a series is scored at all.
    pub min_beats: usize,
    /// Evidence (nats) for a medium-severity alert; `high_nats` for high.
    pub threshold_nats: f64,
    pub high_nats: f64,
    pub min_period_s: f64,
    pub max_period_s: f64,
    pub coalesce_ms: u64,
    pub max_pairs: usize,
    pub max_samples: usize,
    pub realert_s: u64,
    pub popular_min_hosts: usize,
    pub popular_fraction: f64,
    /// Series to a destination that 2+ hosts began using less than this ago
    /// wait (its popularity is still building), seconds.
    pub popular_settle_s: u64,
    pub allow_cidrs: Vec<IpNet>,
    /// Domain suffixes, matched on label boundaries.
    pub allow_domains: Vec<String>,
    /// (protocol number, port)
    pub allow_ports: Vec<(u8, u16)>,
}

/// The short default allowlist: time and OS-update services every office polls.
pub const DEFAULT_ALLOW_DOMAINS: &[&str] = &[
    // time
    "ntp.org",
    "time.windows.com",
    "time.apple.com",
    "time.google.com",
    // OS updates
    "windowsupdate.com",
    "update.microsoft.com",
    "delivery.mp.microsoft.com",
    // push channels and chat/meeting websockets that keep a heartbeat
    "notify.windows.com",
    "push.apple.com",
    "mtalk.google.com",
    "push.services.mozilla.com",
    "slack.com",
    "teams.microsoft.com",
    "skype.com",
    "zoom.us",
    "webex.com",
    "whatsapp.net",
];
/// Cloud instance metadata services.
pub const DEFAULT_ALLOW_CIDRS: &[&str] = &["169.254.169.254/32", "fd00:ec2::254/128"];
pub const DEFAULT_ALLOW_PORTS: &[&str] = &["udp/123"];

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_beats: 5,
            threshold_nats: 16.0,
            high_nats: 40.0,
            min_period_s: 2.0,
            max_period_s: 6.0 * 3600.0,
            coalesce_ms: 1000,
            max_pairs: 100_000,
            max_samples: 64,
            realert_s: 24 * 3600,
            popular_min_hosts: 5,
            popular_fraction: 0.1,
            popular_settle_s: 3600,
            allow_cidrs: DEFAULT_ALLOW_CIDRS
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            allow_domains: DEFAULT_ALLOW_DOMAINS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            allow_ports: DEFAULT_ALLOW_PORTS
                .iter()
                .filter_map(|s| parse_proto_port(s).ok())
                .collect(),
        }
    }
}

/// Parses `udp/123`, `tcp/443`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_proto_port(s: &str) -> Result<(u8, u16), String> {
    let (p, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected PROTO/PORT, e.g. udp/123"))?;
    let proto = match p.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        _ => return Err(format!("{s:?}: protocol must be tcp or udp")),
    };
    let port = n
        .parse::<u16>()
        .map_err(|_| format!("{s:?}: port must be 0..65535"))?;
    Ok((proto, port))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
struct PairKey {
    host: IpAddr,
    dest: u64,
    port: u16,
    proto: u8,
}

/// Stable FNV-1a over the destination's identity (name, else address).
pub(crate) fn dest_id(name: Option<&str>, ip: IpAddr) -> u64 {
    use std::iter::once;
    match (name, ip) {
        (Some(n), _) => crate::fnv1a(once(b'n').chain(n.bytes().map(|b| b.to_ascii_lowercase()))),
        (None, IpAddr::V4(a)) => crate::fnv1a(once(b'i').chain(a.octets())),
        (None, IpAddr::V6(a)) => crate::fnv1a(once(b'i').chain(a.octets())),
    }
}

/// One series. Most pairs only ever see a beat or two (68 % of the mix
/// benchmark's 38,000 see one), so the entry is kept small: the origin is
/// also the first beat (beats arriving late move it back), the destination's
/// name is not stored (it is the key's: a named beat always lands in the
/// series keyed by that name, so the beat being scored carries it), and the
/// beats grow one at a time instead of doubling, the first held in the entry
/// itself (no allocation for a series that never sees a second).
#[derive(Serialize, Deserialize)]
struct Pair {
    /// Time of the earliest beat; beat times are offsets from it.
    origin: Ts,
    last_seen: Ts,
    beats: smallvec::SmallVec<[Beat; 1]>,
    total_beats: u64,
    bytes_out: u64,
    bytes_in: u64,
    dest_ip: IpAddr,
    src_port: u16,
    flow_id: u64,
    vlan: u16,
    in_session: bool,
    alerted: Option<Severity>,
    last_alert: Ts,
}

#[derive(Default, Serialize, Deserialize)]
struct DestInfo {
    /// Internal hosts seen using this destination (capped).
    hosts: super::HostSet,
    last_seen: Ts,
    first_seen: Ts,
}

const DEST_HOSTS_CAP: usize = 256;

/// Counters for the summary.
#[derive(Clone, Debug, Default)]
pub struct BeaconStats {
    pub beats: u64,
    pub allowlisted: u64,
    pub suppressed_popular: u64,
    pub held_settling: u64,
    pub pairs_evicted: u64,
    pub alerts: u64,
}

/// One beat to add to a series.
struct BeatIn<'a> {
    ts: Ts,
    host: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    port: u16,
    proto: u8,
    vlan: u16,
    flow_id: u64,
    name: Option<&'a str>,
    out: u64,
    inb: u64,
    in_session: bool,
}

pub struct Beacon {
    cfg: BeaconConfig,
    /// `cfg.allow_cidrs` and `cfg.allow_domains`, for the per-beat test.
    allow_set: crate::homenet::CidrSet,
    allow_names: super::DomainSuffixes,
    pairs: super::slabmap::SlabMap<PairKey, Pair>,
    dests: HashMap<u64, DestInfo, ahash::RandomState>,
    hosts: HashMap<IpAddr, Ts, ahash::RandomState>,
    names: HashMap<(IpAddr, IpAddr), (Box<str>, Ts), ahash::RandomState>,
    scratch: Scratch,
    buf: Vec<Beat>,
    pub stats: BeaconStats,
}

impl Beacon {
    #[must_use]
    pub fn new(cfg: BeaconConfig) -> Self {
        Self {
            allow_set: crate::homenet::CidrSet::new(&cfg.allow_cidrs),
            allow_names: super::DomainSuffixes::new(&cfg.allow_domains),
            cfg,
            pairs: super::slabmap::SlabMap::default(),
            dests: HashMap::default(),
            hosts: HashMap::default(),
            names: HashMap::default(),
            scratch: Scratch::default(),
            buf: Vec::new(),
            stats: BeaconStats::default(),
        }
    }

    /// Series tracked now.
    #[must_use]
    pub fn pairs(&self) -> usize {
        self.pairs.len()
    }

    /// Bytes one series costs at most: entry, map slot, full sample ring.
    #[must_use]
    pub fn bytes_per_pair(max_samples: usize) -> usize {
        // slab entry, plus a 4-byte slot and a control byte in the index
        std::mem::size_of::<Option<(PairKey, Pair)>>()
            + 5 * 8 / 7
            + (max_samples + 1) * std::mem::size_of::<Beat>()
            + 48
    }

    /// Upper bound of the detector's state at the configured caps.
    #[must_use]
    pub fn state_bytes(&self) -> usize {
        let c = &self.cfg;
        c.max_pairs * Self::bytes_per_pair(c.max_samples)
            // names, destinations and hosts are capped at max_pairs entries each
            + c.max_pairs * (std::mem::size_of::<((IpAddr, IpAddr), (Box<str>, Ts))>() + 64)
            + c.max_pairs * (std::mem::size_of::<(u64, DestInfo)>() + 32)
    }

    fn allowed(&self, b: &BeatIn<'_>, name: Option<&str>) -> bool {
        self.cfg.allow_ports.contains(&(b.proto, b.port))
            || self.allow_set.contains(b.dest_ip)
            || name.is_some_and(|n| self.allow_names.matches(n))
    }

    fn is_popular(&self, dest: u64) -> (bool, usize) {
        let n = self.dests.get(&dest).map_or(0, |d| d.hosts.len());
        let active = self.hosts.len();
        (
            n >= self.cfg.popular_min_hosts
                && n as f64 >= self.cfg.popular_fraction * active as f64,
            n,
        )
    }

    fn add(&mut self, b: BeatIn<'_>, out: &mut Vec<Alert>) {
        let dns_name = if b.name.is_none() {
            self.names.get(&(b.host, b.dest_ip)).map(|(n, _)| &**n)
        } else {
            None
        };
        let name = b.name.or(dns_name);
        if !crate::homenet::is_egress_dest(b.dest_ip) {
            return;
        }
        if self.allowed(&b, name) {
            self.stats.allowlisted += 1;
            return;
        }
        self.stats.beats += 1;
        let dest = dest_id(name, b.dest_ip);
        // popularity and active hosts
        self.hosts.insert(b.host, b.ts);
        {
            let d = self.dests.entry(dest).or_default();
            d.last_seen = d.last_seen.max(b.ts);
            if d.first_seen == 0 || b.ts < d.first_seen {
                d.first_seen = b.ts;
            }
            d.hosts.insert(b.host, DEST_HOSTS_CAP);
        }
        let cap = self.cfg.max_pairs.max(16);
        if self.hosts.len() > cap {
            evict_oldest(&mut self.hosts, |t| *t);
        }
        if self.dests.len() > cap {
            evict_oldest(&mut self.dests, |d| d.last_seen);
        }
        let key = PairKey {
            host: b.host,
            dest,
            port: b.port,
            proto: b.proto,
        };
        let coalesce = i64::try_from(self.cfg.coalesce_ms).unwrap_or(1000) * (SEC / 1000);
        let max_samples = self
            .cfg
            .max_samples
            .max(periodicity_min(self.cfg.min_beats));
        let (slot, evicted) = self.pairs.get_or_insert_capped(
            key,
            cap,
            |p| p.last_seen,
            || Pair {
                origin: b.ts,
                last_seen: b.ts,
                beats: smallvec::SmallVec::new(),
                total_beats: 0,
                bytes_out: 0,
                bytes_in: 0,
                dest_ip: b.dest_ip,
                src_port: b.src_port,
                flow_id: b.flow_id,
                vlan: b.vlan,
                in_session: false,
                alerted: None,
                last_alert: i64::MIN,
            },
        );
        self.stats.pairs_evicted += evicted as u64;
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        if b.ts < p.origin {
            // an earlier beat arrived late: move the origin back
            let shift = ds(p.origin - b.ts);
            for x in &mut p.beats {
                x.t_ds = x.t_ds.saturating_add(shift);
            }
            p.origin = b.ts;
        }
        p.bytes_out += b.out;
        p.bytes_in += b.inb;
        if b.ts >= p.last_seen {
            p.last_seen = b.ts;
        }
        // an alert names the flow of the beat that raised it (its EVE flow
        // record, still to be written, then says `alerted`), even a beat
        // that arrived late
        p.dest_ip = b.dest_ip;
        p.src_port = b.src_port;
        p.flow_id = b.flow_id;
        p.vlan = b.vlan;
        p.in_session |= b.in_session;
        let t = ds(b.ts - p.origin);
        let beat = Beat {
            t_ds: t,
            out: u32::try_from(b.out).unwrap_or(u32::MAX),
            inb: u32::try_from(b.inb).unwrap_or(u32::MAX),
        };
        // insert in time order, merging beats within the coalescing window
        let co = ds(coalesce);
        let pos = p.beats.partition_point(|x| x.t_ds <= t);
        let near_prev = pos > 0 && t - p.beats[pos - 1].t_ds < co;
        let near_next = pos < p.beats.len() && p.beats[pos].t_ds - t < co;
        if near_prev {
            let x = &mut p.beats[pos - 1];
            x.out = x.out.saturating_add(beat.out);
            x.inb = x.inb.saturating_add(beat.inb);
            return;
        }
        if near_next {
            let x = &mut p.beats[pos];
            x.t_ds = t;
            x.out = x.out.saturating_add(beat.out);
            x.inb = x.inb.saturating_add(beat.inb);
            return;
        }
        if p.beats.len() == p.beats.capacity() {
            // grow by half (one at first), not double: most series stay
            // short; never past the one extra a full series holds briefly
            let room = (max_samples + 1).saturating_sub(p.beats.len());
            p.beats.reserve_exact((p.beats.len() / 2).min(room).max(1));
        }
        p.beats.insert(pos, beat);
        p.total_beats += 1;
        if p.beats.len() > max_samples {
            let extra = p.beats.len() - max_samples;
            p.beats.drain(..extra);
        }
        if p.beats.len() < self.cfg.min_beats.max(3) {
            return;
        }
        // long series that are still not beacon-like are re-scored every
        // few beats, not on every one (cost stays flat on chatty flows)
        if p.total_beats > 32 && p.alerted.is_none() && p.total_beats % 4 != 0 {
            return;
        }
        self.buf.clear();
        self.buf.extend(p.beats.iter().copied());
        let Some(mut v) = periodicity::evaluate(&self.buf, &mut self.scratch) else {
            return;
        };
        let nats = v.nats();
        if nats < self.cfg.threshold_nats
            || v.timing_nats < self.cfg.threshold_nats / 2.0
            || v.period_s < self.cfg.min_period_s
            || v.period_s > self.cfg.max_period_s
        {
            return;
        }
        let sev = if nats >= self.cfg.high_nats {
            Severity::High
        } else {
            Severity::Medium
        };
        let last_ts = p.origin + i64::from(self.buf.last().map_or(0, |x| x.t_ds)) * (SEC / 10);
        let due = match p.alerted {
            None => true,
            Some(prev) => {
                sev < prev
                    || last_ts.saturating_sub(p.last_alert)
                        >= i64::try_from(self.cfg.realert_s).unwrap_or(i64::MAX / SEC) * SEC
            }
        };
        if !due {
            return;
        }
        let (popular, sharing) = self.is_popular(dest);
        if popular {
            self.stats.suppressed_popular += 1;
            return;
        }
        // a destination several hosts started using only just now (everyone's
        // chat client opening in the morning) may be about to turn popular:
        // hold the alert until its popularity has settled; the next beat
        // re-evaluates
        let settle = i64::try_from(self.cfg.popular_settle_s).unwrap_or(3600) * SEC;
        if sharing >= 2
            && self
                .dests
                .get(&dest)
                .is_some_and(|d| last_ts - d.first_seen < settle)
        {
            self.stats.held_settling += 1;
            return;
        }
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        v.rita = periodicity::rita_scores(&self.buf);
        p.alerted = Some(sev);
        p.last_alert = last_ts;
        self.stats.alerts += 1;
        out.push(make_alert(
            p, name, b.host, b.port, b.proto, &v, sev, last_ts, sharing, &self.cfg,
        ));
    }
}

fn periodicity_min(min_beats: usize) -> usize {
    min_beats.max(3) + 1
}

/// Tenths of a second, saturating.
fn ds(ns: Ts) -> u32 {
    u32::try_from((ns.max(0)) / (SEC / 10)).unwrap_or(u32::MAX)
}

#[allow(clippy::too_many_arguments)]
fn make_alert(
    p: &Pair,
    name: Option<&str>,
    host: IpAddr,
    port: u16,
    proto: u8,
    v: &Periodicity,
    sev: Severity,
    ts: Ts,
    sharing: usize,
    cfg: &BeaconConfig,
) -> Alert {
    let dest_label = name.map_or_else(|| p.dest_ip.to_string(), str::to_owned);
    let proto_name = if proto == 17 { "UDP" } else { "TCP" };
    let (sid, what) = if p.in_session {
        (9_100_002, "activity inside a long-lived session")
    } else if proto == 17 {
        (9_100_003, "UDP exchanges")
    } else {
        (9_100_001, "connections")
    };
    let signature = format!(
        "deguchi BEACON periodic {proto_name} {what} to {dest_label}:{port} every ~{}",
        human_period(v.period_s)
    );
    let nats = v.nats();
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let mut e = Map::new();
    e.insert("period_s".into(), json!(r2(v.period_s)));
    e.insert("jitter".into(), json!(r2(v.jitter)));
    e.insert("jitter_s".into(), json!(r2(v.jitter * v.period_s)));
    e.insert("beats".into(), json!(p.total_beats));
    e.insert("beats_scored".into(), json!(v.intervals + 1));
    e.insert("regular_intervals".into(), json!(v.regular));
    e.insert(
        "missed_beat_intervals".into(),
        json!(v.missed_beat_intervals),
    );
    e.insert("irregular_intervals".into(), json!(v.irregular));
    e.insert("gaps".into(), json!(v.gaps));
    e.insert("miss_rate".into(), json!(r2(v.miss_rate)));
    e.insert("first_seen".into(), json!(rfc3339(p.origin)));
    e.insert("last_seen".into(), json!(rfc3339(ts)));
    e.insert("bytes_out".into(), json!(p.bytes_out));
    e.insert("bytes_in".into(), json!(p.bytes_in));
    e.insert("median_bytes_out".into(), json!(v.median_out));
    e.insert("median_bytes_in".into(), json!(v.median_in));
    e.insert("size_regularity".into(), json!(r2(v.size_regularity)));
    e.insert("dest_name".into(), name.map_or(Value::Null, |n| json!(n)));
    e.insert(
        "channel".into(),
        json!(if p.in_session {
            "in_session"
        } else {
            "connections"
        }),
    );
    e.insert("hosts_sharing_destination".into(), json!(sharing));
    e.insert("evidence_nats".into(), json!(r2(nats)));
    e.insert("timing_nats".into(), json!(r2(v.timing_nats)));
    e.insert("size_nats".into(), json!(r2(v.size_nats)));
    e.insert("threshold_nats".into(), json!(cfg.threshold_nats));
    e.insert(
        "rita".into(),
        json!({
            "ts_skew": r2(v.rita.ts_skew), "ts_madm": r2(v.rita.ts_madm),
            "ds_skew": r2(v.rita.ds_skew), "ds_madm": r2(v.rita.ds_madm),
            "score": r2(v.rita.score),
        }),
    );
    if p.vlan != 0 {
        e.insert("vlan".into(), json!(p.vlan));
    }
    Alert {
        ts,
        src_ip: host,
        src_port: Some(p.src_port),
        dest_ip: p.dest_ip,
        dest_port: Some(port),
        proto,
        community_id: Some(community_id_v1(0, host, p.dest_ip, proto, p.src_port, port)),
        flow_id: Some(p.flow_id),
        detector: "beacon",
        signature,
        signature_id: sid,
        category: "Command and Control",
        severity: sev,
        // half-way to certainty at the threshold
        score: 1.0 - 0.5f64.powf(nats / cfg.threshold_nats),
        evidence: e,
    }
}

fn human_period(s: f64) -> String {
    if s >= 5400.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s >= 90.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{s:.1}s")
    }
}

/// What survives a restart: every series, destination popularity, the
/// active hosts and the names hosts resolved.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    pairs: Vec<(PairKey, Pair)>,
    dests: Vec<(u64, DestInfo)>,
    hosts: Vec<(IpAddr, Ts)>,
    names: Vec<((IpAddr, IpAddr), (Box<str>, Ts))>,
}

impl Detector for Beacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn state_summary(&self) -> Option<String> {
        Some(format!(
            "beacon {} series ({} evicted), {} destinations",
            self.pairs.len(),
            self.stats.pairs_evicted,
            self.dests.len()
        ))
    }

    fn save(&mut self) -> Option<Vec<u8>> {
        let snap = Snapshot {
            pairs: self.pairs.take_all(),
            dests: std::mem::take(&mut self.dests).into_iter().collect(),
            hosts: std::mem::take(&mut self.hosts).into_iter().collect(),
            names: std::mem::take(&mut self.names).into_iter().collect(),
        };
        let bytes = postcard::to_stdvec(&snap).ok();
        self.pairs = snap.pairs.into_iter().collect();
        self.dests = snap.dests.into_iter().collect();
        self.hosts = snap.hosts.into_iter().collect();
        self.names = snap.names.into_iter().collect();
        bytes
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), String> {
        let s: Snapshot = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
        self.pairs = s.pairs.into_iter().collect();
        self.dests = s.dests.into_iter().collect();
        self.hosts = s.hosts.into_iter().collect();
        self.names = s.names.into_iter().collect();
        Ok(())
    }

    fn on_flow(&mut self, r: &FlowRecord, out: &mut Vec<Alert>) {
        if r.direction != Direction::Outbound || !matches!(r.proto, 6 | 17) || r.bursts >= 2 {
            // multi-burst flows arrived burst by burst already
            return;
        }
        let name = r.hints.as_deref().and_then(|h| h.dest_name());
        self.add(
            BeatIn {
                ts: r.start,
                host: r.src_ip,
                src_port: r.src_port,
                dest_ip: r.dest_ip,
                port: r.dest_port,
                proto: r.proto,
                vlan: r.vlan,
                flow_id: r.flow_id,
                name,
                out: r.payload[0],
                inb: r.payload[1],
                in_session: false,
            },
            out,
        );
    }

    fn on_burst(&mut self, b: &BurstEvent, out: &mut Vec<Alert>) {
        if !matches!(b.proto, 6 | 17) {
            return;
        }
        self.add(
            BeatIn {
                ts: b.ts,
                host: b.src_ip,
                src_port: b.src_port,
                dest_ip: b.dest_ip,
                port: b.dest_port,
                proto: b.proto,
                vlan: b.vlan,
                flow_id: b.flow_id,
                name: b.name.as_deref(),
                out: u64::from(b.payload[0]),
                inb: u64::from(b.payload[1]),
                in_session: true,
            },
            out,
        );
    }

    fn on_dns(&mut self, d: &DnsAnswer, _out: &mut Vec<Alert>) {
        if d.name.is_empty() {
            return;
        }
        for a in &d.addrs {
            self.names
                .insert((d.client, *a), (d.name.as_str().into(), d.ts));
        }
        if self.names.len() > self.cfg.max_pairs.max(16) {
            evict_oldest(&mut self.names, |(_, t)| *t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_suffixes_match_on_label_boundaries() {
        let m = |n: &str, s: &str| crate::detect::DomainSuffixes::new(&[s]).matches(n);
        assert!(m("a.b.ntp.org", "ntp.org"));
        assert!(m("ntp.org", ".ntp.org"));
        assert!(!m("evilntp.org", "ntp.org"));
        assert!(m("X.WindowsUpdate.com", "windowsupdate.com"));
    }

    #[test]
    fn proto_ports_parse() {
        assert_eq!(parse_proto_port("udp/123"), Ok((17, 123)));
        assert!(parse_proto_port("icmp/1").is_err());
        assert!(parse_proto_port("tcp/99999").is_err());
    }

    fn beat(ts_s: i64, host: u8, name: Option<&str>) -> (Ts, IpAddr, Option<String>) {
        (
            ts_s * SEC,
            IpAddr::from([10, 0, 0, host]),
            name.map(str::to_owned),
        )
    }

    fn feed(b: &mut Beacon, beats: &[(Ts, IpAddr, Option<String>)], dest: [u8; 4]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (i, (ts, host, name)) in beats.iter().enumerate() {
            b.add(
                BeatIn {
                    ts: *ts,
                    host: *host,
                    src_port: 40000 + i as u16,
                    dest_ip: IpAddr::from(dest),
                    port: 443,
                    proto: 6,
                    vlan: 0,
                    flow_id: i as u64,
                    name: name.as_deref(),
                    out: 400,
                    inb: 1200,
                    in_session: false,
                },
                &mut out,
            );
        }
        out
    }

    #[test]
    fn one_alert_per_series_and_popular_destinations_are_quiet() {
        let mut b = Beacon::new(BeaconConfig::default());
        let beats: Vec<_> = (0..60)
            .map(|i| beat(1000 + i * 60, 5, Some("c2.example")))
            .collect();
        let a = feed(&mut b, &beats, [203, 0, 113, 9]);
        assert_eq!(a.len(), 2, "medium, then high: {a:?}");
        assert_eq!(a[0].severity, Severity::Medium);
        assert_eq!(a[1].severity, Severity::High);
        assert_eq!(a[0].evidence["dest_name"], "c2.example");

        // ten hosts polling the same service on the same schedule: software
        let mut b = Beacon::new(BeaconConfig::default());
        let mut beats = Vec::new();
        for i in 0..60 {
            for h in 1..=10 {
                beats.push(beat(
                    1000 + i * 60 + i64::from(h),
                    h,
                    Some("telemetry.vendor.example"),
                ));
            }
        }
        assert!(feed(&mut b, &beats, [198, 51, 100, 7]).is_empty());
        assert!(b.stats.suppressed_popular > 0);
        // ... but one of them beaconing to the same IP under another name is scored
        let own: Vec<_> = (0..30)
            .map(|i| beat(5000 + i * 90, 3, Some("cdn-front.example")))
            .collect();
        let a = feed(&mut b, &own, [198, 51, 100, 7]);
        assert!(!a.is_empty());
        assert_eq!(a[0].src_ip, IpAddr::from([10, 0, 0, 3]));
        assert_eq!(a[0].evidence["dest_name"], "cdn-front.example");
    }

    #[test]
    fn ntp_is_allowlisted_and_pairs_are_capped() {
        let cfg = BeaconConfig {
            max_pairs: 16,
            ..BeaconConfig::default()
        };
        let mut b = Beacon::new(cfg);
        let mut out = Vec::new();
        for i in 0..1000u32 {
            b.add(
                BeatIn {
                    ts: i64::from(i) * SEC,
                    host: IpAddr::from([10, 0, 0, 1]),
                    src_port: 1,
                    dest_ip: IpAddr::from(i.to_be_bytes()),
                    port: 443,
                    proto: 6,
                    vlan: 0,
                    flow_id: 0,
                    name: None,
                    out: 1,
                    inb: 1,
                    in_session: false,
                },
                &mut out,
            );
            assert!(b.pairs() <= 16);
        }
        assert!(b.stats.pairs_evicted > 0);
        let mut b = Beacon::new(BeaconConfig::default());
        let mut out = Vec::new();
        for i in 0..50 {
            b.add(
                BeatIn {
                    ts: i * 64 * SEC,
                    host: IpAddr::from([10, 0, 0, 1]),
                    src_port: 123,
                    dest_ip: IpAddr::from([192, 0, 2, 1]),
                    port: 123,
                    proto: 17,
                    vlan: 0,
                    flow_id: 0,
                    name: None,
                    out: 48,
                    inb: 48,
                    in_session: false,
                },
                &mut out,
            );
        }
        assert!(out.is_empty());
        assert_eq!(b.stats.allowlisted, 50);
    }
}
