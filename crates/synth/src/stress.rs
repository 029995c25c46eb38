//! `stress`: a busy egress point in random order, the analysis stage's
//! worst case. Every packet is drawn from 100,000 pre-made 5-tuples with
//! Zipf(0.9) popularity (10,000 internal hosts, ~40,000 external
//! destinations, mostly well-known ports, 70 % TCP), in either direction;
//! IMIX frame sizes (60, 576, 1514 bytes in 7:4:1), ~10 % VLAN-tagged,
//! ~10 % IPv6; 600 s of packet time, so most flows are idle for seconds
//! between packets and every packet after a second of silence ends a burst
//! the beacon detector scores. Five fixed-interval beacons (60 s) run
//! through it as ground truth.

use crate::packets::{self, Ep, L4, bulk};
use crate::pcap::PcapWriter;
use crate::{GroundTruth, Rng, Truth, rfc3339_us};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

const FLOWS: usize = 100_000;
const HOSTS: usize = 10_000;
const DESTS: usize = 40_000;
const SPAN_US: u64 = 600_000_000;
const START_US: u64 = crate::scenario::EPOCH_US + 9 * 3_600_000_000;
const BEACONS: usize = 5;
const BEACON_PERIOD_US: u64 = 60_000_000;

struct Tuple {
    host: Ep,
    peer: Ep,
    sport: u16,
    dport: u16,
    tcp: bool,
}

fn host(i: usize, v6: bool, vlan: Option<u16>) -> Ep {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, (i >> 16) as u16, i as u16))
    } else {
        IpAddr::from([10, 2, (i >> 8) as u8, i as u8])
    };
    Ep { ip, vlan }
}

fn dest(i: usize, v6: bool, vlan: Option<u16>) -> Ep {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::new(0x2a00, 0x1450, 0, 0, 0, 0, (i >> 16) as u16, i as u16))
    } else {
        IpAddr::from([
            [23, 52, 104, 151, 172, 185][i % 6],
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ])
    };
    Ep { ip, vlan }
}

fn tuples(r: &mut Rng) -> Vec<Tuple> {
    const PORTS: [u16; 12] = [443, 443, 443, 443, 443, 443, 80, 80, 8080, 993, 587, 22];
    (0..FLOWS)
        .map(|_| {
            let v6 = r.f() < 0.1;
            let vlan = (r.f() < 0.1).then_some(200);
            let tcp = r.f() < 0.7;
            Tuple {
                host: host(r.below(HOSTS), v6, vlan),
                peer: dest(r.below(DESTS), v6, vlan),
                sport: 32_768 + r.below(28_000) as u16,
                dport: if tcp {
                    PORTS[r.below(PORTS.len())]
                } else {
                    [443, 53, 123, 3478][r.below(4)]
                },
                tcp,
            }
        })
        .collect()
}

/// Writes `packets` packets of the stress model.
///
/// # Errors
/// The file cannot be written.
pub fn stress(path: &Path, packets: u64, seed: u64, snaplen: usize) -> std::io::Result<GroundTruth> {
    let mut w = PcapWriter::create(path)?;
    let mut r = Rng::new(seed);
    let flows = tuples(&mut r);
    // Zipf(0.9): cumulative weights, a draw is a binary search
    let mut cum = Vec::with_capacity(FLOWS);
    let mut total = 0.0;
    for k in 1..=FLOWS {
        total += 1.0 / (k as f64).powf(0.9);
        cum.push(total);
    }
    let beacons: Vec<(Ep, Ep, u16)> = (0..BEACONS)
        .map(|i| (host(HOSTS + i, false, None), dest(DESTS + i, false, None), 40_000 + i as u16))
        .collect();
    let mut next_beat: Vec<u64> = (0..BEACONS)
        .map(|i| START_US + 5_000_000 * i as u64)
        .collect();
    let mut beats = [0u64; BEACONS];
    let step = (SPAN_US / packets.max(1)).max(1);
    let mut t = START_US;
    let mut n = 0u64;
    while n < packets {
        for (i, (h, d, sport)) in beacons.iter().enumerate() {
            if next_beat[i] <= t {
                let (c, s) = packets::tcp_pair(*sport, 443, packets::ACK | packets::PSH);
                w.write(&bulk(next_beat[i], h, d, c, 310))?;
                w.write(&bulk(next_beat[i] + 1, d, h, s, 1200))?;
                next_beat[i] += BEACON_PERIOD_US;
                beats[i] += 1;
                n += 2;
            }
        }
        let x = r.f() * total;
        let f = &flows[cum.partition_point(|c| *c < x).min(FLOWS - 1)];
        let size: usize = [60, 60, 60, 60, 60, 60, 60, 576, 576, 576, 576, 1514][r.below(12)];
        let hdr = 14
            + usize::from(f.host.vlan.is_some()) * 4
            + if f.host.ip.is_ipv6() { 40 } else { 20 }
            + if f.tcp { 20 } else { 8 };
        let len = size.saturating_sub(hdr).max(usize::from(!f.tcp));
        let up = r.f() < 0.5;
        let (a, b) = if up { (&f.host, &f.peer) } else { (&f.peer, &f.host) };
        let (sp, dp) = if up { (f.sport, f.dport) } else { (f.dport, f.sport) };
        let l4 = if f.tcp {
            L4::Tcp {
                sport: sp,
                dport: dp,
                flags: packets::ACK | if len > 0 { packets::PSH } else { 0 },
            }
        } else {
            L4::Udp { sport: sp, dport: dp }
        };
        let mut rec = bulk(t, a, b, l4, len);
        rec.snap(snaplen);
        w.write(&rec)?;
        n += 1;
        t += 1 + r.below(2 * step as usize) as u64;
    }
    let (packets, _) = w.finish()?;
    let malicious = beacons
        .iter()
        .enumerate()
        .map(|(i, (h, d, _))| Truth {
            kind: "beacon".into(),
            variant: "fixed".into(),
            src_ip: h.ip.to_string(),
            dest_ip: d.ip.to_string(),
            dest_port: 443,
            proto: "TCP".into(),
            dest_name: None,
            period_s: Some(60.0),
            jitter: Some(0.0),
            first_ts: rfc3339_us(START_US + 5_000_000 * i as u64),
            last_ts: rfc3339_us(next_beat[i] - BEACON_PERIOD_US),
            events: beats[i],
            bytes_out: beats[i] * 310,
        })
        .collect();
    Ok(GroundTruth {
        scenario: "stress".into(),
        seed,
        start: rfc3339_us(START_US),
        end: rfc3339_us(t),
        packets,
        malicious,
        benign_periodic: Vec::new(),
    })
}
