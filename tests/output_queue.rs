//! The flow output's own queue in live capture: its reader (a FIFO nobody
//! reads) stalls, yet capture and analysis go on; lines are dropped and
//! counted (`deguchi_output_dropped_lines_total`, the exit summary), and the
//! run still stops promptly on SIGTERM. Skips without permission to capture
//! on `lo`, unless DEGUCHI_REQUIRE_LIVE=1.

mod common;
use common::{Live, free_port, get};
use std::net::UdpSocket;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_stalled_flow_reader_never_blocks_live_capture_and_drops_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("flows.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // held open (read and write, so the open does not wait) and never read
    let _held = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let cfg = dir.path().join("deguchi.toml");
    std::fs::write(&cfg, "[flow]\nudp_timeout = 1\n[output]\nqueue_mb = 1\n").unwrap();
    let mport = free_port();
    let bpf = "udp and src host 127.0.0.1 and dst host 127.0.0.1 and dst portrange 20000-60000";
    let Some(live) = Live::start(&[
        "-i",
        "lo",
        "--bpf",
        bpf,
        "--metrics",
        &format!("127.0.0.1:{mport}"),
        "--config",
        cfg.to_str().unwrap(),
        "--home-net",
        "127.0.0.0/8",
        "--flows",
        fifo.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]) else {
        return;
    };
    // a new UDP flow per packet (a new destination port each), 1 s timeout:
    // several thousand flow records a second
    let stop = Arc::new(AtomicBool::new(false));
    let st = Arc::clone(&stop);
    let sender = std::thread::spawn(move || {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut port = 20_000u16;
        while !st.load(Ordering::Relaxed) {
            for _ in 0..200 {
                let _ = tx.send_to(&[0x63; 64], ("127.0.0.1", port));
                port = if port >= 60_000 { 20_000 } else { port + 1 };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let metric = |name: &str| -> f64 {
        let (_, body) = get(mport, "/metrics").expect("metrics page");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    };
    let out = fifo.display().to_string();
    let dropped = format!("deguchi_output_dropped_lines_total{{output=\"{out}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&dropped) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no flow line dropped though nobody reads the FIFO"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // the output is stalled, and the stages before it go on
    let packets0 = metric("deguchi_packets_total ");
    let analysis0 = metric("deguchi_stage_batches_total{stage=\"analysis\"} ");
    let writer0 = metric("deguchi_stage_batches_total{stage=\"writer\"} ");
    let dropped0 = metric(&dropped);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        metric("deguchi_packets_total ") > packets0,
        "capture goes on"
    );
    assert!(
        metric("deguchi_stage_batches_total{stage=\"analysis\"} ") > analysis0,
        "analysis goes on"
    );
    assert!(
        metric("deguchi_stage_batches_total{stage=\"writer\"} ") > writer0,
        "the writer goes on"
    );
    assert!(metric(&dropped) > dropped0, "drops go on being counted");
    assert_eq!(
        metric("deguchi_packets_shed_total "),
        0.0,
        "nothing shed: the stall never reached capture"
    );
    let depth = format!("deguchi_queue_depth{{queue=\"{out}\"}} ");
    assert!(metric(&depth) >= 1.0, "its queue holds chunks");
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let (status, log, took) = live.stop();
    assert!(status.success(), "{log}");
    assert!(took < Duration::from_secs(15), "stopped in {took:?}");
    assert!(
        log.contains("the reader is too slow, output queue full"),
        "a warning: {log}"
    );
    assert!(
        log.contains(&format!("deguchi: output {out}: "))
            && log.contains("lines dropped (queue full"),
        "the exit summary: {log}"
    );
}
