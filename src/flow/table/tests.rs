use super::*;
use crate::decode::PacketMeta;
use std::net::IpAddr;

fn pkt(ts: Ts, src: u128, sport: u16, dst: u128, dport: u16, flags: u8, len: u32) -> PacketMeta {
    PacketMeta {
        ts,
        wire_len: len + 54,
        payload_len: len,
        src,
        dst,
        sport,
        dport,
        proto: 6,
        tcp_flags: flags,
        ..PacketMeta::default()
    }
}

fn ends(out: &[FlowEvent]) -> Vec<&FlowRecord> {
    out.iter()
        .filter_map(|e| match e {
            FlowEvent::End(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// The hint cache in front of the index never changes an answer: a
/// model of the table (key -> last packet time, idle timeout, LRU-free)
/// agrees on every flow created and ended through growth of the cache,
/// slot collisions, flows that end and come back, and lookups located
/// several packets ahead of their update.
#[test]
fn hint_cache_agrees_with_a_model() {
    let mut t = FlowTable::new(TableConfig::default());
    let udp = t.cfg.timeouts[Class::Udp as usize];
    let mut model: std::collections::HashMap<(u128, u16), Ts> = Default::default();
    let (mut created, mut out) = (0u64, Vec::new());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut ahead: std::collections::VecDeque<(PacketMeta, Located)> = Default::default();
    let mut ts: Ts = 1_000 * SEC;
    for i in 0..200_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // a working set that grows to ~12k flows, then time jumps past
        // the timeout so they all come back as new flows
        let n = if i < 100_000 { 1 + i / 8 } else { 12_000 };
        let host = u128::from(seed % n);
        if i == 120_000 {
            ts += udp + SEC;
        }
        ts += 1_000;
        let mut m = pkt(ts, 0x0a00_0000 + host, 5000, 0x0808_0808, 53, 0, 40);
        m.proto = 17;
        let key = (m.src, m.sport);
        match model.get(&key) {
            Some(&last) if last.saturating_add(udp) >= ts => {}
            _ => created += 1,
        }
        model.insert(key, ts);
        if i % 1000 == 0 {
            // flows ended by expiry, whose keys then come back; the
            // packets located ahead are applied first (as the shard does)
            for (m, at) in ahead.drain(..) {
                t.update_located(&m, &at, &[], &mut out);
            }
            t.expire(ts - 1, &mut out);
        }
        let at = t.locate(&m);
        ahead.push_back((m, at));
        if ahead.len() > 3 {
            let (m, at) = ahead.pop_front().unwrap();
            t.update_located(&m, &at, &[], &mut out);
        }
    }
    for (m, at) in ahead {
        t.update_located(&m, &at, &[], &mut out);
    }
    assert!(t.hint.len() >= 16_384, "the cache grew with the table");
    assert_eq!(t.counters.flows_created, created);
    t.flush(&mut out);
    assert_eq!(ends(&out).len() as u64, created);
}

#[test]
fn mid_session_flows_are_oriented_by_ports() {
    let (srv, cli) = (0x0a00_0005, 0xc633_6407);
    let run = |first: PacketMeta, ephemeral_port_min: u16| {
        let mut t = FlowTable::new(TableConfig {
            ephemeral_port_min,
            ..TableConfig::default()
        });
        let mut out = Vec::new();
        t.update(&first, &[], &mut out);
        t.flush(&mut out);
        let r = ends(&out)[0].clone();
        (r.src_ip, r.src_port, r.oriented)
    };
    let client = IpAddr::from([198, 51, 100, 7]);
    let server = IpAddr::from([10, 0, 0, 5]);
    // an SSH server's keep-alive is the first packet seen: the client is
    // the side on the ephemeral port
    let ka = pkt(SEC, srv, 22, cli, 51000, tcp::ACK | tcp::PSH, 36);
    assert_eq!(run(ka, 32768), (client, 51000, Oriented::Ports));
    // rule off: the first packet's sender
    assert_eq!(run(ka, 0), (server, 22, Oriented::FirstPacket));
    // the client speaks first: same answer, still marked inferred
    let up = pkt(SEC, cli, 51000, srv, 22, tcp::ACK | tcp::PSH, 36);
    assert_eq!(run(up, 32768), (client, 51000, Oriented::Ports));
    // both ports ephemeral: the first packet's sender
    let p2p = pkt(SEC, srv, 40000, cli, 51000, tcp::ACK, 0);
    assert_eq!(run(p2p, 32768), (server, 40000, Oriented::FirstPacket));
    // a SYN decides whatever the ports
    let syn = pkt(SEC, srv, 51000, cli, 22, tcp::SYN, 0);
    assert_eq!(run(syn, 32768), (server, 51000, Oriented::Handshake));
    let syn_ack = pkt(SEC, srv, 22, cli, 51000, tcp::SYN | tcp::ACK, 0);
    assert_eq!(run(syn_ack, 32768), (client, 51000, Oriented::Handshake));
}

/// A bare ACK of 0-1 byte after `keepalive_idle` of silence is reported
/// as a keep-alive probe (its sender, no data burst started); the ACK
/// answering it, data and a probe after a shorter silence are not; with
/// `keepalive_idle` 0 nothing is. Bursts say who sent first in them.
#[test]
fn keepalive_probes_and_burst_starters() {
    let run = |idle: Ts| {
        let mut t = FlowTable::new(TableConfig {
            keepalive_idle: idle,
            ..TableConfig::default()
        });
        let mut out = Vec::new();
        let (c, s) = (0x0a00_0001, 0x0808_0808);
        let mut send = |ts: Ts, from_c: bool, flags: u8, len: u32| {
            let p = if from_c {
                pkt(ts, c, 5000, s, 80, flags, len)
            } else {
                pkt(ts, s, 80, c, 5000, flags, len)
            };
            t.update(&p, &[], &mut out);
        };
        send(0, true, tcp::SYN, 0);
        send(SEC / 50, false, tcp::SYN | tcp::ACK, 0);
        send(SEC / 25, true, tcp::ACK, 0);
        send(SEC / 10, true, tcp::ACK | tcp::PSH, 40);
        // 180 s later: a 1-byte probe from the client, the server's ACK
        send(180 * SEC, true, tcp::ACK, 1);
        send(180 * SEC + SEC / 20, false, tcp::ACK, 0);
        // 5 s later: too short a silence
        send(185 * SEC, true, tcp::ACK, 0);
        // the server starts a burst, the client answers
        send(200 * SEC, false, tcp::ACK | tcp::PSH, 23);
        send(200 * SEC + SEC / 40, true, tcp::ACK | tcp::PSH, 18);
        // a probe from the server
        send(400 * SEC, false, tcp::ACK, 0);
        send(500 * SEC, true, tcp::ACK | tcp::PSH, 40);
        out
    };
    let bursts = |out: &[FlowEvent]| -> Vec<BurstEvent> {
        out.iter()
            .filter_map(|e| match e {
                FlowEvent::Burst(b) => Some(b.clone()),
                _ => None,
            })
            .collect()
    };
    let b = bursts(&run(10 * SEC));
    let probes: Vec<_> = b.iter().filter(|x| x.keepalive).collect();
    assert_eq!(probes.len(), 2, "{b:#?}");
    assert_eq!(probes[0].ts, 180 * SEC);
    assert_eq!(probes[0].payload, [1, 0]);
    assert!(!probes[0].responder_started);
    assert_eq!(probes[1].ts, 400 * SEC);
    assert!(probes[1].responder_started);
    assert_eq!(probes[1].orig_first, None);
    let data: Vec<_> = b.iter().filter(|x| !x.keepalive).collect();
    assert_eq!(data.len(), 2, "{b:#?}");
    assert!(!data[0].responder_started);
    assert_eq!(data[0].orig_first, Some(SEC / 10));
    assert!(data[1].responder_started);
    assert_eq!(data[1].orig_first, Some(200 * SEC + SEC / 40));
    assert_eq!(data[1].payload, [18, 23]);
    let off = bursts(&run(0));
    assert!(off.iter().all(|x| !x.keepalive));
    assert_eq!(off.len(), 2);
}

#[test]
fn handshake_close_and_originator() {
    let mut t = FlowTable::new(TableConfig::default());
    let mut out = Vec::new();
    let (c, s) = (0x0a00_0001, 0x0808_0808);
    // first packet seen is the SYN-ACK: the originator is still the client
    t.update(
        &pkt(SEC, s, 443, c, 5000, tcp::SYN | tcp::ACK, 0),
        &[],
        &mut out,
    );
    t.update(&pkt(SEC + 1, c, 5000, s, 443, tcp::ACK, 0), &[], &mut out);
    t.update(
        &pkt(SEC + 2, c, 5000, s, 443, tcp::ACK | tcp::PSH, 100),
        &[],
        &mut out,
    );
    t.update(
        &pkt(SEC + 3, s, 443, c, 5000, tcp::ACK | tcp::FIN, 0),
        &[],
        &mut out,
    );
    t.update(
        &pkt(SEC + 4, c, 5000, s, 443, tcp::ACK | tcp::FIN, 0),
        &[],
        &mut out,
    );
    t.expire(5 * SEC, &mut out);
    assert!(out.is_empty(), "closed flow lingers for trailing ACKs");
    t.update(&pkt(5 * SEC, s, 443, c, 5000, tcp::ACK, 0), &[], &mut out);
    t.expire(16 * SEC, &mut out);
    let r = ends(&out);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].src_port, 5000);
    assert_eq!(r[0].pkts, [3, 3]);
    assert_eq!(r[0].payload, [100, 0]);
    assert_eq!(r[0].reason, EndReason::Closed);
    assert!(t.is_empty());
}

#[test]
fn memcap_evicts_nearest_timeout_first() {
    let mut t = FlowTable::new(TableConfig {
        max_flows: 2,
        ..TableConfig::default()
    });
    let mut out = Vec::new();
    // an established session
    t.update(&pkt(0, 1, 1000, 2, 80, tcp::SYN, 0), &[], &mut out);
    t.update(
        &pkt(1, 2, 80, 1, 1000, tcp::SYN | tcp::ACK, 0),
        &[],
        &mut out,
    );
    t.update(&pkt(2, 1, 1000, 2, 80, tcp::ACK, 0), &[], &mut out);
    // a flood of half-open SYNs
    for p in 0..100u16 {
        t.update(
            &pkt(3 + i64::from(p), 9, p, 2, 80, tcp::SYN, 0),
            &[],
            &mut out,
        );
    }
    assert_eq!(t.len(), 2);
    assert_eq!(t.counters.evicted, 99);
    let r = ends(&out);
    assert!(
        r.iter()
            .all(|r| r.reason == EndReason::Evicted && r.src_port != 1000)
    );
}

#[test]
fn port_reuse_starts_new_flow() {
    let mut t = FlowTable::new(TableConfig::default());
    let mut out = Vec::new();
    t.update(&pkt(0, 1, 1000, 2, 80, tcp::SYN, 0), &[], &mut out);
    t.update(
        &pkt(1, 2, 80, 1, 1000, tcp::RST | tcp::ACK, 0),
        &[],
        &mut out,
    );
    t.update(&pkt(2, 1, 1000, 2, 80, tcp::SYN, 0), &[], &mut out);
    assert_eq!(ends(&out).len(), 1);
    assert_eq!(t.len(), 1);
}
