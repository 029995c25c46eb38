//! Stress patterns: `bench` and `flood`.

use super::{Activity, BeaconPlan, EPOCH_US, GenCtx, H, S, Scenario, Variant};
use crate::packets::{self, Ep, L4, bulk, full};
use crate::pcap::PcapWriter;
use crate::{GroundTruth, Record, Rng};
use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

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
