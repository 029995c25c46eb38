//! Detection end to end on captures built here with stated ground truth:
//! which host/destination keys must alert, and that nothing else does.
//! Includes a restart in the middle of a scenario (`--state`).

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;

type Rec = (u64, Vec<u8>, u32);
const S: u64 = 1_000_000;

fn udp_rec(t: u64, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, len: usize) -> Rec {
    let f = udp(src, sport, dst, dport, &vec![0x33; len]);
    let w = u32::try_from(f.len()).unwrap();
    (t, f, w)
}

fn dns_query(t: u64, c: [u8; 4], sport: u16, r: [u8; 4], name: &str, qtype: u16) -> Rec {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in name.split('.') {
        m.push(u8::try_from(l.len()).unwrap());
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    let f = udp(c, sport, r, 53, &m);
    let w = u32::try_from(f.len()).unwrap();
    (t, f, w)
}

/// Human browsing: clusters of connections to Zipf-popular sites.
fn browse(recs: &mut Vec<Rec>, r: &mut Rng, host: [u8; 4], from: u64, to: u64, mean_gap_s: f64) {
    let mut t = from;
    let mut port = 40_000u16;
    loop {
        t += (-(1.0 - r.f()).ln() * mean_gap_s * S as f64) as u64 + S;
        if t >= to {
            break;
        }
        let site = ((r.f().powi(3)) * 60.0) as u8;
        let n = 1 + (r.f() * 4.0) as usize;
        let mut tc = t;
        for _ in 0..n {
            port = port.wrapping_add(1).max(40_000);
            let up = 300 + (r.f() * 1500.0) as usize;
            let down = 5_000 + (r.f() * 300_000.0) as usize;
            recs.extend(tcp_conn(
                tc,
                host,
                port,
                [93, 184, 200, site],
                443,
                up,
                down,
            ));
            tc += (r.f() * 3.0 * S as f64) as u64 + 200_000;
        }
    }
}

fn write(dir: &Path, name: &str, mut recs: Vec<Rec>) -> std::path::PathBuf {
    recs.sort_by_key(|r| r.0);
    let p = dir.join(name);
    std::fs::write(&p, pcap_records(&recs)).unwrap();
    p
}

fn keys(alerts: &[Alert]) -> BTreeSet<(String, String, String)> {
    alerts
        .iter()
        .map(|a| (a.detector.clone(), a.src_ip.clone(), a.dest_ip.clone()))
        .collect()
}

/// Six office hours: 20 browsing hosts, NTP, a telemetry service every host
/// polls every 5 min, a TCP beacon (120 s, ±30 %) and a UDP beacon inside one
/// long flow (45 s, ±20 %).
fn office(start: u64) -> Vec<Rec> {
    let mut r = Rng(0x5eed);
    let mut recs = Vec::new();
    let end = start + 6 * 3600 * S;
    let hosts: Vec<[u8; 4]> = (10..32).map(|i| [10, 0, 1, i]).collect();
    for (i, h) in hosts.iter().enumerate() {
        browse(&mut recs, &mut r, *h, start, end, 90.0);
        // NTP
        let mut t = start + (i as u64) * S;
        while t < end {
            let pool = [192, 0, 2, 100 + (i % 4) as u8];
            recs.push(udp_rec(t, *h, 123, pool, 123, 48));
            recs.push(udp_rec(t + 30_000, pool, 123, *h, 123, 48));
            t += 64 * S;
        }
        // telemetry every host runs: a popular destination on a schedule
        let mut t = start + (r.f() * 300.0) as u64 * S;
        let mut p = 50_000u16;
        while t < end {
            p += 1;
            recs.extend(tcp_conn(t, *h, p, [198, 51, 100, 20], 443, 700, 300));
            t += ((300.0 * (0.9 + 0.2 * r.f())) * S as f64) as u64;
        }
    }
    // TCP beacon: new connection per check-in
    let mut t = start + 600 * S;
    let mut p = 45_000u16;
    while t < end {
        p += 1;
        let up = 350 + (r.f() * 40.0) as usize;
        recs.extend(tcp_conn(
            t,
            [10, 0, 1, 20],
            p,
            [203, 0, 113, 66],
            443,
            up,
            1100,
        ));
        t += ((120.0 * (0.7 + 0.6 * r.f())) * S as f64) as u64;
    }
    // UDP beacon inside one flow (same 5-tuple)
    let mut t = start + 900 * S;
    while t < end {
        recs.push(udp_rec(
            t,
            [10, 0, 1, 21],
            53_000,
            [198, 18, 0, 9],
            53_000,
            120,
        ));
        recs.push(udp_rec(
            t + 80_000,
            [198, 18, 0, 9],
            53_000,
            [10, 0, 1, 21],
            53_000,
            64,
        ));
        t += ((45.0 * (0.8 + 0.4 * r.f())) * S as f64) as u64;
    }
    recs
}

#[test]
fn office_beacons_found_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    let start = T0 + 8 * 3600 * S;
    let p = write(d.path(), "office.pcap", office(start));
    let o = deguchi(&["replay", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = alerts(&o);
    let want: BTreeSet<_> = [
        ("beacon", "10.0.1.20", "203.0.113.66"),
        ("beacon", "10.0.1.21", "198.18.0.9"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(keys(&a), want, "{a:#?}");
    for x in &a {
        let e: BeaconEvidence = x.evidence_as();
        assert!(x.community_id.as_deref().unwrap().starts_with("1:"));
        assert!(x.timestamp.starts_with("2026-03-02T"));
        let period = e.period_s;
        if x.dest_ip == "203.0.113.66" {
            assert!((100.0..140.0).contains(&period), "{x:?}");
            assert_eq!(x.proto, "TCP");
            assert_eq!(e.channel, "connections");
            // the first alert within 20 beats
            assert!(e.beats <= 20, "{x:?}");
        } else {
            assert!((38.0..52.0).contains(&period), "{x:?}");
            assert_eq!(x.proto, "UDP");
            assert_eq!(e.channel, "in_session");
        }
    }
    assert!(
        a.len() <= 4,
        "one alert per key, again only when severity rises"
    );
}

#[test]
fn restart_mid_scenario_keeps_what_was_learned() {
    let d = tempfile::tempdir().unwrap();
    let start = T0 + 8 * 3600 * S;
    let mut recs = office(start);
    recs.sort_by_key(|r| r.0);
    // cut between two beacon check-ins, before the evidence suffices
    let cut = start + 1500 * S + 60 * S;
    let (a, b): (Vec<Rec>, Vec<Rec>) = recs.iter().cloned().partition(|r| r.0 < cut);
    let full = write(d.path(), "full.pcap", recs);
    let p1 = write(d.path(), "part1.pcap", a);
    let p2 = write(d.path(), "part2.pcap", b);
    let state = d.path().join("state.bin");
    let st = state.to_str().unwrap();

    let whole = alerts(&deguchi(&["replay", full.to_str().unwrap()]));
    let o1 = deguchi(&["replay", p1.to_str().unwrap(), "--state", st]);
    assert!(o1.status.success());
    assert!(state.exists(), "state written at exit");
    let o2 = deguchi(&["replay", p2.to_str().unwrap(), "--state", st]);
    assert!(o2.status.success());
    let log = String::from_utf8_lossy(&o2.stderr);
    assert!(log.contains("beacon restored"), "{log}");
    let mut split = alerts(&o1);
    split.extend(alerts(&o2));
    assert_eq!(keys(&split), keys(&whole));
    // the TCP beacon alerts at the same check-in as in one uninterrupted run
    let first = |v: &[Alert]| {
        v.iter()
            .find(|x| x.dest_ip == "203.0.113.66")
            .map(|x| x.timestamp.clone())
    };
    assert_eq!(first(&split), first(&whole));

    // without the state, the second half alone starts from nothing
    let cold = alerts(&deguchi(&["replay", p2.to_str().unwrap()]));
    let (c, w) = (first(&cold), first(&whole));
    assert!(c.is_none() || c > w, "{c:?} {w:?}");

    // a corrupt state file is reported, set aside, and the run goes on
    std::fs::write(&state, b"DGCHSTAT garbage").unwrap();
    let o3 = deguchi(&["replay", p2.to_str().unwrap(), "--state", st]);
    assert!(o3.status.success());
    let log = String::from_utf8_lossy(&o3.stderr);
    assert!(log.contains("set aside"), "{log}");
}

/// 30 hours: a host's baseline, then a burst to a new destination; a nightly
/// backup (learned), a video call, a large download, an SMTP stealer and a
/// DNS tunnel.
#[test]
fn exfil_found_and_benign_volume_is_quiet() {
    let d = tempfile::tempdir().unwrap();
    let mut r = Rng(77);
    let mut recs = Vec::new();
    let start = T0; // 00:00
    let end = start + 30 * 3600 * S;
    for h in [
        [10, 0, 2, 5],
        [10, 0, 2, 6],
        [10, 0, 2, 7],
        [10, 0, 2, 8],
        [10, 0, 2, 9],
    ] {
        browse(&mut recs, &mut r, h, start, end, 600.0);
    }
    // nightly backup at 02:00 on both nights, 300 MB each
    for night in [2u64, 26] {
        recs.extend(tcp_conn(
            start + night * 3600 * S,
            [10, 0, 2, 200],
            33_000 + night as u16,
            [192, 0, 2, 200],
            443,
            300 << 20,
            100_000,
        ));
    }
    // day 2, 04:00: 150 MB in a few minutes to a never-seen destination
    recs.extend(tcp_conn(
        start + 28 * 3600 * S,
        [10, 0, 2, 5],
        44_444,
        [203, 0, 113, 77],
        443,
        150 << 20,
        20_000,
    ));
    // a 40-minute video call: symmetric UDP
    let mut t = start + 27 * 3600 * S;
    while t < start + 27 * 3600 * S + 2400 * S {
        recs.push(udp_rec(
            t,
            [10, 0, 2, 6],
            50_000,
            [198, 51, 100, 50],
            3478,
            1200,
        ));
        recs.push(udp_rec(
            t + 5000,
            [198, 51, 100, 50],
            3478,
            [10, 0, 2, 6],
            50_000,
            1200,
        ));
        t += 20_000;
    }
    // a large download
    recs.extend(tcp_conn(
        start + 27 * 3600 * S + 100 * S,
        [10, 0, 2, 7],
        45_000,
        [93, 184, 1, 1],
        443,
        2_000,
        800 << 20,
    ));
    // a stealer pushes credentials over SMTP submission
    recs.extend(tcp_conn(
        start + 29 * 3600 * S,
        [10, 0, 2, 8],
        46_000,
        [45, 33, 1, 2],
        587,
        300_000,
        900,
    ));
    // a DNS tunnel through the internal resolver
    for i in 0..80u64 {
        let label = format!(
            "{:016x}{:016x}{:08x}",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            i * 31_337,
            i
        );
        recs.push(dns_query(
            start + 29 * 3600 * S + 1800 * S + i * 2 * S,
            [10, 0, 2, 9],
            20_000 + i as u16,
            [10, 0, 2, 53],
            &format!("{label}.xyzzy-tunnel.net"),
            16,
        ));
    }
    let p = write(d.path(), "exfil.pcap", recs);
    let o = deguchi(&["replay", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = alerts(&o);
    let want: BTreeSet<_> = [
        ("exfil", "10.0.2.5", "203.0.113.77"),
        ("exfil", "10.0.2.8", "45.33.1.2"),
        ("dns_tunnel", "10.0.2.9", "10.0.2.53"),
    ]
    .iter()
    .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(keys(&a), want, "{a:#?}");
    let first = a.iter().find(|x| x.dest_ip == "203.0.113.77").unwrap();
    // within minutes of the upload starting (04:00 on day 2)
    let ts = &first.timestamp;
    assert!(ts.starts_with("2026-03-03T04:0"), "{ts}");
    let burst = a
        .iter()
        .find(|x| x.dest_ip == "203.0.113.77" && x.evidence_as::<ExfilEvidence>().kind == "burst")
        .unwrap_or_else(|| panic!("{a:#?}"));
    assert!(burst.evidence_as::<ExfilEvidence>().bytes_out_total >= 50 << 20);
    let last = a
        .iter()
        .rev()
        .find(|x| x.dest_ip == "203.0.113.77")
        .unwrap();
    assert!(
        last.evidence_as::<ExfilEvidence>().bytes_out_total >= 100 << 20,
        "running total updated"
    );
    assert!(a.len() <= 8, "no storm: {a:#?}");
}
