//! `deguchi live -i lo --metrics 127.0.0.1:PORT`: the `/metrics` page passes
//! `promtool check metrics`, and a real Prometheus (Debian's, started here on
//! loopback with its own config and data in a temp dir) scrapes it and sees
//! the packet counter move, a per-stage counter move and a detector state
//! gauge (the DNS tunnel detector's domains, fed by DNS queries sent on
//! loopback, `home_net` 127.0.0.0/8) rise. Skips cleanly without `prometheus`/`promtool` or
//! without permission to capture, unless DEGUCHI_REQUIRE_LIVE=1.

mod common;
use common::{Kill, Live, free_port, get, have, query};
use std::io::Write;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn prometheus_scrapes_live_metrics_and_promtool_accepts_them() {
    if !have("/usr/bin/prometheus") || !have("/usr/bin/promtool") {
        eprintln!("SKIP: Debian's prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let mport = free_port();
    let target = format!("127.0.0.1:{mport}");
    let rx_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = rx_sock.local_addr().unwrap().port();
    let bpf = format!("udp and host 127.0.0.1 and (port {uport} or port 53)");
    let dir = tempfile::tempdir().unwrap();
    let dcfg = dir.path().join("deguchi.toml");
    std::fs::write(&dcfg, "[general]\nhome_net = [\"127.0.0.0/8\"]\n").unwrap();
    let Some(_live) = Live::start(&[
        "-i",
        "lo",
        "--bpf",
        &bpf,
        "--metrics",
        &target,
        "--config",
        dcfg.to_str().unwrap(),
        "-o",
        "/dev/null",
    ]) else {
        return;
    };
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |n: usize| {
        for i in 0..n {
            tx.send_to(&[0x61; 200], ("127.0.0.1", uport)).unwrap();
            // a DNS query (TXT) for a subdomain of example.org: nobody
            // answers on port 53, the capture sees it all the same
            let _ = tx.send_to(&dns_query(i), ("127.0.0.1", 53));
        }
    };
    send(50);

    // the page itself: promtool accepts it and the packets counter moved
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (status, body) = get(mport, "/metrics").expect("metrics answer");
        assert!(status.contains("200"), "{status}");
        let packets = body
            .lines()
            .find_map(|l| l.strip_prefix("deguchi_packets_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if packets >= 50.0 || Instant::now() > deadline {
            assert!(packets >= 50.0, "packets counter did not move:\n{body}");
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for name in [
        "deguchi_wire_bytes_total",
        "deguchi_packets_decoded_total",
        "deguchi_packets_undecoded_total{reason=",
        "deguchi_capture_dropped_packets_total{by=\"kernel\"}",
        "deguchi_packets_shed_total",
        "deguchi_flows_active",
        "deguchi_flows_ended_total",
        "deguchi_flows_evicted_total",
        "deguchi_output_lines_total{output=",
        "deguchi_output_dropped_lines_total{output=",
        "deguchi_output_write_errors_total{output=",
        "deguchi_thread_cpu_seconds_total{thread=\"capture\"}",
        "deguchi_thread_cpu_seconds_total{thread=\"shard-0\"}",
        "deguchi_thread_cpu_seconds_total{thread=\"writer\"}",
        "deguchi_process_cpu_seconds_total",
        "deguchi_process_resident_memory_bytes",
        "deguchi_stage_batches_total{stage=\"capture\"}",
        "deguchi_stage_batches_total{stage=\"shard-0\"}",
        "deguchi_stage_batches_total{stage=\"analysis\"}",
        "deguchi_stage_batches_total{stage=\"writer\"}",
        "deguchi_shard_packets_total{shard=\"0\"}",
        "deguchi_shard_flow_events_total{shard=\"0\"}",
        "deguchi_analysis_events_total{lane=\"0\"}",
        "deguchi_analysis_alerts_total{lane=\"0\"}",
        "deguchi_queue_depth{queue=\"capture->shard-0\"}",
        "deguchi_queue_depth{queue=\"shard->analysis\"}",
        "deguchi_queue_depth{queue=\"analysis->writer\"}",
        "deguchi_queue_capacity{queue=\"capture->shard-0\"}",
        "deguchi_queue_depth{queue=\"/dev/null\"}",
        "deguchi_detector_state_entries{detector=\"beacon\",state=\"series\"}",
        "deguchi_detector_state_entries{detector=\"baseline\",state=\"destinations\"}",
        "deguchi_detector_state_evictions_total{detector=\"exfil\",state=\"hosts\"}",
        "deguchi_detector_state_evictions_total{detector=\"baseline\",state=\"names\"}",
    ] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
    let mut check = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // a real Prometheus scrapes it every second
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: deguchi\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let pport = free_port();
    let prom = Kill(
        Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw deguchi_packets_total"
        );
        send(10);
        if let Some(v) = query(pport, "deguchi_packets_total").filter(|v| *v > 0.0) {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let later = loop {
        assert!(
            Instant::now() < deadline,
            "deguchi_packets_total did not move in Prometheus (first {first})"
        );
        send(10);
        std::thread::sleep(Duration::from_millis(500));
        if let Some(v) = query(pport, "deguchi_packets_total").filter(|v| *v > first) {
            break v;
        }
    };
    let up = query(pport, "up").unwrap_or(0.0);
    assert!((up - 1.0).abs() < f64::EPSILON, "scrape target up: {up}");
    assert!(
        query(pport, "deguchi_packets_decoded_total").is_some_and(|v| v > 0.0),
        "decoded counter"
    );
    // a per-stage counter moved, and the DNS tunnel detector's state holds
    // example.org (published from the analysis lane once a second)
    let stage = urlencode("deguchi_stage_batches_total{stage=\"shard-0\"}");
    let domains =
        urlencode("deguchi_detector_state_entries{detector=\"dns_tunnel\",state=\"domains\"}");
    let shard0 = loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw shard-0's batches"
        );
        if let Some(v) = query(pport, &stage).filter(|v| *v > 0.0) {
            break v;
        }
        send(5);
        std::thread::sleep(Duration::from_millis(500));
    };
    loop {
        assert!(
            Instant::now() < deadline,
            "shard-0's batches did not move in Prometheus (first {shard0})"
        );
        send(5);
        std::thread::sleep(Duration::from_millis(500));
        if query(pport, &stage).is_some_and(|v| v > shard0) {
            break;
        }
    }
    loop {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the dns_tunnel state gauge rise"
        );
        if query(pport, &domains).is_some_and(|v| v >= 1.0) {
            break;
        }
        send(5);
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("prometheus saw deguchi_packets_total go {first} -> {later}");
    drop(prom);
}

/// A DNS query for TXT `q<i>.example.org`.
fn dns_query(i: usize) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in [format!("q{i}"), "example".into(), "org".into()] {
        p.push(u8::try_from(label.len()).unwrap());
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 16, 0, 1]);
    p
}

/// A PromQL query as a URL query value.
fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
