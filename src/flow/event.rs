//! Flow events: what the flow table concludes and later stages (the
//! analysis and its detectors) consume. Small and owned; detectors import
//! this module, never the table.

use super::entry::Entry;
use super::record::{FlowHints, FlowRecord};
use crate::time::Ts;
use serde::{Deserialize, Serialize};

/// Something the table concluded that later stages need.
#[derive(Debug, Serialize, Deserialize)]
pub enum FlowEvent {
    /// A flow ended (closed, timed out, evicted or flushed).
    /// (Inline, not boxed: one allocation and one free on another thread
    /// less per flow, and the analysis thread reads records in order.)
    End(FlowRecord),
    /// A DNS response with addresses, seen by `client` (the querying host).
    DnsAnswer(Box<DnsAnswer>),
    /// A DNS query a host sent (for the DNS tunnel detector).
    DnsQuery(Box<DnsQuery>),
    /// A long flow moved another `progress_bytes` of payload: lets volume
    /// detectors see an upload while it happens, not when it ends.
    Progress(ProgressEvent),
    /// A completed burst of payload inside a flow that has had at least two:
    /// the in-session series a keep-alive beacon leaves (Sliver, AsyncRAT).
    /// Single-burst flows are described by their `End` record alone.
    Burst(BurstEvent),
}

/// One burst of payload exchange inside a long-lived flow, oriented from the
/// flow's originator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstEvent {
    pub ts: Ts,
    pub end: Ts,
    /// Ordinal of this burst in its flow (1-based).
    pub n: u32,
    pub flow_id: u64,
    pub src_ip: std::net::IpAddr,
    pub src_port: u16,
    pub dest_ip: std::net::IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    pub vlan: u16,
    /// Payload bytes [from originator, to originator].
    pub payload: [u32; 2],
    /// The name the originator used (TLS SNI, else HTTP Host), if seen.
    pub name: Option<std::sync::Arc<str>>,
    /// When the originator first sent payload in this burst; `None`: it
    /// sent none (the responder talked alone).
    pub orig_first: Option<Ts>,
    /// The responder sent the burst's first payload.
    pub responder_started: bool,
    /// Not payload: a TCP keep-alive probe (0-1 byte after silence, see
    /// `TableConfig::keepalive_idle`); `payload` holds its length, `n` the
    /// flow's data bursts so far.
    pub keepalive: bool,
}

impl ProgressEvent {
    pub(crate) fn of(e: &Entry, ts: Ts) -> Self {
        let (src_ip, src_port, dest_ip, dest_port) = e.oriented();
        Self {
            ts,
            start: e.first_ts,
            flow_id: crate::flow::record::flow_id(e),
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            proto: e.key.proto,
            delta: [e.payload[0] - e.reported[0], e.payload[1] - e.reported[1]],
            name: e.hints.as_deref().and_then(FlowHints::dest_name_shared),
        }
    }
}

impl BurstEvent {
    pub(crate) fn of(e: &Entry) -> Self {
        let (src_ip, src_port, dest_ip, dest_port) = e.oriented();
        Self {
            ts: e.burst_start,
            end: e.burst_last,
            n: e.bursts,
            flow_id: crate::flow::record::flow_id(e),
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            proto: e.key.proto,
            vlan: e.key.vlan,
            payload: e.burst_bytes,
            name: e.hints.as_deref().and_then(FlowHints::dest_name_shared),
            orig_first: (e.burst_orig_first != Ts::MAX).then_some(e.burst_orig_first),
            responder_started: e.burst_orig_first != e.burst_start,
            keepalive: false,
        }
    }

    /// A keep-alive probe of `len` (0 or 1) bytes sent at `ts` in direction
    /// `d` (0: by the originator).
    pub(crate) fn probe(e: &Entry, ts: Ts, d: usize, len: u32) -> Self {
        let (src_ip, src_port, dest_ip, dest_port) = e.oriented();
        let mut payload = [0; 2];
        payload[d & 1] = len;
        Self {
            ts,
            end: ts,
            n: e.bursts,
            flow_id: crate::flow::record::flow_id(e),
            src_ip,
            src_port,
            dest_ip,
            dest_port,
            proto: e.key.proto,
            vlan: e.key.vlan,
            payload,
            name: e.hints.as_deref().and_then(FlowHints::dest_name_shared),
            orig_first: (d == 0).then_some(ts),
            responder_started: d == 1,
            keepalive: true,
        }
    }
}

/// A DNS query, as sent by `client`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsQuery {
    pub ts: Ts,
    pub client: std::net::IpAddr,
    pub server: std::net::IpAddr,
    pub name: String,
    pub qtype: u16,
}

/// Payload moved by a flow since its last report, oriented from its originator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub ts: Ts,
    pub start: Ts,
    pub flow_id: u64,
    pub src_ip: std::net::IpAddr,
    pub src_port: u16,
    pub dest_ip: std::net::IpAddr,
    pub dest_port: u16,
    pub proto: u8,
    /// Payload bytes since the last report [from originator, to originator].
    pub delta: [u64; 2],
    pub name: Option<std::sync::Arc<str>>,
}

/// The addresses a host was told a name resolves to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsAnswer {
    pub ts: Ts,
    pub client: std::net::IpAddr,
    pub resolver: std::net::IpAddr,
    pub name: String,
    pub addrs: Vec<std::net::IpAddr>,
}
