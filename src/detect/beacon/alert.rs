//! The beacon alert: what a periodic series looks like to an analyst.

use super::BeaconConfig;
use super::state::Pair;
use crate::alert::{Alert, Severity};
use crate::community_id::community_id_v1;
use crate::detect::periodicity::Periodicity;
use crate::time::{Ts, rfc3339};
use serde_json::{Map, Value, json};
use std::net::IpAddr;

#[allow(clippy::too_many_arguments)]
pub(super) fn make_alert(
    p: &Pair,
    name: Option<&str>,
    host: IpAddr,
    port: u16,
    proto: u8,
    v: &Periodicity,
    sev: Severity,
    ts: Ts,
    sharing: usize,
    session: bool,
    cfg: &BeaconConfig,
) -> Alert {
    let dest_label = name.map_or_else(|| p.dest_ip.to_string(), str::to_owned);
    let proto_name = if proto == 17 { "UDP" } else { "TCP" };
    let (sid, what) = if p.in_session {
        (9_100_002, "activity inside a long-lived session")
    } else if proto == 17 {
        (9_100_003, "UDP exchanges")
    } else {
        (9_100_001, "connections")
    };
    let signature = format!(
        "deguchi BEACON periodic {proto_name} {what} to {dest_label}:{port} every ~{}",
        human_period(v.period_s)
    );
    let nats = v.nats();
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let mut e = Map::new();
    e.insert("period_s".into(), json!(r2(v.period_s)));
    e.insert("jitter".into(), json!(r2(v.jitter)));
    e.insert("jitter_s".into(), json!(r2(v.jitter * v.period_s)));
    e.insert("beats".into(), json!(p.total_beats));
    e.insert("beats_scored".into(), json!(v.intervals + 1));
    e.insert("regular_intervals".into(), json!(v.regular));
    e.insert(
        "missed_beat_intervals".into(),
        json!(v.missed_beat_intervals),
    );
    e.insert("irregular_intervals".into(), json!(v.irregular));
    e.insert("gaps".into(), json!(v.gaps));
    e.insert("miss_rate".into(), json!(r2(v.miss_rate)));
    e.insert("first_seen".into(), json!(rfc3339(p.origin)));
    e.insert("last_seen".into(), json!(rfc3339(ts)));
    e.insert("bytes_out".into(), json!(p.bytes_out));
    e.insert("bytes_in".into(), json!(p.bytes_in));
    e.insert("median_bytes_out".into(), json!(v.median_out));
    e.insert("median_bytes_in".into(), json!(v.median_in));
    e.insert("size_regularity".into(), json!(r2(v.size_regularity)));
    e.insert("dest_name".into(), name.map_or(Value::Null, |n| json!(n)));
    e.insert(
        "channel".into(),
        json!(if p.in_session {
            "in_session"
        } else {
            "connections"
        }),
    );
    e.insert("hosts_sharing_destination".into(), json!(sharing));
    if !v.model.is_empty() {
        e.insert("model".into(), json!(v.model));
    }
    if session {
        e.insert("series".into(), json!("session"));
    }
    e.insert("evidence_nats".into(), json!(r2(nats)));
    e.insert("timing_nats".into(), json!(r2(v.timing_nats)));
    e.insert("size_nats".into(), json!(r2(v.size_nats)));
    e.insert("threshold_nats".into(), json!(cfg.threshold_nats));
    e.insert(
        "rita".into(),
        json!({
            "ts_skew": r2(v.rita.ts_skew), "ts_madm": r2(v.rita.ts_madm),
            "ds_skew": r2(v.rita.ds_skew), "ds_madm": r2(v.rita.ds_madm),
            "score": r2(v.rita.score),
        }),
    );
    if p.vlan != 0 {
        e.insert("vlan".into(), json!(p.vlan));
    }
    // the report's charts: the recent beats (crate::report::evidence)
    e.insert(
        "beat_series".into(),
        crate::report::evidence::beat_series(p.beats.iter().map(|b| (b.t_ds, b.out, b.inb))),
    );
    Alert {
        ts,
        src_ip: host,
        src_port: Some(p.src_port),
        dest_ip: p.dest_ip,
        dest_port: Some(port),
        proto,
        community_id: Some(community_id_v1(0, host, p.dest_ip, proto, p.src_port, port)),
        flow_id: Some(p.flow_id),
        detector: "beacon",
        signature,
        signature_id: sid,
        category: "Command and Control",
        severity: sev,
        // half-way to certainty at the threshold
        score: 1.0 - 0.5f64.powf(nats / cfg.threshold_nats),
        evidence: e,
    }
}

pub(super) fn human_period(s: f64) -> String {
    if s >= 5400.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s >= 90.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{s:.1}s")
    }
}
