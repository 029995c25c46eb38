//! Configuration: `config/deguchi.toml` -> validated [`Config`].
//!
//! Every key is optional and has a documented default. Unknown sections or
//! keys and invalid values are errors naming the key (`flow.udp_timeout`);
//! all of them are collected and reported at once. CLI flags override the
//! file afterwards.

use crate::detect::beacon::{BeaconConfig, parse_proto_port};
use crate::detect::dns_tunnel::DnsTunnelConfig;
use crate::detect::exfil::ExfilConfig;
use crate::flow::table::{CLASSES, TableConfig};
use crate::homenet::{DEFAULT_HOME_NET, HomeNet};
use crate::time::SEC;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Live capture settings.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    pub snaplen: u32,
    pub buffer_mb: u32,
    pub promisc: bool,
    pub bpf: Option<String>,
    pub read_timeout_ms: u32,
    pub immediate: bool,
    pub stats_interval_s: u64,
    /// Drop to this user (and group) once the capture is open.
    pub user: Option<String>,
    pub group: Option<String>,
}

/// Flow tracking settings.
#[derive(Clone, Debug)]
pub struct FlowConfig {
    pub memcap_mb: u64,
    /// seconds, per class: tcp_new, tcp_established, tcp_closed, udp, icmp, other
    pub timeouts_s: [u64; CLASSES],
    /// Silence that separates two bursts of activity inside one flow, ms.
    pub burst_gap_ms: u64,
}

/// Where things are written.
#[derive(Clone, Debug, Default)]
pub struct OutputConfig {
    /// Alerts (JSON lines); `None` = stdout.
    pub alerts: Option<PathBuf>,
    /// Flow records (JSON lines); `None` = not written.
    pub flows: Option<PathBuf>,
    /// EVE `stats` events into the alert stream every this many seconds (0 = none).
    pub stats_interval_s: u64,
    /// Syslog outputs (`--syslog` URLs, see `outputs`).
    pub syslog: Vec<String>,
}

/// Cores this process may run on (1 if unknown).
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub home_net: HomeNet,
    pub home_net_text: Vec<String>,
    /// Flow shard threads; 0 = from the available cores.
    pub workers: usize,
    pub batch_size: usize,
    pub channel_batches: usize,
    /// Analysis threads (detector lanes); 0 = from the available cores.
    pub analysis_threads: usize,
    pub capture: CaptureConfig,
    pub flow: FlowConfig,
    pub output: OutputConfig,
    pub beacon: BeaconConfig,
    pub exfil: ExfilConfig,
    pub dns_tunnel: DnsTunnelConfig,
    pub state: StateConfig,
}

/// Detector state on disk (`[state]`).
#[derive(Clone, Debug)]
pub struct StateConfig {
    /// Snapshot file; `None` = learning is lost at exit.
    pub path: Option<PathBuf>,
    /// Seconds of packet time between snapshots.
    pub interval_s: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            home_net: HomeNet::default_nets(),
            home_net_text: DEFAULT_HOME_NET.iter().map(|s| (*s).to_owned()).collect(),
            workers: 0,
            batch_size: 2048,
            channel_batches: 4,
            analysis_threads: 0,
            capture: CaptureConfig {
                snaplen: 65535,
                buffer_mb: 64,
                promisc: true,
                bpf: None,
                read_timeout_ms: 100,
                immediate: false,
                stats_interval_s: 300,
                user: None,
                group: None,
            },
            flow: FlowConfig {
                memcap_mb: 256,
                timeouts_s: [60, 3600, 10, 120, 60, 60],
                burst_gap_ms: 1000,
            },
            output: OutputConfig::default(),
            beacon: BeaconConfig::default(),
            exfil: ExfilConfig::default(),
            dns_tunnel: DnsTunnelConfig::default(),
            state: StateConfig {
                path: None,
                interval_s: 300,
            },
        }
    }
}

/// A configuration that failed validation: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration{}:\n  {}", .file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default(), .errors.join("\n  "))]
pub struct ConfigError {
    pub file: Option<PathBuf>,
    pub errors: Vec<String>,
}

const TIMEOUT_KEYS: [&str; CLASSES] = [
    "tcp_new_timeout",
    "tcp_established_timeout",
    "tcp_closed_timeout",
    "udp_timeout",
    "icmp_timeout",
    "other_timeout",
];

struct Check<'a> {
    errors: &'a mut Vec<String>,
}

impl Check<'_> {
    fn section<'t>(&mut self, root: &'t Table, name: &str, keys: &[&str]) -> Option<&'t Table> {
        let v = root.get(name)?;
        let Some(t) = v.as_table() else {
            self.errors
                .push(format!("{name}: expected a table [{name}]"));
            return None;
        };
        for k in t.keys() {
            if !keys.contains(&k.as_str()) {
                self.errors.push(format!(
                    "{name}.{k}: unknown key (known: {})",
                    keys.join(", ")
                ));
            }
        }
        Some(t)
    }

    fn int(
        &mut self,
        t: Option<&Table>,
        sec: &str,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        let Some(v) = t.and_then(|t| t.get(key)) else {
            return default;
        };
        match v.as_integer().and_then(|i| u64::try_from(i).ok()) {
            Some(i) if (min..=max).contains(&i) => i,
            Some(i) => {
                self.errors
                    .push(format!("{sec}.{key}: {i} is out of range {min}..={max}"));
                default
            }
            None => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a non-negative integer, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    fn float(
        &mut self,
        t: Option<&Table>,
        sec: &str,
        key: &str,
        default: f64,
        min: f64,
        max: f64,
    ) -> f64 {
        let Some(v) = t.and_then(|t| t.get(key)) else {
            return default;
        };
        #[allow(clippy::cast_precision_loss)]
        let x = match v {
            Value::Float(f) => Some(*f),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        match x {
            Some(x) if x >= min && x <= max => x,
            Some(x) => {
                self.errors
                    .push(format!("{sec}.{key}: {x} is out of range {min}..={max}"));
                default
            }
            None => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a number, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    fn boolean(&mut self, t: Option<&Table>, sec: &str, key: &str, default: bool) -> bool {
        match t.and_then(|t| t.get(key)) {
            None => default,
            Some(Value::Boolean(b)) => *b,
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected true or false, found {}",
                    type_name(v)
                ));
                default
            }
        }
    }

    fn string(&mut self, t: Option<&Table>, sec: &str, key: &str) -> Option<String> {
        match t.and_then(|t| t.get(key)) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected a string, found {}",
                    type_name(v)
                ));
                None
            }
        }
    }

    fn strings(&mut self, t: Option<&Table>, sec: &str, key: &str) -> Option<Vec<String>> {
        match t.and_then(|t| t.get(key)) {
            None => None,
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                for (i, v) in a.iter().enumerate() {
                    match v.as_str() {
                        Some(s) => out.push(s.to_owned()),
                        None => self.errors.push(format!(
                            "{sec}.{key}[{i}]: expected a string, found {}",
                            type_name(v)
                        )),
                    }
                }
                Some(out)
            }
            Some(v) => {
                self.errors.push(format!(
                    "{sec}.{key}: expected an array of strings, found {}",
                    type_name(v)
                ));
                None
            }
        }
    }
}

fn parse_beacon(c: &mut Check<'_>, root: &Table, d: &BeaconConfig) -> BeaconConfig {
    const S: &str = "beacon";
    let t = c.section(
        root,
        S,
        &[
            "enabled",
            "min_beats",
            "threshold",
            "high_threshold",
            "min_period_s",
            "max_period_s",
            "coalesce_ms",
            "max_pairs",
            "max_samples",
            "realert_s",
            "popular_min_hosts",
            "popular_fraction",
            "popular_settle_s",
            "allow_cidrs",
            "allow_domains",
            "allow_ports",
        ],
    );
    let us = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
    let mut b = BeaconConfig {
        enabled: c.boolean(t, S, "enabled", d.enabled),
        min_beats: us(c.int(t, S, "min_beats", d.min_beats as u64, 3, 1000)),
        threshold_nats: c.float(t, S, "threshold", d.threshold_nats, 1.0, 1e6),
        high_nats: c.float(t, S, "high_threshold", d.high_nats, 1.0, 1e6),
        min_period_s: c.float(t, S, "min_period_s", d.min_period_s, 0.1, 86_400.0),
        max_period_s: c.float(t, S, "max_period_s", d.max_period_s, 1.0, 7.0 * 86_400.0),
        coalesce_ms: c.int(t, S, "coalesce_ms", d.coalesce_ms, 0, 60_000),
        max_pairs: us(c.int(t, S, "max_pairs", d.max_pairs as u64, 16, 100_000_000)),
        max_samples: us(c.int(t, S, "max_samples", d.max_samples as u64, 8, 4096)),
        realert_s: c.int(t, S, "realert_s", d.realert_s, 0, 365 * 86_400),
        popular_min_hosts: us(c.int(
            t,
            S,
            "popular_min_hosts",
            d.popular_min_hosts as u64,
            2,
            1_000_000,
        )),
        popular_fraction: c.float(t, S, "popular_fraction", d.popular_fraction, 0.0, 1.0),
        popular_settle_s: c.int(t, S, "popular_settle_s", d.popular_settle_s, 0, 7 * 86_400),
        ..d.clone()
    };
    if b.high_nats < b.threshold_nats {
        c.errors.push(format!(
            "beacon.high_threshold: {} is below beacon.threshold {}",
            b.high_nats, b.threshold_nats
        ));
    }
    if let Some(v) = c.strings(t, S, "allow_cidrs") {
        match HomeNet::parse(&v) {
            Ok(h) => b.allow_cidrs = h.nets().to_vec(),
            Err(es) => c
                .errors
                .extend(es.into_iter().map(|e| format!("beacon.allow_cidrs: {e}"))),
        }
    }
    if let Some(v) = c.strings(t, S, "allow_domains") {
        b.allow_domains = v;
    }
    if let Some(v) = c.strings(t, S, "allow_ports") {
        b.allow_ports.clear();
        for s in v {
            match parse_proto_port(&s) {
                Ok(p) => b.allow_ports.push(p),
                Err(e) => c.errors.push(format!("beacon.allow_ports: {e}")),
            }
        }
    }
    b
}

fn parse_exfil(c: &mut Check<'_>, root: &Table, d: &ExfilConfig) -> ExfilConfig {
    const S: &str = "exfil";
    let t = c.section(
        root,
        S,
        &[
            "enabled",
            "learning_s",
            "burst_floor_5m_mb",
            "burst_floor_1h_mb",
            "burst_ratio",
            "lowslow_floor_24h_mb",
            "rare_max_hosts",
            "producer_floor_kb",
            "producer_floor_web_kb",
            "unusual_floor_bytes",
            "raw_floor_kb",
            "min_pair_pcr",
            "max_hosts",
            "max_pairs",
        ],
    );
    let us = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
    const MB: u64 = 1 << 20;
    ExfilConfig {
        enabled: c.boolean(t, S, "enabled", d.enabled),
        learning_s: c.int(t, S, "learning_s", d.learning_s, 0, 365 * 86_400),
        burst_floor_5m: c.int(t, S, "burst_floor_5m_mb", d.burst_floor_5m / MB, 1, 1 << 30) * MB,
        burst_floor_1h: c.int(t, S, "burst_floor_1h_mb", d.burst_floor_1h / MB, 1, 1 << 30) * MB,
        burst_ratio: c.float(t, S, "burst_ratio", d.burst_ratio, 1.0, 1e6),
        lowslow_floor_24h: c.int(
            t,
            S,
            "lowslow_floor_24h_mb",
            d.lowslow_floor_24h / MB,
            1,
            1 << 30,
        ) * MB,
        rare_max_hosts: us(c.int(
            t,
            S,
            "rare_max_hosts",
            d.rare_max_hosts as u64,
            1,
            1_000_000,
        )),
        producer_floor: c.int(
            t,
            S,
            "producer_floor_kb",
            d.producer_floor / 1024,
            1,
            1 << 30,
        ) * 1024,
        producer_floor_web: c.int(
            t,
            S,
            "producer_floor_web_kb",
            d.producer_floor_web / 1024,
            1,
            1 << 30,
        ) * 1024,
        unusual_floor: c.int(t, S, "unusual_floor_bytes", d.unusual_floor, 1, 1 << 40),
        raw_floor: c.int(t, S, "raw_floor_kb", d.raw_floor / 1024, 1, 1 << 30) * 1024,
        min_pair_pcr: c.float(t, S, "min_pair_pcr", d.min_pair_pcr, -1.0, 1.0),
        max_hosts: us(c.int(t, S, "max_hosts", d.max_hosts as u64, 16, 100_000_000)),
        max_pairs: us(c.int(t, S, "max_pairs", d.max_pairs as u64, 16, 100_000_000)),
    }
}

fn parse_dns_tunnel(c: &mut Check<'_>, root: &Table, d: &DnsTunnelConfig) -> DnsTunnelConfig {
    const S: &str = "dns_tunnel";
    let t = c.section(
        root,
        S,
        &[
            "enabled",
            "window_s",
            "min_unique",
            "min_name_bytes",
            "min_avg_len",
            "min_entropy",
            "max_domains",
            "allow_domains",
        ],
    );
    let us = |x: u64| usize::try_from(x).unwrap_or(usize::MAX);
    let mut r = DnsTunnelConfig {
        enabled: c.boolean(t, S, "enabled", d.enabled),
        window_s: c.int(t, S, "window_s", d.window_s, 10, 86_400),
        min_unique: us(c.int(t, S, "min_unique", d.min_unique as u64, 2, 1_000_000)),
        min_name_bytes: c.int(t, S, "min_name_bytes", d.min_name_bytes, 1, 1 << 40),
        min_avg_len: c.float(t, S, "min_avg_len", d.min_avg_len, 1.0, 255.0),
        min_entropy: c.float(t, S, "min_entropy", d.min_entropy, 0.0, 8.0),
        max_domains: us(c.int(t, S, "max_domains", d.max_domains as u64, 16, 100_000_000)),
        ..d.clone()
    };
    if let Some(v) = c.strings(t, S, "allow_domains") {
        r.allow_domains = v;
    }
    r
}

fn type_name(v: &Value) -> &'static str {
    v.type_str()
}

impl Config {
    /// Loads and validates a TOML file.
    ///
    /// # Errors
    /// Unreadable file, TOML syntax error, or every invalid key and value.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: Some(path.to_owned()),
            errors: vec![format!("cannot read: {e}")],
        })?;
        Self::from_toml(&text).map_err(|mut e| {
            e.file = Some(path.to_owned());
            e
        })
    }

    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// TOML syntax error, or every invalid key and value.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let root: Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            file: None,
            errors: vec![e.to_string().trim().to_owned()],
        })?;
        let d = Self::default();
        let mut errors = Vec::new();
        let mut c = Check {
            errors: &mut errors,
        };
        const SECTIONS: [&str; 8] = [
            "general",
            "capture",
            "flow",
            "output",
            "beacon",
            "exfil",
            "dns_tunnel",
            "state",
        ];
        for k in root.keys() {
            if !SECTIONS.contains(&k.as_str()) {
                c.errors.push(format!(
                    "{k}: unknown section (known: {})",
                    SECTIONS.join(", ")
                ));
            }
        }
        let g = c.section(
            &root,
            "general",
            &[
                "home_net",
                "workers",
                "batch_size",
                "channel_batches",
                "analysis_threads",
            ],
        );
        let home_net_text = c
            .strings(g, "general", "home_net")
            .unwrap_or(d.home_net_text.clone());
        let home_net = match HomeNet::parse(&home_net_text) {
            Ok(h) => h,
            Err(es) => {
                for e in es {
                    c.errors.push(format!("general.home_net: {e}"));
                }
                d.home_net.clone()
            }
        };
        // defaults from `Config::default()`, like every other section
        let workers = usize::try_from(c.int(g, "general", "workers", d.workers as u64, 0, 256))
            .unwrap_or(d.workers);
        let batch_size =
            usize::try_from(c.int(g, "general", "batch_size", d.batch_size as u64, 1, 65536))
                .unwrap_or(d.batch_size);
        let channel_batches = usize::try_from(c.int(
            g,
            "general",
            "channel_batches",
            d.channel_batches as u64,
            1,
            4096,
        ))
        .unwrap_or(d.channel_batches);
        let analysis_threads = usize::try_from(c.int(
            g,
            "general",
            "analysis_threads",
            d.analysis_threads as u64,
            0,
            8,
        ))
        .unwrap_or(d.analysis_threads);

        let cap = c.section(
            &root,
            "capture",
            &[
                "snaplen",
                "buffer_mb",
                "promisc",
                "bpf",
                "read_timeout_ms",
                "immediate",
                "stats_interval",
                "user",
                "group",
            ],
        );
        let dc = &d.capture;
        let capture = CaptureConfig {
            snaplen: u32::try_from(c.int(
                cap,
                "capture",
                "snaplen",
                dc.snaplen.into(),
                64,
                262_144,
            ))
            .unwrap_or(dc.snaplen),
            buffer_mb: u32::try_from(c.int(
                cap,
                "capture",
                "buffer_mb",
                dc.buffer_mb.into(),
                1,
                4096,
            ))
            .unwrap_or(dc.buffer_mb),
            promisc: c.boolean(cap, "capture", "promisc", dc.promisc),
            bpf: c
                .string(cap, "capture", "bpf")
                .filter(|s| !s.trim().is_empty()),
            read_timeout_ms: u32::try_from(c.int(
                cap,
                "capture",
                "read_timeout_ms",
                dc.read_timeout_ms.into(),
                1,
                10_000,
            ))
            .unwrap_or(dc.read_timeout_ms),
            immediate: c.boolean(cap, "capture", "immediate", dc.immediate),
            stats_interval_s: c.int(
                cap,
                "capture",
                "stats_interval",
                dc.stats_interval_s,
                1,
                86_400,
            ),
            user: c.string(cap, "capture", "user").filter(|s| !s.is_empty()),
            group: c.string(cap, "capture", "group").filter(|s| !s.is_empty()),
        };

        let mut fkeys = vec!["memcap_mb", "burst_gap_ms"];
        fkeys.extend_from_slice(&TIMEOUT_KEYS);
        let f = c.section(&root, "flow", &fkeys);
        let mut timeouts_s = d.flow.timeouts_s;
        for (i, k) in TIMEOUT_KEYS.iter().enumerate() {
            timeouts_s[i] = c.int(f, "flow", k, timeouts_s[i], 1, 7 * 86_400);
        }
        let flow = FlowConfig {
            memcap_mb: c.int(f, "flow", "memcap_mb", d.flow.memcap_mb, 1, 1 << 20),
            timeouts_s,
            burst_gap_ms: c.int(f, "flow", "burst_gap_ms", d.flow.burst_gap_ms, 100, 600_000),
        };

        let o = c.section(&root, "output", &["alerts", "flows", "stats_interval"]);
        let output = OutputConfig {
            alerts: c
                .string(o, "output", "alerts")
                .filter(|s| !s.is_empty() && s != "-")
                .map(PathBuf::from),
            flows: c
                .string(o, "output", "flows")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            stats_interval_s: c.int(o, "output", "stats_interval", 0, 0, 86_400),
            syslog: Vec::new(),
        };

        let beacon = parse_beacon(&mut c, &root, &d.beacon);
        let exfil = parse_exfil(&mut c, &root, &d.exfil);
        let dns_tunnel = parse_dns_tunnel(&mut c, &root, &d.dns_tunnel);
        let st = c.section(&root, "state", &["path", "interval_s"]);
        let state = StateConfig {
            path: c
                .string(st, "state", "path")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            interval_s: c.int(st, "state", "interval_s", d.state.interval_s, 1, 86_400),
        };

        if errors.is_empty() {
            Ok(Self {
                home_net,
                home_net_text,
                workers,
                batch_size,
                channel_batches,
                analysis_threads,
                capture,
                flow,
                output,
                beacon,
                exfil,
                dns_tunnel,
                state,
            })
        } else {
            Err(ConfigError { file: None, errors })
        }
    }

    /// Analysis lanes to run (each detector group on its own thread; at most
    /// one per enabled detector, see `Analyzer::split_off`).
    #[must_use]
    pub fn analysis_lanes(&self) -> usize {
        if self.analysis_threads > 0 {
            return self.analysis_threads;
        }
        if cores() >= 4 { 2 } else { 1 }
    }

    /// Whether a single analysis lane is split in two at the end of the
    /// input, the second half moving to a spare thread (see
    /// `pipeline::run`): only worth it with a second core to run it on.
    #[must_use]
    pub fn end_of_input_split(&self) -> bool {
        cores() >= 2
    }

    /// Flow shards to run.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        // capture+decode, analysis and writer take the rest
        cores().saturating_sub(1).max(1)
    }

    /// Per-shard table settings from the flow section.
    #[must_use]
    pub fn table_config(&self, shards: usize) -> TableConfig {
        let mut timeouts = [0; CLASSES];
        for (t, s) in timeouts.iter_mut().zip(self.flow.timeouts_s) {
            *t = i64::try_from(s).unwrap_or(i64::MAX / SEC) * SEC;
        }
        let total = usize::try_from(self.flow.memcap_mb << 20).unwrap_or(usize::MAX)
            / crate::flow::table::bytes_per_flow();
        TableConfig {
            timeouts,
            max_flows: (total / shards.max(1)).max(16),
            burst_gap: i64::try_from(self.flow.burst_gap_ms).unwrap_or(1000) * (SEC / 1000),
            progress_bytes: 1 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_error_with_its_key() {
        let e = Config::from_toml(
            "[flow]\nudp_timeout = -3\nbogus = 1\n[capture]\npromisc = \"yes\"\n[general]\nhome_net = [\"10.0.0.0/8\", \"nope\"]\n[extra]\n",
        )
        .unwrap_err();
        let all = e.errors.join("\n");
        assert!(all.contains("flow.udp_timeout"), "{all}");
        assert!(all.contains("flow.bogus: unknown key"), "{all}");
        assert!(all.contains("capture.promisc"), "{all}");
        assert!(all.contains("general.home_net"), "{all}");
        assert!(all.contains("extra: unknown section"), "{all}");
        assert_eq!(e.errors.len(), 5);
    }

    #[test]
    fn bundled_config_loads() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/deguchi.toml");
        let c = Config::load(&p).unwrap();
        let d = Config::default();
        assert_eq!(c.flow.timeouts_s, d.flow.timeouts_s);
        assert_eq!(c.flow.memcap_mb, d.flow.memcap_mb);
        assert_eq!(c.home_net_text, d.home_net_text);
        // the file documents the defaults: keep them equal
        assert_eq!(c.flow.burst_gap_ms, d.flow.burst_gap_ms);
        assert_eq!(c.beacon.min_beats, d.beacon.min_beats);
        assert!((c.beacon.threshold_nats - d.beacon.threshold_nats).abs() < 1e-9);
        assert_eq!(c.beacon.allow_domains, d.beacon.allow_domains);
        assert_eq!(c.beacon.allow_ports, d.beacon.allow_ports);
        assert_eq!(c.beacon.max_pairs, d.beacon.max_pairs);
        assert_eq!(c.exfil.learning_s, d.exfil.learning_s);
        assert_eq!(c.exfil.burst_floor_5m, d.exfil.burst_floor_5m);
        assert_eq!(c.exfil.lowslow_floor_24h, d.exfil.lowslow_floor_24h);
        assert_eq!(c.exfil.producer_floor, d.exfil.producer_floor);
        assert_eq!(c.exfil.unusual_floor, d.exfil.unusual_floor);
        assert_eq!(c.dns_tunnel.min_unique, d.dns_tunnel.min_unique);
        assert_eq!(c.dns_tunnel.allow_domains, d.dns_tunnel.allow_domains);
        assert_eq!(c.state.interval_s, d.state.interval_s);
        assert!(c.state.path.is_none());
    }

    #[test]
    fn syntax_error_is_reported() {
        assert!(Config::from_toml("[flow\n").is_err());
    }
}
