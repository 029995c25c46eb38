//! `[exfil]`: the exfiltration detector's settings, defaults and validation.

use crate::settings::Check;
const MB: u64 = 1 << 20;
use toml::Table;

/// Exfiltration detector settings (`[exfil]`).
#[derive(Clone, Debug)]
pub struct ExfilConfig {
    pub enabled: bool,
    /// Observation a host needs before volume detectors judge it, seconds.
    pub learning_s: u64,
    pub burst_floor_5m: u64,
    pub burst_floor_1h: u64,
    pub burst_ratio: f64,
    pub lowslow_floor_24h: u64,
    pub rare_max_hosts: usize,
    pub producer_floor: u64,
    pub producer_floor_web: u64,
    pub unusual_floor: u64,
    pub raw_floor: u64,
    /// Raw TCP uploads in a host's first hour in view: the pair's
    /// (out - in) / (out + in) at least this, and the pair first seen at
    /// least `raw_young_after_s` after the host (not a session already
    /// running when the sensor came up).
    pub raw_young_pcr: f64,
    pub raw_young_after_s: u64,
    pub min_pair_pcr: f64,
    pub max_hosts: usize,
    pub max_pairs: usize,
}

impl ExfilConfig {
    /// Bytes out after which a pair keeps slot history: an eighth of the
    /// smallest window floor, so no window finding can be reached without it.
    #[must_use]
    pub fn rings_from(&self) -> u64 {
        [
            self.burst_floor_5m,
            self.burst_floor_1h,
            self.lowslow_floor_24h,
            self.producer_floor,
            self.producer_floor_web,
        ]
        .into_iter()
        .min()
        .unwrap_or(0)
            / 8
    }
}

impl Default for ExfilConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            learning_s: 86_400,
            burst_floor_5m: 50 * MB,
            burst_floor_1h: 200 * MB,
            burst_ratio: 10.0,
            lowslow_floor_24h: 10 * MB,
            rare_max_hosts: 2,
            producer_floor: 256 * 1024,
            producer_floor_web: 4 * MB,
            unusual_floor: 512,
            raw_floor: 64 * 1024,
            raw_young_pcr: 0.8,
            raw_young_after_s: 60,
            min_pair_pcr: 0.3,
            max_hosts: 20_000,
            max_pairs: 200_000,
        }
    }
}

/// Reads `[exfil]` (defaults from `d`), every problem into `c`.
pub(super) fn parse(c: &mut Check<'_>, root: &Table, d: &ExfilConfig) -> ExfilConfig {
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
            "raw_young_pcr",
            "raw_young_after_s",
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
        raw_young_pcr: c.float(t, S, "raw_young_pcr", d.raw_young_pcr, -1.0, 1.1),
        raw_young_after_s: c.int(t, S, "raw_young_after_s", d.raw_young_after_s, 0, 3600),
        min_pair_pcr: c.float(t, S, "min_pair_pcr", d.min_pair_pcr, -1.0, 1.0),
        max_hosts: us(c.int(t, S, "max_hosts", d.max_hosts as u64, 16, 100_000_000)),
        max_pairs: us(c.int(t, S, "max_pairs", d.max_pairs as u64, 16, 100_000_000)),
    }
}
