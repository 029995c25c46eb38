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
//! What a beat is, and the other models (issue 16):
//! - a burst inside a session in which the internal host sent nothing is
//!   not its beat; one the server started counts at the host's first payload
//!   (`own_bursts_only`: an IRC bot's PONG among the server's chatter);
//! - a TCP keep-alive probe (0-1 byte after silence) is a beat of its
//!   session's own series (`keepalive_probes`), which alerts once held
//!   `keepalive_min_span_s`; in-session bursts are also scored per session
//!   once a pair holds several (`per_session`); one alert per pair;
//! - an in-session series that fails is scored against a fixed grid
//!   ([`periodicity::evaluate_grid`], `grid`): a heartbeat with extras;
//! - a series with `high_jitter_min_beats` beats to a destination at most
//!   `high_jitter_max_hosts` hosts use is also scored by the high-jitter
//!   model ([`periodicity::evaluate_high_jitter`]), the better fit reported.
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

mod config;

use super::periodicity::{self, Beat, Periodicity, Scratch};
use crate::alert::{Alert, Severity};
use crate::baseline::DestView;
use crate::community_id::community_id_v1;
use crate::detect::{Detector, EventCtx, SnapshotError};
use crate::flow::event::BurstEvent;
use crate::flow::record::FlowRecord;
use crate::homenet::Direction;
use crate::time::{SEC, Ts, rfc3339};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

pub use config::{
    BeaconConfig, DEFAULT_ALLOW_CIDRS, DEFAULT_ALLOW_DOMAINS, DEFAULT_ALLOW_PORTS, parse_proto_port,
};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
struct PairKey {
    host: IpAddr,
    dest: u64,
    port: u16,
    proto: u8,
    /// 0: the pair's series; else the host's port of the session whose own
    /// series this is (`per_session`, `keepalive_probes`).
    session: u16,
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
    /// In-session beats from two or more sessions reached this series.
    mixed: bool,
    /// Keep-alive probes are among its beats (`keepalive_min_span_s`).
    keepalive: bool,
    /// Beats to take before the series is scored again: a score far below
    /// the threshold cannot reach it within a few beats (see [`hold_after`]).
    hold: u8,
    alerted: Option<Severity>,
    last_alert: Ts,
}

/// Counters for the summary.
#[derive(Clone, Debug, Default)]
pub struct BeaconStats {
    pub beats: u64,
    /// Series scores computed.
    pub scored: u64,
    pub allowlisted: u64,
    pub suppressed_popular: u64,
    pub held_settling: u64,
    /// In-session bursts in which the host sent nothing (`own_bursts_only`).
    pub server_bursts: u64,
    /// Keep-alive probes taken as beats of their session.
    pub keepalive_probes: u64,
    pub pairs_evicted: u64,
    pub alerts: u64,
}

/// One beat to add to a series.
struct BeatIn {
    ts: Ts,
    host: IpAddr,
    src_port: u16,
    dest_ip: IpAddr,
    port: u16,
    proto: u8,
    vlan: u16,
    flow_id: u64,
    out: u64,
    inb: u64,
    in_session: bool,
    /// 0: the pair's series; else the session's own (its host port).
    session: u16,
    /// A keep-alive probe, not payload.
    keepalive: bool,
}

pub struct Beacon {
    cfg: BeaconConfig,
    /// `cfg.allow_cidrs` and `cfg.allow_domains`, for the per-beat test.
    allow_set: crate::homenet::CidrSet,
    allow_names: super::DomainSuffixes,
    pairs: super::slabmap::SlabMap<PairKey, Pair>,
    scratch: Scratch,
    buf: Vec<Beat>,
    /// The beats as they came, for the grid and high-jitter models.
    raw: Vec<Beat>,
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
            scratch: Scratch::default(),
            buf: Vec::new(),
            raw: Vec::new(),
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
    }

    fn allowed(&self, b: &BeatIn, name: Option<&str>) -> bool {
        self.cfg.allow_ports.contains(&(b.proto, b.port))
            || self.allow_set.contains(b.dest_ip)
            || name.is_some_and(|n| self.allow_names.matches(n))
    }

    /// Whether the destination is popular (BAYWATCH), and how many hosts use it.
    fn is_popular(&self, dest: &DestView) -> (bool, usize) {
        let (n, active) = (dest.hosts, dest.active_hosts);
        (
            n >= self.cfg.popular_min_hosts
                && n as f64 >= self.cfg.popular_fraction * active as f64,
            n,
        )
    }

    /// Adds a beat to its series (`dest`: the shared baseline's view of
    /// its destination) and scores the series.
    fn add(&mut self, b: BeatIn, dest: &DestView, out: &mut Vec<Alert>) {
        let name = dest.name.as_deref();
        if !crate::homenet::is_egress_dest(b.dest_ip) {
            return;
        }
        if self.allowed(&b, name) {
            self.stats.allowlisted += 1;
            return;
        }
        self.stats.beats += 1;
        let view = dest;
        let dest = view.id;
        let cap = self.cfg.max_pairs.max(1);
        let key = PairKey {
            host: b.host,
            dest,
            port: b.port,
            proto: b.proto,
            session: b.session,
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
                mixed: false,
                keepalive: false,
                hold: 0,
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
        if b.in_session && p.in_session && p.src_port != b.src_port {
            p.mixed = true;
        }
        p.src_port = b.src_port;
        p.flow_id = b.flow_id;
        p.vlan = b.vlan;
        p.in_session |= b.in_session;
        p.keepalive |= b.keepalive;
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
        // a young series is scored at every beat (the first alert comes as
        // soon as the evidence suffices); one that is still not beacon-like
        // after 32 beats on a geometric schedule (see `due_for_scoring`)
        if p.alerted.is_none() {
            if p.hold > 0 {
                p.hold -= 1;
                return;
            }
            if !due_for_scoring(p.total_beats, max_samples) {
                return;
            }
        }
        self.stats.scored += 1;
        self.buf.clear();
        self.buf.extend(p.beats.iter().copied());
        periodicity::merge_close(&mut self.buf, self.cfg.merge_fraction, &mut self.scratch);
        let Some(mut v) = periodicity::evaluate(&self.buf, &mut self.scratch) else {
            return;
        };
        let cfg = &self.cfg;
        let passes = |v: &Periodicity| {
            v.nats() >= cfg.threshold_nats
                && v.timing_nats >= cfg.threshold_nats / 2.0
                && v.period_s >= cfg.min_period_s
                && v.period_s <= cfg.max_period_s
        };
        // the burst level: a reconnect loop (attempts half a second apart,
        // a burst of them every few seconds) fits the spacing inside a
        // burst, below `min_period_s`; such a series is scored again with
        // each run of beats closer than `min_period_s` as one beat. (Only
        // then: a second score of every failing series doubled the cost of
        // a busy link's random sessions.) `buf` is only read further on
        // when the series passes, so a failed second score leaves it.
        if !passes(&v) && cfg.burst_level && v.period_s < cfg.min_period_s {
            let gap = (cfg.min_period_s * 10.0) as u32;
            if periodicity::merge_runs(&mut self.buf, gap)
                && let Some(w) = periodicity::evaluate(&self.buf, &mut self.scratch)
                && passes(&w)
            {
                v = w;
            }
        }
        // a heartbeat on an exact timer with extras between beats: scored
        // against the grid (`grid`); loose polling over many beats to a
        // rare destination: the high-jitter model. Each sees the beats as
        // they came (before the merges above).
        let mut hold = hold_after(&v, cfg.threshold_nats);
        if !passes(&v) && cfg.grid && p.in_session {
            self.raw.clear();
            self.raw.extend(p.beats.iter().copied());
            if let Some(w) = periodicity::evaluate_grid(&self.raw, &mut self.scratch) {
                hold = hold.min(hold_after(&w, cfg.threshold_nats));
                if passes(&w) {
                    v = w;
                    std::mem::swap(&mut self.buf, &mut self.raw);
                }
            }
        }
        // (a series long enough for it is scored by it even when the main
        // model passes: the better fit is the one reported)
        if cfg.high_jitter_min_beats > 0
            && p.total_beats >= cfg.high_jitter_min_beats
            && p.beats.len() >= 32
            && view.hosts <= cfg.high_jitter_max_hosts
        {
            self.raw.clear();
            self.raw.extend(p.beats.iter().copied());
            if let Some(w) = periodicity::evaluate_high_jitter(&self.raw, &mut self.scratch) {
                hold = hold.min(hold_after(&w, cfg.threshold_nats));
                if passes(&w) && (!passes(&v) || w.nats() > v.nats()) {
                    v = w;
                    std::mem::swap(&mut self.buf, &mut self.raw);
                }
            }
        }
        let nats = v.nats();
        if !passes(&v) {
            if let Some(p) = self.pairs.at_mut(slot) {
                p.hold = hold;
            }
            return;
        }
        // bursts inside one session a few seconds apart (a CRL fetched on a
        // timer over a keep-alive connection) reach the evidence within
        // seconds: such a series needs `min_session_span_s` of history
        let span = self.buf.last().map_or(0, |x| x.t_ds) - self.buf[0].t_ds;
        if p.in_session && u64::from(span) < self.cfg.min_session_span_s.saturating_mul(10) {
            return;
        }
        // a session held open by keep-alives alone is a beacon only when
        // it is held long (an IoT device's keep-alives on sessions it
        // renews every half hour are not)
        if p.keepalive && u64::from(span) < self.cfg.keepalive_min_span_s.saturating_mul(10) {
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
        let (popular, sharing) = self.is_popular(view);
        if popular {
            self.stats.suppressed_popular += 1;
            return;
        }
        // a destination several hosts started using only just now (everyone's
        // chat client opening in the morning) may be about to turn popular:
        // hold the alert until its popularity has settled; the next beat
        // re-evaluates
        let settle = i64::try_from(self.cfg.popular_settle_s).unwrap_or(3600) * SEC;
        if sharing >= 2 && last_ts - view.first_seen < settle {
            self.stats.held_settling += 1;
            return;
        }
        if key.session != 0 {
            // a session's own series: one alert for the pair, whichever of
            // its series raises it
            let pk = PairKey { session: 0, ..key };
            if let Some(q) = self.pairs.get_mut(&pk) {
                if q.alerted.is_some_and(|a| a >= sev) {
                    return;
                }
                q.alerted = Some(sev);
                q.last_alert = last_ts;
            } else {
                let origin = self.pairs.at(slot).map_or(last_ts, |p| p.origin);
                let (pslot, evicted) = self.pairs.get_or_insert_capped(
                    pk,
                    cap,
                    |p| p.last_seen,
                    || Pair {
                        origin,
                        last_seen: last_ts,
                        beats: smallvec::SmallVec::new(),
                        total_beats: 0,
                        bytes_out: 0,
                        bytes_in: 0,
                        dest_ip: b.dest_ip,
                        src_port: b.src_port,
                        flow_id: b.flow_id,
                        vlan: b.vlan,
                        // a placeholder holding the pair's alert state:
                        // its own beats (if any come) set the channel
                        in_session: false,
                        mixed: false,
                        keepalive: false,
                        hold: 0,
                        alerted: None,
                        last_alert: i64::MIN,
                    },
                );
                self.stats.pairs_evicted += evicted as u64;
                if pslot == slot {
                    // the session's series was evicted to make room
                    return;
                }
                if let Some(q) = self.pairs.at_mut(pslot) {
                    q.alerted = Some(sev);
                    q.last_alert = last_ts;
                }
            }
        }
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        v.rita = periodicity::rita_scores(&self.buf);
        p.alerted = Some(sev);
        p.last_alert = last_ts;
        self.stats.alerts += 1;
        out.push(make_alert(
            p,
            name,
            b.host,
            b.port,
            b.proto,
            &v,
            sev,
            last_ts,
            sharing,
            key.session != 0,
            &self.cfg,
        ));
    }
}

/// Most a series' timing evidence rises with one more beat, nats: a regular
/// interval earns at most ~5.3 nats (a band of ±1 % at the jitter floor);
/// the rest is margin for the refit (period, jitter, miss rate) that one
/// interval can move.
const RISE_PER_BEAT: f64 = 8.0;

/// Beats a series that just failed to score `v` waits before it is scored
/// again: as many as it surely needs to close its deficit (timing evidence
/// against half the threshold, the total against the threshold, the size
/// evidence rising at most as fast as the timing), at most 8. A series of
/// random arrivals sits tens of nats below and is scored every few beats;
/// a beacon still short of evidence is close and is scored at every beat.
fn hold_after(v: &periodicity::Periodicity, threshold: f64) -> u8 {
    let timing = (threshold / 2.0 - v.timing_nats) / RISE_PER_BEAT;
    let total = (threshold - v.nats()) / (2.0 * RISE_PER_BEAT);
    let beats = timing.max(total).floor();
    if beats >= 1.0 {
        beats.min(8.0) as u8
    } else {
        0
    }
}

/// Whether a series that has not alerted is scored at its `n`-th beat:
/// every beat up to 32, then every `s`-th, `s` an eighth of the beats seen
/// (a power of two from 4, at most `window`, the samples a score looks at,
/// so that every beat is in at least one scored window). Chatty pairs that
/// are not beacons (a session with a burst every few seconds for hours)
/// then cost a score every ~12 % more beats instead of every fourth beat.
fn due_for_scoring(n: u64, window: usize) -> bool {
    if n <= 32 {
        return true;
    }
    // the highest power of two at most x (x >= 1)
    let floor_pow2 = |x: u64| 1u64 << (63 - x.max(1).leading_zeros());
    let window = floor_pow2(u64::try_from(window).unwrap_or(u64::MAX).max(4));
    let step = floor_pow2(n / 8).clamp(4, window);
    n.is_multiple_of(step)
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
    session: bool,
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
    if !v.model.is_empty() {
        e.insert("model".into(), json!(v.model));
    }
    if session {
        e.insert("series".into(), json!("session"));
    }
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
    // the report's charts: the recent beats (crate::report::evidence)
    e.insert(
        "beat_series".into(),
        crate::report::evidence::beat_series(p.beats.iter().map(|b| (b.t_ds, b.out, b.inb))),
    );
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

/// What survives a restart: every series (popularity and resolved names
/// are the shared baseline's, [`crate::baseline`]).
#[derive(Serialize, Deserialize)]
struct Snapshot {
    pairs: Vec<(PairKey, Pair)>,
}

/// Layout version of [`Snapshot`].
const SNAPSHOT_VERSION: u32 = 4;

impl Detector for Beacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn state_counts(&self) -> Vec<u64> {
        vec![
            self.pairs.len() as u64,
            self.stats.pairs_evicted,
            self.stats.beats,
            self.stats.scored,
        ]
    }

    fn state_kinds(&self) -> &'static [crate::metrics::StateKind] {
        use crate::metrics::StateKind::{Entries, Evictions, Other};
        &[Entries("series"), Evictions("series"), Other, Other]
    }

    fn state_line(&self, c: &[u64]) -> Option<String> {
        let [series, evicted, beats, scored] = c else {
            return None;
        };
        Some(format!(
            "beacon {series} series ({evicted} evicted), {beats} beats, {scored} scored"
        ))
    }

    fn snapshot_version(&self) -> u32 {
        SNAPSHOT_VERSION
    }

    fn save(&mut self) -> Option<Vec<u8>> {
        let snap = Snapshot {
            pairs: self.pairs.take_all(),
        };
        let bytes = postcard::to_stdvec(&snap).ok();
        self.pairs = snap.pairs.into_iter().collect();
        bytes
    }

    fn load(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let s: Snapshot = postcard::from_bytes(bytes)?;
        self.pairs = s.pairs.into_iter().collect();
        Ok(())
    }

    fn on_flow(&mut self, r: &FlowRecord, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        if r.direction != Direction::Outbound
            || !matches!(r.proto, 6 | 17)
            || r.bursts >= 2
            || r.oriented.inferred()
        {
            // multi-burst flows arrived burst by burst already; a TCP flow
            // whose opening was not seen (open before capture start) has
            // no connection time to be a beat
            return;
        }
        let Some(dest) = cx.dest else {
            return;
        };
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
                out: r.payload[0],
                inb: r.payload[1],
                in_session: false,
                session: 0,
                keepalive: false,
            },
            dest,
            out,
        );
    }

    fn on_burst(&mut self, b: &BurstEvent, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        if !matches!(b.proto, 6 | 17) {
            return;
        }
        let Some(dest) = cx.dest else {
            return;
        };
        let mut beat = BeatIn {
            ts: b.ts,
            host: b.src_ip,
            src_port: b.src_port,
            dest_ip: b.dest_ip,
            port: b.dest_port,
            proto: b.proto,
            vlan: b.vlan,
            flow_id: b.flow_id,
            out: u64::from(b.payload[0]),
            inb: u64::from(b.payload[1]),
            in_session: true,
            session: 0,
            keepalive: false,
        };
        if b.keepalive {
            // a keep-alive probe: the session is alive, on its own timer;
            // a beat of the session's own series only (the pair's series
            // holds payload)
            if !self.cfg.keepalive_probes {
                return;
            }
            self.stats.keepalive_probes += 1;
            beat.session = b.src_port.max(1);
            beat.keepalive = true;
            self.add(beat, dest, out);
            return;
        }
        if self.cfg.own_bursts_only {
            // the server talking alone is not the host's beat; a burst the
            // server started is the host's beat when the host answered
            let Some(first) = b.orig_first else {
                self.stats.server_bursts += 1;
                return;
            };
            beat.ts = first;
        }
        let session = BeatIn {
            session: b.src_port.max(1),
            ..beat
        };
        self.add(beat, dest, out);
        if self.cfg.per_session {
            let pk = PairKey {
                host: b.src_ip,
                dest: dest.id,
                port: b.dest_port,
                proto: b.proto,
                session: 0,
            };
            if self.pairs.get(&pk).is_some_and(|p| p.mixed) {
                self.add(session, dest, out);
            }
        }
    }
}

crate::detector_component!("beacon", BeaconConfig, config::parse, |c, env| {
    Beacon::new(BeaconConfig {
        max_pairs: env.share(c.max_pairs),
        ..c.clone()
    })
});

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn domain_suffixes_match_on_label_boundaries() {
        let m = |n: &str, s: &str| crate::detect::DomainSuffixes::new(&[s]).matches(n);
        assert!(m("a.b.ntp.org", "ntp.org"));
        assert!(m("ntp.org", ".ntp.org"));
        assert!(!m("evilntp.org", "ntp.org"));
        assert!(m("X.WindowsUpdate.com", "windowsupdate.com"));
    }

    #[test]
    fn long_series_are_scored_on_a_geometric_schedule() {
        let scored = |from: u64, to: u64| (from..to).filter(|&n| due_for_scoring(n, 64)).count();
        assert_eq!(scored(1, 33), 32, "every beat while young");
        assert_eq!(scored(33, 65), 8, "every 4th up to 64");
        assert_eq!(scored(1024, 2048), 16, "every 64th (the window) later");
        // no run of unscored beats longer than the window
        let mut gap = 0;
        for n in 1..10_000 {
            gap = if due_for_scoring(n, 64) { 0 } else { gap + 1 };
            assert!(gap < 64);
        }
        assert!((1..200).filter(|&n| due_for_scoring(n, 8)).count() > 40);
    }

    /// Feeds the beats of `all` (times in tenths of a second) from `host` to
    /// `dest` until the first alert; the beat count at it (999: none).
    fn first_alert(
        b: &mut Beacon,
        all: &[Beat],
        host: IpAddr,
        dest: IpAddr,
        name: Option<&str>,
    ) -> usize {
        let mut pop = Pop::default();
        for (i, x) in all.iter().enumerate() {
            let ts = 1000 * SEC + i64::from(x.t_ds) * (SEC / 10);
            let mut out = Vec::new();
            let beat = BeatIn {
                ts,
                host,
                src_port: 40000,
                dest_ip: dest,
                port: 443,
                proto: 6,
                vlan: 0,
                flow_id: i as u64,
                out: u64::from(x.out),
                inb: u64::from(x.inb),
                in_session: false,
                session: 0,
                keepalive: false,
            };
            b.add(beat, &pop.view(ts, host, dest, name), &mut out);
            if !out.is_empty() {
                return i + 1;
            }
        }
        999
    }

    /// The hold and the geometric schedule do not delay first alerts:
    /// median and 90th percentile of the beats at the first alert, over 50
    /// seeds, against those of the previous schedule (score at every beat
    /// up to 32, then every 4th), per jitter and miss rate.
    #[test]
    fn holds_do_not_delay_the_first_alert() {
        use crate::detect::periodicity::tests_support::{CALIBRATION_GRID, poisson, series};
        let cfg = BeaconConfig::default();
        let passes = |b: &[Beat]| {
            periodicity::evaluate(b, &mut Scratch::default()).is_some_and(|v| {
                v.nats() >= cfg.threshold_nats && v.timing_nats >= cfg.threshold_nats / 2.0
            })
        };
        let (host, dest) = (IpAddr::from([10, 0, 0, 5]), IpAddr::from([203, 0, 113, 9]));
        let mut scored = 0usize;
        for (j, miss) in CALIBRATION_GRID {
            let (mut want, mut got) = (Vec::new(), Vec::new());
            for seed in 1..=50u64 {
                let all = series(120, 60.0, j, miss, seed);
                // the previous schedule: every beat up to 32, then every 4th
                want.push(
                    (cfg.min_beats.max(3)..=all.len())
                        .find(|&n| (n <= 32 || n % 4 == 0) && passes(&all[..n]))
                        .unwrap_or(999),
                );
                let mut b = Beacon::new(cfg.clone());
                got.push(first_alert(&mut b, &all, host, dest, Some("c2.example")));
            }
            want.sort_unstable();
            got.sort_unstable();
            assert!(
                got[25] <= want[25] && got[45] <= want[45] + 1,
                "jitter {j} miss {miss}: median {} p90 {} vs score {} {}",
                got[25],
                got[45],
                want[25],
                want[45]
            );
            scored += got.iter().filter(|&&n| n < 999).count();
        }
        assert!(scored > 200);
        // random arrivals: scored far less often than at every beat
        let mut b = Beacon::new(cfg.clone());
        assert_eq!(
            first_alert(&mut b, &poisson(400, 30.0, 9), host, dest, None),
            999
        );
        assert!(b.stats.scored < 200, "{}", b.stats.scored);
    }

    /// Class 4 of issue 16: a ~15-minute check-in (±2 %) seen 7 times, each
    /// one short connection holding two exchanges 1-3.5 s apart. Merged
    /// relative to the series' own typical interval, the six regular
    /// intervals alert; scored as 14 beats (`merge_fraction` 0) they do not.
    #[test]
    fn close_exchanges_of_one_check_in_are_one_beat() {
        use crate::detect::periodicity::tests_support::R;
        let run = |merge_fraction: f64| {
            let cfg = BeaconConfig {
                merge_fraction,
                ..BeaconConfig::default()
            };
            let mut b = Beacon::new(cfg);
            let mut pop = Pop::default();
            let (host, dest) = (IpAddr::from([10, 0, 0, 9]), IpAddr::from([203, 0, 113, 77]));
            let mut r = R(77);
            let mut out = Vec::new();
            let mut t = 5000.0;
            for i in 0..7u16 {
                t += 900.0 * (1.0 + 0.02 * (2.0 * r.f() - 1.0));
                for (k, dt) in [0.0, 1.0 + 2.5 * r.f()].into_iter().enumerate() {
                    let ts = ((t + dt) * SEC as f64) as Ts;
                    b.add(
                        BeatIn {
                            ts,
                            host,
                            src_port: 49_000 + i,
                            dest_ip: dest,
                            port: 80,
                            proto: 6,
                            vlan: 0,
                            flow_id: u64::from(i),
                            out: [310, 520][k],
                            inb: [240, 180][k],
                            in_session: true,
                            session: 0,
                            keepalive: false,
                        },
                        &pop.view(ts, host, dest, None),
                        &mut out,
                    );
                }
            }
            out
        };
        let a = run(BeaconConfig::default().merge_fraction);
        assert!(!a.is_empty(), "the check-ins alert once merged");
        let period = a[0].evidence["period_s"].as_f64().unwrap();
        assert!((810.0..990.0).contains(&period), "{period}");
        assert!(run(0.0).is_empty(), "as separate beats they do not");
    }

    /// Class 7 of issue 16: an implant whose server is gone retries in
    /// bursts of 5 attempts 0.55 s apart every ~12 s. Found at the burst
    /// level with its period; not with `burst_level` off.
    #[test]
    fn reconnect_loops_are_found_at_the_burst_level() {
        use crate::detect::periodicity::tests_support::R;
        let run = |burst_level: bool| {
            let mut b = Beacon::new(BeaconConfig {
                burst_level,
                ..BeaconConfig::default()
            });
            let mut pop = Pop::default();
            let (host, dest) = (IpAddr::from([10, 0, 0, 9]), IpAddr::from([203, 0, 113, 78]));
            let mut r = R(71);
            let mut out = Vec::new();
            let mut t = 5000.0;
            for i in 0..40u16 {
                t += 12.0 * (1.0 + 0.05 * (2.0 * r.f() - 1.0));
                for k in 0..5u16 {
                    let ts = ((t + 0.55 * f64::from(k)) * SEC as f64) as Ts;
                    b.add(
                        BeatIn {
                            ts,
                            host,
                            src_port: 49_000 + i * 5 + k,
                            dest_ip: dest,
                            port: 4782,
                            proto: 6,
                            vlan: 0,
                            flow_id: u64::from(i * 5 + k),
                            out: 0,
                            inb: 0,
                            in_session: false,
                            session: 0,
                            keepalive: false,
                        },
                        &pop.view(ts, host, dest, None),
                        &mut out,
                    );
                }
            }
            out
        };
        let a = run(true);
        assert!(!a.is_empty(), "the loop alerts at the burst level");
        let period = a[0].evidence["period_s"].as_f64().unwrap();
        assert!((10.8..13.2).contains(&period), "{period}");
        assert!(run(false).is_empty(), "the attempt level alone does not");
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

    fn feed(
        b: &mut Beacon,
        pop: &mut Pop,
        beats: &[(Ts, IpAddr, Option<String>)],
        dest: [u8; 4],
    ) -> Vec<Alert> {
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
                    out: 400,
                    inb: 1200,
                    in_session: false,
                    session: 0,
                    keepalive: false,
                },
                &pop.view(*ts, *host, IpAddr::from(dest), name.as_deref()),
                &mut out,
            );
        }
        out
    }

    /// The shared baseline's popularity for these tests.
    #[derive(Default)]
    struct Pop {
        dests: HashMap<u64, (Vec<IpAddr>, Ts)>,
        hosts: Vec<IpAddr>,
    }

    impl Pop {
        fn view(&mut self, ts: Ts, host: IpAddr, ip: IpAddr, name: Option<&str>) -> DestView {
            let id = crate::baseline::dest_id(name, ip);
            if !self.hosts.contains(&host) {
                self.hosts.push(host);
            }
            let d = self.dests.entry(id).or_insert((Vec::new(), ts));
            if !d.0.contains(&host) {
                d.0.push(host);
            }
            DestView {
                id,
                name: name.map(Into::into),
                hosts: d.0.len(),
                active_hosts: self.hosts.len(),
                first_seen: d.1,
            }
        }
    }

    #[test]
    fn one_alert_per_series_and_popular_destinations_are_quiet() {
        let mut b = Beacon::new(BeaconConfig::default());
        let beats: Vec<_> = (0..60)
            .map(|i| beat(1000 + i * 60, 5, Some("c2.example")))
            .collect();
        let a = feed(&mut b, &mut Pop::default(), &beats, [203, 0, 113, 9]);
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
        let mut pop = Pop::default();
        assert!(feed(&mut b, &mut pop, &beats, [198, 51, 100, 7]).is_empty());
        assert!(b.stats.suppressed_popular > 0);
        // ... but one of them beaconing to the same IP under another name is scored
        let own: Vec<_> = (0..30)
            .map(|i| beat(5000 + i * 90, 3, Some("cdn-front.example")))
            .collect();
        let a = feed(&mut b, &mut pop, &own, [198, 51, 100, 7]);
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
                    out: 1,
                    inb: 1,
                    in_session: false,
                    session: 0,
                    keepalive: false,
                },
                &Pop::default().view(
                    0,
                    IpAddr::from([10, 0, 0, 1]),
                    IpAddr::from(i.to_be_bytes()),
                    None,
                ),
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
                    out: 48,
                    inb: 48,
                    in_session: false,
                    session: 0,
                    keepalive: false,
                },
                &Pop::default().view(
                    0,
                    IpAddr::from([10, 0, 0, 1]),
                    IpAddr::from([192, 0, 2, 1]),
                    None,
                ),
                &mut out,
            );
        }
        assert!(out.is_empty());
        assert_eq!(b.stats.allowlisted, 50);
    }
}
