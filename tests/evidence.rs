//! `--evidence DIR`: an alert on a replayed capture names a pcap in its
//! evidence, and tshark reads that pcap as the alerted flow's packets.
//! tshark is required when `DEGUCHI_REQUIRE_TSHARK=1` (CI); skipped otherwise
//! when it is not installed.

mod common;
use common::{deguchi, parse_alert, tshark_available};
use std::process::Command;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap");

/// `deguchi replay` of the sample with `-o <tmp>/alerts.json --evidence
/// <tmp>/ev`: the directory (kept while the first value lives), the
/// evidence directory, the alerts file and the run's output.
fn replay_sample_with_evidence() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::process::Output,
) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ev");
    let out = d.path().join("alerts.json");
    let o = deguchi(&[
        "replay",
        SAMPLE,
        "-o",
        out.to_str().unwrap(),
        "--evidence",
        dir.to_str().unwrap(),
    ]);
    (d, dir, out, o)
}

#[test]
fn alerted_flow_packets_are_written_as_pcap() {
    if !tshark_available() {
        return;
    }
    let (_d, dir, out, o) = replay_sample_with_evidence();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("deguchi: evidence: "), "{err}");
    // the same alerts as without --evidence, but for evidence.pcap
    let plain = deguchi(&["replay", SAMPLE]);
    let text = std::fs::read_to_string(&out).unwrap();
    let alerts: Vec<_> = text.lines().map(parse_alert).collect();
    let plain: Vec<_> = String::from_utf8_lossy(&plain.stdout)
        .lines()
        .map(parse_alert)
        .collect();
    assert!(!alerts.is_empty(), "the sample yields alerts");
    assert_eq!(alerts.len(), plain.len());
    let mut checked = 0;
    for (a, p) in alerts.iter().zip(&plain) {
        let mut stripped = a.clone();
        let pcap = stripped
            .evidence
            .remove("pcap")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("evidence.pcap in {a:?}"));
        assert_eq!(&stripped, p);
        assert!(pcap.starts_with(dir.to_str().unwrap()), "{pcap}");
        if !std::path::Path::new(&pcap).exists() {
            continue;
        }
        let t = Command::new("tshark")
            .args(["-r", &pcap, "-T", "fields", "-E", "separator=,"])
            .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto"])
            .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
            .args(["-e", "udp.srcport", "-e", "udp.dstport"])
            .output()
            .unwrap();
        assert!(t.status.success(), "{pcap}: {t:?}");
        let rows = String::from_utf8_lossy(&t.stdout).to_string();
        assert!(!rows.trim().is_empty(), "{pcap}: no packets");
        for row in rows.lines() {
            let f: Vec<&str> = row.split(',').collect();
            let (src, dst, proto) = (f[0], f[1], f[2]);
            let port = |i: usize| {
                let v = if f[i].is_empty() { f[i + 2] } else { f[i] };
                v.parse::<u16>().ok()
            };
            let (sp, dp) = (port(3), port(4));
            let fwd = src == a.src_ip
                && dst == a.dest_ip
                && a.src_port.is_none_or(|p| sp == Some(p))
                && a.dest_port.is_none_or(|p| dp == Some(p));
            let rev = src == a.dest_ip
                && dst == a.src_ip
                && a.src_port.is_none_or(|p| dp == Some(p))
                && a.dest_port.is_none_or(|p| sp == Some(p));
            assert!(fwd || rev, "{pcap}: packet {row} is not the flow of {a:?}");
            let want = match a.proto.as_str() {
                "TCP" => "6",
                "UDP" => "17",
                _ => proto,
            };
            assert_eq!(proto, want, "{pcap}: {row}");
        }
        checked += 1;
    }
    assert!(
        checked > 0,
        "at least one alert's pcap was written and read"
    );
}

/// A packet as tshark reads it: (epoch seconds as printed, src, dst, src
/// port, dst port).
type Row = (String, String, String, Option<u16>, Option<u16>);

/// The packets of a capture as tshark reads them.
fn tshark_rows(pcap: &str) -> Vec<Row> {
    let t = Command::new("tshark")
        .args(["-r", pcap, "-T", "fields", "-E", "separator=,"])
        .args(["-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-e", "udp.srcport", "-e", "udp.dstport"])
        .output()
        .unwrap();
    assert!(t.status.success(), "{pcap}: {t:?}");
    String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(|row| {
            let f: Vec<&str> = row.split(',').collect();
            let port = |i: usize| {
                let v = if f[i].is_empty() { f[i + 2] } else { f[i] };
                v.parse::<u16>().ok()
            };
            (
                f[0].to_owned(),
                f[1].to_owned(),
                f[2].to_owned(),
                port(3),
                port(4),
            )
        })
        .collect()
}

/// Replay: each alert's pcap holds its flow's last 64 packets up to the
/// alert's time and its next 64 after it (the `[evidence]` defaults),
/// exactly as the input has them, though the shards had gone past the flow
/// when the alert came.
#[test]
fn replay_evidence_holds_packets_before_and_after_the_alert() {
    if !tshark_available() {
        return;
    }
    let (_d, _, out, o) = replay_sample_with_evidence();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all = tshark_rows(SAMPLE);
    let secs = |s: &str| -> f64 { s.parse().unwrap() };
    let mut with_after = 0;
    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen = std::collections::HashSet::new();
    for a in text.lines().map(parse_alert) {
        let pcap = a.evidence["pcap"].as_str().unwrap().to_owned();
        if !seen.insert(pcap.clone()) {
            continue; // a second alert naming the same file: the first decides
        }
        let at = common::eve_time(&a.timestamp).timestamp_micros() as f64 / 1e6;
        let of_flow = |r: &&Row| {
            let fwd = r.1 == a.src_ip
                && r.2 == a.dest_ip
                && a.src_port.is_none_or(|p| r.3 == Some(p))
                && a.dest_port.is_none_or(|p| r.4 == Some(p));
            let rev = r.1 == a.dest_ip
                && r.2 == a.src_ip
                && a.src_port.is_none_or(|p| r.4 == Some(p))
                && a.dest_port.is_none_or(|p| r.3 == Some(p));
            fwd || rev
        };
        let flow: Vec<_> = all.iter().filter(of_flow).collect();
        let before = flow.iter().filter(|r| secs(&r.0) <= at + 1e-7).count();
        let after = flow.len() - before;
        let got = tshark_rows(&pcap);
        assert!(
            got.iter().all(|r| of_flow(&r)),
            "{pcap}: another flow's packet"
        );
        let got_before = got.iter().filter(|r| secs(&r.0) <= at + 1e-7).count();
        let got_after = got.len() - got_before;
        assert_eq!(
            got_before,
            before.min(64),
            "{pcap}: packets up to the alert"
        );
        assert_eq!(got_after, after.min(64), "{pcap}: packets after the alert");
        // and they are the flow's packets next to the alert, in order
        let want: Vec<&String> = flow
            .iter()
            .skip(before - before.min(64))
            .take(before.min(64) + after.min(64))
            .map(|r| &r.0)
            .collect();
        let have: Vec<&String> = got.iter().map(|r| &r.0).collect();
        assert_eq!(have, want, "{pcap}");
        if got_after > 0 {
            with_after += 1;
        }
    }
    assert!(
        with_after > 0,
        "an alert of the sample has packets after it (the exfil upload goes on)"
    );
}
