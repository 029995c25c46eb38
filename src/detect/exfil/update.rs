//! One update of the exfil detector: a host/destination pair's bytes
//! accounted, then the four findings checked.

use super::state::{Host, Kind, Kinds, Pair, PairRings, pcr};
use super::{DAY, Exfil, HOUR, MB, SLOT5};
use crate::alert::{Alert, Severity};
use crate::community_id::community_id_v1;
use crate::homenet::{Direction, is_egress_dest};
use crate::time::{SEC, Ts, rfc3339};
use serde_json::{Map, json};
use std::net::IpAddr;

pub(super) struct Update<'a> {
    pub(super) ts: Ts,
    pub(super) host: IpAddr,
    pub(super) src_port: u16,
    pub(super) dest_ip: IpAddr,
    pub(super) port: u16,
    pub(super) proto: u8,
    pub(super) flow_id: u64,
    pub(super) name: Option<&'a str>,
    pub(super) out: u64,
    pub(super) inb: u64,
    /// The flow carried TLS or HTTP (a name from SNI/Host).
    pub(super) web: bool,
    /// This update is the end of the flow.
    pub(super) flow_end: bool,
    /// Internal hosts using the destination (the shared baseline's count).
    pub(super) sharing: usize,
}

impl<'a> Update<'a> {
    /// The update from the internal host's side of a flow given from its
    /// originator's: `src` and `dest` are the (address, port) of originator
    /// and responder, `bytes` the payload [from originator, to originator].
    /// `None` for a flow that is neither outbound nor inbound.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn oriented(
        dir: Direction,
        ts: Ts,
        src: (IpAddr, u16),
        dest: (IpAddr, u16),
        proto: u8,
        flow_id: u64,
        name: Option<&'a str>,
        bytes: [u64; 2],
        web: bool,
        flow_end: bool,
        sharing: usize,
    ) -> Option<Self> {
        let (host, remote, out, inb) = match dir {
            Direction::Outbound => (src, dest, bytes[0], bytes[1]),
            Direction::Inbound => (dest, src, bytes[1], bytes[0]),
            _ => return None,
        };
        Some(Update {
            ts,
            host: host.0,
            src_port: host.1,
            dest_ip: remote.0,
            port: remote.1,
            proto,
            flow_id,
            name,
            out,
            inb,
            web,
            flow_end,
            sharing,
        })
    }
}

use crate::baseline::dest_id;

const SMTP_PORTS: &[u16] = &[25, 465, 587, 2525];
const SMB_PORTS: &[u16] = &[139, 445];
const WEB_PORTS: &[u16] = &[80, 443, 8080, 8443];
impl Exfil {
    pub(super) fn update(&mut self, u: &Update<'_>, out: &mut Vec<Alert>) {
        if u.out == 0 && u.inb == 0 || !is_egress_dest(u.dest_ip) {
            return;
        }
        let cfg = &self.cfg;
        let (hslot, evicted) = self.hosts.get_or_insert_capped(
            u.host,
            cfg.max_hosts.max(1),
            |h| h.last_seen,
            || Host::new(u.ts),
        );
        self.stats.hosts_evicted += evicted as u64;
        let Some(host) = self.hosts.at_mut(hslot) else {
            return;
        };
        // a destination the host already used in its first hour of
        // observation is what it was doing before we watched: baseline
        let already_doing = u.ts - host.first_seen < HOUR;
        // the pcr and baseline before this update
        let host_pcr_before = host.pcr();
        let host_bytes_before = host.total_out + host.total_in;
        host.account(u.ts, u.out, u.inb, &self.hist_templates);
        let learned = host.learned(cfg);

        let did = dest_id(u.name, u.dest_ip);
        let sharing = u.sharing;
        let key = (u.host, did);
        let found = self.pairs.find(&key);
        if u.out == 0 && found.is_none() {
            // nothing sent there (downloads, scans and floods against the
            // host): the host's totals have it; no pair is created
            return;
        }
        let slot = match found {
            Some(i) => i,
            None => {
                let new = || Pair {
                    first_seen: u.ts,
                    last_seen: u.ts,
                    total_out: 0,
                    total_in: 0,
                    rings: None,
                    upload_days: 0,
                    last_upload_day: i32::MIN,
                    day_out: 0,
                    routine: false,
                    in_baseline: already_doing,
                    dest_ip: u.dest_ip,
                    port: u.port,
                    proto: u.proto,
                    src_port: u.src_port,
                    flow_id: u.flow_id,
                    alerted: None,
                    alerted_out: 0,
                    last_alert: 0,
                    kinds: Kinds::default(),
                    ftp_control: false,
                    high_port_out: 0,
                };
                let (i, evicted) =
                    self.pairs
                        .insert_capped(key, cfg.max_pairs.max(1), |p| p.last_seen, new);
                self.stats.pairs_evicted += evicted as u64;
                i
            }
        };
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        p.first_seen = p.first_seen.min(u.ts);
        let last_before = p.last_seen;
        if u.ts >= p.last_seen {
            p.last_seen = u.ts;
        }
        // an alert names the flow of the update that raised it (its EVE flow
        // record, still to be written, then says `alerted`), even a late one
        p.dest_ip = u.dest_ip;
        p.port = u.port;
        p.proto = u.proto;
        p.src_port = u.src_port;
        p.flow_id = u.flow_id;
        p.total_out = p.total_out.saturating_add(u.out);
        p.total_in = p.total_in.saturating_add(u.inb);
        let s5 = u.ts.div_euclid(SLOT5);
        if p.rings.is_none() && p.total_out >= cfg.rings_from() {
            // what the pair moved before goes to its last activity before this
            let mut r = PairRings::new();
            r.add(last_before, p.total_out - u.out, p.total_in - u.inb);
            p.rings = Some(Box::new(r));
        }
        if let Some(r) = p.rings.as_deref_mut() {
            r.add(u.ts, u.out, u.inb);
        }
        // routine uploads: a MiB or more on two distinct days, or during learning
        let day = i32::try_from(u.ts.div_euclid(DAY)).unwrap_or(i32::MAX);
        if day != p.last_upload_day {
            p.last_upload_day = day;
            p.day_out = 0;
        }
        let before = p.day_out;
        p.day_out = p.day_out.saturating_add(u.out);
        if before < MB && p.day_out >= MB {
            p.upload_days = p.upload_days.saturating_add(1);
            if p.upload_days >= 2 || p.in_baseline {
                p.routine = true;
            }
        }

        let Some(host) = self.hosts.at(hslot) else {
            return;
        };
        // window sums (bytes out, in): 10 minutes, 1 hour, 24 hours
        let [(w5, w5_in), (w1h, w1h_in), (w24, w24_in)] = match p.rings.as_deref() {
            Some(r) => {
                let s1 = u.ts.div_euclid(HOUR);
                [
                    (
                        r.out5.sum(s5, 1).saturating_add(r.out5.sum(s5 - 1, 1)),
                        r.in5.sum(s5, 1).saturating_add(r.in5.sum(s5 - 1, 1)),
                    ),
                    (r.out5.sum(s5, 12), r.in5.sum(s5, 12)),
                    (r.out1h.sum(s1, 24), r.in1h.sum(s1, 24)),
                ]
            }
            None => [(p.total_out, p.total_in); 3],
        };
        let new_for_host = p.first_seen - host.first_seen
            >= i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC
            || p.first_seen >= u.ts - DAY && !p.in_baseline;
        // new against the host's own history (at least an hour of it), used
        // by the findings that need no full baseline
        let new_since_history =
            p.first_seen - host.first_seen >= HOUR && u.ts - p.first_seen <= DAY && !p.routine;
        let site_rare = sharing <= cfg.rare_max_hosts;
        let mut hits: Vec<(Kind, Severity, Map<String, serde_json::Value>)> = Vec::new();

        // unusual channel: needs no learning
        // FTP: control (21) and passive data (high ports) share the pair
        if u.proto == 6 && u.port == 21 {
            p.ftp_control = true;
        } else if u.proto == 6 && u.port >= 1024 {
            p.high_port_out = p.high_port_out.saturating_add(u.out);
        }
        let channel = if SMTP_PORTS.contains(&u.port) && u.proto == 6 {
            Some(("smtp", cfg.unusual_floor, true))
        } else if SMB_PORTS.contains(&u.port) {
            Some(("smb", cfg.unusual_floor, true))
        } else if p.ftp_control && p.high_port_out > 0 {
            // a file stored over FTP data to the internet (AgentTesla)
            Some(("ftp_data", 1, false))
        } else if u.proto == 6 && u.port >= 1024 && !u.web && !WEB_PORTS.contains(&u.port) {
            // in the host's first hour there is no history to be new
            // against: an upload-dominant session to a destination first
            // seen after the sensor came up is the stealer's signal
            let young_upload = u.ts - host.first_seen < HOUR
                && p.first_seen - host.first_seen
                    >= i64::try_from(cfg.raw_young_after_s).unwrap_or(60) * SEC
                && pcr(p.total_out, p.total_in) >= cfg.raw_young_pcr;
            ((new_since_history || young_upload) && site_rare).then_some((
                "raw_tcp",
                cfg.raw_floor,
                true,
            ))
        } else {
            None
        };
        if let Some((ch, floor, producing)) = channel {
            let volume = if ch == "ftp_data" {
                p.high_port_out
            } else {
                p.total_out
            };
            if volume >= floor && (!producing || p.total_out > p.total_in) && !p.routine {
                let mut e = Map::new();
                e.insert("channel".into(), json!(ch));
                hits.push((
                    Kind::UnusualChannel,
                    if p.total_out >= 10 * MB {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
        }

        let pair_pcr_1h = pcr(w1h, w1h_in);
        if learned && !p.routine {
            // burst
            let host5 = host
                .out5
                .sum(s5, 1)
                .saturating_add(host.out5.sum(s5 - 1, 1));
            let host1h = host.out5.sum(s5, 12);
            let b5 = Host::p99(host.hist5.as_ref()).max(MB);
            let b1 = Host::p99(host.hist1h.as_ref()).max(4 * MB);
            let burst5 = w5 >= cfg.burst_floor_5m
                && pcr(w5, w5_in) >= cfg.min_pair_pcr
                && host5 as f64 >= cfg.burst_ratio * b5 as f64;
            let burst1 = w1h >= cfg.burst_floor_1h
                && pair_pcr_1h >= cfg.min_pair_pcr
                && host1h as f64 >= cfg.burst_ratio * b1 as f64;
            if burst5 || burst1 {
                let (win, wb, base, hw) = if burst5 {
                    (300, w5, b5, host5)
                } else {
                    (3600, w1h, b1, host1h)
                };
                let mut e = Map::new();
                e.insert("window_s".into(), json!(win));
                e.insert("bytes_out_window".into(), json!(wb));
                e.insert("host_bytes_out_window".into(), json!(hw));
                e.insert("baseline_p99_bytes".into(), json!(base));
                e.insert(
                    "ratio".into(),
                    json!(((hw as f64 / base as f64) * 10.0).round() / 10.0),
                );
                let sev =
                    if wb >= 4 * cfg.burst_floor_5m.max(cfg.burst_floor_1h / 4) || new_for_host {
                        Severity::High
                    } else {
                        Severity::Medium
                    };
                hits.push((Kind::Burst, sev, e));
            }
            // low and slow
            if w24 >= cfg.lowslow_floor_24h
                && new_for_host
                && site_rare
                && pcr(w24, w24_in) >= cfg.min_pair_pcr
            {
                let mut e = Map::new();
                e.insert("window_s".into(), json!(86_400));
                e.insert("bytes_out_window".into(), json!(w24));
                e.insert("bytes_in_window".into(), json!(w24_in));
                hits.push((
                    Kind::LowAndSlow,
                    if w24 >= 10 * cfg.lowslow_floor_24h {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
            let _ = host_bytes_before;
        }
        {
            // producer shift: on an unusual port it needs only evidence that
            // the host consumes (5 MiB in, more in than out); on web ports,
            // where big uploads are ordinary (a backup, a cloud drive), also
            // six hours of the host's history (or its full learning period,
            // if shorter): a job that runs in the small hours right after the
            // sensor starts is not judged against an empty history
            let odd_port = !WEB_PORTS.contains(&u.port) && !u.web;
            let floor = if odd_port && !u.web {
                cfg.producer_floor
            } else {
                cfg.producer_floor_web
            };
            let consumer = host.total_in.saturating_sub(u.inb) >= 5 * MB && host_pcr_before < -0.3;
            let history = host.last_seen - host.first_seen;
            let six_h =
                (6 * HOUR).min(i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC);
            if consumer
                && (odd_port || learned || history >= six_h)
                && new_since_history
                && site_rare
                && w1h >= floor
                && pair_pcr_1h >= 0.5
            {
                let mut e = Map::new();
                e.insert("window_s".into(), json!(3600));
                e.insert("bytes_out_window".into(), json!(w1h));
                e.insert("bytes_in_window".into(), json!(w1h_in));
                e.insert(
                    "host_pcr_baseline".into(),
                    json!((host_pcr_before * 100.0).round() / 100.0),
                );
                e.insert("unusual_port".into(), json!(odd_port));
                hits.push((
                    Kind::ProducerShift,
                    if odd_port {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    e,
                ));
            }
        }

        if hits.is_empty() {
            return;
        }
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        let Some(host) = self.hosts.at(hslot) else {
            return;
        };
        // one alert series per host and destination: the strongest finding
        // leads, the others are evidence; again only when severity rises or
        // the running total has quadrupled
        hits.sort_by_key(|(k, s, _)| (*s, k.priority()));
        let sev = hits[0].1;
        let kind = hits[0].0;
        for (k, _, _) in &hits {
            p.kinds.push(*k);
        }
        let at = p.alerted_out;
        let due = match p.alerted {
            None => true,
            Some(s) => {
                sev < s
                    || (p.total_out >= at.saturating_mul(4) && u.ts - p.last_alert >= 300 * SEC)
                    // the flow is over: report the final running total
                    || (u.flow_end && p.total_out >= at.saturating_mul(2))
            }
        };
        if !due {
            return;
        }
        let update = p.alerted.is_some();
        p.alerted = Some(sev);
        p.alerted_out = p.total_out;
        p.last_alert = u.ts;
        self.stats.alerts += 1;
        let mut e = Map::new();
        for (_, _, m) in hits.into_iter().rev() {
            e.extend(m);
        }
        {
            e.insert("kind".into(), json!(kind.as_str()));
            e.insert(
                "kinds".into(),
                json!(p.kinds.iter().map(Kind::as_str).collect::<Vec<_>>()),
            );
            e.insert("bytes_out_total".into(), json!(p.total_out));
            e.insert("bytes_in_total".into(), json!(p.total_in));
            e.insert(
                "pcr".into(),
                json!((pcr(p.total_out, p.total_in) * 100.0).round() / 100.0),
            );
            e.insert(
                "host_pcr".into(),
                json!((host.pcr() * 100.0).round() / 100.0),
            );
            e.insert("host_bytes_out_total".into(), json!(host.total_out));
            e.insert(
                "dest_name".into(),
                u.name.map_or(serde_json::Value::Null, |n| json!(n)),
            );
            e.insert("dest_new_for_host".into(), json!(new_for_host));
            e.insert("hosts_using_dest".into(), json!(sharing));
            e.insert("first_seen".into(), json!(rfc3339(p.first_seen)));
            e.insert("last_seen".into(), json!(rfc3339(p.last_seen)));
            e.insert("update".into(), json!(update));
            // the report's charts: cumulative bytes out (crate::report::evidence)
            let (fine, coarse): (Vec<u64>, Vec<u64>) =
                p.rings.as_deref().map_or_else(Default::default, |r| {
                    let s1 = u.ts.div_euclid(HOUR);
                    (
                        (s5 - 11..=s5).map(|s| r.out5.sum(s, 1)).collect(),
                        (s1 - 23..=s1).map(|s| r.out1h.sum(s, 1)).collect(),
                    )
                });
            e.insert(
                "out_curve".into(),
                crate::report::evidence::out_curve(
                    p.first_seen,
                    u.ts,
                    p.total_out,
                    &fine,
                    &coarse,
                    (
                        Host::p99(host.hist5.as_ref()),
                        Host::p99(host.hist1h.as_ref()),
                    ),
                ),
            );
            let label = u.name.map_or_else(|| p.dest_ip.to_string(), str::to_owned);
            let what = match kind {
                Kind::Burst => "burst of outbound data",
                Kind::LowAndSlow => "low-and-slow upload over 24h",
                Kind::ProducerShift => "consumer host started producing",
                Kind::UnusualChannel => "upload over an unusual channel",
            };
            out.push(Alert {
                ts: u.ts,
                src_ip: u.host,
                src_port: Some(p.src_port),
                dest_ip: p.dest_ip,
                dest_port: Some(p.port),
                proto: p.proto,
                community_id: Some(community_id_v1(
                    0, u.host, p.dest_ip, p.proto, p.src_port, p.port,
                )),
                flow_id: Some(p.flow_id),
                detector: "exfil",
                signature: format!(
                    "deguchi EXFIL {what}: {} sent to {label}:{}",
                    human_bytes(p.total_out),
                    p.port
                ),
                signature_id: kind.sid(),
                category: "Exfiltration",
                severity: sev,
                score: match sev {
                    Severity::High => 0.9,
                    Severity::Medium => 0.7,
                    Severity::Low => 0.4,
                },
                evidence: e,
            });
        }
    }
}

fn human_bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else if b >= MB {
        format!("{:.1} MiB", b as f64 / MB as f64)
    } else if b >= 1024 {
        format!("{:.1} KiB", b as f64 / 1024.0)
    } else {
        format!("{b} B")
    }
}
