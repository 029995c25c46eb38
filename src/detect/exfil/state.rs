//! The exfil detector's state: slot rings, hosts, pairs and what they learned.

use super::{ExfilConfig, HOUR, SLOT5};
use crate::alert::Severity;
use crate::time::{SEC, Ts};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A ring of `N` time slots (bytes), newest at `head`. The slots are held
/// inline, not on the heap: a host's rings sit in its entry, so an update
/// touches one block of memory instead of four.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ring<const N: usize> {
    pub(super) head: i64,
    /// Stored as a sequence, as when it was a `Vec` (state files unchanged).
    #[serde(with = "slots")]
    pub(super) v: [u64; N],
}

/// A ring's slots as a length-prefixed sequence.
pub(super) mod slots {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(v: &[u64; N], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u64; N], D::Error> {
        let v = Vec::<u64>::deserialize(d)?;
        let n = v.len();
        <[u64; N]>::try_from(v)
            .map_err(|_| D::Error::custom(format!("ring of {n} slots, expected {N}")))
    }
}

impl<const N: usize> Ring<N> {
    pub(super) fn new() -> Self {
        Self {
            head: i64::MIN,
            v: [0; N],
        }
    }
    #[allow(clippy::cast_possible_wrap)]
    pub(super) fn n(&self) -> i64 {
        N as i64
    }
    /// Moves to `slot`, returning the completed slots' values (oldest first) via `done`.
    pub(super) fn advance(&mut self, slot: i64, mut done: impl FnMut(u64)) {
        if self.head == i64::MIN {
            self.head = slot;
            return;
        }
        if slot <= self.head {
            return;
        }
        let steps = (slot - self.head).min(self.n() + 1);
        let first = slot - steps;
        for s in first..slot {
            let i = s.rem_euclid(self.n()) as usize;
            if s > self.head - self.n() && s <= self.head {
                done(self.v[i]);
            } else {
                done(0);
            }
        }
        for s in (self.head + 1)..=slot {
            if s > slot - self.n() {
                let i = s.rem_euclid(self.n()) as usize;
                self.v[i] = 0;
            }
        }
        if slot - self.head > self.n() {
            self.v.iter_mut().for_each(|x| *x = 0);
        }
        self.head = slot;
    }
    pub(super) fn add(&mut self, slot: i64, x: u64) {
        if self.head == i64::MIN || slot > self.head {
            self.advance(slot, |_| {});
        }
        if slot <= self.head - self.n() {
            return;
        }
        let i = slot.rem_euclid(self.n()) as usize;
        self.v[i] = self.v[i].saturating_add(x);
    }
    /// Sum of the last `k` slots up to `now_slot`.
    pub(super) fn sum(&self, now_slot: i64, k: i64) -> u64 {
        if self.head == i64::MIN {
            return 0;
        }
        let mut t = 0u64;
        for s in (now_slot - k + 1)..=now_slot {
            if s <= self.head && s > self.head - self.n() {
                t = t.saturating_add(self.v[s.rem_euclid(self.n()) as usize]);
            }
        }
        t
    }
}

/// Smallest value (KiB) the 5-minute histogram tells apart: its p99 is only
/// used above 1 MiB, where buckets of a histogram starting here have exactly
/// the bounds (and so the p99) of one starting at 1 KiB.
pub(super) const HIST5_LOW: u64 = 64;
/// The same for the hourly histogram, whose p99 is used above 4 MiB.
pub(super) const HIST1H_LOW: u64 = 256;

pub(super) fn new_hist(low: u64) -> Histogram<u16> {
    // KiB, `low` .. 4 TiB per window, 1 significant digit (~6 % buckets),
    // u16 counts (saturating: 227 days of 5-minute windows): 0.7 KB
    Histogram::new_with_bounds(low, 1 << 32, 1).unwrap_or_else(|_| {
        Histogram::new(1).unwrap_or_else(|_| unreachable!("1 significant figure is valid"))
    })
}

/// Per-host state: 0.6 KB (three rings), plus 0.7 KB for each of its two
/// histograms once it has one.
pub struct Host {
    pub first_seen: Ts,
    pub last_seen: Ts,
    pub(super) out5: Ring<12>,
    pub(super) in5: Ring<12>,
    pub(super) out1h: Ring<24>,
    /// Bytes out per completed 5-minute slot; `None` until the host has
    /// completed one (a host seen for a few minutes, or every host of a
    /// capture shorter than the slot, never needs the 0.7 KB of counts).
    pub(super) hist5: Option<Histogram<u16>>,
    /// The same per completed hour.
    pub(super) hist1h: Option<Histogram<u16>>,
    pub total_out: u64,
    pub total_in: u64,
}

impl Host {
    pub(super) fn new(ts: Ts) -> Self {
        Self {
            first_seen: ts,
            last_seen: ts,
            out5: Ring::new(),
            in5: Ring::new(),
            out1h: Ring::new(),
            hist5: None,
            hist1h: None,
            total_out: 0,
            total_in: 0,
        }
    }
    pub(super) fn learned(&self, cfg: &ExfilConfig) -> bool {
        self.last_seen - self.first_seen
            >= i64::try_from(cfg.learning_s).unwrap_or(i64::MAX / SEC) * SEC
    }
    pub(super) fn pcr(&self) -> f64 {
        pcr(self.total_out, self.total_in)
    }
    /// Accounts an update; a completed slot goes into its histogram, which
    /// is made on the first one as a clone of the empty `templates` (building
    /// one with `new_with_bounds` costs several times a copy, and a network
    /// with host churn makes many).
    pub(super) fn account(
        &mut self,
        ts: Ts,
        out: u64,
        inb: u64,
        templates: &(Histogram<u16>, Histogram<u16>),
    ) {
        let (h5, h1) = (&mut self.hist5, &mut self.hist1h);
        let rec = |h: &mut Option<Histogram<u16>>, empty: &Histogram<u16>, v: u64| {
            let h = h.get_or_insert_with(|| empty.clone());
            h.saturating_record((v / 1024).max(1));
        };
        self.out5
            .advance(ts.div_euclid(SLOT5), |v| rec(h5, &templates.0, v));
        self.out1h
            .advance(ts.div_euclid(HOUR), |v| rec(h1, &templates.1, v));
        self.out5.add(ts.div_euclid(SLOT5), out);
        self.in5.add(ts.div_euclid(SLOT5), inb);
        self.out1h.add(ts.div_euclid(HOUR), out);
        self.total_out = self.total_out.saturating_add(out);
        self.total_in = self.total_in.saturating_add(inb);
        self.last_seen = self.last_seen.max(ts);
    }
    pub(super) fn p99(h: Option<&Histogram<u16>>) -> u64 {
        match h {
            Some(h) if !h.is_empty() => h.value_at_quantile(0.99) * 1024,
            _ => 0,
        }
    }
}

pub(super) fn pcr(out: u64, inb: u64) -> f64 {
    let t = out as f64 + inb as f64;
    if t <= 0.0 {
        0.0
    } else {
        (out as f64 - inb as f64) / t
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum Kind {
    Burst,
    LowAndSlow,
    ProducerShift,
    UnusualChannel,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Burst => "burst",
            Self::LowAndSlow => "low_and_slow",
            Self::ProducerShift => "producer_shift",
            Self::UnusualChannel => "unusual_channel",
        }
    }
    /// Which finding leads an alert (lower first).
    pub(super) fn priority(self) -> u8 {
        match self {
            Self::Burst => 0,
            Self::UnusualChannel => 1,
            Self::LowAndSlow => 2,
            Self::ProducerShift => 3,
        }
    }
    pub(super) fn sid(self) -> u32 {
        9_200_001 + self as u32
    }
}

/// A pair's bytes per 5-minute slot (one hour) and per hour (one day).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PairRings {
    pub(super) out5: Ring<12>,
    pub(super) in5: Ring<12>,
    pub(super) out1h: Ring<24>,
    pub(super) in1h: Ring<24>,
}

impl PairRings {
    pub(super) fn new() -> Self {
        Self {
            out5: Ring::new(),
            in5: Ring::new(),
            out1h: Ring::new(),
            in1h: Ring::new(),
        }
    }
    pub(super) fn add(&mut self, ts: Ts, out: u64, inb: u64) {
        let (s5, s1) = (ts.div_euclid(SLOT5), ts.div_euclid(HOUR));
        self.out5.add(s5, out);
        self.in5.add(s5, inb);
        self.out1h.add(s1, out);
        self.in1h.add(s1, inb);
    }
}

/// Findings of a pair in the order they were first made (at most the four
/// kinds, a nibble each: kind + 1, 0 = none).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub(super) struct Kinds(pub(super) u16);

impl Kinds {
    const ALL: [Kind; 4] = [
        Kind::Burst,
        Kind::LowAndSlow,
        Kind::ProducerShift,
        Kind::UnusualChannel,
    ];
    pub(super) fn iter(self) -> impl Iterator<Item = Kind> {
        (0..4)
            .map(move |i| (self.0 >> (4 * i)) & 0xf)
            .take_while(|&n| n != 0)
            .map(|n| Self::ALL[usize::from(n - 1)])
    }
    pub(super) fn contains(self, k: Kind) -> bool {
        self.iter().any(|x| x == k)
    }
    pub(super) fn push(&mut self, k: Kind) {
        if !self.contains(k) {
            let n = self.iter().count();
            self.0 |= (k as u16 + 1) << (4 * n);
        }
    }
}

/// Per host and destination. Kept small (most pairs are a request or two):
/// the destination's name is not stored, since a named update always lands
/// in the pair keyed by that name and so carries it when an alert is made.
#[derive(Serialize, Deserialize)]
pub struct Pair {
    pub first_seen: Ts,
    pub last_seen: Ts,
    pub total_out: u64,
    pub total_in: u64,
    /// Slot history, kept once the pair has sent [`ExfilConfig::rings_from`]
    /// bytes: most pairs (a request, a ClientHello) never do, and their
    /// window sums are bounded by their totals, below every window floor.
    pub(super) rings: Option<Box<PairRings>>,
    pub(super) upload_days: u8,
    /// Day number (packet time) of `day_out`.
    pub(super) last_upload_day: i32,
    pub(super) day_out: u64,
    pub routine: bool,
    /// Already in use in the host's first hour of observation (baseline).
    pub in_baseline: bool,
    pub(super) dest_ip: IpAddr,
    pub(super) port: u16,
    pub(super) proto: u8,
    pub(super) src_port: u16,
    pub(super) flow_id: u64,
    /// Severity of the last alert, and bytes out when it was made.
    pub(super) alerted: Option<Severity>,
    pub(super) alerted_out: u64,
    pub(super) last_alert: Ts,
    /// Findings so far.
    pub(super) kinds: Kinds,
    /// The host talked FTP control (port 21) to this destination.
    pub(super) ftp_control: bool,
    /// Bytes out on TCP flows to high ports (FTP data).
    pub(super) high_port_out: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ExfilStats {
    pub hosts_evicted: u64,
    pub pairs_evicted: u64,
    pub alerts: u64,
}
