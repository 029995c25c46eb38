//! Alerts: owned, rare, serialised as Suricata-EVE-compatible JSON lines.

use crate::flow::record::proto_name;
use crate::time::{Ts, eve};
use serde::Serialize;
use std::net::IpAddr;

/// Severity as in Suricata: 1 = high, 2 = medium, 3 = low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub enum Severity {
    High = 1,
    Medium = 2,
    Low = 3,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }
}

/// One alert. `evidence` is what an analyst needs to act.
#[derive(Clone, Debug)]
pub struct Alert {
    /// Packet-clock time of the evidence that triggered it.
    pub ts: Ts,
    /// The internal host.
    pub src_ip: IpAddr,
    pub src_port: Option<u16>,
    pub dest_ip: IpAddr,
    pub dest_port: Option<u16>,
    pub proto: u8,
    pub community_id: Option<String>,
    pub flow_id: Option<u64>,
    pub detector: &'static str,
    pub signature: String,
    pub signature_id: u32,
    pub category: &'static str,
    pub severity: Severity,
    /// 0..=1
    pub score: f64,
    pub evidence: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct EveAlert<'a> {
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_id: Option<u64>,
    event_type: &'static str,
    src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    src_port: Option<u16>,
    dest_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    dest_port: Option<u16>,
    proto: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    community_id: Option<&'a str>,
    detector: &'static str,
    alert: EveAlertBody<'a>,
    score: f64,
    severity: &'static str,
    evidence: &'a serde_json::Map<String, serde_json::Value>,
    deguchi: EveAlertExt,
}

/// Fields Suricata has no name for.
#[derive(Serialize)]
struct EveAlertExt {
    /// [`Alert::id`] in hex: the same alert made again (a replay, a bus
    /// worker taking a partition over) has the same id.
    alert_id: String,
}

#[derive(Serialize)]
struct EveAlertBody<'a> {
    action: &'static str,
    gid: u32,
    signature_id: u32,
    rev: u32,
    signature: &'a str,
    category: &'static str,
    severity: u8,
}

impl Alert {
    /// A deterministic id: FNV-1a of the detector, signature, the pair,
    /// port, protocol and packet time of the alert.
    #[must_use]
    pub fn id(&self) -> u64 {
        let ip = |a: IpAddr| match a {
            IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
            IpAddr::V6(v) => v.octets(),
        };
        let bytes = self
            .detector
            .bytes()
            .chain([0])
            .chain(self.signature_id.to_le_bytes())
            .chain(ip(self.src_ip))
            .chain(ip(self.dest_ip))
            .chain(self.dest_port.unwrap_or(0).to_le_bytes())
            .chain([self.proto])
            .chain(self.ts.to_le_bytes());
        crate::fnv1a(bytes)
    }

    /// Writes the alert as one JSON object (no newline).
    ///
    /// # Errors
    /// The writer's I/O error.
    pub fn write_json<W: std::io::Write>(&self, w: W) -> serde_json::Result<()> {
        let score = (self.score * 1000.0).round() / 1000.0;
        serde_json::to_writer(
            w,
            &EveAlert {
                timestamp: eve(self.ts),
                flow_id: self.flow_id,
                event_type: "alert",
                src_ip: self.src_ip,
                src_port: self.src_port,
                dest_ip: self.dest_ip,
                dest_port: self.dest_port,
                proto: proto_name(self.proto),
                community_id: self.community_id.as_deref(),
                detector: self.detector,
                alert: EveAlertBody {
                    action: "allowed",
                    gid: 1,
                    signature_id: self.signature_id,
                    rev: 1,
                    signature: &self.signature,
                    category: self.category,
                    severity: self.severity as u8,
                },
                score,
                severity: self.severity.as_str(),
                evidence: &self.evidence,
                deguchi: EveAlertExt {
                    alert_id: format!("{:016x}", self.id()),
                },
            },
        )
    }
}
