//! Syslog output (RFC 5424) into a real `rsyslogd`, started here on loopback
//! ports with its own configuration and files in a temp dir:
//! - a replay sends every alert and the stats event over TCP (octet
//!   counting) and over UDP, byte for byte the JSON of the alert stream,
//!   with the configured facility and app-name;
//! - live capture with the collector stopped mid-run keeps capturing, the
//!   output's drop counter rises, and after the collector restarts lines
//!   flow again.
//!
//! Skips cleanly without `rsyslogd` (Debian's `rsyslog` package).

mod common;
use common::{Kill, Live, free_port, get, have};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// rsyslogd listening on 127.0.0.1 (TCP `tcp`, UDP `udp` if given), writing
/// `INPUT APP-NAME MSGID FACILITY SEVERITY MSG` lines to `dir/out.log`.
fn rsyslogd(dir: &Path, tcp: u16, udp: Option<u16>) -> Kill {
    let mut conf = format!(
        "global(workDirectory=\"{d}\")\n\
         module(load=\"imtcp\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\")\n\
         template(name=\"t\" type=\"string\" string=\"%inputname% %app-name% %msgid% %syslogfacility-text% %syslogseverity-text% %msg%\\n\")\n\
         *.* action(type=\"omfile\" file=\"{d}/out.log\" template=\"t\")\n",
        d = dir.display()
    );
    if let Some(u) = udp {
        conf.push_str(&format!(
            "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{u}\")\n"
        ));
    }
    let cf = dir.join("rsyslog.conf");
    std::fs::write(&cf, conf).unwrap();
    let child = Command::new(RSYSLOGD)
        .arg("-n")
        .arg("-f")
        .arg(&cf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let k = Kill(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", tcp)).is_err() {
        assert!(Instant::now() < deadline, "rsyslogd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    k
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `p` holds at least `n` lines matching `pred`.
fn wait_for(p: &Path, n: usize, pred: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got: Vec<String> = lines(p).into_iter().filter(|l| pred(l)).collect();
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} lines:\n{}",
            got.len(),
            lines(p).join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stats_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("deguchi.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 1\n").unwrap();
    cfg
}

#[test]
fn replay_alerts_reach_rsyslogd_over_tcp_and_udp() {
    if !have(RSYSLOGD) {
        eprintln!("SKIP: rsyslogd is not installed (apt-get install rsyslog)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tport, uport) = (free_port(), free_port());
    let _rs = rsyslogd(dir.path(), tport, Some(uport));
    let alerts = dir.path().join("alerts.json");
    let out = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .arg("replay")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"))
        .arg("-o")
        .arg(&alerts)
        .arg("--config")
        .arg(stats_config(dir.path()))
        .arg("--syslog")
        .arg(format!("tcp://127.0.0.1:{tport}?app_name=degtest"))
        .arg("--syslog")
        .arg(format!("udp://127.0.0.1:{uport}?facility=local3"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let want = lines(&alerts);
    let n_alerts = want
        .iter()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .count();
    assert_eq!(n_alerts, 6, "the sample's alerts");
    assert_eq!(want.len(), 7, "6 alerts and the final stats event");
    assert!(
        err.contains(&format!(
            "syslog tcp://127.0.0.1:{tport}: 7 lines written, 0 dropped"
        )),
        "{err}"
    );
    let log = dir.path().join("out.log");
    for (input, app, fac) in [
        ("imtcp", "degtest", "local5"),
        ("imudp", "deguchi", "local3"),
    ] {
        let prefix = format!("{input} {app} ");
        let got = wait_for(&log, 7, |l| l.starts_with(&prefix), input);
        let mut msgs = Vec::new();
        for l in &got {
            // INPUT APP MSGID FACILITY SEVERITY MSG
            let f: Vec<&str> = l.splitn(6, ' ').collect();
            assert_eq!(f.len(), 6, "{l}");
            assert_eq!(f[3], fac, "{l}");
            let v: serde_json::Value = serde_json::from_str(f[5]).expect("MSG is the EVE JSON");
            assert_eq!(v["event_type"], f[2], "MSGID is the event type: {l}");
            let sev = match (f[2], v["severity"].as_str()) {
                ("alert", Some("high")) => "crit",
                ("alert", Some("medium")) => "warning",
                ("alert", _) => "notice",
                _ => "info",
            };
            assert_eq!(f[4], sev, "{l}");
            msgs.push(f[5].to_owned());
        }
        let mut a = msgs.clone();
        let mut b = want.clone();
        a.sort();
        b.sort();
        assert_eq!(
            a, b,
            "{input}: the lines of the alert stream, byte for byte"
        );
    }
}

#[test]
fn live_capture_goes_on_while_the_collector_is_down_and_resumes() {
    if !have(RSYSLOGD) {
        eprintln!("SKIP: rsyslogd is not installed (apt-get install rsyslog)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tport = free_port();
    let log = dir.path().join("out.log");
    let rs = rsyslogd(dir.path(), tport, None);
    let mport = free_port();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uport = rx.local_addr().unwrap().port();
    let bpf = format!("udp and host 127.0.0.1 and port {uport}");
    let target = format!("tcp://127.0.0.1:{tport}");
    let syslog = format!("{target}?queue=2");
    let cfg = stats_config(dir.path());
    let alerts = dir.path().join("alerts.json");
    let Some(live) = Live::start(&[
        "-i",
        "lo",
        "--bpf",
        &bpf,
        "--metrics",
        &format!("127.0.0.1:{mport}"),
        "--syslog",
        &syslog,
        "--config",
        cfg.to_str().unwrap(),
        "-o",
        alerts.to_str().unwrap(),
    ]) else {
        return;
    };
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |n: usize| {
        for _ in 0..n {
            tx.send_to(&[0x62; 100], ("127.0.0.1", uport)).unwrap();
        }
    };
    let metric = |name: &str| -> f64 {
        let (_, body) = get(mport, "/metrics").expect("metrics page");
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(0.0)
    };
    let is_stats = |l: &str| l.starts_with("imtcp deguchi stats ");
    send(10);
    wait_for(&log, 2, is_stats, "stats events before the stop");

    // the collector goes away
    drop(rs);
    let before = lines(&log).len();
    let packets0 = metric("deguchi_packets_total ");
    let dropped = format!("deguchi_output_dropped_lines_total{{output=\"syslog {target}\"}} ");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&dropped) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no line dropped while the collector was down"
        );
        send(10);
        std::thread::sleep(Duration::from_millis(200));
    }
    let packets1 = metric("deguchi_packets_total ");
    assert!(
        packets1 > packets0,
        "capture went on: {packets0} -> {packets1}"
    );
    assert_eq!(
        lines(&log).len(),
        before,
        "nothing arrived while it was down"
    );
    let queued = format!("deguchi_output_queue_lines{{output=\"syslog {target}\"}} ");
    assert!(
        metric(&queued) >= 1.0,
        "its queue is full (2 lines) while it is down"
    );

    // back again: lines flow (the held line, the queue, then new stats)
    let _rs = rsyslogd(dir.path(), tport, None);
    wait_for(
        &log,
        before + 3,
        |_| true,
        "lines after the collector restarted",
    );
    assert!(metric(&dropped) >= 1.0);
    drop(live);
}

#[test]
fn a_bad_syslog_url_is_a_usage_error() {
    for bad in [
        "ftp://127.0.0.1:514",
        "tcp://127.0.0.1",
        "udp://127.0.0.1:514?facility=local9",
    ] {
        let out = common::deguchi(&[
            "replay",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"),
            "--syslog",
            bad,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("--syslog") && err.contains(bad.split('?').next().unwrap()),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "nothing replayed");
    }
}

#[test]
fn config_file_syslog_outputs_reach_rsyslogd_side_by_side() {
    if !have(RSYSLOGD) {
        eprintln!("SKIP: rsyslogd is not installed (apt-get install rsyslog)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tport, uport) = (free_port(), free_port());
    let _rs = rsyslogd(dir.path(), tport, Some(uport));
    let cfg = dir.path().join("deguchi.toml");
    std::fs::write(
        &cfg,
        format!(
            "[output]\nstats_interval = 1\n\n\
             [[output.syslog]]\nurl = \"tcp://127.0.0.1:{tport}\"\napp_name = \"cfgtcp\"\nfacility = \"local1\"\nqueue = 64\n\n\
             [[output.syslog]]\nurl = \"udp://127.0.0.1:{uport}\"\napp_name = \"cfgudp\"\nflows = true\n"
        ),
    )
    .unwrap();
    let alerts = dir.path().join("alerts.json");
    let out = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .arg("replay")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"))
        .arg("-o")
        .arg(&alerts)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let want = lines(&alerts);
    assert_eq!(want.len(), 7, "6 alerts and the final stats event");
    for name in [
        format!("syslog tcp://127.0.0.1:{tport}: 7 lines written, 0 dropped"),
        format!("syslog udp://127.0.0.1:{uport}: "),
    ] {
        assert!(err.contains(&name), "{name} in:\n{err}");
    }
    let log = dir.path().join("out.log");
    let tcp = wait_for(&log, 7, |l| l.starts_with("imtcp cfgtcp "), "tcp");
    assert!(tcp.iter().all(|l| l.split(' ').nth(3) == Some("local1")));
    // the UDP output takes flow records too (flows = true)
    let udp = wait_for(&log, 8, |l| l.starts_with("imudp cfgudp "), "udp");
    assert!(
        udp.iter().any(|l| l.split(' ').nth(2) == Some("flow")),
        "flow records on the udp output"
    );
    assert!(udp.iter().all(|l| l.split(' ').nth(3) == Some("local5")));
}

#[test]
fn a_bad_syslog_table_is_a_usage_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("deguchi.toml");
    std::fs::write(
        &cfg,
        "[[output.syslog]]\nurl = \"tcp://127.0.0.1:514\"\ncolour = \"red\"\n",
    )
    .unwrap();
    let out = common::deguchi(&[
        "replay",
        concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("output.syslog[0].colour: unknown key"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing replayed");
}
