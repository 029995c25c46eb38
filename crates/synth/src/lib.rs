//! deguchi-synth: synthetic captures with ground truth (`deguchi gen`,
//! [`cli`]), built from [`scenario`]s (offices, attacks, the benchmark
//! models and [`mix`]) of [`packets`], written by the project's one pcap
//! writer ([`pcap`]). A crate of its own: the sensor ships it only behind its
//! default `gen` feature, and its tests, benches, examples and fuzz smoke
//! use it to build their inputs. It depends on nothing of the sensor.
//!
//! The models: offices with browsing, DNS, NTP, update checks, chat
//! heartbeats, telemetry, downloads, video calls and a nightly backup, plus
//! injected beacons and exfiltration.
//!
//! Generation streams in time: every activity is a small state machine that
//! emits the records of the events starting in a window; windows of one hour
//! are sorted and written, so a multi-day office never sits in memory.
//! Bulk payload records are captured short (headers + 16 bytes) with their
//! full wire length, as a mirror-port sensor with a small snaplen sees them:
//! the files stay small while byte counts stay true.

pub mod cli;
pub mod mix;
pub mod packets;
pub mod pcap;
pub mod scenario;
pub mod stress;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// One record: time (µs), captured bytes, wire length.
pub struct Record {
    pub ts_us: u64,
    pub frame: Vec<u8>,
    pub wire: u32,
}

impl Record {
    /// A record the model built short (headers and a few payload bytes of a
    /// longer packet) made whole (`snaplen` 0) or cut at `snaplen` bytes;
    /// the payload bytes the model does not carry are filler. A record
    /// built whole is left as it is.
    pub fn snap(&mut self, snaplen: usize) {
        let wire = self.wire as usize;
        if self.frame.len() < wire {
            let n = if snaplen == 0 {
                wire
            } else {
                wire.min(snaplen)
            };
            self.frame.resize(n, 0x5a);
        }
    }
}

/// Seeded xoshiro256** (hand-written: a generator must be reproducible
/// across crate versions).
#[derive(Clone)]
pub struct Rng([u64; 4]);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut s = [0u64; 4];
        for x in &mut s {
            z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut v = z;
            v = (v ^ (v >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            v = (v ^ (v >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *x = v ^ (v >> 31);
        }
        Self(s)
    }
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.f() * n as f64) as usize).min(n.saturating_sub(1))
    }
    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f()).ln()
    }
    /// Log-normal with the given median and sigma (of the log).
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (1.0 - self.f(), self.f());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * z).exp()
    }
    /// Zipf-like index in [0, n): small indexes are popular.
    pub fn zipf(&mut self, n: usize) -> usize {
        let x = self.f().powf(2.5);
        self.below(n).min((x * n as f64) as usize)
    }
}

/// One injected (or benign periodic) activity, as the ground truth states it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    pub kind: String,
    pub variant: String,
    pub src_ip: String,
    pub dest_ip: String,
    pub dest_port: u16,
    pub proto: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub dest_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jitter: Option<f64>,
    pub first_ts: String,
    pub last_ts: String,
    pub events: u64,
    pub bytes_out: u64,
}

/// The ground-truth file (`--truth`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroundTruth {
    pub scenario: String,
    pub seed: u64,
    pub start: String,
    pub end: String,
    pub packets: u64,
    pub malicious: Vec<Truth>,
    pub benign_periodic: Vec<Truth>,
}

/// RFC 3339 with microseconds and a `Z` suffix, e.g.
/// `2026-03-02T08:00:00.000001Z`, of a time in µs since the Unix epoch: the
/// sensor's timestamp format (`deguchi::time::rfc3339`), so ground truth and
/// alerts compare as strings.
#[must_use]
pub fn rfc3339_us(us: u64) -> String {
    const SEC: i64 = 1_000_000_000;
    let ns = i64::try_from(us).unwrap_or(i64::MAX / 1000) * 1000;
    let dt = DateTime::<Utc>::from_timestamp(ns.div_euclid(SEC), 0)
        .map(|d| d + chrono::Duration::nanoseconds(ns.rem_euclid(SEC)));
    match dt {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => "1970-01-01T00:00:00.000000Z".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_us_formats_as_the_sensor_does() {
        assert_eq!(super::rfc3339_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            super::rfc3339_us(1_772_409_600_000_001),
            "2026-03-02T00:00:00.000001Z"
        );
    }
}
