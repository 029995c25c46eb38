//! Compact, capped series the detectors add to an alert's `evidence` so the
//! report can draw it: a beacon's beats, an exfiltration's cumulative bytes,
//! a DNS tunnel's recent query names (length and entropy).
//!
//! Kept apart from the detectors: each detector calls one function here with
//! plain numbers, so the call is a line or two to re-apply when the detector
//! code moves.

use crate::time::{SEC, Ts};
use serde_json::{Value, json};

/// Beats kept in `beat_series` (the most recent ones).
pub const MAX_BEATS: usize = 64;

/// `beat_series` for a beacon alert: the most recent [`MAX_BEATS`] beats as
/// offsets from the series' origin (the evidence's `first_seen`), seconds at
/// 0.1 s resolution, with payload bytes out and in per beat:
/// `{"t_s": [0.0, 60.1, ...], "out": [...], "in": [...]}`.
///
/// `beats` yields (tenths of a second since the origin, bytes out, bytes in)
/// in time order.
pub fn beat_series(beats: impl ExactSizeIterator<Item = (u32, u32, u32)>) -> Value {
    let skip = beats.len().saturating_sub(MAX_BEATS);
    let (mut t, mut o, mut i) = (Vec::new(), Vec::new(), Vec::new());
    for (t_ds, out, inb) in beats.skip(skip) {
        t.push(json!(f64::from(t_ds) / 10.0));
        o.push(json!(out));
        i.push(json!(inb));
    }
    json!({ "t_s": t, "out": o, "in": i })
}

/// Slot history of a pair's bytes out: slot length and the per-slot bytes of
/// the last `bytes.len()` slots, oldest first, the last one holding `now`.
#[derive(Clone, Copy)]
struct Slots<'a> {
    len: Ts,
    bytes: &'a [u64],
}

/// `out_curve` for an exfiltration alert: cumulative bytes out to the
/// destination at slot ends (hourly slots `coarse_1h` before the window of
/// the 5-minute slots `fine_5m`, then those, then `now`; each the bytes out
/// per slot, oldest first, the last holding `now`, empty when not kept), as offsets in seconds from the pair's
/// `first_seen`, and the host's baseline (p99 bytes out of its 5-minute and
/// hourly windows, 0 while not learned). At most `fine + coarse + 2` points:
/// `{"t_s": [...], "bytes_out": [...], "baseline_5m_bytes": N, "baseline_1h_bytes": N}`.
pub fn out_curve(
    first_seen: Ts,
    now: Ts,
    total_out: u64,
    fine_5m: &[u64],
    coarse_1h: &[u64],
    baseline: (u64, u64),
) -> Value {
    let fine = Slots {
        len: 300 * SEC,
        bytes: fine_5m,
    };
    let coarse = Slots {
        len: 3600 * SEC,
        bytes: coarse_1h,
    };
    // cumulative at the end of slot j = total - bytes of the slots after j
    let ends = |s: Slots<'_>| -> Vec<(Ts, u64)> {
        let n = s.bytes.len();
        let last_start = now.div_euclid(s.len.max(1)) * s.len;
        let mut after = 0u64;
        let mut v = Vec::with_capacity(n);
        for (k, b) in s.bytes.iter().rev().enumerate() {
            // slot n-1-k ends at last_start - k*len + len; skip the current one
            if k > 0 {
                let end = last_start - (i64::try_from(k).unwrap_or(0) - 1) * s.len;
                v.push((end, total_out.saturating_sub(after)));
            }
            after = after.saturating_add(*b);
        }
        v.reverse();
        v
    };
    let fine_pts = if fine.bytes.is_empty() {
        Vec::new()
    } else {
        ends(fine)
    };
    let fine_start = now.div_euclid(fine.len.max(1)) * fine.len
        - i64::try_from(fine.bytes.len()).unwrap_or(0) * fine.len;
    let mut pts: Vec<(Ts, u64)> = vec![(first_seen, 0)];
    if !coarse.bytes.is_empty() {
        pts.extend(ends(coarse).into_iter().filter(|(t, _)| *t < fine_start));
    }
    pts.extend(fine_pts);
    pts.retain(|(t, _)| *t >= first_seen && *t < now);
    pts.push((now, total_out));
    let secs = |t: Ts| ((t - first_seen) as f64 / SEC as f64 * 10.0).round() / 10.0;
    json!({
        "t_s": pts.iter().map(|(t, _)| json!(secs(*t))).collect::<Vec<_>>(),
        "bytes_out": pts.iter().map(|(_, b)| json!(b)).collect::<Vec<_>>(),
        "baseline_5m_bytes": baseline.0,
        "baseline_1h_bytes": baseline.1,
    })
}

/// Queries kept per DNS-tunnel window for `query_series` (the most recent).
pub const MAX_QUERIES: usize = 48;

/// A DNS-tunnel window's recent queries whose data part has at least 8
/// characters (shorter names are no tunnel's): time since the window began
/// (tenths of a second), characters of data, entropy (hundredths of a bit per
/// character). Empty, without an allocation, until such a query comes;
/// [`MAX_QUERIES`] entries of 8 bytes at most.
#[derive(Default)]
pub struct QuerySeries {
    v: Vec<(u32, u16, u16)>,
    /// Next slot to overwrite once full.
    next: usize,
}

impl QuerySeries {
    /// Records a query made `since_start` after the window began whose data
    /// part is `sub` (dots included).
    pub fn push(&mut self, since_start: Ts, sub: &str) {
        let letters = sub.bytes().filter(|b| *b != b'.').count();
        if letters < 8 {
            return;
        }
        let mut c = [0u32; 256];
        for b in sub.bytes().filter(|b| *b != b'.') {
            c[usize::from(b)] += 1;
        }
        let n = letters as f64;
        let ent: f64 = c
            .iter()
            .filter(|x| **x > 0)
            .map(|&x| {
                let p = f64::from(x) / n;
                -p * p.log2()
            })
            .sum();
        let e = (
            u32::try_from(since_start.max(0) / (SEC / 10)).unwrap_or(u32::MAX),
            u16::try_from(letters).unwrap_or(u16::MAX),
            (ent * 100.0).round() as u16,
        );
        if self.v.len() < MAX_QUERIES {
            self.v.push(e);
        } else {
            self.v[self.next] = e;
            self.next = (self.next + 1) % MAX_QUERIES;
        }
    }

    /// `query_series` evidence: `{"t_s": [...], "len": [...], "entropy": [...]}`,
    /// times as seconds since `first_seen`, oldest first.
    #[must_use]
    pub fn to_json(&self, window_start: Ts, first_seen: Ts) -> Value {
        let base = (window_start - first_seen) as f64 / SEC as f64;
        let (mut t, mut l, mut e) = (Vec::new(), Vec::new(), Vec::new());
        let (new, old) = self.v.split_at(self.next);
        for &(ds, len, ent) in old.iter().chain(new) {
            t.push(json!(((base + f64::from(ds) / 10.0) * 10.0).round() / 10.0));
            l.push(json!(len));
            e.push(json!(f64::from(ent) / 100.0));
        }
        json!({ "t_s": t, "len": l, "entropy": e })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beat_series_keeps_the_most_recent_beats() {
        let v = beat_series((0..100u32).map(|i| (i * 600, i, 2 * i)));
        assert_eq!(v["t_s"].as_array().unwrap().len(), MAX_BEATS);
        assert_eq!(v["t_s"][0], json!(2160.0));
        assert_eq!(v["out"][63], json!(99));
        assert_eq!(v["in"][63], json!(198));
    }

    #[test]
    fn query_series_keeps_the_most_recent_encoded_names() {
        let mut q = QuerySeries::default();
        q.push(0, "www");
        assert!(q.to_json(0, 0)["t_s"].as_array().unwrap().is_empty());
        for i in 0..100i64 {
            q.push(i * SEC, "abcdefgh.ijkl");
        }
        let v = q.to_json(10 * SEC, 0);
        let t = v["t_s"].as_array().unwrap();
        assert_eq!(t.len(), MAX_QUERIES);
        assert_eq!(t[0], json!(62.0));
        assert_eq!(t[MAX_QUERIES - 1], json!(109.0));
        assert_eq!(v["len"][0], json!(12));
        assert!((v["entropy"][0].as_f64().unwrap() - 3.58).abs() < 0.01);
    }

    #[test]
    fn out_curve_is_cumulative_and_ends_at_the_total() {
        let first = 1000 * SEC;
        let now = first + 900 * SEC;
        // 5-minute slots: 100, 200, 300 bytes in the last three
        let mut fine = [0u64; 12];
        fine[9] = 100;
        fine[10] = 200;
        fine[11] = 300;
        let v = out_curve(first, now, 600, &fine, &[], (0, 0));
        let b: Vec<u64> = v["bytes_out"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(b.first(), Some(&0));
        assert_eq!(b.last(), Some(&600));
        assert!(b.windows(2).all(|w| w[0] <= w[1]), "{b:?}");
        assert!(b.contains(&100) && b.contains(&300), "{b:?}");
    }
}
