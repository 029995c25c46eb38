//! EVE conformance: every line deguchi writes (alerts, flow records, stats
//! events) validates against Suricata's own EVE schema
//! (`../shared/vectors/eve-schema/schema.json`, read at test time, never
//! copied), with deguchi's one allowance: alerts may carry the top-level
//! `detector`, `score`, `severity` and `evidence`, and any event one
//! top-level `deguchi` object. Those keys are stripped before validating.
//! Every alert's `flow_id` joins a flow record that says `"alerted": true`.
//!
//! Inputs: the bundled sample, and every capture in `../shared/pcaps/real`
//! (one replay process for all of them; skipped with a message when the
//! shared folder is absent, as it is outside this workplace; CI has it).

mod common;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ALERT_EXTENSIONS: &[&str] = &["detector", "score", "severity", "evidence"];

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared"))
}

fn schema() -> Option<jsonschema::Validator> {
    let p = shared().join("vectors/eve-schema/schema.json");
    let Ok(text) = std::fs::read_to_string(&p) else {
        eprintln!("SKIP: {} absent", p.display());
        return None;
    };
    let s: Value = serde_json::from_str(&text).expect("schema is JSON");
    Some(jsonschema::validator_for(&s).expect("schema compiles"))
}

/// A line with the allowed extension keys taken out (checked for shape).
fn strip(line: &str) -> (Value, Value) {
    let v: Value = serde_json::from_str(line).expect("every line is one JSON object");
    let mut core = v.clone();
    let m = core.as_object_mut().expect("a JSON object");
    if let Some(d) = m.remove("deguchi") {
        assert!(d.is_object(), "`deguchi` is an object: {line}");
    }
    if m.get("event_type").and_then(Value::as_str) == Some("alert") {
        for k in ALERT_EXTENSIONS {
            m.remove(*k);
        }
    }
    (v, core)
}

#[derive(Default)]
struct Checked {
    lines: usize,
    by_type: HashMap<String, usize>,
    errors: Vec<String>,
    alert_flows: Vec<(u64, String)>,
    alerted_flows: HashSet<u64>,
}

impl Checked {
    fn file(&mut self, v: &jsonschema::Validator, p: &Path) {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            self.line(v, line, &format!("{}:{}", p.display(), n + 1));
        }
    }

    fn line(&mut self, v: &jsonschema::Validator, line: &str, at: &str) {
        let (full, core) = strip(line);
        self.lines += 1;
        let et = full["event_type"].as_str().unwrap_or("?").to_owned();
        *self.by_type.entry(et.clone()).or_default() += 1;
        for e in v.iter_errors(&core) {
            if self.errors.len() < 40 {
                self.errors
                    .push(format!("{at}: {et} /{}: {e}", e.instance_path()));
            }
        }
        match et.as_str() {
            "alert" => {
                if let Some(id) = full["flow_id"].as_u64() {
                    self.alert_flows.push((id, at.to_owned()));
                }
            }
            "flow" => {
                // (the same flow_id may recur across captures of one
                // stream: some shared captures hold the same traffic)
                let id = full["flow_id"]
                    .as_u64()
                    .expect("a flow record has a flow_id");
                if full["flow"]["alerted"] == Value::Bool(true) {
                    self.alerted_flows.insert(id);
                }
            }
            _ => {}
        }
    }

    fn assert_ok(&self, what: &str) {
        assert!(
            self.errors.is_empty(),
            "{what}: lines that do not validate:\n{}",
            self.errors.join("\n")
        );
        let unjoined: Vec<_> = self
            .alert_flows
            .iter()
            .filter(|(id, _)| !self.alerted_flows.contains(id))
            .collect();
        assert!(
            unjoined.is_empty(),
            "{what}: alerts whose flow_id has no flow record saying alerted: {unjoined:?}"
        );
        eprintln!(
            "{what}: {} lines valid ({:?}), {} alerts joined to alerted flows",
            self.lines,
            self.by_type,
            self.alert_flows.len()
        );
    }
}

fn values(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

fn replay(
    files: &[PathBuf],
    dir: &Path,
    extra: &[&str],
) -> (PathBuf, PathBuf, std::process::Output) {
    let alerts = dir.join("alerts.json");
    let flows = dir.join("flows.json");
    let out = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .arg("replay")
        .args(files)
        .arg("-o")
        .arg(&alerts)
        .arg("--flows")
        .arg(&flows)
        .args(extra)
        .output()
        .unwrap();
    (alerts, flows, out)
}

#[test]
fn sample_validates_against_suricata_eve_schema() {
    let Some(v) = schema() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sample = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"));
    // with stats events: one at the end of the run at least
    let cfg = dir.path().join("stats.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 1\n").unwrap();
    let (alerts, flows, out) = replay(&[sample], dir.path(), &["--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Checked::default();
    c.file(&v, &alerts);
    c.file(&v, &flows);
    assert!(
        c.by_type.get("alert").copied().unwrap_or(0) > 0,
        "the sample raises alerts"
    );
    assert!(c.by_type.get("flow").copied().unwrap_or(0) > 0);
    assert!(
        c.by_type.get("stats").copied().unwrap_or(0) > 0,
        "a stats event"
    );
    let last: Value = serde_json::from_str(
        std::fs::read_to_string(&alerts)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        last["event_type"], "stats",
        "the last line is the final stats event"
    );
    assert_eq!(last["stats"]["decoder"]["pkts"], 25_709);
    assert_eq!(last["deguchi"]["flows_ended"], 2_564);
    assert_eq!(last["stats"]["detect"]["alert"], 6);
    c.assert_ok("sample");
}

#[test]
fn shared_captures_validate_against_suricata_eve_schema() {
    let Some(v) = schema() else { return };
    let real = shared().join("pcaps/real");
    let Ok(rd) = std::fs::read_dir(&real) else {
        eprintln!("SKIP: {} absent", real.display());
        return;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let dir = tempfile::tempdir().unwrap();
    // one stream: some captures are broken on purpose (exit 3, the rest
    // still replayed); every line written must validate all the same
    let cfg = dir.path().join("stats.toml");
    std::fs::write(&cfg, "[output]\nstats_interval = 1\n").unwrap();
    let (alerts, flows, out) = replay(&files, dir.path(), &["--config", cfg.to_str().unwrap()]);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 3)),
        "exit {code:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Checked::default();
    c.file(&v, &alerts);
    c.file(&v, &flows);
    assert!(c.by_type.get("flow").copied().unwrap_or(0) > 1000);
    assert!(c.by_type.get("stats").copied().unwrap_or(0) > 0);
    c.assert_ok(&format!("{} shared captures", files.len()));
}

/// The timestamp and the names the schema cannot check by itself.
#[test]
fn eve_formats_of_timestamps_protocols_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let sample = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"));
    let (alerts, flows, out) = replay(&[sample], dir.path(), &[]);
    assert!(out.status.success());
    let ts = |s: &str| {
        // 2024-03-03T22:57:40.556097+0000
        s.len() == 31
            && s.as_bytes()[10] == b'T'
            && s.ends_with("+0000")
            && s.as_bytes()[19] == b'.'
    };
    let lines: Vec<Value> = values(&alerts).into_iter().chain(values(&flows)).collect();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(ts(l["timestamp"].as_str().unwrap()), "{l}");
        let proto = l["proto"].as_str().unwrap();
        assert!(
            proto.parse::<u8>().is_err(),
            "protocol by name, not number: {l}"
        );
        if l["event_type"] == "flow" {
            let f = &l["flow"];
            assert!(ts(f["start"].as_str().unwrap()) && ts(f["end"].as_str().unwrap()));
            assert!(
                ["timeout", "forced", "shutdown", "tcp_reuse"]
                    .contains(&f["reason"].as_str().unwrap()),
                "{l}"
            );
            let d = &l["deguchi"];
            assert!(d["direction"].is_string() && d["bursts"].is_u64(), "{l}");
            assert!(d["payload_bytes_toserver"].is_u64() && d["duration"].is_f64());
        }
    }
}

/// Link-health events (live: link down/up, idle, interface gone and
/// reopened) are EVE `engine` events, Suricata's own event type for its
/// engine's log messages, with deguchi's names in the `deguchi` object.
#[test]
fn health_events_validate_against_suricata_eve_schema() {
    use deguchi::capture::watch::{Health, LinkCounters};
    let Some(v) = schema() else { return };
    let mut c = Checked::default();
    for (i, (event, warning)) in [
        ("link_down", true),
        ("link_up", false),
        ("idle", true),
        ("traffic", false),
        ("gone", true),
        ("reopened", false),
    ]
    .into_iter()
    .enumerate()
    {
        let line = deguchi::sink::health_line(&Health {
            event,
            iface: "eth1".into(),
            message: format!("{event} on eth1"),
            warning,
            ts: 1_772_409_600_123_456_789,
            counters: LinkCounters {
                down: 1,
                up: 1,
                idle: 0,
                reopened: 0,
            },
        });
        c.line(&v, &line, &format!("health {i}"));
        let full: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(full["event_type"], "engine");
        assert_eq!(full["deguchi"]["health"], event);
        assert_eq!(full["timestamp"], "2026-03-02T00:00:00.123456+0000");
    }
    c.assert_ok("health");
}
