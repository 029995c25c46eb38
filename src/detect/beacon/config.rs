//! `[beacon]`: the beacon detector's settings, defaults and validation.

use crate::homenet::HomeNet;
use crate::settings::Check;
use ipnet::IpNet;
use toml::Table;

/// Beacon detector settings (`[beacon]` in the config file).
#[derive(Clone, Debug)]
pub struct BeaconConfig {
    pub enabled: bool,
    /// Beats before a series is scored at all.
    pub min_beats: usize,
    /// Evidence (nats) for a medium-severity alert; `high_nats` for high.
    pub threshold_nats: f64,
    pub high_nats: f64,
    pub min_period_s: f64,
    pub max_period_s: f64,
    pub coalesce_ms: u64,
    pub max_pairs: usize,
    pub max_samples: usize,
    pub realert_s: u64,
    pub popular_min_hosts: usize,
    pub popular_fraction: f64,
    /// Series to a destination that 2+ hosts began using less than this ago
    /// wait (its popularity is still building), seconds.
    pub popular_settle_s: u64,
    pub allow_cidrs: Vec<IpNet>,
    /// Domain suffixes, matched on label boundaries.
    pub allow_domains: Vec<String>,
    /// (protocol number, port)
    pub allow_ports: Vec<(u8, u16)>,
    /// A series whose beats are bursts inside a session alerts only once its
    /// beats span at least this, seconds.
    pub min_session_span_s: u64,
    /// Beats closer than this share of the series' typical interval to the
    /// beat before are one beat when the series is scored (0 = off).
    pub merge_fraction: f64,
    /// A series that fails is scored again with each run of beats closer
    /// than `min_period_s` merged (reconnect loops).
    pub burst_level: bool,
    /// A series that fails is scored against a fixed grid too (a heartbeat
    /// on an exact timer with extras between beats).
    pub grid: bool,
    /// A series that still fails, with at least this many beats in all
    /// (0 = off) to a destination at most `high_jitter_max_hosts` internal
    /// hosts use, is scored by the high-jitter model (up to ±95 %).
    pub high_jitter_min_beats: u64,
    pub high_jitter_max_hosts: usize,
    /// Bursts inside a session in which the internal host sent no payload
    /// (the server talked alone) are not its beats; a burst the server
    /// started is the host's beat at the host's first payload in it.
    pub own_bursts_only: bool,
    /// TCP keep-alive probes (0-1 byte segments after silence, see
    /// `flow.keepalive_idle_s`) are beats of their session's own series.
    pub keepalive_probes: bool,
    /// A series holding keep-alive probes alerts only once its beats span
    /// at least this, seconds.
    pub keepalive_min_span_s: u64,
    /// In-session bursts are scored per session as well as per pair once
    /// the pair holds two or more sessions.
    pub per_session: bool,
    /// A series that fails waits about this much packet time before it is
    /// scored again, seconds (0 = off): the beats its fitted period puts
    /// within it are skipped (at most 15). Series of beats seconds apart
    /// (a busy link's chatty sessions) then cost a score every
    /// `rescore_s`, not every beat or two; a beacon that fast alerts at most
    /// this much later. Series with a period of `rescore_s` or more are
    /// scored at every beat as before.
    pub rescore_s: f64,
}

/// The short default allowlist: time and OS-update services every office polls.
pub const DEFAULT_ALLOW_DOMAINS: &[&str] = &[
    // time
    "ntp.org",
    "time.windows.com",
    "time.apple.com",
    "time.google.com",
    // OS updates
    "windowsupdate.com",
    "update.microsoft.com",
    "delivery.mp.microsoft.com",
    // push channels and chat/meeting websockets that keep a heartbeat
    "notify.windows.com",
    "push.apple.com",
    "mtalk.google.com",
    "push.services.mozilla.com",
    "slack.com",
    "teams.microsoft.com",
    "skype.com",
    "zoom.us",
    "webex.com",
    "whatsapp.net",
    // certificate revocation (CRL and OCSP) that Windows, browsers and TLS
    // stacks fetch, often on a timer inside one keep-alive session
    "crl.microsoft.com",
    "mscrl.microsoft.com",
    "oneocsp.microsoft.com",
    "ocsp.msocsp.com",
    "ocsp.digicert.com",
    "crl3.digicert.com",
    "crl4.digicert.com",
    "pki.goog",
    "lencr.org",
    "ocsp.sectigo.com",
    "crl.sectigo.com",
    "ocsp.usertrust.com",
    "crl.usertrust.com",
    "ocsp.comodoca.com",
    "crl.comodoca.com",
    "ocsp.globalsign.com",
    "crl.globalsign.com",
    "ocsp.entrust.net",
    "crl.entrust.net",
    "ocsp.godaddy.com",
    "crl.godaddy.com",
    "amazontrust.com",
    "ocsp.apple.com",
    "ocsp2.apple.com",
    // cloud platform endpoints by name
    "metadata.google.internal",
];
/// Fixed addresses of the cloud platforms' agents and metadata services:
/// instance metadata (AWS, Azure IMDS, GCP, Oracle, OpenStack, DigitalOcean,
/// Huawei: 169.254.169.254), the AWS time sync / DNS / ECS task endpoints,
/// AWS's IPv6 metadata, time and DNS, GCP's IPv6 metadata, Azure's
/// WireServer (168.63.129.16: VM agent, health probes, DNS), Alibaba's
/// metadata (100.100.100.200), Tencent's (169.254.0.23), Oracle's legacy
/// metadata (192.0.0.192).
pub const DEFAULT_ALLOW_CIDRS: &[&str] = &[
    "169.254.169.254/32",
    "169.254.169.123/32",
    "169.254.169.253/32",
    "169.254.170.2/32",
    "fd00:ec2::254/128",
    "fd00:ec2::123/128",
    "fd00:ec2::253/128",
    "fd20:ce::254/128",
    "168.63.129.16/32",
    "100.100.100.200/32",
    "169.254.0.23/32",
    "192.0.0.192/32",
];
pub const DEFAULT_ALLOW_PORTS: &[&str] = &["udp/123"];

impl Default for BeaconConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_beats: 5,
            threshold_nats: 16.0,
            high_nats: 40.0,
            min_period_s: 2.0,
            max_period_s: 6.0 * 3600.0,
            coalesce_ms: 1000,
            max_pairs: 100_000,
            max_samples: 64,
            realert_s: 24 * 3600,
            popular_min_hosts: 5,
            popular_fraction: 0.1,
            popular_settle_s: 3600,
            allow_cidrs: DEFAULT_ALLOW_CIDRS
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            allow_domains: DEFAULT_ALLOW_DOMAINS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            allow_ports: DEFAULT_ALLOW_PORTS
                .iter()
                .filter_map(|s| parse_proto_port(s).ok())
                .collect(),
            min_session_span_s: 60,
            merge_fraction: 0.03,
            burst_level: true,
            grid: true,
            high_jitter_min_beats: 64,
            high_jitter_max_hosts: 1,
            own_bursts_only: true,
            keepalive_probes: true,
            keepalive_min_span_s: 3600,
            per_session: true,
            rescore_s: 30.0,
        }
    }
}

/// Parses `udp/123`, `tcp/443`.
///
/// # Errors
/// A message naming what is wrong.
pub fn parse_proto_port(s: &str) -> Result<(u8, u16), String> {
    let (p, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected PROTO/PORT, e.g. udp/123"))?;
    let proto = match p.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        _ => return Err(format!("{s:?}: protocol must be tcp or udp")),
    };
    let port = n
        .parse::<u16>()
        .map_err(|_| format!("{s:?}: port must be 0..65535"))?;
    Ok((proto, port))
}

/// Reads `[beacon]` (defaults from `d`), every problem into `c`.
pub(super) fn parse(c: &mut Check<'_>, root: &Table, d: &BeaconConfig) -> BeaconConfig {
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
            "min_session_span_s",
            "merge_fraction",
            "burst_level",
            "grid",
            "high_jitter_min_beats",
            "high_jitter_max_hosts",
            "own_bursts_only",
            "keepalive_probes",
            "keepalive_min_span_s",
            "per_session",
            "rescore_s",
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
        min_session_span_s: c.int(t, S, "min_session_span_s", d.min_session_span_s, 0, 86_400),
        merge_fraction: c.float(t, S, "merge_fraction", d.merge_fraction, 0.0, 0.5),
        burst_level: c.boolean(t, S, "burst_level", d.burst_level),
        grid: c.boolean(t, S, "grid", d.grid),
        high_jitter_min_beats: c.int(
            t,
            S,
            "high_jitter_min_beats",
            d.high_jitter_min_beats,
            0,
            1_000_000,
        ),
        high_jitter_max_hosts: us(c.int(
            t,
            S,
            "high_jitter_max_hosts",
            d.high_jitter_max_hosts as u64,
            1,
            1_000_000,
        )),
        own_bursts_only: c.boolean(t, S, "own_bursts_only", d.own_bursts_only),
        keepalive_probes: c.boolean(t, S, "keepalive_probes", d.keepalive_probes),
        keepalive_min_span_s: c.int(
            t,
            S,
            "keepalive_min_span_s",
            d.keepalive_min_span_s,
            0,
            7 * 86_400,
        ),
        per_session: c.boolean(t, S, "per_session", d.per_session),
        rescore_s: c.float(t, S, "rescore_s", d.rescore_s, 0.0, 3600.0),
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
