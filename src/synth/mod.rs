//! Synthetic captures with ground truth (`deguchi gen`): offices with
//! browsing, DNS, NTP, update checks, chat heartbeats, telemetry, downloads,
//! video calls and a nightly backup, plus injected beacons and exfiltration.
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
pub mod scenario;

use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::Path;

/// One record: time (µs), captured bytes, wire length.
pub struct Rec {
    pub ts_us: u64,
    pub frame: Vec<u8>,
    pub wire: u32,
}

impl Rec {
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

/// Classic pcap writer (µs, little-endian, Ethernet).
pub struct PcapWriter {
    w: BufWriter<std::fs::File>,
    pub records: u64,
    pub bytes: u64,
}

impl PcapWriter {
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&65535u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(Self {
            w,
            records: 0,
            bytes: 24,
        })
    }

    /// # Errors
    /// The write fails.
    pub fn write(&mut self, r: &Rec) -> std::io::Result<()> {
        let secs = u32::try_from(r.ts_us / 1_000_000).unwrap_or(u32::MAX);
        let us = (r.ts_us % 1_000_000) as u32;
        let cap = u32::try_from(r.frame.len()).unwrap_or(u32::MAX);
        self.w.write_all(&secs.to_le_bytes())?;
        self.w.write_all(&us.to_le_bytes())?;
        self.w.write_all(&cap.to_le_bytes())?;
        self.w.write_all(&r.wire.max(cap).to_le_bytes())?;
        self.w.write_all(&r.frame)?;
        self.records += 1;
        self.bytes += 16 + u64::from(cap);
        Ok(())
    }

    /// # Errors
    /// The flush fails.
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.w.flush()?;
        Ok((self.records, self.bytes))
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

pub(crate) fn us_to_ts(us: u64) -> Ts {
    i64::try_from(us).unwrap_or(i64::MAX / 1000) * 1000
}
