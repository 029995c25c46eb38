//! Ended-flow records and their Suricata-EVE-shaped JSON (`event_type: "flow"`).

use super::entry::Entry;
use super::key::ip_of;
use super::tcp::state_name as tcp_state_name;
use crate::community_id::community_id_v1;
use crate::decode::Tunnel;
use crate::homenet::Direction;
use crate::time::{Ts, eve, secs_f64};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Why a flow record was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// TCP FIN/FIN or RST seen, then the closed-state linger expired (or the port was reused).
    Closed,
    /// Idle longer than the class timeout (packet time).
    Timeout,
    /// Ended early because the flow table hit its memory cap.
    Evicted,
    /// End of input or sensor stop.
    Shutdown,
}

/// How a flow's originator (client) was chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oriented {
    /// From the handshake (the sender of the SYN, the receiver of the
    /// SYN-ACK), or, for a protocol without one, the first packet's sender.
    #[default]
    Handshake,
    /// TCP seen without a SYN or SYN-ACK: the side on an ephemeral port,
    /// the other side being on a service port (`flow.ephemeral_port_min`).
    Ports,
    /// TCP seen without a SYN or SYN-ACK, the ports telling nothing: the
    /// first packet's sender.
    FirstPacket,
}

impl Oriented {
    /// Whether the direction was inferred rather than seen in a handshake.
    #[must_use]
    pub fn inferred(self) -> bool {
        self != Self::Handshake
    }
}

/// Application hints recorded on a flow. Strings are capped and escaped on
/// output. Most flows with hints are TLS with an SNI and nothing else, so the
/// HTTP request and the DNS details sit in boxes of their own: the common
/// hints box is 48 bytes instead of the 136 of one box for everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowHints {
    /// Shared, so the burst and progress events of a long flow carry the
    /// name without copying it.
    pub sni: Option<std::sync::Arc<str>>,
    pub http_host: Option<std::sync::Arc<str>>,
    /// The flow's first HTTP request.
    pub http: Option<Box<HttpHint>>,
    pub dns: Option<Box<DnsHints>>,
}

/// An HTTP request line: method and URI (capped).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpHint {
    pub method: String,
    pub uri: String,
}

/// What a DNS flow asked and was answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsHints {
    /// Names asked (at most [`FlowHints::MAX_NAMES`], each once).
    pub queries: Vec<String>,
    /// A/AAAA answers (at most [`FlowHints::MAX_ANSWERS`], each once).
    pub answers: Vec<IpAddr>,
    /// Response code of the last response.
    pub rcode: Option<u8>,
}

impl FlowHints {
    pub const MAX_NAMES: usize = 8;
    pub const MAX_ANSWERS: usize = 16;

    /// The destination name the originator used: SNI, else HTTP Host, else the first DNS query.
    #[must_use]
    pub fn dest_name(&self) -> Option<&str> {
        self.sni.as_deref().or(self.http_host.as_deref())
    }

    /// [`Self::dest_name`], shared.
    #[must_use]
    pub fn dest_name_shared(&self) -> Option<std::sync::Arc<str>> {
        self.sni.as_ref().or(self.http_host.as_ref()).cloned()
    }
}

/// An ended flow, oriented from its originator. Owned; crosses to the analysis stage.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowRecord {
    pub flow_id: u64,
    pub src_ip: IpAddr,
    pub src_port: u16,
    pub dest_ip: IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    pub vlan: u16,
    pub tunnel: Tunnel,
    pub icmp: (u8, u8),
    /// [to server, to client]
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub payload: [u64; 2],
    pub start: Ts,
    pub end: Ts,
    pub tcp_flags: [u8; 2],
    pub tcp_state: u8,
    pub reason: EndReason,
    /// Bursts of payload exchange (separated by `flow.burst_gap_ms` of silence).
    pub bursts: u32,
    /// Payload already reported in `Progress` events [orig, resp].
    pub reported: [u64; 2],
    pub hints: Option<Box<FlowHints>>,
    pub direction: Direction,
    /// How the originator was chosen.
    pub oriented: Oriented,
}

/// A stable 51-bit flow id (fits a JSON number without precision loss).
pub(crate) fn flow_id(e: &Entry) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let k = &e.key;
    for v in [
        (k.a >> 64) as u64,
        k.a as u64,
        (k.b >> 64) as u64,
        k.b as u64,
        (u64::from(k.pa) << 32) | (u64::from(k.pb) << 16) | u64::from(k.proto),
        u64::from(k.vlan),
        e.first_ts.cast_unsigned(),
    ] {
        x ^= v;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 31;
    }
    x & ((1 << 51) - 1)
}

impl FlowRecord {
    pub(crate) fn from_entry(e: &mut Entry, reason: EndReason) -> Self {
        let k = e.key;
        let (o, op, r, rp) = if e.orig_is_a {
            (k.a, k.pa, k.b, k.pb)
        } else {
            (k.b, k.pb, k.a, k.pa)
        };
        let src_ip = ip_of(o, k.v6);
        let dest_ip = ip_of(r, k.v6);
        Self {
            flow_id: flow_id(e),
            src_ip,
            src_port: op,
            dest_ip,
            dest_port: rp,
            proto: k.proto,
            vlan: k.vlan,
            tunnel: e.tunnel,
            icmp: e.icmp,
            pkts: e.pkts,
            bytes: e.bytes,
            payload: e.payload,
            start: e.first_ts,
            end: e.last_ts,
            tcp_flags: e.tcp_flags,
            tcp_state: e.tcp_state,
            reason,
            bursts: e.bursts,
            reported: e.reported,
            hints: e.hints.take(),
            direction: Direction::External,
            oriented: e.oriented,
        }
    }

    #[must_use]
    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17 | 132)
    }

    /// Community ID v1 (seed 0) of the flow. Computed when a record is
    /// written, not when the flow ends: most records only feed the
    /// detectors (no `--flows` output), and a SHA-1 plus a base64 string
    /// per flow was a measurable share of the shard's time.
    #[must_use]
    pub fn community_id(&self) -> String {
        let (cs, cd) = match self.proto {
            1 | 58 => (u16::from(self.icmp.0), u16::from(self.icmp.1)),
            _ => (self.src_port, self.dest_port),
        };
        community_id_v1(0, self.src_ip, self.dest_ip, self.proto, cs, cd)
    }

    /// The record as a Suricata EVE `flow` event. `alerted`: an alert named
    /// this flow (the writer knows; see `sink::Alerted`). Fields Suricata
    /// has no name for go into the top-level `deguchi` object.
    #[must_use]
    pub fn to_eve(&self, alerted: bool) -> EveFlow<'_> {
        let ports = self.has_ports();
        let icmp = matches!(self.proto, 1 | 58);
        let state = if self.proto == 6 {
            tcp_state_name(self.tcp_state)
        } else if self.pkts[1] > 0 {
            "established"
        } else {
            "new"
        };
        let h = self.hints.as_deref();
        EveFlow {
            timestamp: eve(self.end),
            flow_id: self.flow_id,
            event_type: "flow",
            src_ip: self.src_ip,
            src_port: ports.then_some(self.src_port),
            dest_ip: self.dest_ip,
            dest_port: ports.then_some(self.dest_port),
            proto: proto_name(self.proto),
            icmp_type: icmp.then_some(self.icmp.0),
            icmp_code: icmp.then_some(self.icmp.1),
            community_id: self.community_id(),
            vlan: (self.vlan != 0).then_some([self.vlan]),
            flow: EveFlowBody {
                pkts_toserver: self.pkts[0],
                pkts_toclient: self.pkts[1],
                bytes_toserver: self.bytes[0],
                bytes_toclient: self.bytes[1],
                start: eve(self.start),
                end: eve(self.end),
                age: secs_f64(self.end - self.start).round() as i64,
                state,
                reason: self.reason.as_eve(),
                alerted,
            },
            tcp: (self.proto == 6).then(|| EveTcp {
                tcp_flags: format!("{:02x}", self.tcp_flags[0] | self.tcp_flags[1]),
                tcp_flags_ts: format!("{:02x}", self.tcp_flags[0]),
                tcp_flags_tc: format!("{:02x}", self.tcp_flags[1]),
            }),
            tls: h.and_then(|h| h.sni.as_deref()).map(|sni| EveTls { sni }),
            http: h.and_then(|h| {
                h.http.as_deref().map(|r| EveHttp {
                    hostname: h.http_host.as_deref(),
                    http_method: &r.method,
                    url: Some(&r.uri),
                })
            }),
            deguchi: EveFlowExt {
                direction: self.direction.as_str(),
                duration: secs_f64(self.end - self.start),
                payload_bytes_toserver: self.payload[0],
                payload_bytes_toclient: self.payload[1],
                bursts: self.bursts,
                tunnel: (self.tunnel != Tunnel::None).then(|| self.tunnel.as_str()),
                end_reason: self.reason,
                direction_inferred: self.oriented.inferred().then_some(self.oriented),
                dns: h.and_then(|h| h.dns.as_deref()).and_then(|d| {
                    (!d.queries.is_empty()).then(|| EveDns {
                        queries: &d.queries,
                        answers: &d.answers,
                        rcode: d.rcode,
                    })
                }),
            },
        }
    }
}

impl EndReason {
    /// Suricata's `flow.reason`: a flow closed by FIN/RST ends, as in
    /// Suricata, when its closed-state timeout expires (`timeout`, with
    /// `flow.state` `closed`); one ended early for the memory cap is
    /// `forced`.
    #[must_use]
    pub fn as_eve(self) -> &'static str {
        match self {
            Self::Closed | Self::Timeout => "timeout",
            Self::Evicted => "forced",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Protocol name as EVE writes it: IANA's keyword for the protocol
/// number (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, `GRE`, ...), the number
/// itself for one IANA has not assigned (as Suricata does).
#[must_use]
pub fn proto_name(p: u8) -> std::borrow::Cow<'static, str> {
    match IANA_PROTOCOLS.get(usize::from(p)) {
        Some(name) if !name.is_empty() => (*name).into(),
        _ => p.to_string().into(),
    }
}

/// IANA protocol-number keywords, 0..=145 (assigned numbers only; `""`
/// for those without a keyword).
const IANA_PROTOCOLS: [&str; 146] = [
    "HOPOPT",
    "ICMP",
    "IGMP",
    "GGP",
    "IPv4",
    "ST",
    "TCP",
    "CBT",
    "EGP",
    "IGP", // 0
    "BBN-RCC-MON",
    "NVP-II",
    "PUP",
    "ARGUS",
    "EMCON",
    "XNET",
    "CHAOS",
    "UDP",
    "MUX",
    "DCN-MEAS", // 10
    "HMP",
    "PRM",
    "XNS-IDP",
    "TRUNK-1",
    "TRUNK-2",
    "LEAF-1",
    "LEAF-2",
    "RDP",
    "IRTP",
    "ISO-TP4", // 20
    "NETBLT",
    "MFE-NSP",
    "MERIT-INP",
    "DCCP",
    "3PC",
    "IDPR",
    "XTP",
    "DDP",
    "IDPR-CMTP",
    "TP++", // 30
    "IL",
    "IPv6",
    "SDRP",
    "IPv6-Route",
    "IPv6-Frag",
    "IDRP",
    "RSVP",
    "GRE",
    "DSR",
    "BNA", // 40
    "ESP",
    "AH",
    "I-NLSP",
    "SWIPE",
    "NARP",
    "Min-IPv4",
    "TLSP",
    "SKIP",
    "IPv6-ICMP",
    "IPv6-NoNxt", // 50
    "IPv6-Opts",
    "",
    "CFTP",
    "",
    "SAT-EXPAK",
    "KRYPTOLAN",
    "RVD",
    "IPPC",
    "",
    "SAT-MON", // 60
    "VISA",
    "IPCV",
    "CPNX",
    "CPHB",
    "WSN",
    "PVP",
    "BR-SAT-MON",
    "SUN-ND",
    "WB-MON",
    "WB-EXPAK", // 70
    "ISO-IP",
    "VMTP",
    "SECURE-VMTP",
    "VINES",
    "IPTM",
    "NSFNET-IGP",
    "DGP",
    "TCF",
    "EIGRP",
    "OSPFIGP", // 80
    "Sprite-RPC",
    "LARP",
    "MTP",
    "AX.25",
    "IPIP",
    "MICP",
    "SCC-SP",
    "ETHERIP",
    "ENCAP",
    "", // 90
    "GMTP",
    "IFMP",
    "PNNI",
    "PIM",
    "ARIS",
    "SCPS",
    "QNX",
    "A/N",
    "IPComp",
    "SNP", // 100
    "Compaq-Peer",
    "IPX-in-IP",
    "VRRP",
    "PGM",
    "",
    "L2TP",
    "DDX",
    "IATP",
    "STP",
    "SRP", // 110
    "UTI",
    "SMP",
    "SM",
    "PTP",
    "ISIS",
    "FIRE",
    "CRTP",
    "CRUDP",
    "SSCOPMCE",
    "IPLT", // 120
    "SPS",
    "PIPE",
    "SCTP",
    "FC",
    "RSVP-E2E-IGNORE",
    "Mobility Header",
    "UDPLite",
    "MPLS-in-IP",
    "manet",
    "HIP", // 130
    "Shim6",
    "WESP",
    "ROHC",
    "Ethernet",
    "AGGFRAG",
    "NSH", // 140
];

#[derive(Serialize)]
pub struct EveFlow<'a> {
    pub timestamp: String,
    pub flow_id: u64,
    pub event_type: &'static str,
    pub src_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    pub dest_ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    pub proto: std::borrow::Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    pub community_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<[u16; 1]>,
    pub flow: EveFlowBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<EveTcp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<EveTls<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<EveHttp<'a>>,
    pub deguchi: EveFlowExt<'a>,
}

/// EVE's `flow` object: only the keys Suricata writes.
#[derive(Serialize)]
pub struct EveFlowBody {
    pub pkts_toserver: u64,
    pub pkts_toclient: u64,
    pub bytes_toserver: u64,
    pub bytes_toclient: u64,
    pub start: String,
    pub end: String,
    pub age: i64,
    pub state: &'static str,
    pub reason: &'static str,
    pub alerted: bool,
}

/// The flow event's `deguchi` object: what Suricata has no name for.
#[derive(Serialize)]
pub struct EveFlowExt<'a> {
    /// Inferred from `general.home_net`: outbound, inbound, internal, external.
    pub direction: &'static str,
    /// Seconds from first to last packet (EVE's `flow.age` rounds it).
    pub duration: f64,
    pub payload_bytes_toserver: u64,
    pub payload_bytes_toclient: u64,
    /// Bursts of payload exchange after silence.
    pub bursts: u32,
    /// The encapsulation the flow was found in (`vxlan`, `gre`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<&'static str>,
    /// deguchi's own end reason: `closed`, `timeout`, `evicted`, `shutdown`.
    pub end_reason: EndReason,
    /// Set when the originator was not seen opening the flow (TCP without a
    /// SYN or SYN-ACK): `ports` (service port vs ephemeral port) or
    /// `first_packet` (the first packet's sender).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction_inferred: Option<Oriented>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<EveDns<'a>>,
}

#[derive(Serialize)]
pub struct EveTcp {
    pub tcp_flags: String,
    pub tcp_flags_ts: String,
    pub tcp_flags_tc: String,
}

#[derive(Serialize)]
pub struct EveTls<'a> {
    pub sni: &'a str,
}

#[derive(Serialize)]
pub struct EveHttp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<&'a str>,
    pub http_method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'a str>,
}

#[derive(Serialize)]
pub struct EveDns<'a> {
    pub queries: &'a [String],
    pub answers: &'a [IpAddr],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rcode: Option<u8>,
}
