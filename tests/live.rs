//! `deguchi live` on the loopback interface with traffic this test generates
//! itself (127.0.0.1 only). Skips cleanly when the capture cannot be opened
//! (no CAP_NET_RAW), unless DEGUCHI_REQUIRE_LIVE=1 (CI: `.ci/run` runs as
//! root and sets it).

mod common;
use common::{Live, read_flows};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn live_loopback_udp_counts_and_clean_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let flows = d.path().join("flows.json");
    let rx_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = rx_sock.local_addr().unwrap().port();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = tx.local_addr().unwrap().port();
    // and a marker: one TCP connection after the datagrams, whose record
    // (closed timeout 1 s) says the capture has read everything before it
    let marker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mport = marker.local_addr().unwrap().port();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[flow]\ntcp_closed_timeout = 1\n").unwrap();
    let bpf = format!(
        "(udp and host 127.0.0.1 and port {port} and port {sport}) or (tcp and port {mport})"
    );
    let Some(live) = Live::start(&[
        "-i",
        "lo",
        "--bpf",
        &bpf,
        "--flows",
        flows.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--home-net",
        "127.0.0.0/8",
    ]) else {
        return;
    };
    // 25 datagrams of 100 bytes one way, 5 replies of 40 bytes
    for _ in 0..25 {
        tx.send_to(&[0x61; 100], ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_millis(4));
    }
    let mut buf = [0u8; 200];
    for _ in 0..25 {
        let (_, from) = rx_sock.recv_from(&mut buf).unwrap();
        assert_eq!(from.port(), sport);
    }
    for _ in 0..5 {
        rx_sock.send_to(&[0x62; 40], ("127.0.0.1", sport)).unwrap();
    }
    // the marker connection, then wait for its record: the capture has read
    // every datagram by then; stop it the way an operator does
    {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", mport)).unwrap();
        let (mut s, _) = marker.accept().unwrap();
        c.write_all(b"m").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    let marker_out = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        read_flows(&flows)
            .iter()
            .any(|f| f.proto == "TCP" && f.dest_port == Some(mport))
    });
    assert!(marker_out, "the marker connection's record within 20 s");
    let (status, log, took) = live.stop();
    assert!(
        took < Duration::from_secs(15),
        "SIGTERM must stop an idle live capture promptly"
    );
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(
        log.contains("received="),
        "capture statistics at exit:\n{log}"
    );

    let f: Vec<_> = read_flows(&flows)
        .into_iter()
        .filter(|f| f.proto == "UDP")
        .collect();
    assert_eq!(f.len(), 1, "{f:?}\n{log}");
    let r = &f[0];
    assert_eq!(r.proto, "UDP");
    assert_eq!(r.src_port, Some(sport));
    assert_eq!(r.dest_port, Some(port));
    assert_eq!(r.flow.pkts_toserver, 25);
    assert_eq!(r.flow.pkts_toclient, 5);
    // Ethernet (lo) 14 + IPv4 20 + UDP 8 + payload
    assert_eq!(r.flow.bytes_toserver, 25 * (42 + 100));
    assert_eq!(r.flow.bytes_toclient, 5 * (42 + 40));
    assert_eq!(r.flow.reason, "shutdown");
    assert_eq!(r.deguchi.direction, "internal");
}

/// SIGHUP reopens output files (logrotate moves the file, then signals).
#[test]
fn live_sighup_reopens_flow_file() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let d = tempfile::tempdir().unwrap();
    let flows = d.path().join("flows.json");
    let rotated = d.path().join("flows.json.1");
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[flow]\ntcp_closed_timeout = 1\n").unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let bpf = format!("tcp and host 127.0.0.1 and port {port}");
    let Some(live) = Live::start(&[
        "-i",
        "lo",
        "--bpf",
        &bpf,
        "--flows",
        flows.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--home-net",
        "127.0.0.0/8",
    ]) else {
        return;
    };
    let conn = |msg: &[u8]| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(msg).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap();
        assert_eq!(n, msg.len());
    };
    let wait_for_lines = |p: &std::path::Path, n: usize| {
        (0..60).any(|_| {
            std::thread::sleep(Duration::from_millis(250));
            read_flows(p).len() >= n
        })
    };
    conn(b"first");
    assert!(wait_for_lines(&flows, 1), "first flow written");
    std::fs::rename(&flows, &rotated).unwrap();
    live.signal("-HUP");
    // the writer logs the reopen once it has reopened: later records go to
    // the new file
    assert!(
        live.wait_for("output files reopened", 20),
        "SIGHUP served within 20 s"
    );
    conn(b"second!");
    assert!(
        wait_for_lines(&flows, 1),
        "second flow written to the new file"
    );
    let (status, _, _) = live.stop();
    assert!(status.success());
    let old = read_flows(&rotated);
    let new = read_flows(&flows);
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(old[0].deguchi.payload_bytes_toserver, 5);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].deguchi.payload_bytes_toserver, 7);
}

/// `--user`: the capture opens as root, then the sensor runs as `nobody`.
#[test]
fn live_drops_privileges_after_opening_the_capture() {
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let has_nobody = std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("nobody:"));
    if !is_root || !has_nobody {
        eprintln!("skipping: needs root and a 'nobody' user");
        return;
    }
    let Some(live) = Live::start(&["-i", "lo", "--bpf", "udp port 9", "--user", "nobody"]) else {
        return;
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", live.id())).unwrap();
    let uid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_owned();
    let gid = status
        .lines()
        .find(|l| l.starts_with("Gid:"))
        .unwrap()
        .to_owned();
    let (st, log, _) = live.stop();
    assert!(st.success());
    assert!(log.contains("privileges dropped to nobody"), "{log}");
    // real, effective, saved and filesystem ids all unprivileged
    assert!(uid.split_whitespace().skip(1).all(|x| x != "0"), "{uid}");
    assert!(gid.split_whitespace().skip(1).all(|x| x != "0"), "{gid}");
}

/// A BPF filter that does not compile is a usage error: exit 2, naming it.
#[test]
fn live_bpf_syntax_error_exits_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .args(["live", "-i", "lo", "--bpf", "tcp and and ("])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() == Some(1) && err.contains("cannot start capture") {
        assert!(
            std::env::var_os("DEGUCHI_REQUIRE_LIVE").is_none_or(|v| v == "0"),
            "live capture did not start:\n{err}"
        );
        eprintln!("skipping: cannot capture on lo here:\n{err}");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("BPF filter"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A network namespace with a veth pair (`va`, `vb`), removed on drop.
struct Netns(String);

impl Netns {
    /// `None` (after a note) when namespaces cannot be made here (not
    /// root), unless DEGUCHI_REQUIRE_LIVE is set.
    fn new(tag: &str) -> Option<Self> {
        let name = format!("dg-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("DEGUCHI_REQUIRE_LIVE").is_none_or(|v| v == "0"),
                "cannot create a network namespace"
            );
            eprintln!("skipping: cannot create a network namespace here");
            return None;
        }
        let ns = Self(name);
        ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
        ns.ip(&["link", "set", "va", "up"]);
        ns.ip(&["link", "set", "vb", "up"]);
        Some(ns)
    }

    /// `ip -n NS ARGS`, which must succeed.
    fn ip(&self, args: &[&str]) {
        let st = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip -n {} {args:?}", self.0);
    }

    /// `deguchi live -i IFACE ARGS` inside the namespace.
    fn deguchi(&self, iface: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, env!("CARGO_BIN_EXE_deguchi")])
            .args(["live", "-i", iface])
            .args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Link watch: silence, link down and up, and the interface deleted and
/// recreated are logged and counted, and capture resumes on the new one;
/// each is a health event (EVE `engine`) on the alert output.
#[test]
fn live_link_watch_and_reopen_on_veth() {
    link_watch_and_reopen(1);
}

/// The same with two capture sockets in a fanout group: both are reopened.
#[test]
fn live_link_watch_and_reopen_on_veth_fanout() {
    link_watch_and_reopen(2);
}

fn link_watch_and_reopen(threads: usize) {
    let Some(ns) = Netns::new(&format!("watch{threads}")) else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    let alerts = d.path().join("alerts.json");
    std::fs::write(&cfg, "[capture]\nidle_warn_s = 1\n").unwrap();
    let n = threads.to_string();
    let cmd = ns.deguchi(
        "vb",
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--capture-threads",
            &n,
            "-o",
            alerts.to_str().unwrap(),
        ],
    );
    let Some(live) = Live::spawn(cmd, "vb") else {
        return;
    };
    assert!(live.wait_for("no packets on vb for", 20), "idle warning");
    ns.ip(&["link", "set", "va", "down"]);
    assert!(live.wait_for("link down on vb", 20), "link down logged");
    ns.ip(&["link", "set", "va", "up"]);
    assert!(live.wait_for("link up on vb", 20), "link up logged");
    ns.ip(&["link", "del", "vb"]);
    assert!(live.wait_for("reopening vb when it returns", 20), "gone");
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"]);
    ns.ip(&["link", "set", "va", "up"]);
    ns.ip(&["link", "set", "vb", "up"]);
    assert!(live.wait_for("capture reopened on vb", 40), "reopened");
    let (status, log, _) = live.stop();
    assert!(status.success(), "{status:?}\n{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("deguchi: capture: "))
        .unwrap_or_else(|| panic!("capture line:\n{log}"));
    assert!(line.contains("reopened=1"), "{line}");
    assert!(!line.contains("link down=0"), "{line}");
    assert!(!line.contains(" up=0"), "{line}");
    assert!(!line.contains("idle=0"), "{line}");
    // the health events on the alert output, in order
    let text = std::fs::read_to_string(&alerts).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["event_type"] == "engine")
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|v| v["deguchi"]["health"].as_str().unwrap())
        .collect();
    for want in ["idle", "link_down", "link_up", "gone", "reopened"] {
        assert!(names.contains(&want), "{want} in {names:?}\n{text}");
    }
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("link_down") < pos("link_up") && pos("gone") < pos("reopened"));
    for v in &events {
        assert_eq!(v["in_iface"], "vb");
        assert_eq!(v["engine"]["module"], "capture");
        assert!(v["engine"]["message"].as_str().unwrap().contains("vb"));
        assert!(["Warning", "Info"].contains(&v["log_level"].as_str().unwrap()));
    }
    let last = events.last().unwrap();
    assert_eq!(last["deguchi"]["link"]["reopened"], 1, "{last}");
}

/// `--capture-threads` and `capture.threads` are validated alike: exit 2.
#[test]
fn capture_threads_bounds_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("c.toml");
    std::fs::write(&cfg, "[capture]\nthreads = 0\n").unwrap();
    for args in [
        vec!["live", "-i", "lo", "--capture-threads", "0"],
        vec!["live", "-i", "lo", "--capture-threads", "65"],
        vec!["live", "-i", "lo", "--config", cfg.to_str().unwrap()],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_deguchi"))
            .args(&args)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("capture-threads") || err.contains("capture.threads"),
            "{args:?}: {err}"
        );
    }
}
