//! Hot-path benches: decode per link type / encapsulation, and the flow-shard
//! update per packet. `Throughput::Elements` so criterion reports packets/s.
//!
//! Run: `cargo bench --bench decode` (figures in README.md, "Performance").

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use deguchi::decode::{Decoder, LinkType, PacketMeta};
use deguchi::flow::table::{FlowEvent, FlowTable, TableConfig};
use etherparse::PacketBuilder;
use std::hint::black_box;

const N: usize = 4096;

fn eth_tcp4(i: usize, payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, (i >> 8) as u8, i as u8], [93, 184, 216, 34], 64)
        .tcp(40000 + (i % 2000) as u16, 443, 1, 65535)
        .ack(1);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x17; payload]).unwrap();
    v
}

fn vlan_udp6(i: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv6(
            [
                0xfd,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                (i >> 8) as u8,
                i as u8,
            ],
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(50000 + (i % 1000) as u16, 443);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 300]).unwrap();
    v
}

fn vxlan(i: usize) -> Vec<u8> {
    let inner = eth_tcp4(i, 200);
    let mut pl = vec![0x08, 0, 0, 0, 0, 0, 0x10, 0];
    pl.extend_from_slice(&inner);
    let b = PacketBuilder::ethernet2([3; 6], [4; 6])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(40000 + (i % 100) as u16, 4789);
    let mut v = Vec::new();
    b.write(&mut v, &pl).unwrap();
    v
}

fn sll_tcp4(i: usize) -> Vec<u8> {
    let eth = eth_tcp4(i, 100);
    let mut v = vec![0, 0, 0, 1, 0, 6, 1, 1, 1, 1, 1, 1, 0, 0, 0x08, 0x00];
    v.extend_from_slice(&eth[14..]);
    v
}

fn bench_decode(c: &mut Criterion) {
    let sets: [(&str, LinkType, Vec<Vec<u8>>); 5] = [
        (
            "ethernet_ipv4_tcp_ack",
            LinkType::Ethernet,
            (0..N).map(|i| eth_tcp4(i, 0)).collect(),
        ),
        (
            "ethernet_ipv4_tcp_1400",
            LinkType::Ethernet,
            (0..N).map(|i| eth_tcp4(i, 1400)).collect(),
        ),
        (
            "ethernet_vlan_ipv6_udp",
            LinkType::Ethernet,
            (0..N).map(vlan_udp6).collect(),
        ),
        (
            "ethernet_vxlan_inner_tcp",
            LinkType::Ethernet,
            (0..N).map(vxlan).collect(),
        ),
        (
            "linux_sll_ipv4_tcp",
            LinkType::LinuxSll,
            (0..N).map(sll_tcp4).collect(),
        ),
    ];
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(N as u64));
    // baseline in the same run: etherparse's bare lax slicing of the same
    // frames (what any decoder costs at least); README reports ratios to it
    {
        let frames = &sets[0].2;
        g.bench_function("baseline_etherparse_lax_slice", |b| {
            b.iter(|| {
                let mut acc = 0usize;
                for f in frames {
                    if let Ok(p) = etherparse::LaxSlicedPacket::from_ethernet(f) {
                        acc += usize::from(p.net.is_some()) + usize::from(p.transport.is_some());
                    }
                }
                black_box(acc)
            });
        });
    }
    for (name, link, frames) in &sets {
        let mut dec = Decoder::default();
        let mut arena = Vec::with_capacity(1 << 20);
        g.bench_function(*name, |b| {
            b.iter(|| {
                arena.clear();
                let mut acc = 0u64;
                for (i, f) in frames.iter().enumerate() {
                    let m = dec
                        .decode(*link, f, f.len() as u32, i as i64, &mut arena)
                        .unwrap();
                    acc = acc.wrapping_add(u64::from(m.sport));
                }
                black_box(acc)
            });
        });
    }
    g.finish();
}

/// Shard update: packets spread over `flows` live flows (hash lookups, LRU moves).
fn bench_shard(c: &mut Criterion) {
    let mut g = c.benchmark_group("shard_update");
    g.throughput(Throughput::Elements(N as u64));
    let mut dec = Decoder::default();
    let mut arena = Vec::new();
    for flows in [256usize, 65_536] {
        let metas: Vec<PacketMeta> = (0..N)
            .map(|i| {
                let j = (i * 7919) % flows;
                let f = PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4([10, 0, (j >> 8) as u8, j as u8], [93, 184, 216, 34], 64)
                    .tcp(40000 + (j % 50) as u16, 443, 1, 65535)
                    .ack(1);
                let mut v = Vec::new();
                f.write(&mut v, &[0u8; 200]).unwrap();
                dec.decode(
                    LinkType::Ethernet,
                    &v,
                    v.len() as u32,
                    i as i64 * 1000,
                    &mut arena,
                )
                .unwrap()
            })
            .collect();
        // a warm table holding `flows` entries, cloned per iteration batch
        g.bench_function(format!("{flows}_flows"), |b| {
            let mut table = FlowTable::new(TableConfig::default());
            let mut out: Vec<FlowEvent> = Vec::new();
            for m in &metas {
                table.update(m, &arena, &mut out);
            }
            let mut round: i64 = 0;
            b.iter_batched_ref(
                || {
                    round += 1;
                    metas
                        .iter()
                        .map(|m| PacketMeta {
                            ts: m.ts + round * 10_000_000,
                            ..*m
                        })
                        .collect::<Vec<_>>()
                },
                |ms| {
                    for m in ms.iter() {
                        table.update(m, &arena, &mut out);
                    }
                    out.clear();
                },
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

criterion_group!(benches, bench_decode, bench_shard);
criterion_main!(benches);
