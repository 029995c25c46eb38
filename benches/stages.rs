//! Per-stage benches beyond decode: the capture thread's shard steering, each
//! detector's per-event cost on warm state, the whole analysis stage, and
//! alert serialisation. `Throughput::Elements` so criterion reports events/s.
//!
//! Run: `cargo bench --bench stages` (`-- --quick` for a one-minute pass).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deguchi::analysis::Analyzer;
use deguchi::baseline::BaselineConfig;
use deguchi::decode::{LinkType, Tunnel, steer_pair};
use deguchi::detect::Detector;
use deguchi::detect::beacon::{Beacon, BeaconConfig};
use deguchi::detect::dns_tunnel::{DnsTunnel, DnsTunnelConfig};
use deguchi::detect::exfil::{Exfil, ExfilConfig};
use deguchi::flow::event::{DnsQuery, FlowEvent};
use deguchi::flow::record::{EndReason, FlowHints, FlowRecord};
use deguchi::homenet::{Direction, HomeNet};
use deguchi::sink::Out;
use deguchi::time::{SEC, Ts};
use etherparse::PacketBuilder;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

const N: usize = 4096;

fn eth_tcp4(i: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, (i >> 8) as u8, i as u8], [93, 184, 216, 34], 64)
        .tcp(40000 + (i % 2000) as u16, 443, 1, 65535)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, &[0x17; 200]).unwrap();
    v
}

fn vlan_udp6(i: usize) -> Vec<u8> {
    let mut src = [0u8; 16];
    src[0] = 0xfd;
    src[14] = (i >> 8) as u8;
    src[15] = i as u8;
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv6(
            src,
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(50000 + (i % 1000) as u16, 443);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 300]).unwrap();
    v
}

/// The capture thread's shard choice: outermost IP pair, no full decode.
fn bench_steer(c: &mut Criterion) {
    let sets: [(&str, Vec<Vec<u8>>); 2] = [
        ("ethernet_ipv4_tcp", (0..N).map(eth_tcp4).collect()),
        ("ethernet_vlan_ipv6_udp", (0..N).map(vlan_udp6).collect()),
    ];
    let mut g = c.benchmark_group("steer");
    g.throughput(Throughput::Elements(N as u64));
    for (name, frames) in &sets {
        g.bench_function(*name, |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for f in frames {
                    if let Some((a, z)) = steer_pair(LinkType::Ethernet, f) {
                        acc = acc.wrapping_add((a ^ z) as u64);
                    }
                }
                black_box(acc)
            });
        });
    }
    g.finish();
}

// A site: HOSTS internal hosts (10.0.x.y), each talking over TLS to DESTS of
// SERVERS named external servers once a "round" (one minute of packet time),
// and sending one DNS query per connection.
const HOSTS: usize = 2000;
const DESTS: usize = 3;
const SERVERS: usize = 250;
const ROUND: Ts = 60 * SEC;
/// Rounds of traffic fed before timing: 40 minutes, past the shortened
/// exfil learning period below, and every beacon pair has a full history.
const WARM_ROUNDS: i64 = 40;
const PER_ROUND: usize = HOSTS * DESTS;

fn host_ip(h: usize) -> IpAddr {
    IpAddr::from([10, 0, (h >> 8) as u8, h as u8])
}

fn server(h: usize, j: usize) -> usize {
    (h * 7 + j * 83) % SERVERS
}

fn server_ip(s: usize) -> IpAddr {
    if s < 200 {
        IpAddr::from([203, 0, 113, s as u8])
    } else {
        IpAddr::from([198, 51, 100, s as u8])
    }
}

fn server_name(s: usize) -> String {
    format!("api{}.service{}.example.com", s, s % 40)
}

/// Cheap deterministic jitter in 0..m.
fn mix(x: u64, m: u64) -> u64 {
    let mut z = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z ^= z >> 29;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z ^ (z >> 32)) % m
}

/// One ended outbound TLS flow of round `r` from host `h` to its `j`-th server.
fn flow(h: usize, j: usize, r: i64) -> FlowRecord {
    let s = server(h, j);
    let (src_ip, dest_ip) = (host_ip(h), server_ip(s));
    let key = (h * DESTS + j) as u64;
    let start =
        r * ROUND + (mix(key, 50) as i64) * SEC + mix(key ^ r as u64, 900) as i64 * 1_000_000;
    let dur = (1 + mix(key.wrapping_add(r as u64), 5) as i64) * SEC;
    let src_port = 32768 + ((key + r as u64 * 17) % 28000) as u16;
    let out = 600 + mix(key ^ 0xaa ^ r as u64, 4000);
    let inb = 3000 + mix(key ^ 0x55 ^ r as u64, 60_000);
    FlowRecord {
        flow_id: key << 20 | (r as u64 & 0xf_ffff),
        src_ip,
        src_port,
        dest_ip,
        dest_port: 443,
        proto: 6,
        vlan: 0,
        tunnel: Tunnel::None,
        icmp: (0, 0),
        pkts: [12, 14],
        bytes: [out + 12 * 66, inb + 14 * 66],
        payload: [out, inb],
        start,
        end: start + dur,
        tcp_flags: [0x1b, 0x1b],
        tcp_state: 0,
        reason: EndReason::Closed,
        bursts: 1,
        reported: [0, 0],
        hints: Some(Box::new(FlowHints {
            sni: Some(server_name(s).into()),
            ..FlowHints::default()
        })),
        direction: Direction::Outbound,
        oriented: deguchi::flow::record::Oriented::Handshake,
    }
}

/// The DNS query that precedes a flow; every tenth is a one-off CDN name.
fn query(h: usize, j: usize, r: i64) -> DnsQuery {
    let s = server(h, j);
    let key = (h * DESTS + j) as u64;
    let name = if key.is_multiple_of(10) {
        format!("e{}.dscb.akamaiedge.net", mix(key ^ r as u64, 1_000_000))
    } else {
        server_name(s)
    };
    DnsQuery {
        ts: r * ROUND + (mix(key, 50) as i64) * SEC,
        client: host_ip(h),
        server: IpAddr::from([10, 0, 0, 53]),
        name,
        qtype: if key.is_multiple_of(3) { 28 } else { 1 },
    }
}

/// What the analysis stage receives in one round: each query, then its flow end.
fn round_events(r: i64) -> Vec<FlowEvent> {
    let mut v: Vec<(Ts, FlowEvent)> = Vec::with_capacity(2 * PER_ROUND);
    for h in 0..HOSTS {
        for j in 0..DESTS {
            let q = query(h, j, r);
            let mut f = flow(h, j, r);
            f.direction = Direction::External; // the analyzer classifies it
            v.push((q.ts, FlowEvent::DnsQuery(Box::new(q))));
            v.push((f.end, FlowEvent::End(f)));
        }
    }
    v.sort_by_key(|(t, _)| *t);
    v.into_iter().map(|(_, e)| e).collect()
}

fn exfil_cfg() -> ExfilConfig {
    ExfilConfig {
        // steady state, not the first day's learning
        learning_s: 1800,
        ..ExfilConfig::default()
    }
}

/// An analyzer of one partition with the given detectors (the shared
/// baseline is fed by its planner, as in a run).
fn analyzer(detectors: Vec<Box<dyn Detector>>) -> Analyzer {
    let mut an = Analyzer::new(
        HomeNet::default_nets(),
        &BaselineConfig::default(),
        vec![detectors],
    );
    an.keep_flows = false;
    an
}

fn beacon() -> Box<dyn Detector> {
    Box::new(Beacon::new(BeaconConfig::default()))
}

fn dns_tunnel() -> Box<dyn Detector> {
    Box::new(DnsTunnel::new(
        DnsTunnelConfig::default(),
        HomeNet::default_nets(),
    ))
}

fn exfil() -> Box<dyn Detector> {
    Box::new(Exfil::new(exfil_cfg()))
}

/// Per event cost of the analysis stage, warm (2,000 hosts × 3 destinations
/// with 40 minutes of history; every iteration is the next round), with no
/// detector (planning: direction, shared baseline, routing), with each
/// detector alone, and with all three: a detector's own cost per event is
/// its row minus `planner_only`. Elements = queries + flow ends.
fn bench_detectors(c: &mut Criterion) {
    let mut g = c.benchmark_group("analysis");
    g.throughput(Throughput::Elements(2 * PER_ROUND as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    type Make = fn() -> Vec<Box<dyn Detector>>;
    let cases: [(&str, Make); 5] = [
        ("planner_only", Vec::new),
        ("beacon", || vec![beacon()]),
        ("dns_tunnel", || vec![dns_tunnel()]),
        ("exfil", || vec![exfil()]),
        ("all_detectors", || vec![beacon(), dns_tunnel(), exfil()]),
    ];
    for (name, make) in cases {
        let mut an = analyzer(make());
        let mut out = Vec::new();
        for r in 0..WARM_ROUNDS {
            an.on_batch(&mut round_events(r), &mut out);
            out.clear();
        }
        let mut round = WARM_ROUNDS;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    round += 1;
                    round_events(round)
                },
                |mut evs| {
                    an.on_batch(&mut evs, &mut out);
                    out.clear();
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

/// A real beacon alert (a host polling a named server every minute), serialised.
fn bench_alert(c: &mut Criterion) {
    let mut an = analyzer(vec![beacon()]);
    let mut out = Vec::new();
    for r in 0..60 {
        let mut f = flow(5, 0, r);
        f.start = 1000 * SEC + r * ROUND;
        f.end = f.start + SEC;
        f.payload = [400, 1200];
        f.hints = Some(Box::new(FlowHints {
            sni: Some("c2.example".into()),
            ..FlowHints::default()
        }));
        an.on_batch(&mut vec![FlowEvent::End(f)], &mut out);
    }
    let alert = out
        .into_iter()
        .rev()
        .find_map(|o| match o {
            Out::Alert(a) => Some(a),
            _ => None,
        })
        .expect("a minute beacon alerts");
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("alert");
    g.throughput(Throughput::Elements(1));
    g.bench_function("write_json_beacon", |b| {
        b.iter(|| {
            buf.clear();
            alert.write_json(&mut buf).unwrap();
            black_box(buf.len())
        });
    });
    g.finish();
}

criterion_group!(benches, bench_steer, bench_detectors, bench_alert);
criterion_main!(benches);
