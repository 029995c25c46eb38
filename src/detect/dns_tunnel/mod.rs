//! DNS tunnel and DNS C2 detector (`detector: "dns_tunnel"`).
//!
//! Data smuggled through DNS has to be encoded into query names of a domain
//! the attacker controls (dnscat2, iodine, DNSExfiltrator, sods, TXT-based
//! C2), so per *registered domain* (public suffix list, `psl` crate) and per
//! window of `window_s` we count: queries, unique subdomains, bytes carried in
//! the subdomain part, label lengths, the Shannon entropy of the subdomains,
//! TXT/NULL/CNAME/MX/ANY queries, and queries sent straight to external
//! resolvers. Queries come from internal hosts, including an internal
//! resolver's forwarded queries (then the resolver is the client named).
//!
//! A window alerts when it holds at least `min_unique` unique subdomains and
//! `min_name_bytes` bytes in names, and the names look encoded (average
//! subdomain of `min_avg_len` characters or entropy of `min_entropy` bits per
//! character), or when TXT/NULL queries dominate with many unique names (DNS
//! C2 that fetches commands), or when a few long encoded names (at least
//! `bulk_name_bytes` in names averaging `bulk_avg_len` characters) carry
//! more than a benign domain sends. One alert per domain, updated when the bytes
//! carried grow tenfold. CDNs and anti-virus lookups with hashed names are the known
//! look-alikes: `allow_domains`.

mod config;

use crate::alert::{Alert, Severity};
use crate::detect::{Detector, EventCtx};
use crate::flow::event::DnsQuery;
use crate::homenet::HomeNet;
use crate::time::{SEC, Ts, rfc3339};
use serde_json::{Map, json};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

pub use config::DnsTunnelConfig;

const UNIQUE_CAP: usize = 512;
/// Unique names a window needs for the few-long-names finding: a handful of
/// chunks, not one long name asked again.
const BULK_MIN_UNIQUE: u64 = 4;

#[derive(Default)]
struct Window {
    start: Ts,
    queries: u64,
    unique: HashSet<u64, ahash::RandomState>,
    unique_overflow: u64,
    name_bytes: u64,
    len_sum: u64,
    entropy_sum: f64,
    entropy_n: u64,
    max_label: usize,
    txt_null: u64,
    external_resolver: u64,
    /// The report's chart of recent names (crate::report::evidence).
    series: crate::report::evidence::QuerySeries,
}

struct Domain {
    first_seen: Ts,
    last_seen: Ts,
    total_queries: u64,
    total_name_bytes: u64,
    w: Window,
    /// (client, queries, the resolver it asked, the client is itself one
    /// of the site's resolvers)
    clients: Vec<(IpAddr, u64, IpAddr, bool)>,
    last_resolver: IpAddr,
    alerted: Option<(Severity, u64)>,
}

pub struct DnsTunnel {
    cfg: DnsTunnelConfig,
    /// `cfg.allow_domains`.
    allow: super::DomainSuffixes,
    home: HomeNet,
    domains: HashMap<Box<str>, Domain, ahash::RandomState>,
    /// Domains dropped for `max_domains`.
    domains_evicted: u64,
    pub alerts: u64,
}

/// Shannon entropy, bits per character.
fn entropy(s: &[u8]) -> f64 {
    let mut c = [0u32; 256];
    for &b in s {
        c[usize::from(b)] += 1;
    }
    let n = s.len() as f64;
    c.iter()
        .filter(|&&x| x > 0)
        .map(|&x| {
            let p = f64::from(x) / n;
            -p * p.log2()
        })
        .sum()
}

impl DnsTunnel {
    #[must_use]
    pub fn new(cfg: DnsTunnelConfig, home: HomeNet) -> Self {
        Self {
            allow: super::DomainSuffixes::new(&cfg.allow_domains),
            cfg,
            home,
            domains: HashMap::default(),
            domains_evicted: 0,
            alerts: 0,
        }
    }

    fn allowed(&self, registered: &str) -> bool {
        self.allow.matches(registered)
    }

    fn query(&mut self, q: &DnsQuery, client_is_resolver: bool, out: &mut Vec<Alert>) {
        let name = q.name.trim_end_matches('.');
        let Some(reg) = registered_domain(name) else {
            return;
        };
        if self.allowed(reg) || reg.len() >= name.len() {
            // allowlisted, or the registered domain itself: no subdomain carries data
            return;
        }
        let sub = if name.ends_with(reg) {
            &name[..name.len() - reg.len() - 1]
        } else {
            // keyed by its first label (dnscat2's "dnscat.<data>" form)
            &name[reg.len() + 1..]
        };
        let window = i64::try_from(self.cfg.window_s).unwrap_or(600) * SEC;
        if !self.domains.contains_key(reg) && self.domains.len() >= self.cfg.max_domains.max(1) {
            self.domains_evicted += super::evict_oldest(&mut self.domains, |d| d.last_seen) as u64;
        }
        let d = self.domains.entry(reg.into()).or_insert_with(|| Domain {
            first_seen: q.ts,
            last_seen: q.ts,
            total_queries: 0,
            total_name_bytes: 0,
            w: Window {
                start: q.ts,
                ..Window::default()
            },
            clients: Vec::new(),
            last_resolver: q.server,
            alerted: None,
        });
        if q.ts - d.w.start >= window {
            d.w = Window {
                start: q.ts,
                ..Window::default()
            };
        }
        d.last_seen = d.last_seen.max(q.ts);
        d.last_resolver = q.server;
        d.total_queries += 1;
        d.total_name_bytes += sub.len() as u64;
        if let Some(c) = d.clients.iter_mut().find(|c| c.0 == q.client) {
            c.1 += 1;
            c.2 = q.server;
            c.3 = client_is_resolver;
        } else if d.clients.len() < 8 {
            d.clients.push((q.client, 1, q.server, client_is_resolver));
        }
        let w = &mut d.w;
        w.queries += 1;
        let h = crate::fnv1a(sub.bytes());
        if w.unique.len() < UNIQUE_CAP {
            w.unique.insert(h);
        } else if !w.unique.contains(&h) {
            w.unique_overflow += 1;
        }
        w.name_bytes += sub.len() as u64;
        w.series.push(q.ts - w.start, sub);
        w.len_sum += sub.len() as u64;
        let letters: Vec<u8> = sub.bytes().filter(|b| *b != b'.').collect();
        if letters.len() >= 8 {
            w.entropy_sum += entropy(&letters);
            w.entropy_n += 1;
        }
        w.max_label = w
            .max_label
            .max(sub.split('.').map(str::len).max().unwrap_or(0));
        if matches!(q.qtype, 10 | 16 | 5 | 15 | 255) {
            w.txt_null += 1;
        }
        if !self.home.contains(q.server) {
            w.external_resolver += 1;
        }

        let unique = w.unique.len() as u64 + w.unique_overflow;
        let avg_len = w.len_sum as f64 / w.queries as f64;
        let avg_ent = if w.entropy_n > 0 {
            w.entropy_sum / w.entropy_n as f64
        } else {
            0.0
        };
        let txt_share = w.txt_null as f64 / w.queries as f64;
        let encoded = unique >= self.cfg.min_unique as u64
            && w.name_bytes >= self.cfg.min_name_bytes
            && (avg_len >= self.cfg.min_avg_len || avg_ent >= self.cfg.min_entropy);
        // few but long encoded names: data in chunks of ~250 characters
        // needs only a dozen queries (count the bytes, not the names)
        let bulk = unique >= BULK_MIN_UNIQUE
            && w.name_bytes >= self.cfg.bulk_name_bytes
            && avg_len >= self.cfg.bulk_avg_len
            && avg_ent >= self.cfg.min_entropy;
        // DNS C2 polling for commands in TXT/NULL/CNAME/MX answers
        let txt_c2 = w.txt_null >= (self.cfg.min_unique as u64 * 2 / 3).max(5)
            && txt_share >= 0.5
            && avg_len >= 8.0;
        if !(encoded || bulk || txt_c2) {
            return;
        }
        let sev = if d.total_name_bytes >= 10_240 || unique >= 200 {
            Severity::High
        } else {
            Severity::Medium
        };
        let due = match d.alerted {
            None => true,
            Some((s, at)) => sev < s || d.total_name_bytes >= at.saturating_mul(10),
        };
        if !due {
            return;
        }
        let update = d.alerted.is_some();
        d.alerted = Some((sev, d.total_name_bytes));
        self.alerts += 1;
        // the host behind it, not the internal resolver that forwards for it
        let (client, _, resolver, _) = d
            .clients
            .iter()
            .copied()
            .max_by_key(|(_, n, _, is_resolver)| (!is_resolver, *n))
            .unwrap_or((q.client, 0, q.server, false));
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let mut e = Map::new();
        e.insert("domain".into(), json!(reg));
        e.insert("example_query".into(), json!(name));
        e.insert("window_s".into(), json!(self.cfg.window_s));
        e.insert("queries_window".into(), json!(w.queries));
        e.insert("unique_subdomains_window".into(), json!(unique));
        e.insert("name_bytes_window".into(), json!(w.name_bytes));
        e.insert("avg_subdomain_len".into(), json!(r2(avg_len)));
        e.insert("max_label_len".into(), json!(w.max_label));
        e.insert("avg_entropy_bits".into(), json!(r2(avg_ent)));
        e.insert("txt_null_share".into(), json!(r2(txt_share)));
        e.insert(
            "external_resolver_queries".into(),
            json!(w.external_resolver),
        );
        e.insert("queries_total".into(), json!(d.total_queries));
        e.insert("bytes_out_total".into(), json!(d.total_name_bytes));
        e.insert(
            "clients".into(),
            json!(
                d.clients
                    .iter()
                    .map(|(c, ..)| c.to_string())
                    .collect::<Vec<_>>()
            ),
        );
        e.insert("first_seen".into(), json!(rfc3339(d.first_seen)));
        e.insert("last_seen".into(), json!(rfc3339(d.last_seen)));
        e.insert("update".into(), json!(update));
        e.insert(
            "query_series".into(),
            w.series.to_json(w.start, d.first_seen),
        );
        out.push(Alert {
            ts: q.ts,
            src_ip: client,
            src_port: None,
            dest_ip: resolver,
            dest_port: Some(53),
            proto: 17,
            community_id: None,
            flow_id: None,
            detector: "dns_tunnel",
            signature: format!(
                "deguchi DNS TUNNEL encoded queries to {reg}: {unique} unique names, {} bytes in names",
                d.total_name_bytes
            ),
            signature_id: 9_300_001,
            category: "Command and Control",
            severity: sev,
            score: if sev == Severity::High { 0.9 } else { 0.7 },
            evidence: e,
        });
    }
}

/// The domain a tunnel's names share: the registrable domain under a known
/// public suffix; for an unknown TLD, the last two labels when the TLD looks
/// like a word (`pirate.sea`), else the first label (`dnscat.<hex>.<hex>`).
pub fn registered_domain(name: &str) -> Option<&str> {
    let d = psl::domain(name.as_bytes())?;
    if d.suffix().is_known() {
        return std::str::from_utf8(d.as_bytes()).ok();
    }
    let last = name.rsplit('.').next()?;
    if last.len() <= 12 && last.bytes().all(|b| b.is_ascii_alphabetic()) {
        std::str::from_utf8(d.as_bytes()).ok()
    } else {
        let first = name.split('.').next()?;
        (first.len() < name.len()).then_some(first)
    }
}

impl Detector for DnsTunnel {
    fn name(&self) -> &'static str {
        "dns_tunnel"
    }

    fn state_counts(&self) -> Vec<u64> {
        vec![self.domains.len() as u64, self.domains_evicted]
    }

    fn state_kinds(&self) -> &'static [crate::metrics::StateKind] {
        use crate::metrics::StateKind::{Entries, Evictions};
        &[Entries("domains"), Evictions("domains")]
    }

    fn state_line(&self, c: &[u64]) -> Option<String> {
        let [domains, evicted] = c else {
            return None;
        };
        Some(format!("dns_tunnel {domains} domains ({evicted} evicted)"))
    }
    fn on_dns_query(&mut self, q: &DnsQuery, cx: &EventCtx<'_>, out: &mut Vec<Alert>) {
        self.query(q, cx.client_is_resolver, out);
    }
}

crate::detector_component!("dns_tunnel", DnsTunnelConfig, config::parse, |c, env| {
    DnsTunnel::new(
        DnsTunnelConfig {
            max_domains: env.share(c.max_domains),
            ..c.clone()
        },
        env.home_net.clone(),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    fn q(ts: i64, name: &str, qtype: u16) -> DnsQuery {
        DnsQuery {
            ts: ts * SEC,
            client: IpAddr::from([10, 0, 0, 7]),
            server: IpAddr::from([10, 0, 0, 53]),
            name: name.to_owned(),
            qtype,
        }
    }

    #[test]
    fn encoded_subdomains_alert_and_browsing_does_not() {
        let mut d = DnsTunnel::new(DnsTunnelConfig::default(), HomeNet::default_nets());
        let mut out = Vec::new();
        for i in 0..40u64 {
            let label = format!(
                "{:016x}{:016x}{:016x}",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                i * 7919,
                !i
            );
            d.query(
                &q(i as i64, &format!("{label}.t.evil-tunnel.com"), 16),
                false,
                &mut out,
            );
        }
        assert!((1..=3).contains(&out.len()), "{out:?}");
        assert_eq!(out[0].evidence["domain"], "evil-tunnel.com");
        assert_eq!(out[0].detector, "dns_tunnel");

        let mut d = DnsTunnel::new(DnsTunnelConfig::default(), HomeNet::default_nets());
        let mut out = Vec::new();
        for (i, n) in [
            "www", "mail", "docs", "drive", "calendar", "accounts", "apis", "fonts", "ssl", "play",
        ]
        .iter()
        .cycle()
        .take(500)
        .enumerate()
        {
            d.query(&q(i as i64, &format!("{n}.google.com"), 1), false, &mut out);
            d.query(
                &q(i as i64, &format!("e{i}.dscb.akamaiedge.net"), 1),
                false,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }

    /// base64url of `n` pseudo-random bytes.
    fn b64url(seed: u64, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(A[(x % 64) as usize])
            })
            .collect()
    }

    /// A ~250-character name: base64url chunks in labels of at most 63.
    fn long_name(i: u64, domain: &str) -> String {
        let data = b64url(i + 1, 228);
        let labels: Vec<&str> = (0..4).map(|k| &data[k * 57..(k + 1) * 57]).collect();
        format!("{}.{domain}", labels.join("."))
    }

    #[test]
    fn few_long_names_alert_by_the_bytes_they_carry() {
        // 14 TXT queries of ~250-character names in 0.1 s: fewer unique
        // names than min_unique, but ~3.4 KB encoded in them
        let mut d = DnsTunnel::new(DnsTunnelConfig::default(), HomeNet::default_nets());
        let mut out = Vec::new();
        for i in 0..14u64 {
            let mut x = q(100, &long_name(i, "exfil-drop.net"), 16);
            x.ts += i64::try_from(i).unwrap() * SEC / 140;
            d.query(&x, false, &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].evidence["domain"], "exfil-drop.net");

        // look-alikes: one long name asked again and again (a DKIM or
        // service-discovery record), and a dozen short hashed names
        let mut d = DnsTunnel::new(DnsTunnelConfig::default(), HomeNet::default_nets());
        let mut out = Vec::new();
        for i in 0..12i64 {
            d.query(&q(i, &long_name(7, "cloudvendor.com"), 16), false, &mut out);
        }
        for i in 0..14u64 {
            let n = format!("{}.hash.av-vendor.com", b64url(i + 50, 32));
            d.query(&q(200, &n, 16), false, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn tunnel_domains_are_grouped() {
        assert_eq!(
            registered_domain("abc.def.example.co.uk"),
            Some("example.co.uk")
        );
        assert_eq!(registered_domain("0abc.pirate.sea"), Some("pirate.sea"));
        assert_eq!(
            registered_domain("dnscat.546b03f5000a6.19e4d098dc8c6"),
            Some("dnscat")
        );
    }

    #[test]
    fn entropy_of_encoded_text_is_high() {
        assert!(entropy(b"aaaaaaaa") < 0.1);
        assert!(entropy(b"mzxw6ytboi2dcmrrgq3tmnzy") > 3.5);
    }
}
