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
    /// Beats to take before the series is scored again, per model: a
    /// score far below the threshold cannot reach it within a few beats
    /// (see [`hold_after`]).
    pub(super) hold: Holds,
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
            hold: Holds::default(),
            alerted: None,
            last_alert: i64::MIN,
        }
    }
}

/// Beats a series waits before each model scores it again: the main
/// model (consecutive intervals, and the high-jitter model that follows
/// its schedule) in the low four bits, the grid model in the high four
/// (each at most 15: an evidence hold is at most
/// [`super::series::MAX_HOLD`], a `beacon.rescore_s` hold at most 15). One
/// byte, as the single hold of snapshot version 4 was: its value reads as
/// a main-model hold.
/// Separate schedules, because a series far from passing one model is
/// often close to passing the other, and a shared hold (the smaller one)
/// made each model score at the other's pace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Holds(u8);

impl Holds {
    pub(super) fn main(self) -> u8 {
        self.0 & 0x0f
    }

    pub(super) fn grid(self) -> u8 {
        self.0 >> 4
    }

    pub(super) fn set(&mut self, main: u8, grid: u8) {
        self.0 = main.min(15) | (grid.min(15) << 4);
    }

    /// One beat taken: which models are due (their hold ran out), and
    /// each hold that is not one beat shorter.
    pub(super) fn take_beat(&mut self) -> (bool, bool) {
        let (m, g) = (self.main(), self.grid());
        self.set(m.saturating_sub(1), g.saturating_sub(1));
        (m == 0, g == 0)
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
