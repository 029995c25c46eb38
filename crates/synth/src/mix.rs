//! `mix`: an office Internet uplink as a mirror port sees it, for the replay
//! benchmark (`deguchi gen mix --packets N`), with three injected activities
//! so the alert path is exercised too.
//!
//! The model (defaults, `--hosts 2000`):
//! - 2,000 internal hosts `10.1.x.y`; every 7th host is IPv6
//!   (`fd00:0:0:1::/64`), every 5th sits on VLAN 100. One internal resolver,
//!   `10.0.0.53` (IPv6 hosts reach it as `fd00::53`).
//! - 5,000 external servers, Zipf-popular, `151.101.x.y` / `2a00:1450::x`
//!   (IPv6 hosts talk to IPv6 addresses), each with a name
//!   (`s123.example-cdn.com` and three other families) used for SNI / Host /
//!   DNS.
//! - Flows arrive as a Poisson process, 0.2 flows/s per host (400/s), and
//!   overlap; each flow's records are built when it starts and all flows are
//!   merged in time order through a heap keyed by (next record time, flow
//!   sequence number), so ties break deterministically.
//! - Kinds: 70 % TCP 443 (handshake, TLS ClientHello with SNI captured
//!   whole, a 3-segment server flight, request/response exchanges, FIN both
//!   ways), 5 % TCP 80 (HTTP request captured whole), 10 % UDP 443 (QUIC-like
//!   datagrams of ~1,250 bytes, client ACK datagrams every second one), 15 %
//!   DNS (one A/AAAA query and its answer with 1-2 addresses, 0.5-30 ms).
//! - Sizes: request 200-900 bytes; response log-normal (median 5 KB,
//!   sigma 2.0, capped at 60 MB): most flows are a handful of packets and a
//!   few elephants of thousands of segments carry most of them. Segments
//!   state full size (1,460 bytes of payload over IPv4, 1,440 over IPv6) and
//!   the receiver ACKs every second one. 10 % of TCP flows are uploads (the
//!   client sends the bulk). 30 % of TCP/QUIC flows are keep-alive: 2-8
//!   exchanges separated by exponential think times (mean 3 s). Per-flow
//!   throughput is log-normal (median 30 Mbit/s), so segments of a burst are
//!   tens of µs to a few ms apart; RTTs are 5-80 ms.
//! - That is about 17,000 packets/s of packet time: 2 M packets span about
//!   two minutes with several thousand concurrent flows.
//! - Records are whole frames, as a mirror-port capture at the default
//!   snapshot length holds them (the bulk payload is filler bytes). With
//!   `--snaplen N` (N > 0) bulk records are cut at N bytes instead (a
//!   header-only capture; until 2026-11-23 the model kept only their
//!   headers and 16 payload bytes), while handshakes, ClientHellos, HTTP
//!   requests and DNS messages stay whole. Flows, hints and alerts are the
//!   same either way; the file is about seven times larger whole, and a raw
//!   read of it correspondingly slower.
//!
//! Injected (ground truth `malicious`):
//! 1. a beacon: one host opens a fresh TLS connection to `203.0.113.45`
//!    (`cdn-telemetry-sync.net`) every 10 s ± 10 %, small request and
//!    response, for the whole capture;
//! 2. an upload of 40 MiB + over raw TCP to `198.51.100.77:4443` from 20 s in
//!    (~29,000 segments);
//! 3. a DNS tunnel: ~20 TXT queries/s of long base32 labels under
//!    `t.exfil-tunnel.net` through the resolver, from 10 s in.
//!
//! `--hosts N` scales the population (and so the packet rate): fewer hosts
//! make a small capture that still spans minutes.

use crate::packets::{self, ACK, Ep, FIN, L4, PSH, SYN, bulk, full};
use crate::pcap::PcapWriter;
use crate::scenario::{self, EPOCH_US, Tally};
use crate::{GroundTruth, Record, Rng, rfc3339_us};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

const S: u64 = 1_000_000;
/// Servers on the Internet.
pub const SERVERS: usize = 5_000;
/// Flow arrivals per host and second.
const FLOWS_PER_HOST_S: f64 = 0.2;
const BEACON_PERIOD_S: f64 = 10.0;
const BEACON_JITTER: f64 = 0.1;
const EXFIL_BYTES: usize = (40 << 20) + 123_456;
const TUNNEL_DOMAIN: &str = "t.exfil-tunnel.net";
const BEACON_NAME: &str = "cdn-telemetry-sync.net";

fn host(i: usize) -> Ep {
    let vlan = (i % 5 == 4).then_some(100);
    if i % 7 == 6 {
        Ep {
            ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, i as u16 + 1)),
            vlan,
        }
    } else {
        Ep {
            ip: IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8 + 1]),
            vlan,
        }
    }
}

/// A v4 host index near `frac` of the population.
fn pick(hosts: usize, frac: f64) -> usize {
    let mut i = ((hosts as f64 * frac) as usize).min(hosts - 1);
    while i % 7 == 6 {
        i = (i + 1) % hosts;
    }
    i
}

fn server_ip(j: usize, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2a00, 0x1450, 0, 0, 0, 0, 0, j as u16 + 1))
    } else {
        IpAddr::from([151, 101, (j / 250) as u8, (j % 250) as u8 + 1])
    }
}

fn server_name(j: usize) -> String {
    const FAM: [&str; 4] = [
        "example-cdn.com",
        "example-cloud.net",
        "example-api.io",
        "example-media.org",
    ];
    format!("s{j}.{}", FAM[j % FAM.len()])
}

fn resolver(h: &Ep) -> Ep {
    Ep {
        ip: if h.ip.is_ipv6() {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x53))
        } else {
            IpAddr::from([10, 0, 0, 53])
        },
        vlan: h.vlan,
    }
}

/// Records of one flow, built up in any order and sorted at the end.
struct Fb {
    c: Ep,
    s: Ep,
    cport: u16,
    sport: u16,
    mss: usize,
    recs: Vec<Record>,
}

impl Fb {
    fn new(c: Ep, s: Ep, cport: u16, sport: u16) -> Self {
        let mss = if c.ip.is_ipv6() { 1440 } else { 1460 };
        Self {
            c,
            s,
            cport,
            sport,
            mss,
            recs: Vec::new(),
        }
    }
    fn l4(&self, up: bool, udp: bool, flags: u8) -> L4 {
        let (sport, dport) = if up {
            (self.cport, self.sport)
        } else {
            (self.sport, self.cport)
        };
        if udp {
            L4::Udp { sport, dport }
        } else {
            L4::Tcp {
                sport,
                dport,
                flags,
            }
        }
    }
    fn eps(&self, up: bool) -> (Ep, Ep) {
        if up {
            (self.c, self.s)
        } else {
            (self.s, self.c)
        }
    }
    /// An empty TCP segment (SYN, ACK, FIN).
    fn ctl(&mut self, t: u64, up: bool, flags: u8) {
        let (a, b) = self.eps(up);
        let l4 = self.l4(up, false, flags);
        self.recs.push(full(t, &a, &b, l4, &[]));
    }
    /// A fully captured payload.
    fn whole(&mut self, t: u64, up: bool, udp: bool, payload: &[u8]) {
        let (a, b) = self.eps(up);
        let l4 = self.l4(up, udp, ACK | PSH);
        self.recs.push(full(t, &a, &b, l4, payload));
    }
    /// One short-captured segment or datagram of `len` payload bytes.
    fn seg(&mut self, t: u64, up: bool, udp: bool, len: usize, flags: u8) {
        let (a, b) = self.eps(up);
        let l4 = self.l4(up, udp, flags);
        // headers and a few payload bytes; made whole, or cut at the
        // snapshot length, when written (`mix`)
        self.recs.push(bulk(t, &a, &b, l4, len.max(1)));
    }
    /// `bytes` sent by one side as full-size segments `gap` µs apart, the
    /// receiver ACKing every second one (`ack_delay` later at the sensor).
    /// Returns the time of the last segment.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        t0: u64,
        up: bool,
        udp: bool,
        bytes: usize,
        seg_size: usize,
        gap: u64,
        ack_delay: u64,
    ) -> u64 {
        let mut left = bytes.max(1);
        let mut t = t0;
        let mut k = 0u64;
        while left > 0 {
            let n = left.min(seg_size);
            left -= n;
            k += 1;
            let last = left == 0;
            self.seg(t, up, udp, n, if last { ACK | PSH } else { ACK });
            if k.is_multiple_of(2) || last {
                if udp {
                    self.seg(t + ack_delay, !up, true, 40, 0);
                } else {
                    self.ctl(t + ack_delay, !up, ACK);
                }
            }
            if !last {
                t += gap;
            }
        }
        t
    }
    fn finish(mut self) -> VecDeque<Record> {
        self.recs.sort_by_key(|r| r.ts_us);
        self.recs.into()
    }
}

/// One exchange: the request (client), the answer (server), who sends the
/// bulk, and the think time before it.
struct Ex {
    req: usize,
    bulk: usize,
    upload: bool,
    pause: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tls,
    Http,
    Quic,
    Dns,
}

/// Per-flow randomness: RTT (µs) and the gap between segments (µs).
fn path(r: &mut Rng) -> (u64, u64) {
    let rtt = r.lognormal(20_000.0, 0.7).clamp(5_000.0, 80_000.0) as u64;
    let mbit = r.lognormal(30.0, 1.0).clamp(2.0, 900.0);
    let gap = (1460.0 * 8.0 / mbit) as u64;
    (rtt, gap.clamp(12, 3_000))
}

fn exchanges(r: &mut Rng, tcp: bool) -> Vec<Ex> {
    let n = if r.f() < 0.3 { 2 + r.below(7) } else { 1 };
    let upload = tcp && r.f() < 0.1;
    (0..n)
        .map(|i| Ex {
            req: 200 + r.below(700),
            bulk: r.lognormal(2_000.0, 2.0).clamp(300.0, 60e6) as usize,
            upload: upload && i == 0,
            pause: if i == 0 {
                0
            } else {
                r.exp(3.0 * S as f64) as u64 + 1_000
            },
        })
        .collect()
}

/// A TCP connection: handshake, optional first payload (ClientHello or
/// HTTP request) captured whole, exchanges, FIN both ways.
#[allow(clippy::too_many_arguments)]
fn tcp_flow(
    r: &mut Rng,
    t0: u64,
    c: Ep,
    s: Ep,
    cport: u16,
    sport: u16,
    hello: Option<&[u8]>,
    http: Option<&[u8]>,
    ex: &[Ex],
    keep_open: u64,
) -> VecDeque<Record> {
    let (rtt, gap) = path(r);
    let mut f = Fb::new(c, s, cport, sport);
    let mss = f.mss;
    let near = |r: &mut Rng| 20 + r.below(80) as u64;
    let mut t = t0;
    f.ctl(t, true, SYN);
    t += rtt;
    f.ctl(t, false, SYN | ACK);
    t += near(r);
    f.ctl(t, true, ACK);
    if let Some(h) = hello {
        t += 100 + r.below(400) as u64;
        f.whole(t, true, false, h);
        // server flight: ServerHello, certificate, ...
        t += rtt + r.below(2_000) as u64;
        let flight = 2 * mss + 500 + r.below(2_500);
        t = f.transfer(t, false, false, flight, mss, gap.min(200), near(r));
        // client Finished
        t += 300 + r.below(1_000) as u64;
        f.seg(t, true, false, 64 + r.below(60), ACK | PSH);
    }
    for (i, e) in ex.iter().enumerate() {
        t += e.pause + 200;
        if i == 0 {
            if let Some(h) = http {
                f.whole(t, true, false, h);
            } else {
                f.seg(t, true, false, e.req, ACK | PSH);
            }
        } else {
            f.seg(t, true, false, e.req, ACK | PSH);
        }
        if e.upload {
            t += rtt;
            f.ctl(t, false, ACK);
            t += near(r);
            t = f.transfer(t, true, false, e.bulk, mss, gap, rtt);
            t += rtt + r.below(5_000) as u64;
            f.seg(t, false, false, 150 + r.below(400), ACK | PSH);
            t += near(r);
            f.ctl(t, true, ACK);
        } else {
            // server think time, then the answer
            t += rtt + r.lognormal(2_000.0, 1.0).min(200_000.0) as u64;
            t = f.transfer(t, false, false, e.bulk, mss, gap, near(r));
        }
    }
    t += keep_open;
    f.ctl(t, true, FIN | ACK);
    t += rtt;
    f.ctl(t, false, FIN | ACK);
    t += near(r);
    f.ctl(t, true, ACK);
    f.finish()
}

/// QUIC-like: an Initial, then datagrams both ways; no handshake semantics.
fn quic_flow(r: &mut Rng, t0: u64, c: Ep, s: Ep, cport: u16, ex: &[Ex]) -> VecDeque<Record> {
    let (rtt, gap) = path(r);
    let mut f = Fb::new(c, s, cport, 443);
    let near = |r: &mut Rng| 20 + r.below(80) as u64;
    let mut t = t0;
    f.seg(t, true, true, 1200 + r.below(52), 0);
    t += rtt;
    t = f.transfer(
        t,
        false,
        true,
        2_500 + r.below(3_000),
        1_252,
        gap.min(200),
        near(r),
    );
    for e in ex {
        t += e.pause + 300;
        f.seg(t, true, true, e.req, 0);
        t += rtt + r.lognormal(2_000.0, 1.0).min(200_000.0) as u64;
        t = f.transfer(t, false, true, e.bulk, 1_252, gap, near(r));
    }
    // CONNECTION_CLOSE
    t += r.below(2_000_000) as u64 + 1_000;
    f.seg(t, true, true, 30 + r.below(20), 0);
    f.finish()
}

/// What a flow is tagged with for the ground truth.
#[derive(Clone, Copy)]
enum Tag {
    None,
    Beacon(usize),
    Exfil(usize),
    Tunnel(usize),
}

struct Active {
    recs: VecDeque<Record>,
    tag: Tag,
}

/// The generator's state.
struct Mix {
    r: Rng,
    hosts: usize,
    ports: Vec<u16>,
    dns_id: u16,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Option<Active>>,
    free: Vec<usize>,
    tally: [Tally; 3],
    peak: usize,
    live: usize,
    flows: u64,
}

impl Mix {
    fn port(&mut self, h: usize) -> u16 {
        let p = &mut self.ports[h];
        *p = if *p >= 65_000 { 49_152 } else { *p + 1 };
        *p
    }

    fn add(&mut self, recs: VecDeque<Record>, tag: Tag) {
        let Some(t) = recs.front().map(|r| r.ts_us) else {
            return;
        };
        let a = Active { recs, tag };
        let slot = if let Some(s) = self.free.pop() {
            self.slots[s] = Some(a);
            s
        } else {
            self.slots.push(Some(a));
            self.slots.len() - 1
        };
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq, slot)));
        self.live += 1;
        self.flows += 1;
        self.peak = self.peak.max(self.live);
    }

    /// A background flow from a random host.
    fn background(&mut self, t: u64) {
        let r = &mut self.r;
        let h = r.below(self.hosts);
        let c = host(h);
        let v6 = c.ip.is_ipv6();
        let j = r.zipf(SERVERS);
        let s = Ep {
            ip: server_ip(j, v6),
            vlan: c.vlan,
        };
        let x = r.f();
        let kind = if x < 0.70 {
            Kind::Tls
        } else if x < 0.75 {
            Kind::Http
        } else if x < 0.85 {
            Kind::Quic
        } else {
            Kind::Dns
        };
        let cport = self.port(h);
        let r = &mut self.r;
        let name = server_name(j);
        let recs = match kind {
            Kind::Tls | Kind::Http => {
                let ex = exchanges(r, true);
                let keep_open = if ex.len() > 1 {
                    r.exp(15.0 * S as f64) as u64
                } else if r.f() < 0.3 {
                    r.exp(10.0 * S as f64) as u64
                } else {
                    r.lognormal(20_000.0, 1.5).min(30.0 * S as f64) as u64
                };
                if kind == Kind::Tls {
                    let hello = packets::client_hello(&name, r.next_u64());
                    tcp_flow(r, t, c, s, cport, 443, Some(&hello), None, &ex, keep_open)
                } else {
                    let path = format!("/assets/{:x}.js", r.next_u64() & 0xff_ffff);
                    let req = packets::http_request("GET", &name, &path);
                    tcp_flow(r, t, c, s, cport, 80, None, Some(&req), &ex, keep_open)
                }
            }
            Kind::Quic => {
                let ex = exchanges(r, false);
                quic_flow(r, t, c, s, cport, &ex)
            }
            Kind::Dns => {
                let res = resolver(&c);
                let id = self.dns_id;
                self.dns_id = self.dns_id.wrapping_add(1);
                let qtype = if v6 { 28 } else { 1 };
                let mut ans = vec![server_ip(j, v6)];
                if r.f() < 0.5 {
                    ans.push(server_ip((j + 1 + r.below(SERVERS - 1)) % SERVERS, v6));
                }
                let mut f = Fb::new(c, res, cport, 53);
                f.whole(t, true, true, &packets::dns_query(id, &name, qtype));
                let dt = r.lognormal(3_000.0, 1.2).clamp(500.0, 30_000.0) as u64;
                f.whole(
                    t + dt,
                    false,
                    true,
                    &packets::dns_response(id, &name, qtype, &ans),
                );
                f.finish()
            }
        };
        self.add(recs, Tag::None);
    }
}

/// `mix`: `packets` records of the office uplink model above.
///
/// `snaplen`: 0 = whole frames, else bulk records cut at `snaplen` bytes
/// (see the module documentation).
///
/// # Errors
/// Writing fails.
pub fn mix(
    path: &Path,
    packets: u64,
    seed: u64,
    hosts: usize,
    snaplen: usize,
) -> std::io::Result<GroundTruth> {
    let hosts = hosts.clamp(16, 60_000);
    let start = EPOCH_US + 10 * 3600 * S;
    let mut r = Rng::new(seed);
    let ports = (0..hosts).map(|_| 49_152 + r.below(8_000) as u16).collect();
    let mut m = Mix {
        r,
        hosts,
        ports,
        dns_id: 1,
        seq: 0,
        heap: BinaryHeap::new(),
        slots: Vec::new(),
        free: Vec::new(),
        tally: Default::default(),
        peak: 0,
        live: 0,
        flows: 0,
    };
    let beacon_host = pick(hosts, 0.617);
    let exfil_host = pick(hosts, 0.389);
    let tunnel_host = pick(hosts, 0.211);
    let beacon_ip = IpAddr::from([203, 0, 113, 45]);
    let exfil_ip = IpAddr::from([198, 51, 100, 77]);
    let rate = hosts as f64 * FLOWS_PER_HOST_S;
    let mean_gap = S as f64 / rate;

    let mut next_bg = start + m.r.exp(mean_gap) as u64;
    let mut next_beat = start + 3 * S + m.r.below(S as usize) as u64;
    let mut next_q = start + 10 * S;
    let mut exfil_at = Some(start + 20 * S + m.r.below(S as usize) as u64);
    let mut q_n = 0u64;

    let mut w = PcapWriter::create(path)?;
    let mut last_ts = start;
    while w.records < packets {
        let head = m.heap.peek().map_or(u64::MAX, |Reverse((t, _, _))| *t);
        let next = next_bg
            .min(next_beat)
            .min(next_q)
            .min(exfil_at.unwrap_or(u64::MAX));
        if next <= head {
            if next == next_bg {
                m.background(next_bg);
                next_bg += (m.r.exp(mean_gap) as u64).max(1);
            } else if next == next_beat {
                let c = host(beacon_host);
                let s = Ep {
                    ip: beacon_ip,
                    vlan: c.vlan,
                };
                let cport = m.port(beacon_host);
                let r = &mut m.r;
                let hello = packets::client_hello(BEACON_NAME, r.next_u64());
                let up = 300 + r.below(60);
                let ex = [Ex {
                    req: up,
                    bulk: 900 + r.below(80),
                    upload: false,
                    pause: 0,
                }];
                let recs = tcp_flow(r, next, c, s, cport, 443, Some(&hello), None, &ex, 2_000);
                m.add(recs, Tag::Beacon(up));
                let d = BEACON_PERIOD_S * (1.0 + BEACON_JITTER * (2.0 * m.r.f() - 1.0));
                next_beat += (d * S as f64) as u64;
            } else if next == next_q {
                let c = host(tunnel_host);
                let res = resolver(&c);
                let cport = m.port(tunnel_host);
                let r = &mut m.r;
                // base32 of random bytes, in two labels
                const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
                let label: String = (0..52)
                    .map(|_| char::from(B32[r.below(B32.len())]))
                    .collect();
                let q = format!("{}.{}.{TUNNEL_DOMAIN}", &label[..30], &label[30..]);
                let id = (q_n & 0xffff) as u16 ^ 0x5a5a;
                q_n += 1;
                let mut f = Fb::new(c, res, cport, 53);
                f.whole(next, true, true, &packets::dns_query(id, &q, 16));
                let dt = r.lognormal(30_000.0, 0.5).clamp(5_000.0, 200_000.0) as u64;
                f.whole(
                    next + dt,
                    false,
                    true,
                    &packets::dns_response(id, &q, 16, &[]),
                );
                next_q += (r.exp(50_000.0) as u64).max(1_000);
                m.add(f.finish(), Tag::Tunnel(q.len()));
            } else {
                exfil_at = None;
                let c = host(exfil_host);
                let s = Ep {
                    ip: exfil_ip,
                    vlan: c.vlan,
                };
                let cport = m.port(exfil_host);
                let r = &mut m.r;
                let ex = [Ex {
                    req: 100,
                    bulk: EXFIL_BYTES,
                    upload: true,
                    pause: 0,
                }];
                let recs = tcp_flow(r, next, c, s, cport, 4443, None, None, &ex, 5_000);
                m.add(recs, Tag::Exfil(EXFIL_BYTES + 100));
            }
            continue;
        }
        let Some(Reverse((_, seq, slot))) = m.heap.pop() else {
            break;
        };
        let Some(a) = m.slots[slot].as_mut() else {
            continue;
        };
        let Some(rec) = a.recs.pop_front() else {
            continue;
        };
        let tag = std::mem::replace(&mut a.tag, Tag::None);
        let rest = a.recs.front().map(|x| x.ts_us);
        match tag {
            Tag::None => {}
            Tag::Beacon(n) => m.tally[0].add(rec.ts_us, n),
            Tag::Exfil(n) => m.tally[1].add(rec.ts_us, n),
            Tag::Tunnel(n) => m.tally[2].add(rec.ts_us, n),
        }
        last_ts = rec.ts_us;
        let mut rec = rec;
        rec.snap(snaplen);
        w.write(&rec)?;
        if let Some(t) = rest {
            m.heap.push(Reverse((t, seq, slot)));
        } else {
            m.slots[slot] = None;
            m.free.push(slot);
            m.live -= 1;
        }
    }
    let (packets, _) = w.finish()?;
    let truth = |kind: &str, variant: &str, h: usize, dest: IpAddr, port: u16, udp: bool| {
        let (name, period, jitter, t) = match kind {
            "beacon" => (
                Some(BEACON_NAME),
                Some(BEACON_PERIOD_S),
                Some(BEACON_JITTER),
                &m.tally[0],
            ),
            "exfil" => (None, None, None, &m.tally[1]),
            _ => (Some(TUNNEL_DOMAIN), None, None, &m.tally[2]),
        };
        scenario::truth(
            kind,
            variant,
            &host(h),
            dest,
            port,
            udp,
            name,
            period,
            jitter,
            t,
        )
    };
    let mut malicious = vec![truth(
        "beacon",
        "tcp_conn",
        beacon_host,
        beacon_ip,
        443,
        false,
    )];
    if m.tally[1].events > 0 {
        malicious.push(truth("exfil", "stealer", exfil_host, exfil_ip, 4443, false));
    }
    if m.tally[2].events > 0 {
        malicious.push(truth(
            "dns_tunnel",
            "dns_tunnel",
            tunnel_host,
            IpAddr::from([10, 0, 0, 53]),
            53,
            true,
        ));
    }
    eprintln!(
        "deguchi gen mix: {} flows started, peak {} concurrent, {:.1} s of packet time",
        m.flows,
        m.peak,
        (last_ts - start) as f64 / S as f64
    );
    Ok(GroundTruth {
        scenario: "mix".into(),
        seed,
        start: rfc3339_us(start),
        end: rfc3339_us(last_ts),
        packets,
        malicious,
        benign_periodic: Vec::new(),
    })
}
