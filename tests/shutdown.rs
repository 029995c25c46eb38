//! SIGTERM in the middle of a replay: exit 0, every line whole, and every
//! alert an uninterrupted run had produced up to that packet is written.

mod common;
use common::{deguchi, read_lines};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn key(a: &serde_json::Value) -> (String, String, String, String, u64) {
    (
        a["timestamp"].as_str().unwrap().to_owned(),
        a["detector"].as_str().unwrap().to_owned(),
        a["src_ip"].as_str().unwrap().to_owned(),
        a["dest_ip"].as_str().unwrap().to_owned(),
        a["dest_port"].as_u64().unwrap_or(0),
    )
}

#[test]
fn sigterm_mid_replay_loses_no_alert() {
    sigterm_case(&[]);
}

/// The same with the detectors split over two analysis threads.
#[test]
fn sigterm_mid_replay_with_analysis_lanes_loses_no_alert() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("lanes.toml");
    std::fs::write(&cfg, "[general]\nanalysis_threads = 2\n").unwrap();
    sigterm_case(&["--config", cfg.to_str().unwrap()]);
}

fn sigterm_case(extra: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("office.pcap");
    let o = deguchi(&[
        "gen",
        "office",
        "--hosts",
        "24",
        "--days",
        "1",
        "--seed",
        "5",
        "-o",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let p = pcap.to_str().unwrap();

    let t = Instant::now();
    let mut args = vec!["replay", p, "--workers", "1"];
    args.extend_from_slice(extra);
    let full = deguchi(&args);
    let wall = t.elapsed();
    assert!(full.status.success());
    let full_alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&full.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!full_alerts.is_empty());

    let flows = d.path().join("flows.json");
    let child = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args([
            "replay",
            p,
            "--workers",
            "1",
            "--flows",
            flows.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(wall.mul_f64(0.4).max(Duration::from_millis(100)));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit 0 after SIGTERM");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    // every line whole
    let got: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect();
    let recs = read_lines(&flows);
    if !err.contains("stopped by signal") {
        // the replay finished before the signal: same output
        assert_eq!(got.len(), full_alerts.len());
        return;
    }
    // how far it got: the latest packet any flow record saw
    let reached = recs
        .iter()
        .filter_map(|r| r["flow"]["end"].as_str())
        .max()
        .unwrap()
        .to_owned();
    let reached = common::eve_time(&reached);
    let have: BTreeSet<_> = got.iter().map(key).collect();
    let mut checked = 0;
    for a in &full_alerts {
        let ts = common::eve_time(a["timestamp"].as_str().unwrap());
        // an alert is concluded once its flows have ended: allow two minutes
        if ts < reached - chrono::Duration::seconds(120) {
            checked += 1;
            assert!(have.contains(&key(a)), "lost on SIGTERM: {a}");
        }
    }
    eprintln!(
        "interrupted at {reached}: {} of {} alerts were due and all written",
        checked,
        full_alerts.len()
    );
}
