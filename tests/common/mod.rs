//! Shared test helpers: build small captures with etherparse and run deguchi.
#![allow(dead_code)]

use etherparse::PacketBuilder;
use std::path::Path;
use std::process::{Command, Output};

/// A classic pcap (µs, little-endian, Ethernet) from (ts_us, frame) pairs.
pub fn pcap_bytes(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (ts, f) in frames {
        v.extend_from_slice(&u32::try_from(ts / 1_000_000).unwrap().to_le_bytes());
        v.extend_from_slice(&u32::try_from(ts % 1_000_000).unwrap().to_le_bytes());
        let n = u32::try_from(f.len()).unwrap();
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

pub const T0: u64 = 1_772_409_600_000_000; // 2026-03-02T00:00:00Z in µs

/// A TCP segment between two IPv4 hosts.
pub fn tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(1);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('R') {
        b = b.rst();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// A UDP datagram between two IPv4 hosts.
pub fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .udp(sport, dport);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// One complete TCP session client 10.0.0.5:40000 -> 93.184.216.34:443, `n` data segments.
pub fn tcp_session(start_us: u64, n: usize) -> Vec<(u64, Vec<u8>)> {
    let (c, s) = ([10, 0, 0, 5], [93, 184, 216, 34]);
    let mut v = vec![
        (start_us, tcp(c, 40000, s, 443, "S", &[])),
        (start_us + 1000, tcp(s, 443, c, 40000, "SA", &[])),
        (start_us + 2000, tcp(c, 40000, s, 443, "A", &[])),
    ];
    for i in 0..n as u64 {
        v.push((
            start_us + 3000 + i * 1000,
            tcp(c, 40000, s, 443, "AP", &[0x42; 100]),
        ));
    }
    let t = start_us + 3000 + n as u64 * 1000;
    v.push((t, tcp(c, 40000, s, 443, "FA", &[])));
    v.push((t + 1000, tcp(s, 443, c, 40000, "FA", &[])));
    v.push((t + 2000, tcp(c, 40000, s, 443, "A", &[])));
    v
}

pub fn deguchi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args(args)
        .output()
        .unwrap()
}

pub fn read_lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

pub fn total_pkts(flows: &[serde_json::Value]) -> u64 {
    flows
        .iter()
        .map(|f| {
            f["flow"]["pkts_toserver"].as_u64().unwrap()
                + f["flow"]["pkts_toclient"].as_u64().unwrap()
        })
        .sum()
}
