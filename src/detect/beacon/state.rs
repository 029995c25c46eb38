//! The beacon detector's state: a series per host and destination.

use crate::alert::Severity;
use crate::detect::periodicity::Beat;
use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub(super) struct PairKey {
    pub(super) host: IpAddr,
    pub(super) dest: u64,
    pub(super) port: u16,
    pub(super) proto: u8,
    /// 0: the pair's series; else the host's port of the session whose own
    /// series this is (`per_session`, `keepalive_probes`).
    pub(super) session: u16,
}

/// One series. Most pairs only ever see a beat or two (68 % of the mix
/// benchmark's 38,000 see one), so the entry is kept small: the origin is
/// also the first beat (beats arriving late move it back), the destination's
/// name is not stored (it is the key's: a named beat always lands in the
/// series keyed by that name, so the beat being scored carries it), and the
/// beats grow one at a time instead of doubling, the first held in the entry
/// itself (no allocation for a series that never sees a second).
#[derive(Serialize, Deserialize)]
pub(super) struct Pair {
    /// Time of the earliest beat; beat times are offsets from it.
    pub(super) origin: Ts,
    pub(super) last_seen: Ts,
    pub(super) beats: smallvec::SmallVec<[Beat; 1]>,
    pub(super) total_beats: u64,
    pub(super) bytes_out: u64,
    pub(super) bytes_in: u64,
    pub(super) dest_ip: IpAddr,
    pub(super) src_port: u16,
    pub(super) flow_id: u64,
    pub(super) vlan: u16,
    pub(super) in_session: bool,
    /// In-session beats from two or more sessions reached this series.
    pub(super) mixed: bool,
    /// Keep-alive probes are among its beats (`keepalive_min_span_s`).
    pub(super) keepalive: bool,
    /// Beats to take before the series is scored again: a score far below
    /// the threshold cannot reach it within a few beats (see [`hold_after`]).
    pub(super) hold: u8,
    pub(super) alerted: Option<Severity>,
    pub(super) last_alert: Ts,
}

impl Pair {
    /// A new series of `b`'s pair, its first beat at `origin`, seen last at
    /// `last_seen`: no beats yet, nothing alerted.
    pub(super) fn new(b: &BeatIn, origin: Ts, last_seen: Ts) -> Self {
        Self {
            origin,
            last_seen,
            beats: smallvec::SmallVec::new(),
            total_beats: 0,
            bytes_out: 0,
            bytes_in: 0,
            dest_ip: b.dest_ip,
            src_port: b.src_port,
            flow_id: b.flow_id,
            vlan: b.vlan,
            in_session: false,
            mixed: false,
            keepalive: false,
            hold: 0,
            alerted: None,
            last_alert: i64::MIN,
        }
    }
}

/// Counters for the summary.
#[derive(Clone, Debug, Default)]
pub struct BeaconStats {
    pub beats: u64,
    /// Series scores computed.
    pub scored: u64,
    pub allowlisted: u64,
    pub suppressed_popular: u64,
    pub held_settling: u64,
    /// In-session bursts in which the host sent nothing (`own_bursts_only`).
    pub server_bursts: u64,
    /// Keep-alive probes taken as beats of their session.
    pub keepalive_probes: u64,
    pub pairs_evicted: u64,
    pub alerts: u64,
}

/// One beat to add to a series.
pub(super) struct BeatIn {
    pub(super) ts: Ts,
    pub(super) host: IpAddr,
    pub(super) src_port: u16,
    pub(super) dest_ip: IpAddr,
    pub(super) port: u16,
    pub(super) proto: u8,
    pub(super) vlan: u16,
    pub(super) flow_id: u64,
    pub(super) out: u64,
    pub(super) inb: u64,
    pub(super) in_session: bool,
    /// 0: the pair's series; else the session's own (its host port).
    pub(super) session: u16,
    /// A keep-alive probe, not payload.
    pub(super) keepalive: bool,
}
