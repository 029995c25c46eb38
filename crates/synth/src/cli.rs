//! `deguchi gen SCENARIO -o FILE [--truth FILE] [--seed N] [--hosts N] [--days D] [--packets N] [--snaplen N]`.

use crate::scenario::{self, EPOCH_US, OfficeOpts};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// sample | office | exfil | bench | mix | stress | flood
    /// (mix: an office uplink of many overlapping flows for the replay
    /// benchmark, with an injected beacon, upload and DNS tunnel; stress:
    /// 100 k flows in random order, Zipf popularity, IMIX sizes)
    #[arg(value_name = "SCENARIO")]
    pub scenario: String,
    /// Capture to write (classic pcap)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Ground truth to write (JSON)
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Internal hosts (office, exfil: default 40; mix: default 2000)
    #[arg(long)]
    pub hosts: Option<usize>,
    /// Days of packet time (office, exfil)
    #[arg(long, default_value_t = 2.0)]
    pub days: f64,
    /// Background only, no injected beacons or exfiltration
    #[arg(long = "no-malicious")]
    pub no_malicious: bool,
    /// Packets (bench, mix, stress)
    #[arg(long, default_value_t = 2_000_000)]
    pub packets: u64,
    /// Unique flows (flood)
    #[arg(long, default_value_t = 2_000_000)]
    pub flows: u64,
    /// Snapshot length of bulk records (mix, bench, stress): 0 = whole frames, as a
    /// mirror-port capture holds them; N = cut at N bytes (handshakes,
    /// ClientHellos, HTTP requests and DNS messages stay whole)
    #[arg(long, default_value_t = 0)]
    pub snaplen: usize,
}

/// Runs the generator.
///
/// # Errors
/// Unknown scenario (usage) or an I/O error.
pub fn run(a: &GenArgs) -> Result<String, (u8, String)> {
    let o = OfficeOpts {
        hosts: a.hosts.unwrap_or(40).clamp(1, 240),
        days: a.days.clamp(0.01, 60.0),
        seed: a.seed,
        start: EPOCH_US,
    };
    let io = |e: std::io::Error| (1u8, format!("{}: {e}", a.output.display()));
    let gt = match a.scenario.as_str() {
        "bench" => scenario::bench(&a.output, a.packets, a.seed, a.snaplen).map_err(io)?,
        "mix" => crate::mix::mix(
            &a.output,
            a.packets,
            a.seed,
            a.hosts.unwrap_or(2_000),
            a.snaplen,
        )
        .map_err(io)?,
        "flood" => scenario::flood(&a.output, a.flows, a.seed).map_err(io)?,
        "stress" => crate::stress::stress(&a.output, a.packets, a.seed, a.snaplen).map_err(io)?,
        name => scenario::build(name, &o, !a.no_malicious)
            .map_err(|e| (2u8, e))?
            .write(&a.output)
            .map_err(io)?,
    };
    if let Some(p) = &a.truth {
        let s = serde_json::to_string_pretty(&gt).unwrap_or_default();
        std::fs::write(p, s + "\n").map_err(|e| (1u8, format!("{}: {e}", p.display())))?;
    }
    Ok(format!(
        "deguchi gen: {} packets, {} malicious and {} benign periodic activities in {}",
        gt.packets,
        gt.malicious.len(),
        gt.benign_periodic.len(),
        a.output.display()
    ))
}
