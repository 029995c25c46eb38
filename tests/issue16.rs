//! Classes of real malware and real-network traffic the generator does not
//! make (issue 16), each built here from its description: the alert that
//! must come, and the benign look-alikes that must stay quiet.

mod common;
use common::*;
use std::path::{Path, PathBuf};

type Rec = (u64, Vec<u8>, u32);
const S: u64 = 1_000_000;

fn rec(t: u64, f: Vec<u8>) -> Rec {
    let w = u32::try_from(f.len()).unwrap();
    (t, f, w)
}

fn write(dir: &Path, name: &str, mut recs: Vec<Rec>) -> PathBuf {
    recs.sort_by_key(|r| r.0);
    let p = dir.join(name);
    std::fs::write(&p, pcap_records(&recs)).unwrap();
    // DEGUCHI_KEEP_PCAPS=DIR keeps a copy (to replay with another build)
    if let Some(keep) = std::env::var_os("DEGUCHI_KEEP_PCAPS") {
        let _ = std::fs::copy(&p, Path::new(&keep).join(name));
    }
    p
}

fn replay(p: &Path, extra: &[&str]) -> Vec<Alert> {
    let mut args = vec!["replay", p.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = deguchi(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    alerts(&o)
}

fn beacons_to<'a>(a: &'a [Alert], dest: &str) -> Vec<&'a Alert> {
    a.iter()
        .filter(|x| x.detector == "beacon" && x.dest_ip == dest)
        .collect()
}

/// A TCP session already open when the capture starts (no SYN, no SYN-ACK)
/// from `c` to `s`: every `period_s` the side `first` sends `len` bytes and
/// the other answers 50 ms later.
fn midstream(
    t0: u64,
    (c, cp): ([u8; 4], u16),
    (s, sp): ([u8; 4], u16),
    server_first: bool,
    period_us: u64,
    n: usize,
    len: usize,
) -> Vec<Rec> {
    let mut v = Vec::new();
    for i in 0..n as u64 {
        let t = t0 + i * period_us;
        let (a, b) = (
            tcp(s, sp, c, cp, "AP", &vec![0x11; len]),
            tcp(c, cp, s, sp, "AP", &vec![0x22; len]),
        );
        let (x, y) = if server_first { (a, b) } else { (b, a) };
        v.push(rec(t, x));
        v.push(rec(t + 50_000, y));
    }
    v
}

/// Class 9: an inbound SSH session open before capture start whose first
/// packet is the internal server's keep-alive is oriented by its ports
/// (client on the ephemeral port): no outbound beacon, and the flow record
/// says the direction was inferred.
#[test]
fn inbound_session_open_before_capture_is_oriented_by_ports() {
    let d = tempfile::tempdir().unwrap();
    let (srv, cli) = ([10, 0, 0, 5], [198, 51, 100, 7]);
    let t0 = T0 + 9 * 3600 * S;
    let recs = midstream(t0, (cli, 51_000), (srv, 22), true, 15 * S, 60, 36);
    let p = write(d.path(), "ssh-inbound.pcap", recs);
    let flows = d.path().join("flows.json");
    let a = replay(&p, &["--flows", flows.to_str().unwrap()]);
    assert!(beacons_to(&a, "198.51.100.7").is_empty(), "{a:#?}");
    let f = read_flows(&flows);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].src_ip.as_str(), f[0].src_port),
        ("198.51.100.7", Some(51_000))
    );
    assert_eq!(f[0].deguchi.direction, "inbound");
    assert_eq!(f[0].deguchi.direction_inferred.as_deref(), Some("ports"));

    // the rule off (flow.ephemeral_port_min = 0): the first packet's sender
    // is the client again, and the keep-alive looks like a beacon
    let cfg = d.path().join("off.toml");
    std::fs::write(&cfg, "[flow]\nephemeral_port_min = 0\n").unwrap();
    let a = replay(&p, &["--config", cfg.to_str().unwrap()]);
    assert!(!beacons_to(&a, "198.51.100.7").is_empty(), "{a:#?}");

    // a flow with its handshake carries no deguchi object
    let p = write(d.path(), "one.pcap", {
        let v: Vec<Rec> = tcp_session(t0, 2)
            .into_iter()
            .map(|(t, f)| rec(t, f))
            .collect();
        v
    });
    let flows = d.path().join("flows2.json");
    replay(&p, &["--flows", flows.to_str().unwrap()]);
    let f = read_flows(&flows);
    assert!(
        f.iter().all(|x| x.deguchi.direction_inferred.is_none()),
        "{f:#?}"
    );
}

/// Class 9, the other way round: an outbound C2 session open before capture
/// start (client on an ephemeral port, server on a service port) whose first
/// packet is the server's keeps its outbound orientation and alerts.
#[test]
fn outbound_session_open_before_capture_still_alerts() {
    let d = tempfile::tempdir().unwrap();
    let (host, c2) = ([10, 0, 0, 6], [203, 0, 113, 80]);
    let t0 = T0 + 9 * 3600 * S;
    let recs = midstream(t0, (host, 50_123), (c2, 8443), true, 20 * S, 40, 60);
    let p = write(d.path(), "c2-midstream.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.80");
    assert!(!b.is_empty(), "{a:#?}");
    assert_eq!(b[0].src_ip, "10.0.0.6");
    let e: BeaconEvidence = b[0].evidence_as();
    assert!((18.0..22.0).contains(&e.period_s), "{e:?}");
}

/// An HTTP poll every `period_us` from `host` to `dst`:80, one connection each.
fn http_polls(host: [u8; 4], dst: [u8; 4], t0: u64, period_us: u64, n: usize) -> Vec<Rec> {
    let mut v = Vec::new();
    for i in 0..n {
        let port = 49_200 + u16::try_from(i).unwrap();
        v.extend(tcp_conn(
            t0 + i as u64 * period_us,
            host,
            port,
            dst,
            80,
            300,
            1200,
        ));
    }
    v
}

/// Class 10: Azure's WireServer (168.63.129.16), Alibaba's metadata service
/// (100.100.100.200) and the AWS time sync endpoint polled every few
/// seconds are platform endpoints, not beacons; the same poll to an
/// ordinary address is one.
#[test]
fn cloud_platform_endpoints_are_not_beacons() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut recs = Vec::new();
    recs.extend(http_polls([10, 0, 0, 4], [168, 63, 129, 16], t0, 5 * S, 80));
    recs.extend(http_polls(
        [10, 0, 0, 7],
        [100, 100, 100, 200],
        t0,
        10 * S,
        40,
    ));
    recs.extend(http_polls([10, 0, 0, 8], [203, 0, 113, 9], t0, 5 * S, 80));
    let p = write(d.path(), "cloud.pcap", recs);
    let a = replay(&p, &[]);
    assert!(beacons_to(&a, "168.63.129.16").is_empty(), "{a:#?}");
    assert!(beacons_to(&a, "100.100.100.200").is_empty(), "{a:#?}");
    let b = beacons_to(&a, "203.0.113.9");
    assert!(!b.is_empty(), "the same poll elsewhere alerts: {a:#?}");
    let e: BeaconEvidence = b[0].evidence_as();
    assert!((4.5..5.5).contains(&e.period_s), "{e:?}");
}

/// One HTTP keep-alive session from `host` to `srv`:80 with the handshake,
/// then a GET (Host `name`) every `period_us` answered 30 ms later.
fn keepalive_gets(
    host: [u8; 4],
    srv: [u8; 4],
    name: &str,
    t0: u64,
    period_us: u64,
    n: usize,
) -> Vec<Rec> {
    let cp = 49_800;
    let mut v = vec![
        rec(t0, tcp(host, cp, srv, 80, "S", &[])),
        rec(t0 + 20_000, tcp(srv, 80, host, cp, "SA", &[])),
        rec(t0 + 40_000, tcp(host, cp, srv, 80, "A", &[])),
    ];
    let get = format!(
        "GET /pki/crl/products/MicCodSigPCA_2010-07-06.crl HTTP/1.1\r\nHost: {name}\r\nConnection: Keep-Alive\r\n\r\n"
    );
    for i in 0..n as u64 {
        let t = t0 + 100_000 + i * period_us;
        v.push(rec(t, tcp(host, cp, srv, 80, "AP", get.as_bytes())));
        v.push(rec(t + 30_000, tcp(srv, 80, host, cp, "AP", &[0x30; 900])));
    }
    v
}

/// Class 11: a CRL fetched every ~4.6 s inside one keep-alive session: five
/// beats in 18 s are too little history for an in-session series
/// (`beacon.min_session_span_s`), and a CRL/OCSP host polled for minutes is
/// allowlisted like update checks. An in-session beacon at the same pace to
/// an unknown name still alerts once it has the history.
#[test]
fn crl_fetches_in_one_session_are_not_beacons() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut recs = Vec::new();
    for (host, srv, name, n) in [
        // 5 fetches, 18 s, a name on no list
        (11, 1, "crl.example.net", 5),
        // minutes of fetches from Microsoft's CRL host
        (12, 2, "crl.microsoft.com", 60),
        // the same pace for minutes to an unknown name: a beacon
        (13, 3, "cdn.example.org", 60),
    ] {
        recs.extend(keepalive_gets(
            [10, 0, 0, host],
            [93, 184, 220, srv],
            name,
            t0,
            4_600_000,
            n,
        ));
    }
    let p = write(d.path(), "crl.pcap", recs);
    let a = replay(&p, &[]);
    assert!(beacons_to(&a, "93.184.220.1").is_empty(), "{a:#?}");
    assert!(beacons_to(&a, "93.184.220.2").is_empty(), "{a:#?}");
    let b = beacons_to(&a, "93.184.220.3");
    assert!(!b.is_empty(), "{a:#?}");
    let e: BeaconEvidence = b[0].evidence_as();
    assert!((4.1..5.1).contains(&e.period_s), "{e:?}");
    assert_eq!(e.channel, "in_session");

    // with the span rule off, the short series alerts (the look-alike)
    let cfg = d.path().join("span0.toml");
    std::fs::write(&cfg, "[beacon]\nmin_session_span_s = 0\n").unwrap();
    let a = replay(&p, &["--config", cfg.to_str().unwrap()]);
    assert!(!beacons_to(&a, "93.184.220.1").is_empty(), "{a:#?}");
}

/// Class 8: DNS exfiltration in a few long names. 14 TXT queries of
/// ~250-character names (base64url chunks) in 0.1 s under one domain: fewer
/// unique names than `dns_tunnel.min_unique`, ~3.4 KB in the names. A dozen
/// ordinary lookups with short hashed names stay quiet.
#[test]
fn dns_exfil_in_few_long_names_alerts() {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let (host, resolver) = ([10, 0, 0, 21], [10, 0, 0, 53]);
    let mut r = Rng(0x5eed);
    let mut chunk = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(B64[(r.next() % 64) as usize]))
            .collect()
    };
    let mut recs = Vec::new();
    for i in 0..14u16 {
        let labels: Vec<String> = (0..4).map(|_| chunk(57)).collect();
        let name = format!("{}.d.stash-cdn.net", labels.join("."));
        let q = deguchi_synth::packets::dns_query(0x100 + i, &name, 16);
        let t = t0 + u64::from(i) * 7_000;
        recs.push(rec(t, udp(host, 50_000 + i, resolver, 53, &q)));
    }
    for i in 0..12u16 {
        let name = format!("{}.avqs.vendor-reputation.com", chunk(32));
        let q = deguchi_synth::packets::dns_query(0x200 + i, &name, 16);
        let t = t0 + 5 * S + u64::from(i) * S;
        recs.push(rec(t, udp(host, 51_000 + i, resolver, 53, &q)));
    }
    let p = write(d.path(), "dns-long.pcap", recs);
    let a = replay(&p, &[]);
    let t: Vec<_> = a.iter().filter(|x| x.detector == "dns_tunnel").collect();
    assert_eq!(t.len(), 1, "{a:#?}");
    assert_eq!(t[0].src_ip, "10.0.0.21");
    assert_eq!(t[0].evidence["domain"], "stash-cdn.net");
}

/// Class 4: a ~15-minute HTTP POST check-in (±2 %) seen 7 times, each one
/// short connection holding two request/response exchanges 1-3.5 s apart.
#[test]
fn slow_check_ins_with_two_exchanges_each_alert() {
    let d = tempfile::tempdir().unwrap();
    let (host, c2) = ([10, 0, 0, 31], [203, 0, 113, 140]);
    let mut r = Rng(0xc4ec);
    let mut recs = Vec::new();
    let mut t = T0 + 9 * 3600 * S;
    for i in 0..7u16 {
        t += (900.0 * (0.98 + 0.04 * r.f()) * S as f64) as u64;
        let cp = 49_500 + i;
        recs.push(rec(t, tcp(host, cp, c2, 80, "S", &[])));
        recs.push(rec(t + 30_000, tcp(c2, 80, host, cp, "SA", &[])));
        recs.push(rec(t + 60_000, tcp(host, cp, c2, 80, "A", &[])));
        let second = t + 1_000_000 + (2.5 * r.f() * S as f64) as u64;
        for (k, at) in [t + 70_000, second].into_iter().enumerate() {
            let body = format!(
                "POST /api/v{k}/check HTTP/1.1\r\nHost: cdn-sync.example\r\nContent-Length: 200\r\n\r\n{}",
                "x".repeat(200)
            );
            recs.push(rec(at, tcp(host, cp, c2, 80, "AP", body.as_bytes())));
            recs.push(rec(at + 40_000, tcp(c2, 80, host, cp, "AP", &[0x7b; 180])));
        }
        let end = second + 100_000;
        recs.push(rec(end, tcp(host, cp, c2, 80, "FA", &[])));
        recs.push(rec(end + 30_000, tcp(c2, 80, host, cp, "FA", &[])));
        recs.push(rec(end + 60_000, tcp(host, cp, c2, 80, "A", &[])));
    }
    let p = write(d.path(), "slow.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.140");
    assert!(!b.is_empty(), "{a:#?}");
    let e: BeaconEvidence = b[0].evidence_as();
    assert!((810.0..990.0).contains(&e.period_s), "{e:?}");
    // scored beat by beat (merge off) the short gaps win: no alert
    let cfg = d.path().join("merge0.toml");
    std::fs::write(&cfg, "[beacon]\nmerge_fraction = 0\n").unwrap();
    let a = replay(&p, &["--config", cfg.to_str().unwrap()]);
    assert!(beacons_to(&a, "203.0.113.140").is_empty(), "{a:#?}");
}

/// Class 3: an infostealer's upload right after infection, within the
/// host's first hour in view: ~300 KB in one ~8 s raw TCP session (no TLS,
/// no HTTP) to an odd high port, ~19:1 up to down. A raw TCP session that
/// mostly downloads, at the same time from another young host, stays quiet.
#[test]
fn stealer_upload_in_the_hosts_first_hour_alerts() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let (victim, other) = ([10, 0, 0, 41], [10, 0, 0, 42]);
    let mut recs = Vec::new();
    // both hosts are seen browsing from the capture start
    for (i, h) in [victim, other].into_iter().enumerate() {
        let site = [93, 184, 216, 34 + u8::try_from(i).unwrap()];
        recs.extend(tcp_conn(t0, h, 50_000, site, 443, 600, 40_000));
    }
    // five minutes later: the upload, in segments over ~8 s
    let (c2, port, cp) = ([45, 137, 22, 9], 6677, 50_321);
    let mut t = t0 + 300 * S;
    recs.push(rec(t, tcp(victim, cp, c2, port, "S", &[])));
    recs.push(rec(t + 60_000, tcp(c2, port, victim, cp, "SA", &[])));
    recs.push(rec(t + 120_000, tcp(victim, cp, c2, port, "A", &[])));
    for k in 0..24 {
        t += 330_000;
        let (f, w) = tcp_big(victim, cp, c2, port, 12_800);
        recs.push((t, f, w));
        if k % 3 == 0 {
            recs.push(rec(
                t + 60_000,
                tcp(c2, port, victim, cp, "AP", &[0x41; 700]),
            ));
        }
    }
    recs.push(rec(t + 100_000, tcp(victim, cp, c2, port, "FA", &[])));
    recs.push(rec(t + 160_000, tcp(c2, port, victim, cp, "FA", &[])));
    recs.push(rec(t + 220_000, tcp(victim, cp, c2, port, "A", &[])));
    // the look-alike: a game client's raw TCP session that mostly downloads
    recs.extend(tcp_conn(
        t0 + 300 * S,
        other,
        50_400,
        [185, 60, 112, 7],
        7777,
        90_000,
        400_000,
    ));
    let p = write(d.path(), "stealer.pcap", recs);
    let a = replay(&p, &[]);
    let x: Vec<_> = a.iter().filter(|x| x.detector == "exfil").collect();
    assert_eq!(x.len(), 1, "{a:#?}");
    assert_eq!(
        (x[0].src_ip.as_str(), x[0].dest_ip.as_str()),
        ("10.0.0.41", "45.137.22.9")
    );
    let e: ExfilEvidence = x[0].evidence_as();
    assert_eq!(e.channel.as_deref(), Some("raw_tcp"));
}

/// The opening of a TCP session `c` -> `s` at `t0`: handshake and, when
/// `hello` is not empty, the client's first record (answered 40 ms later).
fn opening(t0: u64, (c, cp): ([u8; 4], u16), (s, sp): ([u8; 4], u16), hello: &[u8]) -> Vec<Rec> {
    let mut v = vec![
        rec(t0, tcp(c, cp, s, sp, "S", &[])),
        rec(t0 + 20_000, tcp(s, sp, c, cp, "SA", &[])),
        rec(t0 + 40_000, tcp(c, cp, s, sp, "A", &[])),
    ];
    if !hello.is_empty() {
        v.push(rec(t0 + 50_000, tcp(c, cp, s, sp, "AP", hello)));
        v.push(rec(t0 + 90_000, tcp(s, sp, c, cp, "AP", &[0x16; 1400])));
    }
    v
}

/// An exchange inside a session at `t`: `first` sends `a` bytes, the other
/// side answers `b` bytes 40 ms later (none when `b` is 0).
fn exchange(t: u64, first: ([u8; 4], u16), other: ([u8; 4], u16), a: usize, b: usize) -> Vec<Rec> {
    let mut v = vec![rec(
        t,
        tcp(first.0, first.1, other.0, other.1, "AP", &vec![0x17; a]),
    )];
    if b > 0 {
        v.push(rec(
            t + 40_000,
            tcp(other.0, other.1, first.0, first.1, "AP", &vec![0x17; b]),
        ));
    }
    v
}

fn secs(x: f64) -> u64 {
    (x * S as f64) as u64
}

fn config(d: &Path, name: &str, text: &str) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn period_of(a: &Alert) -> f64 {
    let e: BeaconEvidence = a.evidence_as();
    e.period_s
}

/// Class 1: a RAT's heartbeat every 13 s on an exact grid inside one TLS
/// session for ten minutes, with extras: a follow-up record 1-1.3 s after a
/// third of the beats and operator exchanges (the server's command, the
/// host's answer) between beats: about a third of the bursts are extras.
/// Scored against the grid it alerts with its period; `beacon.grid = false`
/// (consecutive gaps only, as before) does not. Look-alikes that stay
/// quiet: a chat client whose keep-alive runs 13 s after the last message
/// (the timer restarts on traffic), and a video stream whose segment
/// fetches follow the download times.
#[test]
fn heartbeat_on_a_grid_with_extras_alerts() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut r = Rng(0x61d);
    let mut recs = Vec::new();
    // the RAT
    let (h, c2) = (([10, 0, 0, 51], 50_200), ([198, 51, 100, 51], 443));
    recs.extend(opening(
        t0,
        h,
        c2,
        &deguchi_synth::packets::client_hello("api.telemetry-edge.example", 1),
    ));
    let (mut beats, mut extras) = (0, 0);
    let mut next_op = 20.0;
    for i in 0..46 {
        let t = 5.0 + f64::from(i) * 13.0 + 0.05 * r.f();
        recs.extend(exchange(t0 + secs(t), h, c2, 90, 60));
        beats += 1;
        if r.f() < 0.35 {
            recs.extend(exchange(t0 + secs(t + 1.0 + 0.3 * r.f()), h, c2, 600, 90));
            extras += 1;
        }
        while next_op < t + 13.0 {
            if next_op > t + 2.5 && next_op < t + 11.5 {
                let cmd = 200 + (r.f() * 1500.0) as usize;
                let ans = 300 + (r.f() * 8000.0) as usize;
                recs.extend(exchange(t0 + secs(next_op), c2, h, cmd, ans));
                extras += 1;
            }
            next_op += -40.0 * (1.0 - r.f()).ln();
        }
    }
    assert!(
        extras * 4 >= beats + extras,
        "{extras} extras, {beats} beats"
    );
    // a chat client: messages at random, a ping 13 s after the last one
    let (h2, chat) = (([10, 0, 0, 52], 50_210), ([198, 51, 100, 52], 443));
    recs.extend(opening(
        t0,
        h2,
        chat,
        &deguchi_synth::packets::client_hello("ws.example-messenger.com", 2),
    ));
    let (mut t, mut next_msg) = (5.0, 5.0 - 10.0 * (1.0 - r.f()).ln());
    while t < 600.0 {
        if next_msg - t < 13.0 {
            t = next_msg.max(t + 1.5);
            next_msg = t - 10.0 * (1.0 - r.f()).ln();
            let (a, b) = (
                100 + (r.f() * 900.0) as usize,
                100 + (r.f() * 900.0) as usize,
            );
            if r.f() < 0.5 {
                recs.extend(exchange(t0 + secs(t), h2, chat, a, b));
            } else {
                recs.extend(exchange(t0 + secs(t), chat, h2, a, b));
            }
        } else {
            t += 13.0;
            recs.extend(exchange(t0 + secs(t), h2, chat, 40, 40));
        }
    }
    // a video stream: the next segment is fetched when the last one is in
    // (1-5 s at the link's varying throughput) and the buffer has room
    let (h3, cdn) = (([10, 0, 0, 53], 50_220), ([198, 51, 100, 53], 443));
    recs.extend(opening(
        t0,
        h3,
        cdn,
        &deguchi_synth::packets::client_hello("edge-17.video-cdn.example", 3),
    ));
    let mut t = 5.0;
    while t < 600.0 {
        let dl = 1.0 + 4.0 * r.f();
        recs.extend(exchange(t0 + secs(t), h3, cdn, 600, 1400));
        let mut x = t + 0.3;
        while x < t + dl {
            recs.push(rec(
                t0 + secs(x),
                tcp(cdn.0, cdn.1, h3.0, h3.1, "AP", &[0x17; 1400]),
            ));
            x += 0.3;
        }
        // the buffer's room comes with playback and throughput; now and
        // then the viewer pauses or seeks
        t += dl + 1.2 - 4.0 * (1.0 - r.f()).ln();
        if r.f() < 0.1 {
            t += 20.0 + 40.0 * r.f();
        }
    }
    let p = write(d.path(), "grid.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "198.51.100.51");
    assert!(!b.is_empty(), "{a:#?}");
    assert_eq!(b[0].src_ip, "10.0.0.51");
    assert!((11.7..14.3).contains(&period_of(b[0])), "{:?}", b[0]);
    assert_eq!(b[0].evidence["model"], "grid");
    assert!(beacons_to(&a, "198.51.100.52").is_empty(), "chat: {a:#?}");
    assert!(beacons_to(&a, "198.51.100.53").is_empty(), "video: {a:#?}");
    let off = config(d.path(), "grid-off.toml", "[beacon]\ngrid = false\n");
    let a = replay(&p, &["--config", off.to_str().unwrap()]);
    assert!(beacons_to(&a, "198.51.100.51").is_empty(), "{a:#?}");
}

/// Class 2: two idle RAT sessions to one server's port 80 held open for
/// three hours by 1-byte keep-alive probes every 180 s, 48 s out of phase
/// (merged into one pair series their gaps alternate 132/48 s). Each
/// session's probes are a series of their own: an alert with the 180 s
/// period; none with `beacon.keepalive_probes = false` (0-1 byte segments
/// are not activity, as before). Quiet: an inbound SSH session's
/// keep-alives, and OS keep-alives on sessions to a destination six hosts
/// use (popular), and a device's log-sink sessions renewed every half hour
/// (`beacon.keepalive_min_span_s`, an hour).
#[test]
fn idle_sessions_held_by_keepalives_alert() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut recs = Vec::new();
    let srv = ([203, 0, 113, 61], 80);
    for (k, port) in [(0u64, 49_700u16), (1, 49_701)] {
        let h = ([10, 0, 0, 61], port);
        let start = t0 + k * 48 * S;
        recs.extend(opening(
            start,
            h,
            srv,
            b"GET /ping HTTP/1.1\r\nHost: 203.0.113.61\r\n\r\n",
        ));
        for i in 1..=60u64 {
            let t = start + i * 180 * S;
            recs.push(rec(t, tcp(h.0, h.1, srv.0, srv.1, "A", &[0])));
            recs.push(rec(t + 30_000, tcp(srv.0, srv.1, h.0, h.1, "A", &[])));
        }
    }
    // an inbound SSH session: the internal server's keep-alives
    let (ssh, cli) = (([10, 0, 0, 5], 22), ([198, 51, 100, 62], 51_000));
    recs.extend(opening(t0, cli, ssh, b"SSH-2.0-OpenSSH_9.6\r\n"));
    for i in 1..=120u64 {
        let t = t0 + i * 90 * S;
        recs.push(rec(t, tcp(ssh.0, ssh.1, cli.0, cli.1, "A", &[])));
        recs.push(rec(t + 30_000, tcp(cli.0, cli.1, ssh.0, ssh.1, "A", &[])));
    }
    // the same, open before capture start (no handshake in view; the
    // first packet is the server's probe): oriented by its ports, inbound
    let (ssh2, cli2) = (([10, 0, 0, 6], 22), ([198, 51, 100, 66], 52_000));
    for i in 0..120u64 {
        let t = t0 + 5 * S + i * 90 * S;
        recs.push(rec(t, tcp(ssh2.0, ssh2.1, cli2.0, cli2.1, "A", &[])));
        recs.push(rec(
            t + 30_000,
            tcp(cli2.0, cli2.1, ssh2.0, ssh2.1, "A", &[]),
        ));
    }
    // six hosts' long-lived sessions to one sync service with OS
    // keep-alives every 45 s
    let sync = ([198, 51, 100, 63], 443);
    for k in 0..6u8 {
        let h = ([10, 0, 1, 10 + k], 50_300);
        let start = t0 + u64::from(k) * 7 * S;
        recs.extend(opening(
            start,
            h,
            sync,
            &deguchi_synth::packets::client_hello("sync.example-cloud.com", u64::from(k)),
        ));
        for i in 1..=200u64 {
            let t = start + i * 45 * S;
            recs.push(rec(t, tcp(h.0, h.1, sync.0, sync.1, "A", &[])));
            recs.push(rec(t + 30_000, tcp(sync.0, sync.1, h.0, h.1, "A", &[])));
        }
    }
    // an IoT device's log sink: one host, sessions renewed every 10-30 min,
    // each held open by keep-alives every 60 s (as the Nest capture shows)
    let sink = ([198, 51, 100, 64], 11_095);
    let (mut start, mut r) = (t0, Rng(0x4e57));
    for k in 0..6u16 {
        let h = ([10, 0, 2, 20], 50_400 + k);
        recs.extend(opening(start, h, sink, &[0x17; 62]));
        let probes = 10 + r.next() % 20;
        for i in 1..=probes {
            let t = start + i * 60 * S;
            recs.push(rec(t, tcp(h.0, h.1, sink.0, sink.1, "A", &[0])));
            recs.push(rec(t + 30_000, tcp(sink.0, sink.1, h.0, h.1, "A", &[])));
        }
        let end = start + probes * 60 * S + 20 * S;
        start = end + S;
        recs.push(rec(end, tcp(h.0, h.1, sink.0, sink.1, "FA", &[])));
        recs.push(rec(end + 30_000, tcp(sink.0, sink.1, h.0, h.1, "FA", &[])));
    }
    let p = write(d.path(), "keepalive.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.61");
    assert_eq!(b.len(), 1, "one alert for the pair: {a:#?}");
    assert_eq!(b[0].src_ip, "10.0.0.61");
    assert_eq!(b[0].dest_port, Some(80));
    assert!((162.0..198.0).contains(&period_of(b[0])), "{:?}", b[0]);
    assert!(beacons_to(&a, "198.51.100.62").is_empty(), "ssh: {a:#?}");
    assert!(
        a.iter()
            .all(|x| x.dest_ip != "10.0.0.5" && x.src_ip != "10.0.0.5"),
        "ssh: {a:#?}"
    );
    assert!(beacons_to(&a, "198.51.100.63").is_empty(), "sync: {a:#?}");
    assert!(beacons_to(&a, "198.51.100.64").is_empty(), "sink: {a:#?}");
    assert!(
        a.iter()
            .all(|x| x.dest_ip != "10.0.0.6" && x.src_ip != "10.0.0.6"),
        "ssh open before capture: {a:#?}"
    );
    let off = config(
        d.path(),
        "ka-off.toml",
        "[beacon]\nkeepalive_probes = false\n",
    );
    let a = replay(&p, &["--config", off.to_str().unwrap()]);
    assert!(beacons_to(&a, "203.0.113.61").is_empty(), "{a:#?}");
}

/// Class 2, with payload: two sessions of one host to one server's port
/// each carrying a 40-byte heartbeat every 180 s (+0-20 s), 48 s out of
/// phase, for three hours. The pair's series alternates ~132/48 s gaps; per
/// session (`beacon.per_session`) each is a 180 s beacon: one alert for the
/// pair within a few beats; with the setting off the pair's series alone
/// alerts much later, if at all.
#[test]
fn two_sessions_out_of_phase_are_scored_per_session() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut r = Rng(0x2e55);
    let mut recs = Vec::new();
    let srv = ([203, 0, 113, 65], 80);
    for (k, port) in [(0u64, 49_800u16), (1, 49_801)] {
        let h = ([10, 0, 0, 65], port);
        let start = t0 + k * 48 * S;
        recs.extend(opening(
            start,
            h,
            srv,
            b"GET /c HTTP/1.1\r\nHost: 203.0.113.65\r\n\r\n",
        ));
        for i in 1..=60u64 {
            let t = start + i * 180 * S + (r.f() * 20.0 * S as f64) as u64;
            recs.extend(exchange(t, h, srv, 40, 40));
        }
    }
    let p = write(d.path(), "two-sessions.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.65");
    assert_eq!(b.len(), 1, "one alert for the pair: {a:#?}");
    assert!((162.0..198.0).contains(&period_of(b[0])), "{:?}", b[0]);
    assert_eq!(b[0].evidence["series"], "session");
    let e: BeaconEvidence = b[0].evidence_as();
    assert!(e.beats <= 10, "{e:?}");
    // off: the pair's series alone; the grid model finds the 180 s grid
    // among the other session's beats only after ~50 beats (with the grid
    // off too, as before, a ~66 s "period" after 64)
    let off = config(d.path(), "ps-off.toml", "[beacon]\nper_session = false\n");
    let a = replay(&p, &["--config", off.to_str().unwrap()]);
    for x in beacons_to(&a, "203.0.113.65") {
        assert!(x.evidence.get("series").is_none(), "{x:?}");
        let e: BeaconEvidence = x.evidence_as();
        assert!(e.beats > 30, "{e:?}");
    }
}

/// Class 5: IRC-style C2 in a chatty session: for 24 minutes the server
/// talks constantly (channel traffic every few seconds) and sends a PING
/// every 90 s that the bot answers with an 18-byte PONG. The bursts the
/// server started in which the host sent nothing are not the host's beats;
/// its PONGs are, at 90 s: an alert; none with
/// `beacon.own_bursts_only = false`. Quiet: a server pushing a heartbeat
/// every 30 s on a session in which the host only acknowledges.
#[test]
fn irc_pongs_in_a_chatty_session_alert() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut r = Rng(0x1cc);
    let mut recs = Vec::new();
    let (h, irc) = (([10, 0, 0, 71], 50_500), ([203, 0, 113, 71], 6667));
    recs.extend(opening(
        t0,
        h,
        irc,
        b"NICK bot4711\r\nUSER bot4711 0 * :x\r\n",
    ));
    let mut t = 3.0;
    while t < 24.0 * 60.0 {
        let n = 60 + (r.f() * 400.0) as usize;
        recs.push(rec(
            t0 + secs(t),
            tcp(irc.0, irc.1, h.0, h.1, "AP", &vec![0x3a; n]),
        ));
        t += 0.3 - 4.0 * (1.0 - r.f()).ln();
    }
    for i in 1..=16u64 {
        let t = t0 + i * 90 * S + 5 * S;
        recs.push(rec(
            t,
            tcp(irc.0, irc.1, h.0, h.1, "AP", b"PING :irc.example.net\r\n"),
        ));
        recs.push(rec(
            t + 25_000,
            tcp(
                h.0,
                h.1,
                irc.0,
                irc.1,
                "AP",
                b"PONG :irc.example\r\n"[..18].as_ref(),
            ),
        ));
    }
    // the look-alike: a server heartbeat the host only acknowledges
    let (h2, push) = (([10, 0, 0, 72], 50_510), ([203, 0, 113, 72], 8443));
    recs.extend(opening(
        t0,
        h2,
        push,
        b"GET /events HTTP/1.1\r\nHost: feed.example\r\n\r\n",
    ));
    for i in 1..=48u64 {
        let t = t0 + i * 30 * S;
        recs.push(rec(
            t,
            tcp(push.0, push.1, h2.0, h2.1, "AP", b"event: hb\n\n"),
        ));
        recs.push(rec(t + 30_000, tcp(h2.0, h2.1, push.0, push.1, "A", &[])));
    }
    let p = write(d.path(), "irc.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.71");
    assert!(!b.is_empty(), "{a:#?}");
    assert_eq!(b[0].src_ip, "10.0.0.71");
    assert!((81.0..99.0).contains(&period_of(b[0])), "{:?}", b[0]);
    assert!(
        beacons_to(&a, "203.0.113.72").is_empty(),
        "server heartbeat: {a:#?}"
    );
    let off = config(
        d.path(),
        "own-off.toml",
        "[beacon]\nown_bursts_only = false\n",
    );
    let a = replay(&p, &["--config", off.to_str().unwrap()]);
    assert!(beacons_to(&a, "203.0.113.71").is_empty(), "{a:#?}");
}

/// Class 6: Empire-style HTTP polling with ±80 % jitter around 8 s
/// (intervals 1.6-14.4 s), one connection per poll, for 25 minutes (~190
/// polls) from one host to one rare destination: the high-jitter model
/// alerts with the period; with `beacon.high_jitter_min_beats = 0` (as
/// before) the first alert, if any, comes later with half the period.
/// Quiet: the same number of connections from another host to another rare
/// destination at random (Poisson) times.
#[test]
fn high_jitter_polling_over_many_beats_alerts() {
    let d = tempfile::tempdir().unwrap();
    let t0 = T0 + 9 * 3600 * S;
    let mut r = Rng(0xe3b);
    let mut recs = Vec::new();
    let (h, c2) = ([10, 0, 0, 81], [203, 0, 113, 81]);
    let (mut t, mut n) = (5.0, 0u16);
    while t < 1500.0 {
        // the profile's URIs and cookies vary the request; the answer's
        // padding varies too
        let (up, down) = (
            300 + (r.f() * 400.0) as usize,
            200 + (r.f() * 2800.0) as usize,
        );
        recs.extend(tcp_conn(t0 + secs(t), h, 49_000 + n, c2, 80, up, down));
        t += 8.0 * (1.0 + 0.8 * (2.0 * r.f() - 1.0));
        n += 1;
    }
    let (h2, site) = ([10, 0, 0, 82], [203, 0, 113, 82]);
    let mut t = 5.0;
    for k in 0..n {
        recs.extend(tcp_conn(t0 + secs(t), h2, 49_000 + k, site, 80, 420, 2600));
        t += 1.0 - 7.0 * (1.0 - r.f()).ln();
    }
    let p = write(d.path(), "empire.pcap", recs);
    let a = replay(&p, &[]);
    let b = beacons_to(&a, "203.0.113.81");
    assert!(!b.is_empty(), "{n} polls: {a:#?}");
    assert_eq!(b[0].src_ip, "10.0.0.81");
    assert!((7.2..8.8).contains(&period_of(b[0])), "{:?}", b[0]);
    assert_eq!(b[0].evidence["model"], "high_jitter");
    assert!(beacons_to(&a, "203.0.113.82").is_empty(), "poisson: {a:#?}");
    // off: the main model may see a half period late (a "beat" every ~4 s
    // with most missed), not the period
    let off = config(
        d.path(),
        "hj-off.toml",
        "[beacon]\nhigh_jitter_min_beats = 0\n",
    );
    let a = replay(&p, &["--config", off.to_str().unwrap()]);
    let b = beacons_to(&a, "203.0.113.81");
    assert!(
        b.first()
            .is_none_or(|x| !(7.2..8.8).contains(&period_of(x))),
        "{a:#?}"
    );
}

/// Class 2's look-alike in the shared captures: a Nest device keeps its
/// log-sink sessions (tcp/11095) open with keep-alives every 60 s and renews
/// them every ~30 min: no beacon.
#[test]
fn nest_log_sink_keepalives_are_not_a_beacon() {
    let Some(p) = real_capture("ndpi__nest_log_sink.pcap") else {
        eprintln!("shared capture not present: skipped");
        return;
    };
    let a = replay(&p, &[]);
    assert!(a.iter().all(|x| x.detector != "beacon"), "{a:#?}");
}
