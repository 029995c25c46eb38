//! `[dns_tunnel]`: the DNS tunnel detector's settings, defaults and validation.

use crate::settings::Check;
use toml::Table;

/// `[dns_tunnel]` settings.
#[derive(Clone, Debug)]
pub struct DnsTunnelConfig {
    pub enabled: bool,
    pub window_s: u64,
    pub min_unique: usize,
    pub min_name_bytes: u64,
    pub min_avg_len: f64,
    pub min_entropy: f64,
    /// Few, long names: bytes carried in the names of one window, and the
    /// average subdomain length (chars), that alert whatever the count of
    /// unique names (at least `BULK_MIN_UNIQUE`) when the names look encoded.
    pub bulk_name_bytes: u64,
    pub bulk_avg_len: f64,
    pub max_domains: usize,
    pub allow_domains: Vec<String>,
}

/// Look-alikes with hashed or encoded names (anti-virus, reputation and
/// reverse lookups).
pub const DEFAULT_ALLOW: &[&str] = &[
    "in-addr.arpa",
    "ip6.arpa",
    "sophosxl.net",
    "mcafee.com",
    "trendmicro.com",
    "spamhaus.org",
    "spamcop.net",
    "barracudacentral.org",
];

impl Default for DnsTunnelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window_s: 600,
            min_unique: 30,
            min_name_bytes: 1500,
            min_avg_len: 20.0,
            min_entropy: 3.5,
            bulk_name_bytes: 2048,
            bulk_avg_len: 100.0,
            max_domains: 50_000,
            allow_domains: DEFAULT_ALLOW.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// Reads `[dns_tunnel]` (defaults from `d`), every problem into `c`.
pub(super) fn parse(c: &mut Check<'_>, root: &Table, d: &DnsTunnelConfig) -> DnsTunnelConfig {
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
            "bulk_name_bytes",
            "bulk_avg_len",
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
        bulk_name_bytes: c.int(t, S, "bulk_name_bytes", d.bulk_name_bytes, 1, 1 << 40),
        bulk_avg_len: c.float(t, S, "bulk_avg_len", d.bulk_avg_len, 1.0, 255.0),
        max_domains: us(c.int(t, S, "max_domains", d.max_domains as u64, 16, 100_000_000)),
        ..d.clone()
    };
    if let Some(v) = c.strings(t, S, "allow_domains") {
        r.allow_domains = v;
    }
    r
}
