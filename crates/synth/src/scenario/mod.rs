//! Scenarios: activities (state machines emitting records per time window)
//! and the offices they make up.

mod background;
mod beacon;
mod bench;
mod exfil;
mod office;

pub use background::{Backup, Browse, Heartbeat, Media, Periodic};
pub use beacon::{BeaconPlan, Variant};
pub use bench::{bench, flood};
pub use exfil::{ExfilKind, ExfilPlan};
use office::host;
pub use office::{OfficeOpts, exfil_set, office_background, office_beacons};

use crate::packets::{self, Conv, Ep, L4, full, tcp_conv};
use crate::pcap::PcapWriter;
use crate::{GroundTruth, Record, Rng, Truth, rfc3339_us};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

const S: u64 = 1_000_000;
const H: u64 = 3600 * S;
const DAY: u64 = 24 * H;
/// 2026-03-02T00:00:00Z, a Monday.
pub const EPOCH_US: u64 = 1_772_409_600 * S;

/// Shared world: sites, resolver, port and id counters.
pub struct GenCtx {
    pub rng: Rng,
    pub start: u64,
    pub sites: Vec<(String, Vec<IpAddr>)>,
    pub resolver: Ep,
    port: u16,
    dns_id: u16,
}

impl GenCtx {
    fn new(seed: u64, start: u64) -> Self {
        let mut rng = Rng::new(seed);
        let words = [
            "news", "mail", "docs", "shop", "video", "maps", "cloud", "social", "bank", "travel",
            "weather", "sports", "music", "games", "learn", "jobs", "health", "photo", "code",
            "wiki",
        ];
        let sites = (0..200)
            .map(|i| {
                let name = format!("www.{}{}.com", words[i % words.len()], i / words.len());
                let n = 1 + rng.below(3);
                let mut ips: Vec<IpAddr> = (0..n)
                    .map(|_| {
                        IpAddr::from([
                            [23, 52, 104, 151, 172, 185][rng.below(6)],
                            rng.below(250) as u8 + 1,
                            rng.below(250) as u8 + 1,
                            rng.below(250) as u8 + 1,
                        ])
                    })
                    .filter(|ip| !matches!(ip, IpAddr::V4(a) if a.octets()[0] == 172 && (16..32).contains(&a.octets()[1])))
                    .collect();
                if ips.is_empty() {
                    ips.push(IpAddr::from([93, 184, 10, i as u8]));
                }
                if i % 3 == 0 {
                    ips.push(IpAddr::V6(Ipv6Addr::new(0x2a00, 0x1450, 0x4001, i as u16, 0, 0, 0, 0x200e)));
                }
                (name, ips)
            })
            .collect();
        Self {
            rng,
            start,
            sites,
            resolver: Ep::v4([10, 0, 0, 53]),
            port: 49_152,
            dns_id: 1,
        }
    }

    fn port(&mut self) -> u16 {
        self.port = if self.port >= 65_000 {
            49_152
        } else {
            self.port + 1
        };
        self.port
    }

    /// Hour of day (UTC) of `t`.
    fn hour(&self, t: u64) -> u64 {
        (t / H) % 24
    }

    fn weekday(&self, t: u64) -> bool {
        // EPOCH is a Monday
        ((t.saturating_sub(EPOCH_US)) / DAY) % 7 < 5
    }

    fn working(&self, t: u64) -> bool {
        self.weekday(t) && (8..19).contains(&self.hour(t))
    }

    /// DNS lookup through the resolver, answering `ips`.
    fn lookup(&mut self, out: &mut Vec<Record>, t: u64, host: &Ep, name: &str, ips: &[IpAddr]) {
        let v6 = host.ip.is_ipv6();
        let res = if v6 {
            Ep {
                ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x53)),
                vlan: host.vlan,
            }
        } else {
            Ep {
                ip: self.resolver.ip,
                vlan: host.vlan,
            }
        };
        let id = self.dns_id;
        self.dns_id = self.dns_id.wrapping_add(1);
        let sport = self.port();
        let qtype = if v6 { 28 } else { 1 };
        let ans: Vec<IpAddr> = ips.iter().copied().filter(|a| a.is_ipv6() == v6).collect();
        out.push(full(
            t,
            host,
            &res,
            L4::Udp { sport, dport: 53 },
            &packets::dns_query(id, name, qtype),
        ));
        out.push(full(
            t + 8_000,
            &res,
            host,
            L4::Udp {
                sport: 53,
                dport: sport,
            },
            &packets::dns_response(id, name, qtype, &ans),
        ));
    }

    /// A TLS connection with SNI: `up` bytes out, `down` back.
    #[allow(clippy::too_many_arguments)] // one connection's parameters, named at the call
    fn tls(
        &mut self,
        out: &mut Vec<Record>,
        t: u64,
        c: &Ep,
        s: &Ep,
        port: u16,
        sni: Option<&str>,
        up: usize,
        down: usize,
    ) -> u64 {
        let hello = sni.map(|n| packets::client_hello(n, self.rng.next_u64()));
        let cport = self.port();
        let rtt = 20_000 + self.rng.below(60_000) as u64;
        tcp_conv(
            out,
            t,
            c,
            cport,
            s,
            port,
            &Conv {
                hello: hello.as_deref(),
                exchanges: &[(true, up, 0), (false, down, rtt)],
                close: true,
                rtt_us: rtt,
            },
        )
    }
}

/// Something that happens on the network, emitted window by window.
pub trait Activity {
    /// Records of the events that start in `[t0, t1)`.
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>);
    /// Ground truth: (malicious?, entry), filled as events are emitted.
    fn truth(&self) -> Option<(bool, Truth)> {
        None
    }
}

fn ep_for(host: &Ep, ip: IpAddr) -> Ep {
    Ep {
        ip,
        vlan: host.vlan,
    }
}

/// First and last time, count and bytes of one injected activity (ground truth).
#[derive(Default, Clone)]
pub(super) struct Tally {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) events: u64,
    pub(super) bytes_out: u64,
}

impl Tally {
    pub(super) fn add(&mut self, t: u64, out: usize) {
        if self.events == 0 {
            self.first = t;
        }
        self.last = t;
        self.events += 1;
        self.bytes_out += out as u64;
    }
}

#[allow(clippy::too_many_arguments)] // the ground-truth fields, named at the call
pub(crate) fn truth(
    kind: &str,
    variant: &str,
    host: &Ep,
    dest: IpAddr,
    port: u16,
    udp: bool,
    name: Option<&str>,
    period: Option<f64>,
    jitter: Option<f64>,
    t: &Tally,
) -> Truth {
    Truth {
        kind: kind.into(),
        variant: variant.into(),
        src_ip: host.ip.to_string(),
        dest_ip: dest.to_string(),
        dest_port: port,
        proto: if udp { "UDP" } else { "TCP" }.into(),
        dest_name: name.map(str::to_owned),
        period_s: period,
        jitter,
        first_ts: rfc3339_us(t.first),
        last_ts: rfc3339_us(t.last),
        events: t.events,
        bytes_out: t.bytes_out,
    }
}

/// A scenario: activities over a time span.
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub start: u64,
    pub end: u64,
    pub acts: Vec<Box<dyn Activity>>,
    pub cx: GenCtx,
}

impl Scenario {
    fn new(name: &str, seed: u64, start: u64, end: u64) -> Self {
        Self {
            name: name.into(),
            seed,
            start,
            end,
            acts: Vec::new(),
            cx: GenCtx::new(seed, start),
        }
    }

    /// Emits hour by hour, sorted, into `path`; returns the ground truth.
    ///
    /// # Errors
    /// Writing fails.
    pub fn write(mut self, path: &Path) -> std::io::Result<GroundTruth> {
        let mut w = PcapWriter::create(path)?;
        let mut pending: Vec<Record> = Vec::new();
        let step = H;
        let mut t = self.start;
        while t < self.end {
            let t1 = (t + step).min(self.end);
            for a in &mut self.acts {
                a.emit(&mut self.cx, t, t1, &mut pending);
            }
            pending.sort_by_key(|r| r.ts_us);
            let cut = if t1 >= self.end { u64::MAX } else { t1 };
            let n = pending.partition_point(|r| r.ts_us < cut);
            for r in pending.drain(..n) {
                w.write(&r)?;
            }
            t = t1;
        }
        for r in pending.drain(..) {
            w.write(&r)?;
        }
        let (packets, _) = w.finish()?;
        let mut gt = GroundTruth {
            scenario: self.name.clone(),
            seed: self.seed,
            start: rfc3339_us(self.start),
            end: rfc3339_us(self.end),
            packets,
            ..GroundTruth::default()
        };
        for a in &self.acts {
            if let Some((bad, tr)) = a.truth() {
                if bad {
                    gt.malicious.push(tr);
                } else if tr.events > 0 {
                    gt.benign_periodic.push(tr);
                }
            }
        }
        Ok(gt)
    }
}

/// Builds a named scenario.
///
/// # Errors
/// An unknown name.
pub fn build(name: &str, o: &OfficeOpts, beacons: bool) -> Result<Scenario, String> {
    let end = o.start + (o.days * 86_400.0 * S as f64) as u64;
    let mut sc = Scenario::new(name, o.seed, o.start, end);
    match name {
        "sample" => {
            // two hours of a small office at 09:00, a beacon, an upload, a DNS tunnel
            let s = o.start + 9 * H;
            sc = Scenario::new(name, o.seed, s, s + 2 * H);
            let oo = OfficeOpts {
                hosts: 6,
                ..o.clone()
            };
            office_background(&mut sc, &oo);
            sc.acts.retain(|_| true);
            sc.acts.push(Box::new(BeaconPlan::new(
                host(3),
                IpAddr::from([203, 0, 113, 45]),
                443,
                Some("cdn-img-static.net"),
                Variant::TcpConn,
                60.0,
                0.2,
                s + 300 * S,
            )));
            sc.acts.push(Box::new(ExfilPlan::new(
                host(2),
                IpAddr::from([198, 51, 100, 77]),
                4443,
                None,
                ExfilKind::Stealer,
                s + 75 * 60 * S,
                40 << 20,
            )));
            sc.acts.push(Box::new(ExfilPlan::new(
                host(1),
                IpAddr::from([10, 0, 0, 53]),
                53,
                Some("t.exfil-dns.com"),
                ExfilKind::DnsTunnel,
                s + 100 * 60 * S,
                0,
            )));
        }
        "office" => {
            office_background(&mut sc, o);
            if beacons {
                office_beacons(&mut sc, o);
            }
        }
        "exfil" => {
            office_background(&mut sc, o);
            if beacons {
                exfil_set(&mut sc, o);
            }
        }
        _ => {
            return Err(format!(
                "unknown scenario {name:?} (sample, office, exfil, bench, mix, stress, flood)"
            ));
        }
    }
    Ok(sc)
}
