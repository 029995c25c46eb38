//! `deguchi report`: one self-contained HTML page of every alert, with
//! charts, for an analyst (and for printing to PDF), in English or Japanese.
//!
//! Input is EVE JSON lines: alerts, and optionally flow records (from
//! `--flows`, or mixed into the alert file). The parser is tolerant: both
//! `Z` and `+0000` timestamps, protocol as a number or a name, fields
//! missing or moved under a top-level `deguchi` object, lines it does not
//! understand counted and skipped. Every string from the input is
//! attacker-influenced (names, URIs) and is HTML-escaped on output.

pub mod evidence;
mod html;
pub mod i18n;
mod svg;

pub use i18n::Lang;

use anyhow::Context as _;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::Path;

/// Nanoseconds since the Unix epoch.
pub type Ns = i64;
const SEC: Ns = 1_000_000_000;

/// One alert line.
#[derive(Clone, Debug)]
pub struct Alert {
    pub ts: Option<Ns>,
    pub src_ip: String,
    pub src_port: Option<u64>,
    pub dest_ip: String,
    pub dest_port: Option<u64>,
    pub proto: String,
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    pub detector: String,
    pub signature: String,
    pub signature_id: u64,
    /// 1 = high, 2 = medium, 3 = low.
    pub severity: u8,
    pub score: f64,
    pub evidence: Map<String, Value>,
}

/// One flow record.
#[derive(Clone, Debug, Default)]
pub struct Flow {
    pub flow_id: Option<u64>,
    pub community_id: Option<String>,
    pub src_ip: String,
    pub src_port: Option<u64>,
    pub dest_ip: String,
    pub dest_port: Option<u64>,
    pub proto: String,
    pub start: Option<Ns>,
    pub end: Option<Ns>,
    /// Payload bytes [to server, to client] (frame bytes when absent).
    pub payload: [u64; 2],
    pub pkts: [u64; 2],
    /// DNS names asked.
    pub queries: Vec<String>,
    /// TLS SNI or HTTP host.
    pub name: Option<String>,
}

/// Flow lookup for the alert-to-flow links.
#[derive(Default)]
pub struct FlowIndex {
    by_id: HashMap<u64, Vec<usize>>,
    by_cid: HashMap<String, Vec<usize>>,
    /// Keyed by the two addresses, lower first.
    by_pair: HashMap<(String, String), Vec<usize>>,
    /// DNS flows by client.
    dns_by_src: HashMap<String, Vec<usize>>,
}

/// Everything the report shows.
#[derive(Default)]
pub struct Report {
    pub alerts: Vec<Alert>,
    pub flows: Vec<Flow>,
    /// Lines neither an alert nor a flow, or not JSON.
    pub skipped: usize,
    /// Where the alerts came from (shown in the header).
    pub source: String,
    /// The `--host` / `--detector` filter, in words (shown in the header).
    pub filter: String,
}

/// Full sections for this many alerts by default (`--max-sections`).
pub const DEFAULT_MAX_SECTIONS: usize = 200;

/// What the page shows and of which alerts.
#[derive(Clone, Debug)]
pub struct Options {
    pub lang: Lang,
    /// A full section (evidence, charts, flows) for this many alerts, the
    /// most severe first (severity, then score); the rest get a row in the
    /// overview table and a line in the summary by host and detector.
    /// 0: every alert.
    pub max_sections: usize,
    /// Only alerts of these internal hosts (`src_ip`); empty: all.
    pub hosts: Vec<String>,
    /// Only alerts of these detectors; empty: all.
    pub detectors: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lang: Lang::En,
            max_sections: DEFAULT_MAX_SECTIONS,
            hosts: Vec::new(),
            detectors: Vec::new(),
        }
    }
}

impl Options {
    /// The alert passes the `--host` and `--detector` filters.
    #[must_use]
    pub fn keeps(&self, a: &Alert) -> bool {
        (self.hosts.is_empty() || self.hosts.contains(&a.src_ip))
            && (self.detectors.is_empty() || self.detectors.contains(&a.detector))
    }

    /// The filters as command-line options (empty without filters).
    #[must_use]
    pub fn filter_words(&self) -> String {
        let mut v: Vec<String> = self.hosts.iter().map(|h| format!("--host {h}")).collect();
        v.extend(self.detectors.iter().map(|d| format!("--detector {d}")));
        v.join(" ")
    }
}

/// Parses an EVE timestamp: RFC 3339 (`Z`, `+00:00`) or Suricata's `+0000`.
#[must_use]
pub fn parse_ts(s: &str) -> Option<Ns> {
    let dt = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z"))
        .ok()?;
    dt.timestamp_nanos_opt()
}

fn proto_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(6) => "TCP".into(),
            Some(17) => "UDP".into(),
            Some(1) => "ICMP".into(),
            Some(58) => "IPv6-ICMP".into(),
            _ => n.to_string(),
        },
        Some(Value::String(s)) => s.to_ascii_uppercase(),
        _ => String::new(),
    }
}

fn str_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A field at the top level or under the `deguchi` extension object.
fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k)
        .filter(|v| !v.is_null())
        .or_else(|| o.get("deguchi").and_then(|d| d.get(k)))
}

fn severity_of(o: &Map<String, Value>) -> u8 {
    match field(o, "severity") {
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "high" => 1,
            "medium" => 2,
            _ => 3,
        },
        Some(Value::Number(n)) => n.as_u64().map_or(3, |n| n.clamp(1, 3) as u8),
        _ => o
            .get("alert")
            .and_then(|a| u64_of(a.get("severity")))
            .map_or(3, |n| n.clamp(1, 3) as u8),
    }
}

fn alert_of(o: &Map<String, Value>) -> Alert {
    let a = o.get("alert").and_then(Value::as_object);
    Alert {
        ts: o
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_ts),
        src_ip: str_of(o.get("src_ip")),
        src_port: u64_of(o.get("src_port")),
        dest_ip: str_of(o.get("dest_ip")),
        dest_port: u64_of(o.get("dest_port")),
        proto: proto_of(o.get("proto")),
        flow_id: u64_of(o.get("flow_id")),
        community_id: o
            .get("community_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        detector: field(o, "detector")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        signature: str_of(a.and_then(|a| a.get("signature"))),
        signature_id: u64_of(a.and_then(|a| a.get("signature_id"))).unwrap_or(0),
        severity: severity_of(o),
        score: field(o, "score").and_then(Value::as_f64).unwrap_or(0.0),
        evidence: field(o, "evidence")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

fn flow_of(o: &Map<String, Value>) -> Flow {
    let f = o.get("flow").and_then(Value::as_object);
    let g = |k: &str| f.and_then(|f| u64_of(f.get(k)));
    let pair = |p: &str, b: &str| {
        [
            g(&format!("{p}toserver")).or_else(|| g(&format!("{b}toserver"))),
            g(&format!("{p}toclient")).or_else(|| g(&format!("{b}toclient"))),
        ]
        .map(|x| x.unwrap_or(0))
    };
    let ts = |k: &str| {
        f.and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .and_then(parse_ts)
    };
    let queries = field(o, "dns")
        .and_then(|d| d.get("queries"))
        .and_then(Value::as_array)
        .map(|q| {
            q.iter()
                .filter_map(|x| {
                    x.as_str()
                        .or_else(|| x.get("rrname").and_then(Value::as_str))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    let name = o
        .get("tls")
        .and_then(|t| t.get("sni"))
        .or_else(|| o.get("http").and_then(|h| h.get("hostname")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Flow {
        flow_id: u64_of(o.get("flow_id")),
        community_id: o
            .get("community_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        src_ip: str_of(o.get("src_ip")),
        src_port: u64_of(o.get("src_port")),
        dest_ip: str_of(o.get("dest_ip")),
        dest_port: u64_of(o.get("dest_port")),
        proto: proto_of(o.get("proto")),
        start: ts("start"),
        end: ts("end").or_else(|| {
            o.get("timestamp")
                .and_then(Value::as_str)
                .and_then(parse_ts)
        }),
        payload: if g("payload_bytes_toserver").is_some() {
            pair("payload_bytes_", "bytes_")
        } else {
            pair("bytes_", "bytes_")
        },
        pkts: pair("pkts_", "pkts_"),
        queries,
        name,
    }
}

impl Report {
    /// Adds the events of one JSON-lines file: alerts and flow records.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn load(&mut self, path: &Path) -> anyhow::Result<()> {
        let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        for line in std::io::BufReader::new(f).split(b'\n') {
            let line = line.with_context(|| format!("{}", path.display()))?;
            let line = String::from_utf8_lossy(&line);
            self.add_line(&line);
        }
        Ok(())
    }

    /// Adds one EVE line; anything else is counted as skipped.
    pub fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
            self.skipped += 1;
            return;
        };
        match o.get("event_type").and_then(Value::as_str) {
            Some("alert") => self.alerts.push(alert_of(&o)),
            Some("flow" | "netflow") => self.flows.push(flow_of(&o)),
            _ => self.skipped += 1,
        }
    }

    /// Drops the alerts the options' filters do not keep.
    pub fn apply_filter(&mut self, opts: &Options) {
        self.alerts.retain(|a| opts.keeps(a));
        self.filter = opts.filter_words();
    }

    /// Renders the page.
    #[must_use]
    pub fn render(&self, opts: &Options) -> String {
        html::page(self, opts)
    }

    /// Flows by id, Community ID and host pair, for [`Self::flows_of`].
    #[must_use]
    pub fn index(&self) -> FlowIndex {
        let mut x = FlowIndex::default();
        for (i, f) in self.flows.iter().enumerate() {
            if let Some(id) = f.flow_id {
                x.by_id.entry(id).or_default().push(i);
            }
            if let Some(c) = &f.community_id {
                x.by_cid.entry(c.clone()).or_default().push(i);
            }
            let pair = if f.src_ip <= f.dest_ip {
                (f.src_ip.clone(), f.dest_ip.clone())
            } else {
                (f.dest_ip.clone(), f.src_ip.clone())
            };
            x.by_pair.entry(pair).or_default().push(i);
            if !f.queries.is_empty() {
                x.dns_by_src.entry(f.src_ip.clone()).or_default().push(i);
            }
        }
        x
    }

    /// Flows that belong to an alert: the same flow id or Community ID,
    /// or, for a beacon or exfiltration, any flow of the same host,
    /// destination address, port and protocol; for a DNS tunnel, the
    /// client's DNS flows asking under the domain; begun by the alert's
    /// time. Sorted by start.
    #[must_use]
    pub fn flows_of(&self, x: &FlowIndex, a: &Alert) -> Vec<usize> {
        let mut v: Vec<usize> = Vec::new();
        let get = |m: Option<&Vec<usize>>| m.cloned().unwrap_or_default();
        if let Some(id) = a.flow_id {
            v.extend(get(x.by_id.get(&id)));
        }
        if let Some(c) = &a.community_id {
            v.extend(get(x.by_cid.get(c)));
        }
        let domain = a
            .evidence
            .get("domain")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        match &domain {
            Some(d) if a.detector == "dns_tunnel" => {
                v.extend(
                    get(x.dns_by_src.get(&a.src_ip))
                        .into_iter()
                        .filter(|&i| self.flows[i].queries.iter().any(|q| under_domain(q, d))),
                );
            }
            _ => {
                let pair = if a.src_ip <= a.dest_ip {
                    (a.src_ip.clone(), a.dest_ip.clone())
                } else {
                    (a.dest_ip.clone(), a.src_ip.clone())
                };
                v.extend(get(x.by_pair.get(&pair)).into_iter().filter(|&i| {
                    let f = &self.flows[i];
                    let port = if f.src_ip == a.src_ip {
                        f.dest_port
                    } else {
                        f.src_port
                    };
                    port == a.dest_port && f.proto == a.proto
                }));
            }
        }
        // the flows the alert was made from: those begun by its time
        if let Some(t) = a.ts {
            v.retain(|&i| self.flows[i].start.is_none_or(|s| s <= t + SEC));
        }
        v.sort_by_key(|&i| (self.flows[i].start, i));
        v.dedup();
        v
    }

    /// Capture span over alerts, their evidence and flows.
    #[must_use]
    pub fn span(&self) -> Option<(Ns, Ns)> {
        let ev = |a: &Alert, k: &str| a.evidence.get(k).and_then(Value::as_str).and_then(parse_ts);
        let times = self
            .alerts
            .iter()
            .flat_map(|a| [a.ts, ev(a, "first_seen"), ev(a, "last_seen")])
            .chain(self.flows.iter().flat_map(|f| [f.start, f.end]))
            .flatten();
        times.fold(None, |acc, t| match acc {
            None => Some((t, t)),
            Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
        })
    }

    /// Alerts per internal host, most first.
    #[must_use]
    pub fn hosts(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<&str, usize> = HashMap::new();
        for a in &self.alerts {
            *m.entry(&a.src_ip).or_default() += 1;
        }
        let mut v: Vec<(String, usize)> = m.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// `name` is `domain` or a name under it (case-insensitive, `domain` lowercase).
fn under_domain(name: &str, domain: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    n == domain
        || n.ends_with(domain) && n.as_bytes().get(n.len() - domain.len() - 1) == Some(&b'.')
        // dnscat2's form: the domain is the first label
        || n.starts_with(domain) && n.as_bytes().get(domain.len()) == Some(&b'.')
}

/// The part of a query name that carries data (labels other than the domain's).
#[must_use]
pub fn subdomain<'a>(name: &'a str, domain: &str) -> &'a str {
    let n = name.trim_end_matches('.');
    let d = domain.len();
    let b = n.as_bytes();
    // a dot between data and domain: both cuts are then on char boundaries
    if n.len() > d + 1
        && b[n.len() - d - 1] == b'.'
        && b[n.len() - d..].eq_ignore_ascii_case(domain.as_bytes())
    {
        &n[..n.len() - d - 1]
    } else if n.len() > d + 1 && b[d] == b'.' && b[..d].eq_ignore_ascii_case(domain.as_bytes()) {
        &n[d + 1..]
    } else {
        n
    }
}

/// Shannon entropy in bits per character of the name's letters (dots removed).
#[must_use]
pub fn entropy_bits(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes().filter(|b| *b != b'.') {
        counts[usize::from(b)] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Seconds between two times.
#[allow(clippy::cast_precision_loss)]
fn secs(d: Ns) -> f64 {
    d as f64 / SEC as f64
}

/// Why `deguchi report` failed: an input could not be read (exit 3, as
/// for a capture) or the page could not be written (exit 1).
#[derive(Debug)]
pub enum RunError {
    Input(anyhow::Error),
    Output(anyhow::Error),
}

impl RunError {
    /// The process exit code for it.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) => 3,
            Self::Output(_) => 1,
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Input(e) | Self::Output(e) => write!(f, "{e:#}"),
        }
    }
}

/// `deguchi report` entry: reads the alert file (and flows), keeps the
/// alerts the filters pass, writes the page. Returns the alerts reported.
///
/// # Errors
/// An input that cannot be read, an output that cannot be written.
pub fn run(
    alerts: &Path,
    flows: Option<&Path>,
    out: &Path,
    opts: &Options,
) -> Result<usize, RunError> {
    let mut r = Report {
        source: alerts.display().to_string(),
        ..Report::default()
    };
    r.load(alerts).map_err(RunError::Input)?;
    if let Some(f) = flows {
        r.load(f).map_err(RunError::Input)?;
    }
    r.apply_filter(opts);
    let html = r.render(opts);
    std::fs::write(out, html)
        .with_context(|| format!("writing {}", out.display()))
        .map_err(RunError::Output)?;
    Ok(r.alerts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_both_styles() {
        let a = parse_ts("2026-03-02T09:11:00.000001Z").unwrap();
        let b = parse_ts("2026-03-02T09:11:00.000001+0000").unwrap();
        let c = parse_ts("2026-03-02T18:11:00.000001+09:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(parse_ts("yesterday").is_none());
    }

    #[test]
    fn tolerant_lines() {
        let mut r = Report::default();
        r.add_line(r#"{"timestamp":"2026-03-02T09:11:00.000000+0000","event_type":"alert","src_ip":"10.0.0.1","dest_ip":"1.2.3.4","proto":6,"alert":{"signature":"x","severity":1},"deguchi":{"detector":"beacon","evidence":{"period_s":60}}}"#);
        r.add_line(r#"{"event_type":"flow","src_ip":"10.0.0.1","dest_ip":"10.0.0.53","proto":"udp","flow":{"start":"2026-03-02T09:00:00Z","bytes_toserver":10},"deguchi":{"dns":{"queries":["a.b.example.com"]}}}"#);
        r.add_line("not json");
        r.add_line(r#"{"event_type":"stats"}"#);
        assert_eq!(r.alerts.len(), 1);
        assert_eq!(r.alerts[0].proto, "TCP");
        assert_eq!(r.alerts[0].severity, 1);
        assert_eq!(r.alerts[0].detector, "beacon");
        assert_eq!(r.alerts[0].evidence["period_s"], 60);
        assert_eq!(r.flows[0].proto, "UDP");
        assert_eq!(r.flows[0].payload, [10, 0]);
        assert_eq!(r.flows[0].queries, ["a.b.example.com"]);
        assert_eq!(r.skipped, 2);
    }

    #[test]
    fn subdomains_and_entropy() {
        assert_eq!(subdomain("abc.def.example.com", "example.com"), "abc.def");
        assert_eq!(subdomain("dnscat.0a1b2c", "dnscat"), "0a1b2c");
        // hostile names never cut inside a character
        assert_eq!(
            subdomain("ab\u{e9}xample.com", "xample.com"),
            "ab\u{e9}xample.com"
        );
        assert_eq!(subdomain("dnsca\u{e9}t", "dnsca"), "dnsca\u{e9}t");
        assert_eq!(subdomain("\u{e9}.com", "com"), "\u{e9}");
        assert!(under_domain("x.Example.com.", "example.com"));
        assert!(!under_domain("xexample.com", "example.com"));
        assert!((entropy_bits("abcd") - 2.0).abs() < 1e-9);
    }
}
