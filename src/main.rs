//! `deguchi` command line: replay captures or watch an interface.
//!
//! Exit codes: 0 success (also after SIGINT/SIGTERM); 1 runtime failure (an
//! output could not be written, live capture failed); 2 usage or
//! configuration error; 3 input error (a capture file unreadable, corrupt or
//! truncated: everything before the fault was processed and written).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use deguchi::config::{BUFFER_MB_MAX, BUFFER_MB_MIN, Config, SNAPLEN_MAX, SNAPLEN_MIN};
use deguchi::homenet::HomeNet;
use deguchi::pipeline::{self, Input};
use deguchi::stderr::{say, say_line};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// mimalloc: the shards allocate flow records that the analysis thread
/// frees; glibc's malloc serialised those cross-thread frees on an arena
/// lock (measured: replay of `gen mix` 0.40 s instead of 0.6-0.7 s), mimalloc
/// hands them back without one. Tuned in [`deguchi::tune_allocator`].
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
    },
    /// Write a synthetic capture with ground truth (sample, office, exfil, bench, mix, flood)
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

#[derive(Args)]
struct Common {
    /// Configuration file (TOML); see config/deguchi.toml
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Internal networks, comma-separated CIDRs (replaces general.home_net)
    #[arg(long = "home-net", value_name = "CIDR,...", value_delimiter = ',')]
    home_net: Option<Vec<String>>,
    /// Write alerts to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write flow records (EVE flow events) to FILE (`-` = stdout)
    #[arg(long, value_name = "FILE")]
    flows: Option<PathBuf>,
    /// Flow shard threads (default: available cores minus one)
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Keep detector state (baselines, beacon series) in FILE across runs
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Write each alerted flow's packets to DIR/<alert>.pcap (see [evidence])
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
}

fn build_config(c: &Common) -> anyhow::Result<Config> {
    let mut cfg = match &c.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(h) = &c.home_net {
        cfg.home_net =
            HomeNet::parse(h).map_err(|e| anyhow::anyhow!("--home-net: {}", e.join("; ")))?;
        cfg.home_net_text.clone_from(h);
    }
    if let Some(o) = &c.output {
        cfg.output.alerts = (o.as_os_str() != "-").then(|| o.clone());
    }
    if let Some(f) = &c.flows {
        cfg.output.flows = Some(f.clone());
    }
    if let Some(s) = &c.state {
        cfg.state.path = Some(s.clone());
    }
    if let Some(e) = &c.evidence {
        cfg.evidence.dir = Some(e.clone());
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
    let (common, input) = match &cli.cmd {
        Cmd::Replay { files, common } => (common, Input::Files(files.clone())),
        Cmd::Live { iface, common, .. } => (common, Input::Live(iface.clone())),
        #[cfg(feature = "gen")]
        Cmd::Gen(_) => return ExitCode::SUCCESS,
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
        if *no_promisc {
            cfg.capture.promisc = false;
        }
        if *immediate {
            cfg.capture.immediate = true;
        }
    }
    match run(&cfg, &input) {
        Ok(code) => code,
        Err(e) => {
            say_line(&format!("deguchi: {e:#}"));
            ExitCode::from(1)
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
    say(&summary.render());
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
