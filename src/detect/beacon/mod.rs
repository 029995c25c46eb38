//! Beacon detector: periodic check-ins from an internal host to an external
//! destination, learned online in packet time.
//!
//! Series are kept per (internal host, destination, port, protocol), where the
//! destination is the name the host used (TLS SNI, HTTP Host, or the name in a
//! DNS answer the host received for that address) or else the IP. A beat is a
//! connection (a flow with one burst of activity) or a burst of activity after
//! silence inside a long-lived TCP session or UDP flow (`FlowEvent::Burst`).
//! Beats closer than `coalesce_ms` are one beat. Each new beat re-scores the
//! series ([`periodicity::evaluate`](super::periodicity::evaluate)): incremental, no batch pass.
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
//!   ([`periodicity::evaluate_grid`](super::periodicity::evaluate_grid), `grid`): a heartbeat with extras;
//! - a series with `high_jitter_min_beats` beats to a destination at most
//!   `high_jitter_max_hosts` hosts use is also scored by the high-jitter
//!   model ([`periodicity::evaluate_high_jitter`](super::periodicity::evaluate_high_jitter)), the better fit reported.
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

mod alert;
mod series;
mod snapshot;
mod state;

use super::periodicity::{Beat, Scratch};
use crate::alert::Alert;
use crate::detect::{Detector, EventCtx, SnapshotError};
use crate::flow::event::BurstEvent;
use crate::flow::record::FlowRecord;
use crate::homenet::Direction;
use snapshot::{SNAPSHOT_VERSION, Snapshot};
pub use state::BeaconStats;
use state::{BeatIn, Pair, PairKey};

pub use config::{
    BeaconConfig, DEFAULT_ALLOW_CIDRS, DEFAULT_ALLOW_DOMAINS, DEFAULT_ALLOW_PORTS, parse_proto_port,
};

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
}

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
    use super::series::due_for_scoring;
    use super::*;
    use crate::alert::Severity;
    use crate::baseline::DestView;
    use crate::detect::periodicity;
    use crate::time::{SEC, Ts};
    use std::collections::HashMap;
    use std::net::IpAddr;

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
