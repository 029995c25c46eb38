//! Benign activities: browsing, periodic services, heartbeats, media, backups.

use super::{Activity, DAY, GenCtx, H, S, Tally, ep_for, truth};
use crate::packets::{self, Conv, Ep, L4, bulk, full, tcp_conv, tcp_pair};
use crate::{Record, Truth};
use std::net::IpAddr;

/// Human browsing: sessions (DNS, then 1-4 TLS connections to a Zipf-popular
/// site), busy in working hours, sparse at night.
pub struct Browse {
    pub host: Ep,
    pub(super) next: u64,
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
    pub(super) next: u64,
    pub(super) tr: Tally,
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
