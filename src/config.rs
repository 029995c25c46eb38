//! Configuration: `config/deguchi.toml` -> validated [`Config`].
//!
//! Every key is optional and has a documented default. Unknown sections or
//! keys and invalid values are errors naming the key (`flow.udp_timeout`);
//! all of them are collected and reported at once. CLI flags override the
//! file afterwards.

use crate::baseline::BaselineConfig;
use crate::detect::Detectors;
use crate::evidence::EvidenceConfig;
use crate::flow::table::{CLASSES, TableConfig};
use crate::homenet::{DEFAULT_HOME_NET, HomeNet};
use crate::time::SEC;
use std::path::{Path, PathBuf};
use toml::Table;

/// Bounds of `capture.buffer_mb` / `--buffer-mb`: libpcap takes the buffer
/// size in bytes as a C `int`, so 2047 MiB is the largest it can be given.
pub const BUFFER_MB_MIN: u32 = 1;
pub const BUFFER_MB_MAX: u32 = 2047;
/// Bounds of `capture.snaplen` / `--snaplen`.
pub const SNAPLEN_MIN: u32 = 64;
pub const SNAPLEN_MAX: u32 = 262_144;
/// Bounds of `capture.threads` / `--capture-threads`.
pub const CAPTURE_THREADS_MIN: usize = 1;
pub const CAPTURE_THREADS_MAX: usize = 64;
/// Bounds of `capture.priority` / `--capture-priority`: the live pipeline
/// runs at nice `-N` (0 = as the process; 20 is nice -20, the highest).
pub const CAPTURE_PRIORITY_MIN: u32 = 0;
pub const CAPTURE_PRIORITY_MAX: u32 = 20;
/// Largest `capture.dedup_window_ms`.
pub const DEDUP_WINDOW_MS_MAX: u64 = 1000;

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
    /// Live: the most the capture->shard queues hold, MiB, before a batch
    /// waits (and, waiting too long, is shed).
    pub queue_mb: u32,
    /// Live: warn (once) when no packet arrived for this many seconds; 0 = never.
    pub idle_warn_s: u64,
    /// Live: capture sockets (and threads) in one AF_PACKET fanout group.
    pub threads: usize,
    /// Live: run the pipeline threads (capture, shards, analysis, writer)
    /// at nice `-N` (0 = leave it), when permitted.
    pub priority: u32,
    /// Drop a packet whose bytes equal one seen this many ms before (SPAN
    /// duplicates); 0 = off. Live and replay.
    pub dedup_window_ms: u64,
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
    /// Lowest ephemeral port, for orienting TCP flows seen without a
    /// handshake; 0 = orient them by their first packet.
    pub ephemeral_port_min: u16,
    /// A TCP segment of 0-1 byte (ACK, no SYN/FIN/RST) after at least this
    /// much silence in its flow is a keep-alive probe, reported as such to
    /// the detectors, seconds; 0 = not reported.
    pub keepalive_idle_s: u64,
}

/// Where things are written.
#[derive(Clone, Debug)]
pub struct OutputConfig {
    /// Alerts (JSON lines); `None` = stdout.
    pub alerts: Option<PathBuf>,
    /// Flow records (JSON lines); `None` = not written.
    pub flows: Option<PathBuf>,
    /// EVE `stats` events into the alert stream every this many seconds (0 = none).
    pub stats_interval_s: u64,
    /// Syslog outputs: `[[output.syslog]]` tables, then `--syslog` URLs
    /// (see `outputs`).
    pub syslog: Vec<crate::outputs::SyslogSpec>,
    /// MiB the queue of each file or stdout output holds (see `sink`).
    pub queue_mb: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            alerts: None,
            flows: None,
            stats_interval_s: 0,
            syslog: Vec::new(),
            queue_mb: 64,
        }
    }
}

/// The `[[output.syslog]]` tables (a single `[output.syslog]` table too):
/// `url` (required) and the options of [`crate::outputs::SyslogSpec`].
fn syslog_outputs(
    c: &mut crate::settings::Check<'_>,
    o: Option<&Table>,
) -> Vec<crate::outputs::SyslogSpec> {
    use crate::outputs::SyslogSpec;
    let tables: Vec<(String, &toml::Value)> = match o.and_then(|t| t.get("syslog")) {
        None => return Vec::new(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("output.syslog[{i}]"), v))
            .collect(),
        Some(v) => vec![("output.syslog".to_owned(), v)],
    };
    let mut out = Vec::new();
    for (name, v) in tables {
        let Some(t) = v.as_table() else {
            c.errors
                .push(format!("{name}: expected a table ([[output.syslog]])"));
            continue;
        };
        let known: Vec<&str> = std::iter::once("url").chain(SyslogSpec::OPTIONS).collect();
        for k in t.keys() {
            if !known.contains(&k.as_str()) {
                c.errors.push(format!(
                    "{name}.{k}: unknown key (known: {})",
                    known.join(", ")
                ));
            }
        }
        let Some(url) = c.string(Some(t), &name, "url") else {
            if !t.contains_key("url") {
                c.errors.push(format!(
                    "{name}.url: missing (udp://HOST:PORT, tcp://HOST:PORT or unix://PATH)"
                ));
            }
            continue;
        };
        if url.contains('?') {
            c.errors.push(format!(
                "{name}.url: {url}: options are keys of the table here ({})",
                SyslogSpec::OPTIONS.join(", ")
            ));
            continue;
        }
        let mut spec = match SyslogSpec::base(&url) {
            Ok(s) => s,
            Err(e) => {
                c.errors.push(format!("{name}.url: {url}: {e}"));
                continue;
            }
        };
        let mut ok = true;
        for k in ["facility", "app_name"] {
            if let Some(v) = c.string(Some(t), &name, k)
                && let Err(e) = spec.set(k, &v)
            {
                c.errors.push(format!("{name}.{k}: {e}"));
                ok = false;
            }
        }
        let queue = c.int(Some(t), &name, "queue", spec.queue as u64, 1, 1 << 20);
        spec.queue = usize::try_from(queue).unwrap_or(spec.queue);
        spec.flows = c.boolean(Some(t), &name, "flows", false);
        if ok {
            out.push(spec);
        }
    }
    out
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
    /// Analysis threads running the partitions; 0 = from the available cores.
    pub analysis_threads: usize,
    /// Analysis partitions: internal hosts are hashed to this many, each
    /// owning its hosts' detector state (independent of the thread count).
    pub partitions: usize,
    pub capture: CaptureConfig,
    pub flow: FlowConfig,
    pub output: OutputConfig,
    /// Every registered detector's section ([`crate::detect::REGISTRY`]).
    pub detectors: Detectors,
    pub baseline: BaselineConfig,
    pub state: StateConfig,
    /// Evidence pcaps of alerted flows (`[evidence]`, `--evidence DIR`).
    pub evidence: EvidenceConfig,
    /// The message bus (`[bus]`, `--publish`, `deguchi analyze --bus`).
    pub bus: crate::bus::BusConfig,
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
            partitions: 16,
            capture: CaptureConfig {
                snaplen: 65535,
                buffer_mb: 128,
                promisc: true,
                bpf: None,
                read_timeout_ms: 100,
                immediate: false,
                stats_interval_s: 300,
                queue_mb: 64,
                idle_warn_s: 60,
                threads: 1,
                priority: 10,
                dedup_window_ms: 0,
                user: None,
                group: None,
            },
            flow: FlowConfig {
                memcap_mb: 256,
                timeouts_s: [60, 3600, 10, 120, 60, 60],
                burst_gap_ms: 1000,
                ephemeral_port_min: 32768,
                keepalive_idle_s: 10,
            },
            output: OutputConfig::default(),
            detectors: Detectors::default(),
            baseline: BaselineConfig::default(),
            state: StateConfig {
                path: None,
                interval_s: 300,
            },
            evidence: EvidenceConfig::default(),
            bus: crate::bus::BusConfig::default(),
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

use crate::settings::Check;

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
        let sections: Vec<&str> = [
            "general", "capture", "flow", "output", "baseline", "state", "evidence", "bus",
        ]
        .into_iter()
        .chain(Detectors::names())
        .collect();
        for k in root.keys() {
            if !sections.contains(&k.as_str()) {
                c.errors.push(format!(
                    "{k}: unknown section (known: {})",
                    sections.join(", ")
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
                "partitions",
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
        let partitions =
            usize::try_from(c.int(g, "general", "partitions", d.partitions as u64, 1, 4096))
                .unwrap_or(d.partitions);

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
                "queue_mb",
                "idle_warn_s",
                "threads",
                "priority",
                "dedup_window_ms",
                "user",
                "group",
            ],
        );
        let dc = &d.capture;
        let capture = CaptureConfig {
            snaplen: c.int_u32(
                cap,
                "capture",
                "snaplen",
                dc.snaplen,
                SNAPLEN_MIN,
                SNAPLEN_MAX,
            ),
            buffer_mb: c.int_u32(
                cap,
                "capture",
                "buffer_mb",
                dc.buffer_mb,
                BUFFER_MB_MIN,
                BUFFER_MB_MAX,
            ),
            promisc: c.boolean(cap, "capture", "promisc", dc.promisc),
            bpf: c
                .string(cap, "capture", "bpf")
                .filter(|s| !s.trim().is_empty()),
            read_timeout_ms: c.int_u32(
                cap,
                "capture",
                "read_timeout_ms",
                dc.read_timeout_ms,
                1,
                10_000,
            ),
            immediate: c.boolean(cap, "capture", "immediate", dc.immediate),
            stats_interval_s: c.int(
                cap,
                "capture",
                "stats_interval",
                dc.stats_interval_s,
                1,
                86_400,
            ),
            queue_mb: c.int_u32(cap, "capture", "queue_mb", dc.queue_mb, 1, 65_536),
            idle_warn_s: c.int(cap, "capture", "idle_warn_s", dc.idle_warn_s, 0, 86_400),
            threads: usize::try_from(c.int(
                cap,
                "capture",
                "threads",
                dc.threads as u64,
                CAPTURE_THREADS_MIN as u64,
                CAPTURE_THREADS_MAX as u64,
            ))
            .unwrap_or(dc.threads),
            priority: c.int_u32(
                cap,
                "capture",
                "priority",
                dc.priority,
                CAPTURE_PRIORITY_MIN,
                CAPTURE_PRIORITY_MAX,
            ),
            dedup_window_ms: c.int(
                cap,
                "capture",
                "dedup_window_ms",
                dc.dedup_window_ms,
                0,
                DEDUP_WINDOW_MS_MAX,
            ),
            user: c.string(cap, "capture", "user").filter(|s| !s.is_empty()),
            group: c.string(cap, "capture", "group").filter(|s| !s.is_empty()),
        };

        let mut fkeys = vec![
            "memcap_mb",
            "burst_gap_ms",
            "ephemeral_port_min",
            "keepalive_idle_s",
        ];
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
            ephemeral_port_min: u16::try_from(c.int(
                f,
                "flow",
                "ephemeral_port_min",
                u64::from(d.flow.ephemeral_port_min),
                0,
                65_535,
            ))
            .unwrap_or(d.flow.ephemeral_port_min),
            keepalive_idle_s: c.int(
                f,
                "flow",
                "keepalive_idle_s",
                d.flow.keepalive_idle_s,
                0,
                86_400,
            ),
        };

        let o = c.section(
            &root,
            "output",
            &["alerts", "flows", "stats_interval", "queue_mb", "syslog"],
        );
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
            syslog: syslog_outputs(&mut c, o),
            queue_mb: c.int_u32(o, "output", "queue_mb", d.output.queue_mb, 1, 4096),
        };

        let detectors = Detectors::parse(&mut c, &root);
        let bl = c.section(&root, "baseline", &["max_entries"]);
        let baseline = BaselineConfig {
            max_entries: usize::try_from(c.int(
                bl,
                "baseline",
                "max_entries",
                d.baseline.max_entries as u64,
                16,
                100_000_000,
            ))
            .unwrap_or(d.baseline.max_entries),
        };
        let st = c.section(&root, "state", &["path", "interval_s"]);
        let state = StateConfig {
            path: c
                .string(st, "state", "path")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            interval_s: c.int(st, "state", "interval_s", d.state.interval_s, 1, 86_400),
        };

        let ev = c.section(
            &root,
            "evidence",
            &[
                "dir",
                "memory_mb",
                "disk_mb",
                "packets_before",
                "packets_after",
            ],
        );
        let de = &d.evidence;
        let count = |c: &mut Check<'_>, key: &str, default: usize| {
            usize::try_from(c.int(ev, "evidence", key, default as u64, 1, 100_000))
                .unwrap_or(default)
        };
        let evidence = EvidenceConfig {
            dir: c
                .string(ev, "evidence", "dir")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            memory_mb: c.int(ev, "evidence", "memory_mb", de.memory_mb, 1, 1 << 20),
            disk_mb: c.int(ev, "evidence", "disk_mb", de.disk_mb, 1, 1 << 30),
            packets_before: count(&mut c, "packets_before", de.packets_before),
            packets_after: usize::try_from(c.int(
                ev,
                "evidence",
                "packets_after",
                de.packets_after as u64,
                0,
                100_000,
            ))
            .unwrap_or(de.packets_after),
        };

        let bus = crate::bus::BusConfig::parse(&mut c, &root);

        if errors.is_empty() {
            Ok(Self {
                bus,
                home_net,
                home_net_text,
                workers,
                batch_size,
                channel_batches,
                analysis_threads,
                partitions,
                capture,
                flow,
                output,
                detectors,
                baseline,
                state,
                evidence,
            })
        } else {
            Err(ConfigError { file: None, errors })
        }
    }

    /// Analysis threads to run the partitions on: `general.analysis_threads`,
    /// or the cores left beside capture and one shard (at least one, at most
    /// the partitions).
    #[must_use]
    pub fn analysis_thread_count(&self) -> usize {
        let n = if self.analysis_threads > 0 {
            self.analysis_threads
        } else {
            cores().saturating_sub(2).max(1)
        };
        n.clamp(1, self.partitions.max(1))
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
            ephemeral_port_min: self.flow.ephemeral_port_min,
            keepalive_idle: i64::try_from(self.flow.keepalive_idle_s).unwrap_or(0) * SEC,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_outputs_from_tables() {
        let c = Config::from_toml(
            "[output]\nqueue_mb = 8\n[[output.syslog]]\nurl = \"tcp://127.0.0.1:5514\"\nfacility = \"local0\"\napp_name = \"ids\"\nqueue = 8\nflows = true\n[[output.syslog]]\nurl = \"unix:///dev/log\"\n",
        )
        .unwrap();
        assert_eq!(c.output.queue_mb, 8);
        let [a, b] = c.output.syslog.as_slice() else {
            panic!("two outputs: {:?}", c.output.syslog);
        };
        assert_eq!(
            a,
            &crate::outputs::SyslogSpec::parse(
                "tcp://127.0.0.1:5514?facility=local0&app_name=ids&queue=8&flows=1"
            )
            .unwrap()
        );
        assert_eq!(
            b,
            &crate::outputs::SyslogSpec::parse("unix:///dev/log").unwrap()
        );
        assert_eq!(Config::default().output.queue_mb, 64);
        let e = Config::from_toml(
            "[[output.syslog]]\nurl = \"tcp://h\"\n[[output.syslog]]\nurl = \"udp://h:1\"\ncolour = 1\nfacility = \"local9\"\nqueue = 0\nflows = \"yes\"\n[[output.syslog]]\nfacility = \"user\"\n[[output.syslog]]\nurl = \"udp://h:1?queue=3\"\n",
        )
        .unwrap_err();
        let all = e.errors.join("\n");
        for want in [
            "output.syslog[0].url: tcp://h: HOST:PORT expected",
            "output.syslog[1].colour: unknown key",
            "output.syslog[1].facility: unknown facility \"local9\"",
            "output.syslog[1].queue: 0 is out of range",
            "output.syslog[1].flows: expected true or false",
            "output.syslog[2].url: missing",
            "output.syslog[3].url: udp://h:1?queue=3: options are keys",
        ] {
            assert!(all.contains(want), "{want} in:\n{all}");
        }
    }

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
        assert_eq!(c.flow.ephemeral_port_min, d.flow.ephemeral_port_min);
        assert_eq!(c.flow.keepalive_idle_s, d.flow.keepalive_idle_s);
        use crate::detect::beacon::BeaconConfig;
        use crate::detect::dns_tunnel::DnsTunnelConfig;
        use crate::detect::exfil::ExfilConfig;
        let sec = |c: &Config| {
            (
                c.detectors.get::<BeaconConfig>().unwrap().clone(),
                c.detectors.get::<ExfilConfig>().unwrap().clone(),
                c.detectors.get::<DnsTunnelConfig>().unwrap().clone(),
            )
        };
        let ((cb, ce, cd), (db, de, dd)) = (sec(&c), sec(&d));
        assert_eq!(cb.min_beats, db.min_beats);
        assert!((cb.threshold_nats - db.threshold_nats).abs() < 1e-9);
        assert_eq!(cb.allow_domains, db.allow_domains);
        assert_eq!(cb.allow_ports, db.allow_ports);
        assert_eq!(cb.allow_cidrs, db.allow_cidrs);
        assert_eq!(cb.min_session_span_s, db.min_session_span_s);
        assert!((cb.merge_fraction - db.merge_fraction).abs() < 1e-9);
        assert_eq!(cb.burst_level, db.burst_level);
        assert_eq!(cb.grid, db.grid);
        assert_eq!(cb.high_jitter_min_beats, db.high_jitter_min_beats);
        assert_eq!(cb.high_jitter_max_hosts, db.high_jitter_max_hosts);
        assert_eq!(cb.own_bursts_only, db.own_bursts_only);
        assert_eq!(cb.keepalive_probes, db.keepalive_probes);
        assert_eq!(cb.keepalive_min_span_s, db.keepalive_min_span_s);
        assert_eq!(cb.per_session, db.per_session);
        assert_eq!(cb.max_pairs, db.max_pairs);
        assert_eq!(ce.learning_s, de.learning_s);
        assert_eq!(ce.burst_floor_5m, de.burst_floor_5m);
        assert_eq!(ce.lowslow_floor_24h, de.lowslow_floor_24h);
        assert_eq!(ce.producer_floor, de.producer_floor);
        assert_eq!(ce.raw_young_after_s, de.raw_young_after_s);
        assert!((ce.raw_young_pcr - de.raw_young_pcr).abs() < 1e-9);
        assert_eq!(ce.unusual_floor, de.unusual_floor);
        assert_eq!(cd.min_unique, dd.min_unique);
        assert_eq!(cd.bulk_name_bytes, dd.bulk_name_bytes);
        assert!((cd.bulk_avg_len - dd.bulk_avg_len).abs() < 1e-9);
        assert_eq!(cd.allow_domains, dd.allow_domains);
        assert_eq!(c.state.interval_s, d.state.interval_s);
        assert_eq!(c.partitions, d.partitions);
        assert_eq!(c.analysis_threads, d.analysis_threads);
        assert_eq!(c.baseline.max_entries, d.baseline.max_entries);
        assert_eq!(c.capture.queue_mb, d.capture.queue_mb);
        assert_eq!(c.capture.idle_warn_s, d.capture.idle_warn_s);
        assert_eq!(c.evidence.memory_mb, d.evidence.memory_mb);
        assert_eq!(c.evidence.disk_mb, d.evidence.disk_mb);
        assert_eq!(c.evidence.packets_before, d.evidence.packets_before);
        assert_eq!(c.evidence.packets_after, d.evidence.packets_after);
        assert!(c.evidence.dir.is_none());
        assert_eq!(c.capture.buffer_mb, d.capture.buffer_mb);
        assert_eq!(c.capture.priority, d.capture.priority);
        assert!(c.state.path.is_none());
    }

    #[test]
    fn syntax_error_is_reported() {
        assert!(Config::from_toml("[flow\n").is_err());
    }
}
