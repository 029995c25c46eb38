//! Many sensors, partitioned workers, on a real NATS JetStream cluster
//! (Debian's `nats-server`, three nodes on loopback ports, started here).
//!
//! One generated capture (an office with exfiltration, beacons and a DNS
//! tunnel) is split by egress point into two files: each flow wholly in one
//! file, the same internal hosts in both. Two sensors replay one file each
//! with `--publish`; two workers run `deguchi analyze --eof`. The union of
//! the workers' alerts must have the alert keys (src_ip, dest_ip,
//! dest_port, detector) of `deguchi replay` of the whole capture in one
//! process, no alert id twice, and the exfiltration split across both exits
//! found at the volume of the whole. Then the same with one worker
//! SIGKILLed mid-stream, and with one of the three servers killed.
//!
//! Skips when `nats-server` is missing, unless `DEGUCHI_REQUIRE_NATS=1`.

mod common;

use common::{Alert, free_port, parse_alert};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_deguchi");

fn nats_server() -> Option<PathBuf> {
    let found = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("DEGUCHI_REQUIRE_NATS").as_deref() != Ok("1"),
            "DEGUCHI_REQUIRE_NATS=1 but nats-server is not installed"
        );
        eprintln!("skipped: nats-server not installed (apt-get install nats-server)");
    }
    found
}

/// Three JetStream servers in one cluster on loopback ports.
struct Cluster {
    servers: Vec<Option<Child>>,
    urls: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start(bin: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let client: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers = Vec::new();
        for i in 0..3 {
            let routes: Vec<String> = (0..3)
                .filter(|&j| j != i)
                .map(|j| format!("nats://127.0.0.1:{}", route[j]))
                .collect();
            let log = std::fs::File::create(dir.path().join(format!("n{i}.log"))).unwrap();
            let child = Command::new(bin)
                .args(["-a", "127.0.0.1", "-p", &client[i].to_string(), "-js"])
                .args(["-sd", dir.path().join(format!("n{i}")).to_str().unwrap()])
                .args(["-n", &format!("n{i}"), "--cluster_name", "deguchi-test"])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", route[i])])
                .args(["--routes", &routes.join(",")])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap();
            servers.push(Some(child));
        }
        let urls = client
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let c = Self {
            servers,
            urls,
            _dir: dir,
        };
        // the cluster is ready once a metadata leader is elected
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let logs: String = (0..3)
                .map(|i| {
                    std::fs::read_to_string(c._dir.path().join(format!("n{i}.log")))
                        .unwrap_or_default()
                })
                .collect();
            if logs.contains("metadata leader") {
                break;
            }
            assert!(
                Instant::now() < until,
                "no JetStream leader in 30 s:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    fn urls(&self) -> String {
        self.urls.join(",")
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// The flow a frame belongs to, either direction: a stable hash of its
/// sorted endpoints (addresses and ports) and protocol.
/// The last lines of each server's log in `dir`.
fn server_logs(dir: &Path) -> String {
    (0..3)
        .map(|i| {
            let l = std::fs::read_to_string(dir.join(format!("n{i}.log"))).unwrap_or_default();
            let lines: Vec<&str> = l.lines().collect();
            let from = lines.len().saturating_sub(40);
            format!(
                "--- server n{i} (last 40 lines)\n{}\n",
                lines[from..].join("\n")
            )
        })
        .collect()
}

fn flow_hash(frame: &[u8]) -> u64 {
    use etherparse::{LaxNetSlice as NetSlice, LaxSlicedPacket, TransportSlice};
    // lax: frames cut at the snap length still name their flow
    let Ok(p) = LaxSlicedPacket::from_ethernet(frame) else {
        return 0;
    };
    let (a, b, proto): (Vec<u8>, Vec<u8>, u8) = match &p.net {
        Some(NetSlice::Ipv4(v)) => (
            v.header().source().to_vec(),
            v.header().destination().to_vec(),
            v.header().protocol().0,
        ),
        Some(NetSlice::Ipv6(v)) => (
            v.header().source().to_vec(),
            v.header().destination().to_vec(),
            v.payload().ip_number.0,
        ),
        _ => return 0,
    };
    let (pa, pb) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        _ => (0, 0),
    };
    let mut x = [(a, pa), (b, pb)];
    x.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in x[0]
        .0
        .iter()
        .chain(&x[0].1.to_be_bytes())
        .chain(&x[1].0)
        .chain(&x[1].1.to_be_bytes())
        .chain(&[proto])
    {
        h = (h ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Splits a capture by egress point: each flow wholly in one of two files.
fn split(input: &Path, a: &Path, b: &Path) -> (usize, usize) {
    let recs = common::read_pcap(&std::fs::read(input).unwrap());
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for r in recs {
        if flow_hash(&r.1).is_multiple_of(2) {
            ra.push(r);
        } else {
            rb.push(r);
        }
    }
    std::fs::write(a, common::pcap_records(&ra)).unwrap();
    std::fs::write(b, common::pcap_records(&rb)).unwrap();
    (ra.len(), rb.len())
}

fn read_alerts(p: &Path) -> Vec<(Alert, String)> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"event_type\":\"alert\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["deguchi"]["alert_id"].as_str().unwrap().to_owned();
            (parse_alert(l), id)
        })
        .collect()
}

type Key = (String, String, Option<u16>, String);

fn keys(alerts: &[(Alert, String)]) -> BTreeSet<Key> {
    alerts
        .iter()
        .map(|(a, _)| {
            (
                a.src_ip.clone(),
                a.dest_ip.clone(),
                a.dest_port,
                a.detector.clone(),
            )
        })
        .collect()
}

/// The largest exfiltration volume alerted for `host`.
fn exfil_volume(alerts: &[(Alert, String)], host: &str) -> u64 {
    alerts
        .iter()
        .filter(|(a, _)| a.detector == "exfil" && a.src_ip == host)
        .filter_map(|(a, _)| a.evidence.get("bytes_out_total").and_then(|v| v.as_u64()))
        .max()
        .unwrap_or(0)
}

fn replay(files: &[&Path], out: &Path) {
    let mut cmd = Command::new(BIN);
    cmd.arg("replay").args(files).arg("-o").arg(out);
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

struct Fixture {
    dir: tempfile::TempDir,
    whole: PathBuf,
    a: PathBuf,
    b: PathBuf,
    want: Vec<(Alert, String)>,
}

fn fixture() -> Fixture {
    // DEGUCHI_KEEP_BUS_TEST=1: the captures, outputs and logs stay
    let keep = std::env::var_os("DEGUCHI_KEEP_BUS_TEST").is_some();
    let dir = tempfile::Builder::new()
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("keeping {}", dir.path().display());
    }
    let whole = dir.path().join("office.pcap");
    let o = Command::new(BIN)
        .args(["gen", "exfil", "--hosts", "16", "--seed", "5", "-o"])
        .arg(&whole)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (
        dir.path().join("exit-a.pcap"),
        dir.path().join("exit-b.pcap"),
    );
    let (na, nb) = split(&whole, &a, &b);
    assert!(na > 100_000 && nb > 100_000, "{na} {nb}");
    let base = dir.path().join("whole.jsonl");
    replay(&[&whole], &base);
    let want = read_alerts(&base);
    assert!(want.iter().any(|(a, _)| a.detector == "exfil"));
    assert!(want.iter().any(|(a, _)| a.detector == "beacon"));
    Fixture {
        dir,
        whole,
        a,
        b,
        want,
    }
}

fn config(dir: &Path, name: &str, replicas: u32) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[bus]\nprefix = \"{name}\"\nevents_stream = \"{name}_EV\"\nalerts_stream = \"{name}_AL\"\n\
             sightings_stream = \"{name}_SI\"\nreplicas = {replicas}\nlease_s = 6\nsnapshot_s = 1\n"
        ),
    )
    .unwrap();
    p
}

fn worker(urls: &str, cfg: &Path, id: &str, out: &Path, log: &Path) -> Child {
    Command::new(BIN)
        .args([
            "analyze",
            "--bus",
            urls,
            "--eof",
            "--worker-id",
            id,
            "--config",
        ])
        .arg(cfg)
        .arg("--state-dir")
        .arg(out.with_extension("state"))
        .arg("-o")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn sensor(urls: &str, cfg: &Path, name: &str, pcap: &Path, log: &Path) -> Child {
    Command::new(BIN)
        .arg("replay")
        .arg(pcap)
        .args(["--publish", urls, "--sensor", name, "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for `c` to exit; on a timeout kills it and panics with `dump()`
/// (every process's log: a failure on a CI machine is read from there).
fn wait(
    c: &mut Child,
    secs: u64,
    what: &str,
    dump: &dyn Fn() -> String,
) -> std::process::ExitStatus {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > until {
            let _ = c.kill();
            let _ = c.wait();
            panic!("{what} did not finish in {secs} s\n{}", dump());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    KillWorker,
    KillServer,
}

/// Two sensors, two workers; returns the union of the workers' alerts.
fn distributed(fx: &Fixture, cluster: &mut Cluster, name: &str, fault: Fault) {
    let d = fx.dir.path();
    let cfg = config(d, name, if fault == Fault::KillServer { 3 } else { 1 });
    let urls = cluster.urls();
    let out = |w: &str| d.join(format!("{name}-{w}.jsonl"));
    let log = |w: &str| d.join(format!("{name}-{w}.log"));
    let servers = cluster._dir.path().to_owned();
    let dump = || {
        let mut s = String::new();
        for w in ["w1", "w2", "sa", "sb"] {
            s += &format!(
                "--- {w}\n{}\n",
                std::fs::read_to_string(log(w)).unwrap_or_default()
            );
        }
        s + &server_logs(&servers)
    };
    let mut w1 = worker(&urls, &cfg, "w1", &out("w1"), &log("w1"));
    let mut w2 = worker(&urls, &cfg, "w2", &out("w2"), &log("w2"));
    // both workers in their first generation before the sensors start
    for w in ["w1", "w2"] {
        let until = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(log(w))
            .unwrap_or_default()
            .contains("generation 1")
        {
            assert!(Instant::now() < until, "{w} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut sa = sensor(&urls, &cfg, "exit-a", &fx.a, &log("sa"));
    let mut sb = sensor(&urls, &cfg, "exit-b", &fx.b, &log("sb"));
    match fault {
        Fault::None => {}
        Fault::KillWorker => {
            // mid-stream: once the sensors have published everything and
            // w2 has taken in events, before it has analysed to the end
            // (that waits for 2 s of quiet after the sensors' end marks):
            // its last snapshot is up to a second old, so w1 replays a part
            // of w2's stream and makes some of w2's alerts again
            let s = wait(&mut sa, 120, "sensor a", &dump);
            assert!(s.success());
            let s = wait(&mut sb, 120, "sensor b", &dump);
            assert!(s.success());
            std::thread::sleep(Duration::from_millis(300));
            w2.kill().unwrap();
            w2.wait().unwrap();
            assert!(
                !std::fs::read_to_string(log("w2"))
                    .unwrap()
                    .contains("analysed to the end"),
                "w2 was killed after it had finished"
            );
        }
        Fault::KillServer => {
            std::thread::sleep(Duration::from_millis(700));
            cluster.kill(2);
        }
    }
    let s = wait(&mut sa, 120, "sensor a", &dump);
    assert!(s.success(), "{}", dump());
    let s = wait(&mut sb, 120, "sensor b", &dump);
    assert!(s.success(), "{}", dump());
    let s = wait(&mut w1, 180, "worker 1", &dump);
    assert!(s.success(), "{}", dump());
    if fault != Fault::KillWorker {
        let s = wait(&mut w2, 180, "worker 2", &dump);
        assert!(s.success(), "{}", dump());
    }
    let mut got = read_alerts(&out("w1"));
    got.extend(read_alerts(&out("w2")));
    let logs = format!(
        "w1:\n{}\nw2:\n{}",
        std::fs::read_to_string(log("w1")).unwrap_or_default(),
        std::fs::read_to_string(log("w2")).unwrap_or_default()
    );
    // the same alert keys as one process on the whole capture
    let (want_k, got_k) = (keys(&fx.want), keys(&got));
    assert_eq!(
        got_k,
        want_k,
        "{name}: missing {:?}, extra {:?}\n{logs}",
        want_k.difference(&got_k).collect::<Vec<_>>(),
        got_k.difference(&want_k).collect::<Vec<_>>()
    );
    // no alert written twice with the same id
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (_, id) in &got {
        *ids.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "{name}: ids written twice: {twice:?}");
    // the exfiltration split across both exits: found at the whole's volume
    let whole = exfil_volume(&fx.want, "10.0.1.24");
    assert!(whole > 0);
    assert!(
        exfil_volume(&got, "10.0.1.24") >= whole,
        "{name}: split exfiltration seen at {} of {whole} bytes",
        exfil_volume(&got, "10.0.1.24")
    );
    if fault == Fault::KillWorker {
        assert!(
            std::fs::read_to_string(log("w1"))
                .unwrap()
                .contains("generation 2"),
            "w1 never took over:\n{logs}"
        );
    }
}

#[test]
fn sensors_and_workers_on_a_nats_cluster() {
    let Some(bin) = nats_server() else {
        return;
    };
    let fx = fixture();
    // what each exit alone sees of the split upload (one process per exit)
    let d = fx.dir.path();
    let (oa, ob) = (d.join("a.jsonl"), d.join("b.jsonl"));
    replay(&[&fx.a], &oa);
    replay(&[&fx.b], &ob);
    let whole = exfil_volume(&fx.want, "10.0.1.24");
    let (va, vb) = (
        exfil_volume(&read_alerts(&oa), "10.0.1.24"),
        exfil_volume(&read_alerts(&ob), "10.0.1.24"),
    );
    assert!(
        va < whole && vb < whole,
        "each exit alone sees less of the upload ({va}, {vb} of {whole})"
    );
    let _ = &fx.whole;
    let mut cluster = Cluster::start(&bin);
    distributed(&fx, &mut cluster, "plain", Fault::None);
    distributed(&fx, &mut cluster, "killworker", Fault::KillWorker);
    distributed(&fx, &mut cluster, "killserver", Fault::KillServer);
}

/// A live sensor whose bus is away: capture starts anyway, event batches are
/// shed and counted (one probe a second), and once a server answers the
/// sensor publishes again; capture itself sheds nothing.
#[test]
fn live_sensor_sheds_while_the_bus_is_away_and_recovers() {
    let Some(bin) = nats_server() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let rport = rx.local_addr().unwrap().port();
    let cfg = d.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[flow]\nudp_timeout = 1\n[bus]\nprefix = \"away\"\nevents_stream = \"AWAY_EV\"\n\
         alerts_stream = \"AWAY_AL\"\nsightings_stream = \"AWAY_SI\"\n",
    )
    .unwrap();
    let url = format!("nats://127.0.0.1:{port}");
    let bpf = format!("udp and host 127.0.0.1 and port {rport}");
    let Some(live) = common::Live::start(&[
        "-i",
        "lo",
        "--bpf",
        &bpf,
        "--publish",
        &url,
        "--sensor",
        "away",
        "--config",
        cfg.to_str().unwrap(),
        "--home-net",
        "127.0.0.0/8",
    ]) else {
        return;
    };
    // new UDP flows all along: each ends after 1 s of packet time
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                for _ in 0..3 {
                    let _ = tx.send_to(&[0x61; 200], ("127.0.0.1", rport));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    assert!(
        live.wait_for("sheds event batches", 30),
        "no shedding reported while the bus was away"
    );
    // the bus comes
    let store = d.path().join("js");
    let mut server = Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let back = live.wait_for("publishing again", 60);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    sender.join().unwrap();
    let (status, log, _) = live.stop();
    let _ = server.kill();
    let _ = server.wait();
    assert!(back, "never published again:\n{log}");
    assert!(status.success(), "{log}");
    // the summary: events published after the return, batches shed before
    let line = log
        .lines()
        .find(|l| l.contains("bus: sensor away published"))
        .unwrap_or_else(|| panic!("no bus summary:\n{log}"));
    let num = |after: &str| -> u64 {
        let i = line.find(after).unwrap() + after.len();
        line[i..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap()
    };
    assert!(num("published ") > 0, "{line}");
    assert!(
        line.contains("batches (") && !line.contains(" 0 batches (0 events) shed"),
        "{line}"
    );
    // capture never waited: nothing shed before the shards
    assert!(log.contains("shed packets=0"), "{log}");
}
