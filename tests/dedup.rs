//! SPAN duplicate removal (`capture.dedup_window_ms`): a capture in which
//! every packet arrives twice, microseconds apart (a mirror port copying
//! both directions of a switch port), gives the same flows as the capture
//! without the copies; the copies are counted in the summary and in the
//! stats event's `deguchi.packets_duplicate`. Packets that are byte-equal
//! but further apart than the window (a retransmitted datagram) are kept.

mod common;
use common::{T0, deguchi, pcap_bytes, read_flows, tcp_exchange, udp};

/// Sessions and datagrams, each packet's bytes distinct, plus one datagram
/// sent again 50 ms later (equal bytes, outside the window).
fn traffic() -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    for i in 0..20u16 {
        let payloads: Vec<Vec<u8>> = (0..5u8)
            .map(|k| vec![k + 1; 100 + usize::from(i)])
            .collect();
        v.extend(tcp_exchange(
            T0 + u64::from(i) * 700,
            ([10, 0, 0, 5], 40_000 + i),
            ([93, 184, 216, 34], 443),
            &payloads,
        ));
    }
    for i in 0..50u8 {
        v.push((
            T0 + u64::from(i) * 300,
            udp([10, 0, 0, 7], 5353, [198, 51, 100, 9], 53, &[i; 40]),
        ));
    }
    let again = udp([10, 0, 0, 7], 5000, [198, 51, 100, 9], 9999, b"same bytes");
    v.push((T0, again.clone()));
    v.push((T0 + 50_000, again));
    v.sort_by_key(|(t, _)| *t);
    v
}

fn tuples(p: &std::path::Path) -> Vec<String> {
    let mut t: Vec<String> = read_flows(p)
        .iter()
        .map(|f| {
            format!(
                "{} {}:{:?} {}:{:?} {} {} {} {}",
                f.proto,
                f.src_ip,
                f.src_port,
                f.dest_ip,
                f.dest_port,
                f.flow.pkts_toserver,
                f.flow.pkts_toclient,
                f.flow.bytes_toserver,
                f.flow.bytes_toclient
            )
        })
        .collect();
    t.sort();
    t
}

#[test]
fn span_duplicates_removed_counts_equal_the_file_without_them() {
    let d = tempfile::tempdir().unwrap();
    let clean = traffic();
    let mut doubled = Vec::new();
    for (t, f) in &clean {
        doubled.push((*t, f.clone()));
        doubled.push((*t + 2, f.clone()));
    }
    let (pc, pd) = (d.path().join("clean.pcap"), d.path().join("dup.pcap"));
    std::fs::write(&pc, pcap_bytes(&clean)).unwrap();
    std::fs::write(&pd, pcap_bytes(&doubled)).unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[capture]\ndedup_window_ms = 1\n[output]\nstats_interval = 1\n",
    )
    .unwrap();
    let run = |pcap: &std::path::Path, name: &str, config: bool| {
        let flows = d.path().join(format!("{name}.flows.json"));
        let alerts = d.path().join(format!("{name}.alerts.json"));
        let mut args = vec![
            "replay".to_owned(),
            pcap.display().to_string(),
            "--flows".into(),
            flows.display().to_string(),
            "-o".into(),
            alerts.display().to_string(),
        ];
        if config {
            args.extend(["--config".into(), cfg.display().to_string()]);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = deguchi(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (
            tuples(&flows),
            String::from_utf8_lossy(&o.stderr).into_owned(),
            std::fs::read_to_string(&alerts).unwrap(),
        )
    };
    let (want, _, _) = run(&pc, "clean", false);
    let (got, log, alerts) = run(&pd, "dedup", true);
    let (doubled_flows, _, _) = run(&pd, "nodedup", false);
    assert_eq!(want.len(), 22, "{want:?}");
    assert_eq!(got, want, "{log}");
    assert_ne!(doubled_flows, want, "without removal every count doubles");
    let n = clean.len();
    assert!(
        log.contains(&format!("SPAN duplicates removed={n}")),
        "{n} copies counted:\n{log}"
    );
    // the copy of the clean file, also with removal on: nothing removed
    let (same, log2, _) = run(&pc, "clean_dedup", true);
    assert_eq!(same, want);
    assert!(!log2.contains("SPAN duplicates removed"), "{log2}");
    // the stats event at exit carries the count
    let stats: serde_json::Value = alerts
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|v| v["event_type"] == "stats")
        .unwrap_or_else(|| panic!("a stats event:\n{alerts}"));
    assert_eq!(
        stats["deguchi"]["packets_duplicate"],
        serde_json::json!(n),
        "{stats}"
    );
}
