//! `--evidence DIR`: an alert on a replayed capture names a pcap in its
//! evidence, and tshark reads that pcap as the alerted flow's packets.
//! tshark is required when `DEGUCHI_REQUIRE_TSHARK=1` (CI); skipped otherwise
//! when it is not installed.

mod common;
use common::{deguchi, parse_alert, tshark_available};
use std::process::Command;

#[test]
fn alerted_flow_packets_are_written_as_pcap() {
    if !tshark_available() {
        return;
    }
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap");
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("ev");
    let out = d.path().join("alerts.json");
    let o = deguchi(&[
        "replay",
        sample,
        "-o",
        out.to_str().unwrap(),
        "--evidence",
        dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("deguchi: evidence: "), "{err}");
    // the same alerts as without --evidence, but for evidence.pcap
    let plain = deguchi(&["replay", sample]);
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
