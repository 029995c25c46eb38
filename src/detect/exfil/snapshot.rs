//! The exfil detector's state as saved in a snapshot.

use super::state::{Pair, Ring, new_hist};
use crate::time::Ts;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A host as stored: histograms as (value, count) pairs.
#[derive(Serialize, Deserialize)]
pub(super) struct HostSnap {
    pub(super) first_seen: Ts,
    pub(super) last_seen: Ts,
    pub(super) out5: Ring<12>,
    pub(super) in5: Ring<12>,
    pub(super) out1h: Ring<24>,
    pub(super) hist5: Vec<(u64, u64)>,
    pub(super) hist1h: Vec<(u64, u64)>,
    pub(super) total_out: u64,
    pub(super) total_in: u64,
}

/// A histogram's (value, count) pairs; none for a host without one yet.
pub(super) fn hist_pairs(h: Option<&Histogram<u16>>) -> Vec<(u64, u64)> {
    h.map_or_else(Vec::new, |h| {
        h.iter_recorded()
            .map(|v| (v.value_iterated_to(), u64::from(v.count_at_value())))
            .collect()
    })
}

/// The histogram of stored pairs; none for no pairs (as before it was made).
pub(super) fn hist_from(v: &[(u64, u64)], low: u64) -> Option<Histogram<u16>> {
    if v.is_empty() {
        return None;
    }
    let mut h = new_hist(low);
    for &(x, n) in v {
        let _ = h.record_n(x.max(1), u16::try_from(n).unwrap_or(u16::MAX));
    }
    Some(h)
}

#[derive(Serialize, Deserialize)]
pub(super) struct Snapshot {
    pub(super) hosts: Vec<(IpAddr, HostSnap)>,
    pub(super) pairs: Vec<((IpAddr, u64), Pair)>,
}

/// Layout version of [`Snapshot`].
pub(super) const SNAPSHOT_VERSION: u32 = 3;
