//! Scenarios: activities (state machines emitting records per time window)
//! and the offices they make up.

use crate::packets::{self, Conv, Ep, L4, bulk, full, tcp_conv, tcp_pair};
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

/// Human browsing: sessions (DNS, then 1-4 TLS connections to a Zipf-popular
/// site), busy in working hours, sparse at night.
pub struct Browse {
    pub host: Ep,
    next: u64,
}

impl Activity for Browse {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        if self.next == 0 {
            self.next = t0 + (cx.rng.exp(300.0) * S as f64) as u64;
        }
        while self.next < t1 {
            let t = self.next;
            let mean = if cx.working(t) { 150.0 } else { 2400.0 };
            self.next = t + (cx.rng.exp(mean) * S as f64) as u64 + S;
            let i = cx.rng.zipf(cx.sites.len());
            let (name, ips) = cx.sites[i].clone();
            let cands: Vec<IpAddr> = ips
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == self.host.ip.is_ipv6())
                .collect();
            let Some(&ip) = cands.first() else { continue };
            cx.lookup(out, t, &self.host, &name, &ips);
            let n = 1 + cx.rng.below(4);
            let mut tc = t + 30_000;
            for _ in 0..n {
                let up = cx.rng.lognormal(900.0, 0.6) as usize;
                let down = cx.rng.lognormal(40_000.0, 1.5) as usize;
                let s = ep_for(&self.host, ip);
                if cx.rng.f() < 0.1 {
                    let req = packets::http_request("GET", &name, "/index.html");
                    let cport = cx.port();
                    tcp_conv(
                        out,
                        tc,
                        &self.host,
                        cport,
                        &s,
                        80,
                        &Conv {
                            hello: Some(&req),
                            exchanges: &[(false, down, 30_000)],
                            close: true,
                            rtt_us: 30_000,
                        },
                    );
                } else {
                    cx.tls(out, tc, &self.host, &s, 443, Some(&name), up, down);
                }
                tc += (cx.rng.range(0.1, 4.0) * S as f64) as u64;
            }
        }
    }
}

/// A periodic service: NTP, update checks, telemetry (benign periodic).
pub struct Periodic {
    pub host: Ep,
    pub dest: IpAddr,
    pub name: Option<String>,
    pub port: u16,
    pub udp: bool,
    pub period_s: f64,
    pub jitter: f64,
    pub up: usize,
    pub down: usize,
    pub kind: &'static str,
    next: u64,
    tr: Tally,
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

impl Periodic {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Ep,
        dest: IpAddr,
        name: Option<String>,
        port: u16,
        udp: bool,
        period_s: f64,
        jitter: f64,
        up: usize,
        down: usize,
        kind: &'static str,
    ) -> Self {
        Self {
            host,
            dest,
            name,
            port,
            udp,
            period_s,
            jitter,
            up,
            down,
            kind,
            next: 0,
            tr: Tally::default(),
        }
    }
}

impl Activity for Periodic {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        if self.next == 0 {
            self.next = t0 + (cx.rng.f() * self.period_s * S as f64) as u64;
        }
        while self.next < t1 {
            let t = self.next;
            self.next = t
                + (self.period_s * (1.0 + self.jitter * (2.0 * cx.rng.f() - 1.0)) * S as f64)
                    as u64;
            let d = ep_for(&self.host, self.dest);
            if self.udp {
                let sport = if self.port == 123 { 123 } else { cx.port() };
                out.push(bulk(
                    t,
                    &self.host,
                    &d,
                    L4::Udp {
                        sport,
                        dport: self.port,
                    },
                    self.up,
                ));
                out.push(bulk(
                    t + 25_000,
                    &d,
                    &self.host,
                    L4::Udp {
                        sport: self.port,
                        dport: sport,
                    },
                    self.down,
                ));
            } else {
                cx.tls(
                    out,
                    t,
                    &self.host,
                    &d,
                    self.port,
                    self.name.as_deref(),
                    self.up,
                    self.down,
                );
            }
            self.tr.add(t, self.up);
        }
    }
    fn truth(&self) -> Option<(bool, Truth)> {
        Some((
            false,
            truth(
                self.kind,
                if self.udp { "udp_flow" } else { "tcp_conn" },
                &self.host,
                self.dest,
                self.port,
                self.udp,
                self.name.as_deref(),
                Some(self.period_s),
                Some(self.jitter),
                &self.tr,
            ),
        ))
    }
}

/// A chat/websocket client: one TLS session per working day with a small
/// heartbeat every `period_s` (benign in-session periodicity).
pub struct Heartbeat {
    pub host: Ep,
    pub dest: IpAddr,
    pub name: String,
    pub period_s: f64,
    cport: u16,
    open_until: u64,
    next: u64,
    tr: Tally,
}

impl Heartbeat {
    pub fn new(host: Ep, dest: IpAddr, name: &str, period_s: f64) -> Self {
        Self {
            host,
            dest,
            name: name.into(),
            period_s,
            cport: 0,
            open_until: 0,
            next: 0,
            tr: Tally::default(),
        }
    }
}

impl Activity for Heartbeat {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        let d = ep_for(&self.host, self.dest);
        let mut t = t0.max(self.next);
        while t < t1 {
            if self.open_until == 0 {
                // open at the start of a working day
                if !cx.working(t) {
                    t = (t / H + 1) * H + (cx.rng.f() * 600.0) as u64 * S;
                    continue;
                }
                self.cport = cx.port();
                let hello = packets::client_hello(&self.name, cx.rng.next_u64());
                tcp_conv(
                    out,
                    t,
                    &self.host,
                    self.cport,
                    &d,
                    443,
                    &Conv {
                        hello: Some(&hello),
                        exchanges: &[(false, 4000, 40_000)],
                        close: false,
                        rtt_us: 40_000,
                    },
                );
                self.open_until = t - (t % DAY) + 18 * H + (cx.rng.f() * 3600.0) as u64 * S;
                t += (self.period_s * S as f64) as u64;
                continue;
            }
            if t >= self.open_until {
                let (up, dn) = tcp_pair(self.cport, 443, packets::FIN | packets::ACK);
                out.push(full(t, &self.host, &d, up, &[]));
                out.push(full(t + 30_000, &d, &self.host, dn, &[]));
                self.open_until = 0;
                t += H;
                continue;
            }
            let (up, dn) = tcp_pair(self.cport, 443, packets::ACK | packets::PSH);
            out.push(bulk(t, &self.host, &d, up, 90));
            out.push(bulk(t + 35_000, &d, &self.host, dn, 60));
            self.tr.add(t, 90);
            t += (self.period_s * (0.98 + 0.04 * cx.rng.f()) * S as f64) as u64;
        }
        self.next = t;
    }
    fn truth(&self) -> Option<(bool, Truth)> {
        Some((
            false,
            truth(
                "heartbeat",
                "tcp_session",
                &self.host,
                self.dest,
                443,
                false,
                Some(&self.name),
                Some(self.period_s),
                Some(0.02),
                &self.tr,
            ),
        ))
    }
}

/// Occasional large downloads (inbound-heavy) and video calls (symmetric UDP).
pub struct Media {
    pub host: Ep,
    pub cdn: IpAddr,
    pub conf: IpAddr,
    next_dl: u64,
    next_call: u64,
    call_end: u64,
    call_t: u64,
    call_port: u16,
}

impl Media {
    pub fn new(host: Ep, cdn: IpAddr, conf: IpAddr) -> Self {
        Self {
            host,
            cdn,
            conf,
            next_dl: 0,
            next_call: 0,
            call_end: 0,
            call_t: 0,
            call_port: 0,
        }
    }
}

impl Activity for Media {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        if self.next_dl == 0 {
            self.next_dl = t0 + (cx.rng.exp(20.0 * 3600.0) * S as f64) as u64;
            self.next_call = t0 + (cx.rng.exp(30.0 * 3600.0) * S as f64) as u64;
        }
        while self.next_dl < t1 {
            let t = self.next_dl;
            self.next_dl = t + (cx.rng.exp(20.0 * 3600.0) * S as f64) as u64;
            if cx.working(t) {
                let size = cx.rng.range(50e6, 500e6) as usize;
                let d = ep_for(&self.host, self.cdn);
                cx.tls(
                    out,
                    t,
                    &self.host,
                    &d,
                    443,
                    Some("dl.software-cdn.net"),
                    1200,
                    size,
                );
            }
        }
        // video call: one record per 500 ms each way, 1.5 Mbit/s
        loop {
            if self.call_end == 0 {
                if self.next_call >= t1 {
                    break;
                }
                let t = self.next_call;
                self.next_call = t + (cx.rng.exp(30.0 * 3600.0) * S as f64) as u64;
                if !cx.working(t) {
                    continue;
                }
                self.call_t = t;
                self.call_end = t + (cx.rng.range(1800.0, 3600.0) * S as f64) as u64;
                self.call_port = cx.port();
            }
            let d = ep_for(&self.host, self.conf);
            while self.call_t < t1 && self.call_t < self.call_end {
                let t = self.call_t;
                let n = 90_000 + cx.rng.below(8000);
                out.push(bulk(
                    t,
                    &self.host,
                    &d,
                    L4::Udp {
                        sport: self.call_port,
                        dport: 3480,
                    },
                    n / 2,
                ));
                out.push(bulk(
                    t + 20_000,
                    &d,
                    &self.host,
                    L4::Udp {
                        sport: 3480,
                        dport: self.call_port,
                    },
                    n / 2,
                ));
                self.call_t += 500_000;
            }
            if self.call_t >= self.call_end {
                self.call_end = 0;
            } else {
                break;
            }
        }
    }
}

/// The nightly backup: one server uploads gigabytes at 02:00 every night.
pub struct Backup {
    pub host: Ep,
    pub dest: IpAddr,
    pub bytes: usize,
    next: u64,
    tr: Tally,
}

impl Activity for Backup {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        if self.next == 0 {
            self.next = t0 - (t0 % DAY) + 2 * H + (cx.rng.f() * 600.0) as u64 * S;
            if self.next < t0 {
                self.next += DAY;
            }
        }
        while self.next < t1 {
            let t = self.next;
            self.next = t - (t % DAY) + DAY + 2 * H + (cx.rng.f() * 600.0) as u64 * S;
            let d = ep_for(&self.host, self.dest);
            let size = (self.bytes as f64 * cx.rng.range(0.8, 1.2)) as usize;
            cx.tls(
                out,
                t,
                &self.host,
                &d,
                443,
                Some("vault.backup-provider.com"),
                size,
                200_000,
            );
            self.tr.add(t, size);
        }
    }
    fn truth(&self) -> Option<(bool, Truth)> {
        Some((
            false,
            truth(
                "backup",
                "nightly_upload",
                &self.host,
                self.dest,
                443,
                false,
                Some("vault.backup-provider.com"),
                Some(86_400.0),
                None,
                &self.tr,
            ),
        ))
    }
}

/// How a beacon talks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Variant {
    TcpConn,
    TcpSession,
    UdpFlow,
    UdpSession,
}

impl Variant {
    fn as_str(self) -> &'static str {
        match self {
            Self::TcpConn => "tcp_conn",
            Self::TcpSession => "tcp_session",
            Self::UdpFlow => "udp_flow",
            Self::UdpSession => "udp_session",
        }
    }
    fn udp(self) -> bool {
        matches!(self, Self::UdpFlow | Self::UdpSession)
    }
}

/// A C2 implant checking in.
pub struct BeaconPlan {
    pub host: Ep,
    pub dest: IpAddr,
    pub port: u16,
    pub name: Option<String>,
    pub variant: Variant,
    pub period_s: f64,
    pub jitter: f64,
    pub miss: f64,
    /// No beats from `sleep.0` to `sleep.1` o'clock (UTC).
    pub sleep: Option<(u64, u64)>,
    pub start: u64,
    next: u64,
    cport: u16,
    tr: Tally,
}

impl BeaconPlan {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        host: Ep,
        dest: IpAddr,
        port: u16,
        name: Option<&str>,
        variant: Variant,
        period_s: f64,
        jitter: f64,
        start: u64,
    ) -> Self {
        Self {
            host,
            dest,
            port,
            name: name.map(str::to_owned),
            variant,
            period_s,
            jitter,
            miss: 0.0,
            sleep: None,
            start,
            next: 0,
            cport: 0,
            tr: Tally::default(),
        }
    }
}

impl Activity for BeaconPlan {
    fn emit(&mut self, cx: &mut GenCtx, t0: u64, t1: u64, out: &mut Vec<Record>) {
        if self.next == 0 {
            self.next = self.start.max(t0);
        }
        let d = ep_for(&self.host, self.dest);
        while self.next < t1 {
            let t = self.next;
            self.next = t
                + (self.period_s * (1.0 + self.jitter * (2.0 * cx.rng.f() - 1.0)) * S as f64)
                    .max(1.0) as u64;
            if let Some((a, b)) = self.sleep {
                let h = cx.hour(t);
                let asleep = if a > b {
                    h >= a || h < b
                } else {
                    (a..b).contains(&h)
                };
                if asleep {
                    continue;
                }
            }
            if cx.rng.f() < self.miss {
                continue;
            }
            let up = 300 + cx.rng.below(60);
            let down = 900 + cx.rng.below(80);
            match self.variant {
                Variant::TcpConn => {
                    cx.tls(
                        out,
                        t,
                        &self.host,
                        &d,
                        self.port,
                        self.name.as_deref(),
                        up,
                        down,
                    );
                }
                Variant::TcpSession => {
                    if self.cport == 0 {
                        self.cport = cx.port();
                        let hello = self.name.as_deref().map(|n| packets::client_hello(n, 7));
                        tcp_conv(
                            out,
                            t,
                            &self.host,
                            self.cport,
                            &d,
                            self.port,
                            &Conv {
                                hello: hello.as_deref(),
                                exchanges: &[],
                                close: false,
                                rtt_us: 50_000,
                            },
                        );
                    }
                    let (u, v) = tcp_pair(self.cport, self.port, packets::ACK | packets::PSH);
                    let (a, _) = tcp_pair(self.cport, self.port, packets::ACK);
                    out.push(bulk(t, &self.host, &d, u, up));
                    out.push(bulk(t + 60_000, &d, &self.host, v, down));
                    out.push(full(t + 61_000, &self.host, &d, a, &[]));
                }
                Variant::UdpFlow | Variant::UdpSession => {
                    if self.cport == 0 || self.variant == Variant::UdpFlow {
                        self.cport = cx.port();
                    }
                    out.push(bulk(
                        t,
                        &self.host,
                        &d,
                        L4::Udp {
                            sport: self.cport,
                            dport: self.port,
                        },
                        up / 3,
                    ));
                    out.push(bulk(
                        t + 50_000,
                        &d,
                        &self.host,
                        L4::Udp {
                            sport: self.port,
                            dport: self.cport,
                        },
                        down / 4,
                    ));
                }
            }
            self.tr.add(t, up);
        }
    }
    fn truth(&self) -> Option<(bool, Truth)> {
        let mut tr = truth(
            "beacon",
            self.variant.as_str(),
            &self.host,
            self.dest,
            self.port,
            self.variant.udp(),
            self.name.as_deref(),
            Some(self.period_s),
            Some(self.jitter),
            &self.tr,
        );
        if self.tr.events == 0 {
            tr.first_ts = String::new();
        }
        Some((true, tr))
    }
}

/// Exfiltration styles.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExfilKind {
    /// `bytes` in one upload.
    Burst,
    /// `bytes` in 144 chunks over 24 h.
    LowSlow,
    /// FTP control + passive data upload.
    Ftp,
    /// SMTP submission with an attachment.
    Smtp,
    /// Raw TCP to an odd port.
    Stealer,
    /// Encoded TXT queries through the resolver for ten minutes.
    DnsTunnel,
}

pub struct ExfilPlan {
    pub host: Ep,
    pub dest: IpAddr,
    pub port: u16,
    pub name: Option<String>,
    pub kind: ExfilKind,
    pub at: u64,
    pub bytes: usize,
    done: u64,
    tr: Tally,
}

impl ExfilPlan {
    pub fn new(
        host: Ep,
        dest: IpAddr,
        port: u16,
        name: Option<&str>,
        kind: ExfilKind,
        at: u64,
        bytes: usize,
    ) -> Self {
        Self {
            host,
            dest,
            port,
            name: name.map(str::to_owned),
            kind,
            at,
            bytes,
            done: 0,
            tr: Tally::default(),
        }
    }
    fn steps(&self) -> u64 {
        match self.kind {
            ExfilKind::LowSlow => 144,
            ExfilKind::DnsTunnel => 1200,
            _ => 1,
        }
    }
    fn step_at(&self, i: u64) -> u64 {
        match self.kind {
            ExfilKind::LowSlow => self.at + i * 600 * S,
            ExfilKind::DnsTunnel => self.at + i * 500_000,
            _ => self.at,
        }
    }
}

impl Activity for ExfilPlan {
    fn emit(&mut self, cx: &mut GenCtx, _t0: u64, t1: u64, out: &mut Vec<Record>) {
        let d = ep_for(&self.host, self.dest);
        while self.done < self.steps() && self.step_at(self.done) < t1 {
            let t = self.step_at(self.done)
                + (cx.rng.f() * 20.0) as u64 * S * u64::from(self.kind == ExfilKind::LowSlow);
            self.done += 1;
            match self.kind {
                ExfilKind::Burst | ExfilKind::Stealer => {
                    cx.tls(
                        out,
                        t,
                        &self.host,
                        &d,
                        self.port,
                        self.name.as_deref(),
                        self.bytes,
                        2000,
                    );
                    self.tr.add(t, self.bytes);
                }
                ExfilKind::LowSlow => {
                    let n = self.bytes / 144;
                    cx.tls(
                        out,
                        t,
                        &self.host,
                        &d,
                        self.port,
                        self.name.as_deref(),
                        n,
                        600,
                    );
                    self.tr.add(t, n);
                }
                ExfilKind::Ftp => {
                    let c = cx.port();
                    let end = tcp_conv(
                        out,
                        t,
                        &self.host,
                        c,
                        &d,
                        21,
                        &Conv {
                            hello: None,
                            exchanges: &[
                                (false, 80, 0),
                                (true, 30, 0),
                                (false, 40, 30_000),
                                (true, 30, 0),
                                (false, 30, 30_000),
                                (true, 6, 0),
                                (false, 50, 30_000),
                                (true, 20, 0),
                            ],
                            close: false,
                            rtt_us: 30_000,
                        },
                    );
                    let dc = cx.port();
                    let dport = 40_000 + cx.rng.below(1000) as u16;
                    let end2 = tcp_conv(
                        out,
                        end + 10_000,
                        &self.host,
                        dc,
                        &d,
                        dport,
                        &Conv {
                            hello: None,
                            exchanges: &[(true, self.bytes, 0)],
                            close: true,
                            rtt_us: 30_000,
                        },
                    );
                    tcp_conv(
                        out,
                        end2 + 10_000,
                        &self.host,
                        c,
                        &d,
                        21,
                        &Conv {
                            hello: None,
                            exchanges: &[(false, 24, 0), (true, 6, 0), (false, 14, 0)],
                            close: true,
                            rtt_us: 30_000,
                        },
                    );
                    self.tr.add(t, self.bytes);
                }
                ExfilKind::Smtp => {
                    let c = cx.port();
                    tcp_conv(
                        out,
                        t,
                        &self.host,
                        c,
                        &d,
                        self.port,
                        &Conv {
                            hello: None,
                            exchanges: &[
                                (false, 90, 0),
                                (true, 30, 0),
                                (false, 200, 30_000),
                                (true, 60, 0),
                                (false, 40, 30_000),
                                (true, self.bytes, 0),
                                (false, 40, 30_000),
                            ],
                            close: true,
                            rtt_us: 30_000,
                        },
                    );
                    self.tr.add(t, self.bytes);
                }
                ExfilKind::DnsTunnel => {
                    let i = self.done;
                    let mut label = String::new();
                    let mut x = cx.rng.next_u64() ^ i;
                    for _ in 0..3 {
                        label.push_str(&format!("{x:016x}"));
                        x = x.rotate_left(17).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    }
                    let dom = self.name.clone().unwrap_or_default();
                    let q = format!("{}.{}.{dom}", &label[..30], &label[30..]);
                    let id = (i & 0xffff) as u16;
                    let sport = cx.port();
                    let res = ep_for(&self.host, cx.resolver.ip);
                    out.push(full(
                        t,
                        &self.host,
                        &res,
                        L4::Udp { sport, dport: 53 },
                        &packets::dns_query(id, &q, 16),
                    ));
                    out.push(full(
                        t + 40_000,
                        &res,
                        &self.host,
                        L4::Udp {
                            sport: 53,
                            dport: sport,
                        },
                        &packets::dns_response(id, &q, 16, &[]),
                    ));
                    self.tr.add(t, q.len());
                }
            }
        }
    }
    fn truth(&self) -> Option<(bool, Truth)> {
        let (kind, variant) = match self.kind {
            ExfilKind::Burst => ("exfil", "burst"),
            ExfilKind::LowSlow => ("exfil", "low_slow"),
            ExfilKind::Ftp => ("exfil", "ftp"),
            ExfilKind::Smtp => ("exfil", "smtp"),
            ExfilKind::Stealer => ("exfil", "stealer"),
            ExfilKind::DnsTunnel => ("dns_tunnel", "dns_tunnel"),
        };
        let (dest, port, udp) = if self.kind == ExfilKind::DnsTunnel {
            (IpAddr::from([10, 0, 0, 53]), 53, true)
        } else {
            (self.dest, self.port, false)
        };
        Some((
            true,
            truth(
                kind,
                variant,
                &self.host,
                dest,
                port,
                udp,
                self.name.as_deref(),
                None,
                None,
                &self.tr,
            ),
        ))
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

/// Office knobs.
#[derive(Clone, Debug)]
pub struct OfficeOpts {
    pub hosts: usize,
    pub days: f64,
    pub seed: u64,
    pub start: u64,
}

fn host(i: usize) -> Ep {
    // every 10th host is IPv6-only, every 8th sits on VLAN 30
    let vlan = (i % 8 == 7).then_some(30);
    if i % 10 == 9 {
        Ep {
            ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 0x100 + i as u16)),
            vlan,
        }
    } else {
        Ep {
            ip: IpAddr::from([10, 0, 1, 10 + i as u8]),
            vlan,
        }
    }
}

/// The background of an office: browsing, NTP, update checks, telemetry,
/// chat heartbeats, downloads, video calls, a nightly backup.
pub fn office_background(sc: &mut Scenario, o: &OfficeOpts) {
    let update = IpAddr::from([13, 107, 4, 50]);
    let telemetry = IpAddr::from([52, 114, 128, 10]);
    let chat = IpAddr::from([52, 113, 194, 132]);
    let cdn = IpAddr::from([151, 101, 1, 69]);
    let conf = IpAddr::from([52, 112, 0, 10]);
    let pool = [
        [162, 159, 200, 1],
        [129, 6, 15, 28],
        [132, 163, 96, 1],
        [216, 239, 35, 0],
    ];
    for i in 0..o.hosts {
        let h = host(i);
        sc.acts.push(Box::new(Browse { host: h, next: 0 }));
        if h.ip.is_ipv4() {
            let ntp = IpAddr::from(pool[i % 4]);
            let poll = [64.0, 128.0, 256.0, 1024.0][i % 4];
            sc.acts.push(Box::new(Periodic::new(
                h, ntp, None, 123, true, poll, 0.01, 48, 48, "ntp",
            )));
            sc.acts.push(Box::new(Periodic::new(
                h,
                update,
                Some("settings.os-updates.com".into()),
                443,
                false,
                3600.0,
                0.05,
                1500,
                4000,
                "update",
            )));
            sc.acts.push(Box::new(Periodic::new(
                h,
                telemetry,
                Some("telemetry.vendor-apps.com".into()),
                443,
                false,
                600.0,
                0.5,
                2500,
                600,
                "telemetry",
            )));
            sc.acts.push(Box::new(Heartbeat::new(
                h,
                chat,
                "chat.collab-suite.com",
                30.0,
            )));
            sc.acts.push(Box::new(Media::new(h, cdn, conf)));
        }
    }
    sc.acts.push(Box::new(Backup {
        host: Ep::v4([10, 0, 0, 250]),
        dest: IpAddr::from([64, 4, 10, 20]),
        bytes: 1 << 30,
        next: 0,
        tr: Tally::default(),
    }));
    let _ = o;
}

fn at(o: &OfficeOpts, day: f64, hour: f64) -> u64 {
    o.start + ((day * 24.0 + hour) * 3600.0 * S as f64) as u64
}

/// One injected beacon: host index, destination, port, name, variant,
/// period (s), jitter, start hour on day 0, miss probability, sleep window.
type BeaconSpec = (
    usize,
    IpAddr,
    u16,
    Option<&'static str>,
    Variant,
    f64,
    f64,
    f64,
    f64,
    Option<(u64, u64)>,
);

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

/// The default set of beacons for `office`: periods 10 s to 1 h, jitter
/// 0-50 %, missed beats, a sleep window, IPv6, VLAN, UDP and in-session.
pub fn office_beacons(sc: &mut Scenario, o: &OfficeOpts) {
    let n = o.hosts.max(20);
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xbeef, 0, 0, 0, 0, 0x16));
    let specs: [BeaconSpec; 11] = [
        (
            1,
            v4([203, 0, 113, 10]),
            443,
            Some("static-cdn-img.com"),
            Variant::TcpConn,
            60.0,
            0.2,
            9.0,
            0.0,
            None,
        ),
        (
            2,
            v4([203, 0, 113, 11]),
            443,
            None,
            Variant::TcpConn,
            300.0,
            0.5,
            10.0,
            0.0,
            None,
        ),
        (
            3,
            v4([198, 51, 100, 12]),
            443,
            Some("api.weather-sync.net"),
            Variant::TcpConn,
            1800.0,
            0.1,
            2.0,
            0.0,
            None,
        ),
        (
            4,
            v4([198, 51, 100, 13]),
            8443,
            None,
            Variant::TcpConn,
            3600.0,
            0.0,
            1.0,
            0.0,
            None,
        ),
        (
            5,
            v4([203, 0, 113, 14]),
            443,
            None,
            Variant::TcpConn,
            10.0,
            0.3,
            13.0,
            0.2,
            None,
        ),
        (
            6,
            v4([203, 0, 113, 15]),
            443,
            Some("update-check.biz"),
            Variant::TcpConn,
            120.0,
            0.3,
            8.0,
            0.0,
            Some((19, 7)),
        ),
        (
            9,
            v6,
            443,
            None,
            Variant::TcpConn,
            90.0,
            0.1,
            11.0,
            0.0,
            None,
        ),
        (
            7,
            v4([203, 0, 113, 17]),
            443,
            None,
            Variant::TcpConn,
            45.0,
            0.2,
            12.0,
            0.0,
            None,
        ),
        (
            10,
            v4([198, 51, 100, 18]),
            8443,
            None,
            Variant::UdpFlow,
            30.0,
            0.2,
            14.0,
            0.0,
            None,
        ),
        (
            11,
            v4([198, 51, 100, 19]),
            4500,
            None,
            Variant::UdpSession,
            20.0,
            0.1,
            15.0,
            0.0,
            None,
        ),
        (
            12,
            v4([203, 0, 113, 20]),
            8080,
            None,
            Variant::TcpSession,
            15.0,
            0.2,
            16.0,
            0.0,
            None,
        ),
    ];
    for (hi, dest, port, name, variant, period, jitter, hour, miss, sleep) in specs {
        let mut b = BeaconPlan::new(
            host(hi % n),
            dest,
            port,
            name,
            variant,
            period,
            jitter,
            at(o, 0.0, hour),
        );
        b.miss = miss;
        b.sleep = sleep;
        sc.acts.push(Box::new(b));
    }
}

/// The default exfiltration set for `exfil` (days 1 and 2, after a day of
/// learning): host index, destination, port, name, kind, day, hour, bytes.
pub fn exfil_set(sc: &mut Scenario, o: &OfficeOpts) {
    let n = o.hosts.max(20);
    #[allow(clippy::type_complexity)]
    let specs: [(
        usize,
        [u8; 4],
        u16,
        Option<&str>,
        ExfilKind,
        f64,
        f64,
        usize,
    ); 6] = [
        (
            13,
            [203, 0, 113, 90],
            443,
            Some("files.quickshare-drop.net"),
            ExfilKind::Burst,
            1.0,
            10.0,
            300 << 20,
        ),
        (
            14,
            [198, 51, 100, 91],
            443,
            None,
            ExfilKind::LowSlow,
            1.0,
            0.5,
            40 << 20,
        ),
        (
            15,
            [203, 0, 113, 92],
            21,
            None,
            ExfilKind::Ftp,
            1.0,
            14.0,
            20 << 20,
        ),
        (
            16,
            [198, 51, 100, 93],
            587,
            None,
            ExfilKind::Smtp,
            1.5,
            9.0,
            2 << 20,
        ),
        (
            17,
            [203, 0, 113, 94],
            7788,
            None,
            ExfilKind::Stealer,
            1.5,
            11.0,
            300 << 10,
        ),
        (
            18,
            [10, 0, 0, 53],
            53,
            Some("cdn-sync-telemetry.com"),
            ExfilKind::DnsTunnel,
            1.0,
            16.0,
            0,
        ),
    ];
    for (hi, dest, port, name, kind, day, hour, bytes) in specs {
        sc.acts.push(Box::new(ExfilPlan::new(
            host(hi % n),
            v4(dest),
            port,
            name,
            kind,
            at(o, day, hour),
            bytes,
        )));
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

/// `bench`, the replay benchmark's stress pattern: `packets` records, tens
/// of thousands of flows, realistic sizes, a TCP/UDP/IPv6/VLAN mix, in time
/// order; `snaplen` as for [`crate::mix::mix`] (0 = whole frames, else
/// records cut at `snaplen` bytes).
///
/// # Errors
/// Writing fails.
pub fn bench(path: &Path, packets: u64, seed: u64, snaplen: usize) -> std::io::Result<GroundTruth> {
    let mut w = PcapWriter::create(path)?;
    let mut r = Rng::new(seed);
    let flows = 50_000usize;
    let mut t = EPOCH_US + 9 * H;
    let mut n = 0u64;
    while n < packets {
        let f = r.below(flows);
        let host = Ep {
            ip: if f.is_multiple_of(7) {
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    0,
                    0,
                    1,
                    0,
                    0,
                    (f >> 8) as u16,
                    f as u16,
                ))
            } else {
                IpAddr::from([10, 1, (f >> 8) as u8, f as u8])
            },
            vlan: f.is_multiple_of(5).then_some(100),
        };
        let peer = Ep {
            ip: if f.is_multiple_of(7) {
                IpAddr::V6(Ipv6Addr::new(
                    0x2a00,
                    0x1450,
                    0,
                    0,
                    0,
                    0,
                    0,
                    (f % 997) as u16,
                ))
            } else {
                IpAddr::from([151, 101, (f % 251) as u8, (f % 13) as u8])
            },
            vlan: host.vlan,
        };
        let sport = 20_000 + (f % 40_000) as u16;
        let udp = f.is_multiple_of(4);
        let len = if r.f() < 0.4 { 0 } else { 200 + r.below(1260) };
        let up = r.f() < 0.3;
        let (a, b) = if up { (&host, &peer) } else { (&peer, &host) };
        let l4 = match (udp, up) {
            (true, true) => L4::Udp { sport, dport: 443 },
            (true, false) => L4::Udp {
                sport: 443,
                dport: sport,
            },
            (false, true) => L4::Tcp {
                sport,
                dport: 443,
                flags: packets::ACK | packets::PSH,
            },
            (false, false) => L4::Tcp {
                sport: 443,
                dport: sport,
                flags: packets::ACK,
            },
        };
        let mut rec = bulk(t, a, b, l4, len.max(usize::from(udp)));
        rec.snap(snaplen);
        w.write(&rec)?;
        n += 1;
        t += 1 + r.below(40) as u64;
    }
    let (packets, _) = w.finish()?;
    Ok(GroundTruth {
        scenario: "bench".into(),
        seed,
        packets,
        ..GroundTruth::default()
    })
}

/// `flood`: `flows` unique flows (SYN flood from spoofed sources, UDP scan,
/// random DNS names) over 30 minutes, with a 60 s beacon inside.
///
/// # Errors
/// Writing fails.
pub fn flood(path: &Path, flows: u64, seed: u64) -> std::io::Result<GroundTruth> {
    let start = EPOCH_US + 9 * H;
    let end = start + 1800 * S;
    let mut sc = Scenario::new("flood", seed, start, end);
    struct Flood {
        n: u64,
        total: u64,
        start: u64,
        span: u64,
    }
    impl Activity for Flood {
        fn emit(&mut self, cx: &mut GenCtx, _t0: u64, t1: u64, out: &mut Vec<Record>) {
            let server = Ep::v4([10, 0, 0, 80]);
            while self.n < self.total {
                let t = self.start + self.n * self.span / self.total;
                if t >= t1 {
                    break;
                }
                let x = cx.rng.next_u64();
                let spoof = Ep::v4([
                    (x >> 24) as u8 | 1,
                    (x >> 16) as u8,
                    (x >> 8) as u8,
                    x as u8,
                ]);
                match self.n % 3 {
                    0 => out.push(full(
                        t,
                        &spoof,
                        &server,
                        L4::Tcp {
                            sport: (x >> 32) as u16 | 1024,
                            dport: 443,
                            flags: packets::SYN,
                        },
                        &[],
                    )),
                    1 => out.push(full(
                        t,
                        &spoof,
                        &server,
                        L4::Udp {
                            sport: (x >> 32) as u16 | 1024,
                            dport: (x >> 48) as u16,
                        },
                        &[0; 8],
                    )),
                    _ => {
                        let q = format!("{:012x}.random-flood.com", x & 0xffff_ffff_ffff);
                        out.push(full(
                            t,
                            &Ep::v4([10, 0, 1, 200]),
                            &Ep::v4([8, 8, 8, 8]),
                            L4::Udp {
                                sport: (x >> 32) as u16 | 1024,
                                dport: 53,
                            },
                            &packets::dns_query(x as u16, &q, 1),
                        ));
                    }
                }
                self.n += 1;
            }
        }
    }
    sc.acts.push(Box::new(Flood {
        n: 0,
        total: flows,
        start,
        span: end - start,
    }));
    sc.acts.push(Box::new(BeaconPlan::new(
        Ep::v4([10, 0, 1, 66]),
        IpAddr::from([203, 0, 113, 66]),
        443,
        Some("c2-in-the-flood.net"),
        Variant::TcpConn,
        60.0,
        0.2,
        start + 60 * S,
    )));
    sc.write(path)
}
