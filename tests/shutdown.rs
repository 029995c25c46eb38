//! SIGTERM while a replay waits on stdin: exit 0, every line whole, and no
//! alert or flow record lost.
//!
//! Deterministic: the test feeds a known capture through stdin (`replay -`)
//! and keeps stdin open, so the replay cannot end by itself; it waits until
//! the sensor has demonstrably read and processed all of it (the record of a
//! marker flow at its end, on stdout), and only then sends SIGTERM. The
//! output must equal, line for line, that of the same bytes replayed to
//! their end, and at least one alert must come out of the drain after the
//! signal: the capture ends in the middle of an upload whose closing exfil
//! alert only the drain writes.

mod common;
use common::{
    Alert, Flow, StdinReplay, clock_tick, parse_alert, parse_flow, pcap_records, read_pcap,
    tcp_exchange,
};
use std::process::Command;

/// 2026-03-02T10:15:10Z: the bundled sample is cut here, 10 s into its
/// 40 MiB upload (first exfil alert at 10:15:00; the connection still open).
const CUT_US: u64 = 1_772_446_510_000_000;
/// The marker flow after the cut: client, server (TEST-NET-1).
const MARKER_CLIENT: ([u8; 4], u16) = ([10, 0, 1, 250], 40000);
const MARKER_SERVER: ([u8; 4], u16) = ([192, 0, 2, 99], 9);

/// The sample up to [`CUT_US`]; then a short TCP session (the marker); then,
/// 30 s of packet time later, one UDP datagram that moves the packet clock
/// past the closed-flow timeout (10 s), so the marker's record is written
/// while the input is still open. Seeing that record means everything
/// before it was read and processed.
fn input() -> Vec<u8> {
    let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap")).unwrap();
    let whole = |(t, f): (u64, Vec<u8>)| {
        let w = u32::try_from(f.len()).unwrap();
        (t, f, w)
    };
    let mut recs: Vec<_> = read_pcap(&sample)
        .into_iter()
        .filter(|r| r.0 < CUT_US)
        .collect();
    recs.extend(
        tcp_exchange(CUT_US, MARKER_CLIENT, MARKER_SERVER, &[b"marker".to_vec()])
            .into_iter()
            .map(whole),
    );
    recs.push(clock_tick(CUT_US + 30_000_000));
    pcap_records(&recs)
}

fn is_marker(line: &str) -> bool {
    line.contains(r#""event_type":"flow""#) && {
        let f = parse_flow(line);
        f.proto == "TCP" && f.dest_ip == "192.0.2.99" && f.dest_port == Some(9)
    }
}

/// Output lines with what they parse to.
type Parsed<T> = Vec<(String, T)>;

/// Output lines, split and parsed: (alerts, flows), each sorted by its line
/// (the order of lines from different threads is not fixed).
fn split(lines: &[String]) -> (Parsed<Alert>, Parsed<Flow>) {
    let (mut alerts, mut flows) = (Vec::new(), Vec::new());
    for l in lines {
        if l.contains(r#""event_type":"alert""#) {
            alerts.push((l.clone(), parse_alert(l)));
        } else {
            flows.push((l.clone(), parse_flow(l)));
        }
    }
    alerts.sort_by(|a, b| a.0.cmp(&b.0));
    flows.sort_by(|a, b| a.0.cmp(&b.0));
    (alerts, flows)
}

#[test]
fn sigterm_on_open_stdin_loses_no_alert() {
    sigterm_case(&[]);
}

/// The same with the detectors split over two analysis threads.
#[test]
fn sigterm_on_open_stdin_with_analysis_lanes_loses_no_alert() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("lanes.toml");
    std::fs::write(&cfg, "[general]\nanalysis_threads = 2\n").unwrap();
    sigterm_case(&["--config", cfg.to_str().unwrap()]);
}

fn sigterm_case(extra: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let bytes = input();
    let file = d.path().join("cut.pcap");
    std::fs::write(&file, &bytes).unwrap();

    // the reference: the same bytes through stdin, to their end
    let full = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args(["replay", "-", "--workers", "1", "--flows", "-"])
        .args(extra)
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(full.status.success());
    let full_lines: Vec<String> = String::from_utf8(full.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let (want_alerts, want_flows) = split(&full_lines);
    assert!(
        want_alerts.iter().any(|(_, a)| a.detector == "exfil"),
        "{want_alerts:?}"
    );

    // the same bytes, stdin left open; SIGTERM once the marker is out
    let mut run = StdinReplay::start(extra, &bytes);
    run.wait_for_line(60, is_marker);
    let before = std::mem::take(&mut run.seen);
    let (status, err, after) = run.sigterm(15);
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}\n{err}");
    assert!(err.contains("stopped by signal"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let all: Vec<String> = before.iter().chain(&after).cloned().collect();
    let (got_alerts, got_flows) = split(&all);
    let drained = split(&after).0;
    assert!(
        !drained.is_empty(),
        "the open upload's alert comes from the drain, after the signal"
    );
    // nothing lost, nothing different: the same lines as the replay to the end
    assert_eq!(
        got_alerts.iter().map(|a| &a.0).collect::<Vec<_>>(),
        want_alerts.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    assert_eq!(
        got_flows.iter().map(|f| &f.0).collect::<Vec<_>>(),
        want_flows.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    eprintln!(
        "{} alerts ({} of them drained after SIGTERM), {} flow records",
        got_alerts.len(),
        drained.len(),
        got_flows.len()
    );
}
