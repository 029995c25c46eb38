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

mod snapshot;
mod state;
mod update;

use crate::alert::Alert;
use crate::detect::{Detector, EventCtx, SnapshotError};
use crate::flow::event::ProgressEvent;
use crate::flow::record::FlowRecord;
use crate::time::{SEC, Ts};
use hdrhistogram::Histogram;
use snapshot::{HostSnap, SNAPSHOT_VERSION, Snapshot, hist_from, hist_pairs};
pub use state::{ExfilStats, Host, Kind, Pair, Ring};
use state::{HIST1H_LOW, HIST5_LOW, PairRings, new_hist};
use std::net::IpAddr;
use update::Update;

const MB: u64 = 1 << 20;
const SLOT5: Ts = 300 * SEC;
const HOUR: Ts = 3600 * SEC;
const DAY: Ts = 86_400 * SEC;

pub use config::ExfilConfig;

pub struct Exfil {
    cfg: ExfilConfig,
    hosts: super::slabmap::SlabMap<IpAddr, Host>,
    /// Empty 5-minute and hourly histograms, cloned for each new host.
    hist_templates: (Histogram<u16>, Histogram<u16>),
    pairs: super::slabmap::SlabMap<(IpAddr, u64), Pair>,
    pub stats: ExfilStats,
}

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

    /// Hosts tracked now.
    #[must_use]
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }
}

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
    use super::state::Kinds;
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
