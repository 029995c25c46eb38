//! One tracked flow: what the table keeps per 5-tuple.

use super::key::FlowKey;
use super::record::FlowHints;
use super::tcp::Class;
use crate::time::Ts;

/// One tracked flow. Direction index 0 = from the originator (to server).
#[derive(Debug)]
pub struct Entry {
    pub key: FlowKey,
    pub first_ts: Ts,
    pub last_ts: Ts,
    pub pkts: [u64; 2],
    pub bytes: [u64; 2],
    pub payload: [u64; 2],
    pub hints: Option<Box<FlowHints>>,
    pub(super) prev: u32,
    pub(super) next: u32,
    /// Packet time of the flow's last move to the head of its list.
    pub(super) listed_ts: Ts,
    pub orig_is_a: bool,
    /// How the originator was chosen.
    pub oriented: super::record::Oriented,
    pub tcp_flags: [u8; 2],
    pub tcp_state: u8,
    pub(super) class: Class,
    pub icmp: (u8, u8),
    pub tunnel: crate::decode::Tunnel,
    /// Bursts of payload (exchanges after `burst_gap` of silence) seen so far.
    pub bursts: u32,
    /// Payload bytes of the current burst [from originator, to originator].
    pub burst_bytes: [u32; 2],
    pub burst_start: Ts,
    pub burst_last: Ts,
    /// When the originator first sent payload in the current burst
    /// (`Ts::MAX`: not yet; a burst the responder started may have none).
    pub burst_orig_first: Ts,
    /// Payload already reported in `Progress` events [orig, resp].
    pub reported: [u64; 2],
}

impl Entry {
    /// (originator ip, port, responder ip, port)
    #[must_use]
    pub fn oriented(&self) -> (std::net::IpAddr, u16, std::net::IpAddr, u16) {
        let k = &self.key;
        let (o, op, r, rp) = if self.orig_is_a {
            (k.a, k.pa, k.b, k.pb)
        } else {
            (k.b, k.pb, k.a, k.pa)
        };
        (
            super::key::ip_of(o, k.v6),
            op,
            super::key::ip_of(r, k.v6),
            rp,
        )
    }
}
