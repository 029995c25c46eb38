//! `scripts/veth-harness.sh`: tcpreplay into one end of a veth pair in a
//! fresh network namespace, `deguchi live` on the other, with 1 and 2
//! capture threads (AF_PACKET fanout): every packet sent is received and
//! processed (no kernel drops, nothing shed), and the flow tuples (packets
//! and bytes per 5-tuple) equal `deguchi replay` of the same file.
//!
//! Needs root, iproute2, tcpreplay and jq; skips with a note without them,
//! unless DEGUCHI_REQUIRE_LIVE=1 (CI). Short: 30 000 packets at 100 kpps.

mod common;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn found(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn usable() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let missing: Vec<&str> = ["ip", "tcpreplay", "jq"]
        .into_iter()
        .filter(|b| !found(b))
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("DEGUCHI_REQUIRE_LIVE").is_none_or(|v| v == "0"),
        "the veth harness cannot run: root {root}, missing {missing:?}"
    );
    eprintln!("skipping: needs root, ip, tcpreplay and jq (root {root}, missing {missing:?})");
    false
}

fn harness(pcap: &Path, threads: usize) -> HashMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/veth-harness.sh");
    let o = Command::new("bash")
        .args([
            script,
            "-b",
            env!("CARGO_BIN_EXE_deguchi"),
            "-t",
            &threads.to_string(),
            "-r",
            "pps=100000",
            "-m",
            "9000",
        ])
        .arg(pcap)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "harness failed:\n{out}\n{err}");
    let line = out
        .lines()
        .rfind(|l| l.starts_with("tool="))
        .unwrap_or_else(|| panic!("no result line:\n{out}\n{err}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn veth_live_equals_replay_with_one_and_two_capture_threads() {
    if !usable() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("mix.pcap");
    let o = common::deguchi(&[
        "gen",
        "mix",
        "--packets",
        "30000",
        "-o",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for threads in [1, 2] {
        let r = harness(&pcap, threads);
        let get = |k: &str| r.get(k).map_or("?", String::as_str);
        assert_eq!(get("sent"), "30000", "{r:?}");
        assert_eq!(get("received"), get("sent"), "received = sent: {r:?}");
        assert_eq!(get("processed"), get("sent"), "{r:?}");
        assert_eq!(get("dropped_by_kernel"), "0", "{r:?}");
        assert_eq!(get("shed"), "0", "{r:?}");
        assert_eq!(get("tuples_equal"), "yes", "live tuples = replay's: {r:?}");
        // `gen mix` writes whole frames: the bytes are equal too
        assert_eq!(get("bytes_equal"), "yes", "{r:?}");
        assert_ne!(get("tuples_live"), "0", "{r:?}");
        if threads > 1 {
            // the fanout group spread the flows: every socket read some
            let parts: Vec<u64> = get("per_thread")
                .split('+')
                .map(|x| x.parse().unwrap())
                .collect();
            assert_eq!(parts.len(), threads, "{r:?}");
            assert!(parts.iter().all(|&p| p > 0), "{r:?}");
            assert_eq!(parts.iter().sum::<u64>(), 30_000, "{r:?}");
        }
    }
}
