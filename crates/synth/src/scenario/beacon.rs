//! Injected beacons: how a beacon talks and its plan.

use super::{Activity, GenCtx, S, Tally, ep_for, truth};
use crate::packets::{self, Conv, Ep, L4, bulk, full, tcp_conv, tcp_pair};
use crate::{Record, Truth};
use std::net::IpAddr;

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
