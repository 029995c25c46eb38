//! SPAN duplicate removal (`capture.dedup_window_ms`): a mirror port that
//! copies both the ingress and the egress of a switch port delivers many
//! packets twice, byte for byte, microseconds apart. Those copies would
//! double every flow's packet and byte counts.
//!
//! What is hashed: every captured byte of the frame (link header included)
//! and its wire length, with a process-fixed seed. Nothing is excluded: a
//! copy that was changed on the way (routed: TTL, MAC addresses, checksum)
//! is not a duplicate and is kept. A packet is dropped when an equal hash
//! was seen at most the window before it, by packet time.
//!
//! The table is fixed-size (allocated once, no allocation per packet):
//! 2-way set-associative buckets of (hash, timestamp); a new hash replaces
//! the older of its bucket's two entries. An entry lost that way only
//! means a duplicate kept (never a packet wrongly dropped, short of a
//! 64-bit hash collision).

use crate::time::Ts;

/// Buckets of the table (two entries each): 2^16 buckets, 2 MiB. At 1 Mpps
/// and a 1 ms window about a thousand entries are live.
const BUCKETS: usize = 1 << 16;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// 0 = empty (a real hash of 0 is stored as 1)
    hash: u64,
    ts: Ts,
}

pub struct Dedup {
    window: i64,
    table: Box<[[Entry; 2]]>,
    hasher: ahash::RandomState,
    /// Packets dropped as duplicates.
    pub dropped: u64,
}

impl Dedup {
    /// `window_ms` > 0.
    #[must_use]
    pub fn new(window_ms: u64) -> Self {
        Self {
            window: i64::try_from(window_ms)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
            table: vec![[Entry::default(); 2]; BUCKETS].into_boxed_slice(),
            hasher: ahash::RandomState::with_seeds(
                0x6465_6775_6368_6921,
                0x7370_616e_6475_7073,
                0x0123_4567_89ab_cdef,
                0xfedc_ba98_7654_3210,
            ),
            dropped: 0,
        }
    }

    /// Whether the frame (`data`, `wire_len`, at `ts`) is a copy of one seen
    /// within the window; if so it is counted, else remembered.
    #[inline]
    pub fn is_duplicate(&mut self, ts: Ts, wire_len: u32, data: &[u8]) -> bool {
        let h = self.hasher.hash_one((wire_len, data)).max(1);
        // the top bits pick the bucket (the low bits are as good; either)
        let b = usize::try_from(h >> 48).unwrap_or(0) % BUCKETS;
        let Some(bucket) = self.table.get_mut(b) else {
            return false;
        };
        let window = self.window;
        let near = |e: &Entry| e.hash == h && ts.abs_diff(e.ts) <= window.unsigned_abs();
        if let Some(e) = bucket.iter_mut().find(|e| near(e)) {
            // a third copy within the window of the second is one too
            e.ts = e.ts.max(ts);
            self.dropped += 1;
            return true;
        }
        let [a, b2] = bucket;
        let slot = if a.hash == 0 || (b2.hash != 0 && a.ts <= b2.ts) {
            a
        } else {
            b2
        };
        *slot = Entry { hash: h, ts };
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    #[test]
    fn drops_copies_within_the_window_only() {
        let mut d = Dedup::new(2);
        let p = [1u8, 2, 3, 4];
        let q = [1u8, 2, 3, 5];
        assert!(!d.is_duplicate(0, 60, &p));
        assert!(d.is_duplicate(10_000, 60, &p), "copy 10 us later");
        assert!(!d.is_duplicate(20_000, 60, &q), "other bytes");
        assert!(!d.is_duplicate(20_000, 61, &p), "other wire length");
        // the same bytes again after the window: a new packet (a retransmit)
        assert!(!d.is_duplicate(5 * MS, 60, &p));
        assert!(d.is_duplicate(5 * MS + 1, 60, &p));
        // a copy that came first in the capture (timestamps out of order)
        assert!(!d.is_duplicate(9 * MS, 60, &q));
        assert!(d.is_duplicate(9 * MS - 1000, 60, &q));
        assert_eq!(d.dropped, 3);
    }

    #[test]
    fn many_distinct_packets_are_all_kept() {
        let mut d = Dedup::new(1000);
        let mut kept = 0;
        for i in 0u32..200_000 {
            if !d.is_duplicate(i64::from(i), 64, &i.to_be_bytes()) {
                kept += 1;
            }
        }
        assert_eq!(kept, 200_000);
        // and their copies, right after, are found while the table holds them
        let mut found = 0;
        for i in 0u32..1000 {
            let ts = 1_000_000 + i64::from(i) * 2;
            let b = (i + 1_000_000).to_be_bytes();
            d.is_duplicate(ts, 64, &b);
            if d.is_duplicate(ts + 1, 64, &b) {
                found += 1;
            }
        }
        assert_eq!(found, 1000);
    }
}
