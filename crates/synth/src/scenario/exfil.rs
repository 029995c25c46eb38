//! Injected exfiltration: its styles and its plan.

use super::{Activity, GenCtx, S, Tally, ep_for, truth};
use crate::packets::{self, Conv, Ep, L4, full, tcp_conv};
use crate::{Record, Truth};
use std::net::IpAddr;

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
