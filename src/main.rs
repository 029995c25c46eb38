//! `deguchi` command line: replay captures or watch an interface.
//!
//! Exit codes: 0 success (also after SIGINT/SIGTERM); 1 runtime failure (an
//! output could not be written, live capture failed); 2 usage or
//! configuration error; 3 input error (a capture file unreadable, corrupt or
//! truncated: everything before the fault was processed and written).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use deguchi::config::{
    BUFFER_MB_MAX, BUFFER_MB_MIN, CAPTURE_PRIORITY_MAX, CAPTURE_PRIORITY_MIN, CAPTURE_THREADS_MAX,
    CAPTURE_THREADS_MIN, Config, SNAPLEN_MAX, SNAPLEN_MIN,
};
use deguchi::homenet::HomeNet;
use deguchi::pipeline::{self, Input};
use deguchi::stderr::{say, say_line};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc: the shards allocate flow records that the analysis thread
/// frees; glibc's malloc serialised those cross-thread frees on an arena
/// lock, mimalloc hands them back without one (figures in
/// `benches/HISTORY.md`). Tuned in [`deguchi::tune_allocator`].
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "deguchi",
    version,
    about = "Egress-traffic anomaly detector: C2 beaconing and data exfiltration"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay pcap/pcapng files (in order, as one stream; `-` = stdin)
    Replay {
        #[arg(required = true, value_name = "PCAP")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Also write an HTML report of the alerts (and of the flows given with --flows)
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Language of the --report page: en or ja
        #[arg(long = "report-lang", value_name = "LANG", default_value = "en")]
        report_lang: deguchi::report::Lang,
        /// Full sections (charts) in the --report page for the N most severe alerts (0: all)
        #[arg(long = "report-max-sections", value_name = "N", default_value_t = deguchi::report::DEFAULT_MAX_SECTIONS)]
        report_max_sections: usize,
    },
    /// Write a self-contained HTML report of alerts (EVE JSON lines)
    Report {
        /// Alert file (EVE JSON lines; flow records in it are used too)
        #[arg(value_name = "ALERTS")]
        alerts: PathBuf,
        /// Flow records (EVE JSON lines) to link alerts to
        #[arg(long, value_name = "FILE")]
        flows: Option<PathBuf>,
        /// Output HTML file
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
        /// Language: en or ja
        #[arg(long, value_name = "LANG", default_value = "en")]
        lang: deguchi::report::Lang,
        /// Full sections (evidence, charts, flows) for the N most severe alerts
        /// (severity, then score); the rest are rows in the table and lines in
        /// a summary by host and detector. 0: a section for every alert
        #[arg(long = "max-sections", value_name = "N", default_value_t = deguchi::report::DEFAULT_MAX_SECTIONS)]
        max_sections: usize,
        /// Only alerts of this internal host (src_ip; repeatable)
        #[arg(long = "host", value_name = "IP")]
        hosts: Vec<String>,
        /// Only alerts of this detector (beacon, exfil, dns_tunnel, ...; repeatable)
        #[arg(long = "detector", value_name = "NAME")]
        detectors: Vec<String>,
    },
    /// Analysis worker on a NATS JetStream bus: takes a share of the
    /// partitions, merges every sensor's events, runs the detectors
    Analyze {
        /// NATS servers: nats://HOST:PORT[,nats://...] (as bus.servers)
        #[arg(long, value_name = "URL,...", required = true)]
        bus: Vec<String>,
        #[command(flatten)]
        base: Base,
        /// Also keep each partition's snapshot in DIR (they live in the bus's object store)
        #[arg(long = "state-dir", value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Exit once every sensor has sent its end of input and all is analysed
        #[arg(long)]
        eof: bool,
        /// This worker's id in the group (default: host name and pid)
        #[arg(long = "worker-id", value_name = "ID")]
        worker_id: Option<String>,
        /// Serve Prometheus metrics on http://ADDR:PORT/metrics
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<String>,
    },
    /// Write a synthetic capture with ground truth (sample, office, exfil, bench, mix, stress, flood)
    #[cfg(feature = "gen")]
    Gen(deguchi_synth::cli::GenArgs),
    /// Capture live from an interface (mirror/SPAN port)
    Live {
        /// Interface to capture on
        #[arg(short = 'i', long = "interface", value_name = "IFACE")]
        iface: String,
        /// BPF capture filter
        #[arg(long, value_name = "EXPR")]
        bpf: Option<String>,
        /// Bytes captured per packet (64..=262144, as capture.snaplen)
        #[arg(long, value_name = "N",
              value_parser = clap::value_parser!(u32).range(i64::from(SNAPLEN_MIN)..=i64::from(SNAPLEN_MAX)))]
        snaplen: Option<u32>,
        /// Kernel capture buffer in MiB (1..=2047, as capture.buffer_mb)
        #[arg(long = "buffer-mb", value_name = "N",
              value_parser = clap::value_parser!(u32).range(i64::from(BUFFER_MB_MIN)..=i64::from(BUFFER_MB_MAX)))]
        buffer_mb: Option<u32>,
        /// Capture sockets and threads in one AF_PACKET fanout group (by
        /// flow hash) (1..=64, as capture.threads)
        #[arg(long = "capture-threads", value_name = "N",
              value_parser = clap::value_parser!(u64).range(CAPTURE_THREADS_MIN as u64..=CAPTURE_THREADS_MAX as u64))]
        capture_threads: Option<u64>,
        /// Run the live pipeline (capture, shards, analysis, writer) at
        /// nice -N, when permitted (0..=20, 0 = leave it; as capture.priority)
        #[arg(long = "capture-priority", value_name = "N", allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(i64::from(CAPTURE_PRIORITY_MIN)..=i64::from(CAPTURE_PRIORITY_MAX)))]
        capture_priority: Option<u32>,
        /// Do not put the interface in promiscuous mode
        #[arg(long = "no-promisc")]
        no_promisc: bool,
        /// libpcap immediate mode (lower latency, more CPU)
        #[arg(long)]
        immediate: bool,
        /// Drop to this user once the capture is open
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// ... and this group (default: the user's primary group)
        #[arg(long, value_name = "GROUP")]
        group: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

/// The options of every command that analyses (replay, live, analyze).
#[derive(Args)]
struct Base {
    /// Configuration file (TOML); see config/deguchi.toml
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Internal networks, comma-separated CIDRs (replaces general.home_net)
    #[arg(long = "home-net", value_name = "CIDR,...", value_delimiter = ',')]
    home_net: Option<Vec<String>>,
    /// Write alerts to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct Common {
    #[command(flatten)]
    base: Base,
    /// Write flow records (EVE flow events) to FILE (`-` = stdout)
    #[arg(long, value_name = "FILE")]
    flows: Option<PathBuf>,
    /// Flow shard threads (default: available cores minus one)
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Keep detector state (baselines, beacon series) in FILE across runs
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Serve Prometheus metrics on http://ADDR:PORT/metrics
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<String>,
    /// Also send alerts and stats events to syslog (RFC 5424):
    /// udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log, options
    /// ?facility=local5&app_name=deguchi&queue=4096&flows=1; repeatable
    #[arg(long, value_name = "URL")]
    syslog: Vec<String>,
    /// Write each alerted flow's packets to DIR/<alert>.pcap (see [evidence])
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Sensor mode: publish flow events to NATS JetStream
    /// (nats://HOST:PORT[,nats://...]) for `deguchi analyze` workers
    /// instead of analysing them here
    #[arg(long, value_name = "URL,...")]
    publish: Vec<String>,
    /// This sensor's name on the bus (default: bus.sensor, else the host name)
    #[arg(long, value_name = "NAME")]
    sensor: Option<String>,
}

/// The configuration file with `--home-net` and `-o` applied.
fn base_config(c: &Base) -> anyhow::Result<Config> {
    let mut cfg = match &c.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(h) = &c.home_net {
        cfg.home_net = HomeNet::parse(h).map_err(|e| {
            let all: Vec<String> = e.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("--home-net: {}", all.join("; "))
        })?;
        cfg.home_net_text.clone_from(h);
    }
    if let Some(o) = &c.output {
        cfg.output.alerts = (o.as_os_str() != "-").then(|| o.clone());
    }
    Ok(cfg)
}

fn build_config(c: &Common) -> anyhow::Result<Config> {
    let mut cfg = base_config(&c.base)?;
    if let Some(f) = &c.flows {
        cfg.output.flows = Some(f.clone());
    }
    if let Some(s) = &c.state {
        cfg.state.path = Some(s.clone());
    }
    // --syslog adds to the config file's [[output.syslog]] outputs
    for u in &c.syslog {
        let spec =
            deguchi::outputs::SyslogSpec::parse(u).map_err(|e| anyhow::anyhow!("--syslog {e}"))?;
        cfg.output.syslog.push(spec);
    }
    if let Some(e) = &c.evidence {
        cfg.evidence.dir = Some(e.clone());
    }
    if !c.publish.is_empty() {
        cfg.bus
            .set_servers(&c.publish)
            .map_err(|e| anyhow::anyhow!("--publish {e}"))?;
        cfg.bus.publish = true;
    }
    if let Some(s) = &c.sensor {
        cfg.bus.sensor = Some(s.clone());
    }
    if let Some(w) = c.workers {
        anyhow::ensure!(
            (1..=256).contains(&w),
            "--workers: {w} is out of range 1..=256"
        );
        cfg.workers = w;
    }
    Ok(cfg)
}

fn main() -> ExitCode {
    deguchi::tune_allocator();
    // stdin/stdout/stderr closed by the caller (`2>&-`): /dev/null in their
    // place, so no output file is opened as fd 2 and written to by the logs
    deguchi::stderr::fill_closed_stdio();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // stderr closed, full or a broken pipe: the log line is lost, the
        // run goes on (std's eprintln! would panic)
        .with_writer(deguchi::stderr::Lossy::default)
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    #[cfg(feature = "gen")]
    if let Cmd::Gen(g) = &cli.cmd {
        return match deguchi_synth::cli::run(g) {
            Ok(msg) => {
                say_line(&msg);
                ExitCode::SUCCESS
            }
            Err((code, msg)) => {
                say_line(&format!("deguchi gen: {msg}"));
                ExitCode::from(code)
            }
        };
    }
    if let Cmd::Report {
        alerts,
        flows,
        output,
        lang,
        max_sections,
        hosts,
        detectors,
    } = &cli.cmd
    {
        let opts = deguchi::report::Options {
            lang: *lang,
            max_sections: *max_sections,
            hosts: hosts.clone(),
            detectors: detectors.clone(),
        };
        return match deguchi::report::run(alerts, flows.as_deref(), output, &opts) {
            Ok(n) => {
                eprintln!("deguchi report: {n} alerts -> {}", output.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("deguchi report: {e}");
                ExitCode::from(e.exit_code())
            }
        };
    }
    if let Cmd::Analyze {
        bus,
        base,
        state_dir,
        eof,
        worker_id,
        metrics,
    } = &cli.cmd
    {
        let mut cfg = match base_config(base).and_then(|mut c| {
            c.bus
                .set_servers(bus)
                .map_err(|e| anyhow::anyhow!("--bus {e}"))?;
            Ok(c)
        }) {
            Ok(c) => c,
            Err(e) => {
                say_line(&format!("deguchi: {e:#}"));
                return ExitCode::from(2);
            }
        };
        cfg.bus.publish = false;
        if let Some(addr) = metrics
            && let Err(e) = deguchi::metrics::serve(addr)
        {
            eprintln!("deguchi: --metrics {addr}: {e}");
            return ExitCode::from(2);
        }
        let opts = deguchi::bus::worker::WorkerOpts {
            eof: *eof,
            state_dir: state_dir.clone(),
            id: worker_id.clone(),
        };
        return analyze(&cfg, &opts);
    }
    let (common, input) = match &cli.cmd {
        Cmd::Replay { files, common, .. } => (common, Input::Files(files.clone())),
        Cmd::Live { iface, common, .. } => (common, Input::Live(iface.clone())),
        #[cfg(feature = "gen")]
        Cmd::Gen(_) => return ExitCode::SUCCESS,
        Cmd::Report { .. } | Cmd::Analyze { .. } => return ExitCode::SUCCESS,
    };
    let mut cfg = match build_config(common) {
        Ok(c) => c,
        Err(e) => {
            say_line(&format!("deguchi: {e:#}"));
            return ExitCode::from(2);
        }
    };
    if let Cmd::Live {
        bpf,
        snaplen,
        buffer_mb,
        capture_threads,
        capture_priority,
        no_promisc,
        immediate,
        user,
        group,
        ..
    } = &cli.cmd
    {
        if user.is_some() {
            cfg.capture.user.clone_from(user);
        }
        if group.is_some() {
            cfg.capture.group.clone_from(group);
        }
        if let Some(b) = bpf {
            cfg.capture.bpf = Some(b.clone());
        }
        if let Some(s) = snaplen {
            cfg.capture.snaplen = *s;
        }
        if let Some(b) = buffer_mb {
            cfg.capture.buffer_mb = *b;
        }
        if let Some(n) = capture_threads {
            cfg.capture.threads = usize::try_from(*n).unwrap_or(1);
        }
        if let Some(p) = capture_priority {
            cfg.capture.priority = *p;
        }
        if *no_promisc {
            cfg.capture.promisc = false;
        }
        if *immediate {
            cfg.capture.immediate = true;
        }
    }
    // --report: alerts written to stdout go through a temporary file, copied
    // to stdout at the end, so the report can read them back
    let report = match &cli.cmd {
        Cmd::Replay {
            report: Some(r),
            report_lang,
            report_max_sections,
            ..
        } => Some((
            r.clone(),
            deguchi::report::Options {
                lang: *report_lang,
                max_sections: *report_max_sections,
                ..deguchi::report::Options::default()
            },
        )),
        _ => None,
    };
    let mut spool = None;
    if report.is_some() && cfg.output.alerts.is_none() {
        let f = std::env::temp_dir().join(format!("deguchi-alerts-{}.jsonl", std::process::id()));
        cfg.output.alerts = Some(f.clone());
        spool = Some(f);
    }
    if let Some(addr) = &common.metrics
        && let Err(e) = deguchi::metrics::serve(addr)
    {
        eprintln!("deguchi: --metrics {addr}: {e}");
        return ExitCode::from(2);
    }
    let code = match run(&cfg, &input) {
        Ok(code) => code,
        Err(e) => {
            say_line(&format!("deguchi: {e:#}"));
            ExitCode::from(1)
        }
    };
    if let Some(f) = &spool
        && let Err(e) = std::fs::File::open(f)
            .and_then(|mut r| std::io::copy(&mut r, &mut std::io::stdout().lock()))
    {
        eprintln!("deguchi: copying alerts to stdout: {e}");
        let _ = std::fs::remove_file(f);
        return ExitCode::from(1);
    }
    if let (Some((out, opts)), Some(alerts)) = (report, &cfg.output.alerts) {
        let flows = cfg.output.flows.as_deref().filter(|f| f.as_os_str() != "-");
        let done = deguchi::report::run(alerts, flows, &out, &opts);
        if let Some(f) = &spool {
            let _ = std::fs::remove_file(f);
        }
        match done {
            Ok(n) => eprintln!("deguchi: report of {n} alerts -> {}", out.display()),
            Err(e) => {
                eprintln!("deguchi: --report: {e}");
                return ExitCode::from(1);
            }
        }
    }
    code
}

/// `deguchi analyze`: a bus worker until SIGINT/SIGTERM (or `--eof`).
fn analyze(cfg: &Config, opts: &deguchi::bus::worker::WorkerOpts) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if signal_hook::flag::register(sig, Arc::clone(&stop)).is_err() {
            say_line("deguchi: cannot install a signal handler");
            return ExitCode::from(1);
        }
    }
    match deguchi::bus::worker::run(cfg, opts, &stop) {
        Ok(s) => {
            say(&s.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            say_line(&format!("deguchi analyze: {e}"));
            ExitCode::from(match e {
                deguchi::bus::worker::WorkerError::Mismatch(_) => 2,
                _ => 1,
            })
        }
    }
}

fn run(cfg: &Config, input: &Input) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // a second signal while draining terminates at once
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .context("installing signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&pipeline::REOPEN))
        .context("installing SIGHUP handler")?;
    pipeline::EXIT_AFTER_RUN.store(true, Ordering::Relaxed);
    let summary = pipeline::run(cfg, input, &stop)?;
    if summary
        .output_error
        .as_ref()
        .is_some_and(deguchi::sink::SinkError::is_stdout_closed)
    {
        // the reader of stdout has what it wanted (`| head`): end quietly
        return Ok(ExitCode::SUCCESS);
    }
    say(&summary.render());
    for l in deguchi::outputs::summary() {
        say_line(&format!("deguchi: output {l}"));
    }
    if let Some(e) = &summary.output_error {
        say_line(&format!("deguchi: error: {e}"));
        return Ok(ExitCode::from(1));
    }
    if !summary.input_errors.is_empty() {
        for e in &summary.input_errors {
            say_line(&format!("deguchi: error: {e}"));
        }
        // a BPF filter that does not compile is a usage error
        let usage = summary
            .input_errors
            .iter()
            .any(|e| matches!(e, deguchi::capture::CaptureError::Filter { .. }));
        return Ok(ExitCode::from(match input {
            _ if usage => 2,
            Input::Live(_) => 1,
            Input::Files(_) => 3,
        }));
    }
    if summary.interrupted {
        say_line("deguchi: stopped by signal; all pending flows and alerts were written");
    }
    Ok(ExitCode::SUCCESS)
}
