//! Input handling: several files as one stream, stdin, and broken files
//! (an error naming the file and what is wrong, a non-zero exit, and every
//! record produced before the fault kept).

mod common;
use common::*;
use std::process::{Command, Stdio};

#[test]
fn several_files_are_one_stream() {
    let d = tempfile::tempdir().unwrap();
    let s = tcp_session(T0, 4);
    let (a, b) = s.split_at(4);
    let (pa, pb) = (d.path().join("a.pcap"), d.path().join("b.pcap"));
    std::fs::write(&pa, pcap_bytes(a)).unwrap();
    std::fs::write(&pb, pcap_bytes(b)).unwrap();
    let flows = d.path().join("flows.json");
    let o = deguchi(&[
        "replay",
        pa.to_str().unwrap(),
        pb.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = read_flows(&flows);
    assert_eq!(
        f.len(),
        1,
        "one session across two files is one flow: {f:?}"
    );
    let r = &f[0];
    assert_eq!(r.src_ip, "10.0.0.5");
    assert_eq!(r.src_port, Some(40000));
    assert_eq!(r.dest_ip, "93.184.216.34");
    assert_eq!(r.dest_port, Some(443));
    assert_eq!(r.proto, "TCP");
    assert_eq!(r.deguchi.direction, "outbound");
    assert_eq!(r.flow.pkts_toserver, 8);
    assert_eq!(r.flow.pkts_toclient, 2);
    assert_eq!(r.deguchi.payload_bytes_toserver, 400);
    assert_eq!(r.flow.state, "closed");
    assert_eq!(r.flow.reason, "timeout");
    assert_eq!(r.deguchi.end_reason, "closed");
    assert_eq!(r.flow.start, "2026-03-02T00:00:00.000000+0000");
    assert!(r.community_id.starts_with("1:"));
    let wire: u64 = s.iter().map(|(_, f)| f.len() as u64).sum();
    let got = r.flow.bytes_toserver + r.flow.bytes_toclient;
    assert_eq!(got, wire);
}

#[test]
fn stdin_is_read_with_dash() {
    let d = tempfile::tempdir().unwrap();
    let flows = d.path().join("flows.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args(["replay", "-", "--flows", flows.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&pcap_bytes(&tcp_session(T0, 2)))
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(flow_pkts(&read_flows(&flows)), 8);
}

fn broken(name: &str, bytes: &[u8], expect: &[&str]) -> (Vec<Flow>, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    let flows = d.path().join("flows.json");
    let o = deguchi(&[
        "replay",
        p.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(3), "{name}: {err}");
    assert!(err.contains(name), "{name}: error names the file: {err}");
    for e in expect {
        assert!(err.contains(e), "{name}: expected {e:?} in {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    (read_flows(&flows), err)
}

#[test]
fn truncated_file_keeps_records_before_the_fault() {
    let s = tcp_session(T0, 6);
    let full = pcap_bytes(&s);
    let last = s.last().unwrap().1.len();
    // cut in the middle of the last record's data
    let cut = &full[..full.len() - last / 2];
    let (flows, _) = broken("cut.pcap", cut, &["record 12", "byte offset", "truncated"]);
    assert_eq!(flow_pkts(&flows), 11, "all 11 complete records are counted");
    // cut inside a record header
    let cut = &full[..full.len() - last - 8];
    let (flows, _) = broken("cuthdr.pcap", cut, &["record 12"]);
    assert_eq!(flow_pkts(&flows), 11);
}

#[test]
fn garbage_empty_and_missing_files_are_errors() {
    broken(
        "notes.pcap",
        b"this is not a capture file at all, just text\n",
        &["not a pcap"],
    );
    broken("empty.pcap", b"", &["empty file"]);
    broken("header-only.pcap", &pcap_bytes(&[])[..10], &[]);
    let o = deguchi(&["replay", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.pcap"));
}

#[test]
fn a_bad_file_does_not_stop_the_next() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.pcap");
    let good = d.path().join("good.pcap");
    std::fs::write(&bad, b"garbage").unwrap();
    std::fs::write(&good, pcap_bytes(&tcp_session(T0, 1))).unwrap();
    let flows = d.path().join("flows.json");
    let o = deguchi(&[
        "replay",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(flow_pkts(&read_flows(&flows)), 7);
}

#[test]
fn config_errors_are_all_reported_with_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("bad.toml");
    std::fs::write(
        &c,
        "[flow]\nudp_timeout = 0\ncolour = 1\n[output]\nalerts = 3\n",
    )
    .unwrap();
    let o = deguchi(&["replay", "x.pcap", "--config", c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    for k in ["flow.udp_timeout", "flow.colour", "output.alerts"] {
        assert!(e.contains(k), "{k} in {e}");
    }
    let o = deguchi(&["replay", "x.pcap", "--home-net", "10.0.0.0/8,bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn udp_idle_timeout_in_packet_time_splits_flows() {
    let d = tempfile::tempdir().unwrap();
    let (c, s) = ([10, 0, 0, 9], [8, 8, 4, 4]);
    let frames = vec![
        (T0, udp(c, 5555, s, 9999, b"a")),
        (T0 + 1_000_000, udp(s, 9999, c, 5555, b"b")),
        // 10 minutes later: the 120 s UDP timeout has ended the first flow
        (T0 + 600_000_000, udp(c, 5555, s, 9999, b"c")),
    ];
    let p = d.path().join("u.pcap");
    std::fs::write(&p, pcap_bytes(&frames)).unwrap();
    let flows = d.path().join("flows.json");
    let o = deguchi(&[
        "replay",
        p.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let mut f = read_flows(&flows);
    f.sort_by_key(|r| r.flow.start.to_owned());
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].flow.reason, "timeout");
    assert_eq!(f[0].flow.pkts_toclient, 1);
    assert_eq!(f[1].flow.reason, "shutdown");
}

/// Output failures: an unwritable path or a full disk is a message naming the
/// output and exit 1, never a panic.
#[test]
fn output_failures_are_clear_errors() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap");
    let o = deguchi(&["replay", sample, "-o", "/nonexistent-dir/alerts.json"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent-dir/alerts.json: cannot create"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    if std::path::Path::new("/dev/full").exists() {
        for args in [["--flows", "/dev/full"], ["-o", "/dev/full"]] {
            let o = deguchi(&["replay", sample, args[0], args[1]]);
            assert_eq!(o.status.code(), Some(1));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("/dev/full: write failed"), "{err}");
            assert!(!err.contains("panicked"));
        }
    }
}

/// SIGTERM while `replay -` waits on a pipe its writer keeps open: exit 0
/// promptly, with the flows of what was read written. The signal comes once
/// the session's record is out (a datagram 30 s of packet time later
/// expires it), so everything was read by then.
#[test]
fn sigterm_on_stdin_left_open_stops_and_flushes() {
    let mut recs: Vec<_> = tcp_session(T0, 4)
        .into_iter()
        .map(|(t, f)| {
            let w = u32::try_from(f.len()).unwrap();
            (t, f, w)
        })
        .collect();
    recs.push(clock_tick(T0 + 30_000_000));
    let mut r = StdinReplay::start(&[], &pcap_records(&recs));
    r.wait_for_line(60, |l| parse_flow(l).src_port == Some(40000));
    let session = parse_flow(r.seen.last().unwrap());
    assert_eq!(flow_pkts(&[session]), 10);
    let (status, err, after) = r.sigterm(5);
    assert!(status.success(), "{status:?}\n{err}");
    // the datagram's flow was still open: written by the drain
    let f: Vec<Flow> = after.iter().map(|l| parse_flow(l)).collect();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].flow.reason, "shutdown");
    assert_eq!(f[0].flow.pkts_toserver, 1);
}

/// CLI flags and config keys share their bounds: out of range is a usage
/// error (exit 2) naming the flag or the key, before any capture is opened.
#[test]
fn buffer_mb_and_snaplen_bounds_match_the_config_file() {
    for (flag, v) in [
        ("--buffer-mb", "0"),
        ("--buffer-mb", "5000"),
        ("--snaplen", "10"),
        ("--capture-priority", "21"),
        ("--capture-priority", "-1"),
    ] {
        let o = deguchi(&["live", "-i", "lo", flag, v]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {v}: {err}");
        assert!(err.contains(flag), "{flag} {v}: {err}");
    }
    let d = tempfile::tempdir().unwrap();
    for (key, v) in [
        ("buffer_mb", 0),
        ("buffer_mb", 5000),
        ("snaplen", 10),
        ("priority", 21),
        ("priority", -1),
    ] {
        let cfg = d.path().join("c.toml");
        std::fs::write(&cfg, format!("[capture]\n{key} = {v}\n")).unwrap();
        let o = deguchi(&["live", "-i", "lo", "--config", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{key} {v}: {err}");
        assert!(err.contains(&format!("capture.{key}")), "{err}");
    }
}

/// stderr closed (`2>&-`) or full: logs and the summary are lost, the run
/// is not (exit 0, the same alerts), and no output file becomes fd 2.
#[test]
fn closed_or_full_stderr_does_not_panic() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap");
    let d = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_deguchi");
    let reference = deguchi(&["replay", sample]);
    assert!(reference.status.success());
    assert!(!reference.stdout.is_empty(), "the sample yields alerts");
    let mut redirs = vec!["2>&-"];
    if std::path::Path::new("/dev/full").exists() {
        redirs.push("2>/dev/full");
    }
    for redir in redirs {
        let out = d.path().join("alerts.json");
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("exec \"$0\" replay \"$1\" -o \"$2\" {redir}"))
            .args([bin, sample, out.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{redir}: {o:?}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            reference.stdout,
            "{redir}: the alerts, and nothing else, in the output"
        );
        // alerts to stdout while stderr is closed
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("exec \"$0\" replay \"$1\" {redir}"))
            .args([bin, sample])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{redir}: {o:?}");
        assert_eq!(o.stdout, reference.stdout, "{redir}");
    }
}
