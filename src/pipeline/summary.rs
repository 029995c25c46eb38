//! What a run did: the exit summary and the live capture accounting.

use super::Shed;
use crate::capture::CaptureError;
use crate::capture::live::LiveStats;
use crate::decode::{DecodeCounters, DecodeError, DecodeWarning};
use crate::evidence::EvidenceCounters;
use crate::flow::table::TableCounters;
use crate::sink::SinkError;
use std::time::Duration;

/// What a run did, for the exit summary and the exit code.
#[derive(Debug, Default)]
pub struct Summary {
    pub packets: u64,
    pub wire_bytes: u64,
    pub decoded: u64,
    pub decode: DecodeCounters,
    pub table: TableCounters,
    pub flows_written: u64,
    pub alerts_written: u64,
    pub shed_packets: u64,
    /// Shed packets by reason ([`Shed`]).
    pub shed_by: [u64; 2],
    /// Packets dropped as SPAN duplicates (`capture.dedup_window_ms`).
    pub duplicates: u64,
    /// Evidence pcaps written (`--evidence`), all shards.
    pub evidence: Option<EvidenceCounters>,
    pub elapsed: Duration,
    pub input_errors: Vec<CaptureError>,
    pub output_error: Option<SinkError>,
    /// File/stdout outputs that dropped lines (live, reader too slow): (name, lines).
    pub output_dropped: Vec<(String, u64)>,
    pub live: Option<LiveStats>,
    /// Link changes and silences (live).
    pub link: crate::capture::watch::LinkCounters,
    pub interrupted: bool,
    pub shards: usize,
    /// CPU time each stage's thread used: (stage, seconds).
    pub cpu: Vec<(String, f64)>,
    /// One line per detector on the state it held at the end.
    pub detectors: Vec<String>,
    /// CPU seconds of each fanout capture thread (`capture.threads` > 1).
    pub fanout_cpu: Vec<f64>,
}

impl Summary {
    /// Human-readable summary for stderr.
    #[must_use]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut s = String::new();
        #[allow(clippy::cast_precision_loss)]
        let pps = self.packets as f64 / secs;
        let _ = writeln!(
            s,
            "deguchi: {} packets, {} wire bytes, {} decoded to flows, {} flows ({} written), {} alerts, {:.2} s, {:.0} packets/s, {} shard(s)",
            self.packets,
            self.wire_bytes,
            self.decoded,
            self.table.flows_created,
            self.flows_written,
            self.alerts_written,
            secs,
            pps,
            self.shards
        );
        let errs: Vec<String> = DecodeError::ALL
            .iter()
            .filter(|e| self.decode.errors[**e as usize] > 0)
            .map(|e| format!("{}={}", e.as_str(), self.decode.errors[*e as usize]))
            .collect();
        let warns: Vec<String> = DecodeWarning::ALL
            .iter()
            .filter(|w| self.decode.warnings[**w as usize] > 0)
            .map(|w| format!("{}={}", w.as_str(), self.decode.warnings[*w as usize]))
            .collect();
        let _ = writeln!(
            s,
            "deguchi: not decoded: {}; anomalies: {}; tunneled={} fragments={}; flows evicted={} peak={} emergency={}; shed packets={}{}{}",
            if errs.is_empty() {
                "none".to_owned()
            } else {
                errs.join(" ")
            },
            if warns.is_empty() {
                "none".to_owned()
            } else {
                warns.join(" ")
            },
            self.decode.tunneled,
            self.decode.fragments,
            self.table.evicted,
            self.table.peak_flows,
            self.table.emergencies,
            self.shed_packets,
            if self.shed_packets == 0 {
                String::new()
            } else {
                let by: Vec<String> = Shed::ALL
                    .iter()
                    .map(|r| format!("{}={}", r.as_str(), self.shed_by[*r as usize]))
                    .collect();
                format!(" ({})", by.join(" "))
            },
            if self.duplicates == 0 {
                String::new()
            } else {
                format!("; SPAN duplicates removed={}", self.duplicates)
            }
        );
        if !self.cpu.is_empty() {
            let parts: Vec<String> = self
                .cpu
                .iter()
                .map(|(n, c)| format!("{n}={c:.2}"))
                .collect();
            let _ = writeln!(s, "deguchi: cpu seconds by stage: {}", parts.join(" "));
        }
        if !self.detectors.is_empty() {
            let _ = writeln!(s, "deguchi: detector state: {}", self.detectors.join("; "));
        }
        for (name, n) in &self.output_dropped {
            let _ = writeln!(
                s,
                "deguchi: output {name}: {n} lines dropped (queue full: the reader was too slow)"
            );
        }
        if let Some(e) = self.evidence {
            let _ = writeln!(
                s,
                "deguchi: evidence: {} pcaps, {} packets, {} flows' rings evicted for room, {} write errors",
                e.files, e.packets, e.evicted, e.errors
            );
        }
        if let Some(l) = self.live {
            let a = Accounting::of(&l, self.packets, self.shed_packets, self.duplicates);
            let k = self.link;
            let _ = writeln!(
                s,
                "deguchi: capture: {}; link down={} up={} idle={} reopened={}",
                a.totals(),
                k.down,
                k.up,
                k.idle,
                k.reopened
            );
        }
        s
    }
}

/// Where every packet the kernel counted went:
/// `processed = received - dropped - shed - unread`, always (all 64-bit).
/// `unread` is what the kernel counted but deguchi had not read when the
/// totals were taken: packets in the capture buffer, or arrived after the
/// last read at exit; 0 on a link quiet at the time. Negative only when the
/// kernel's counters could not be read at the end (interface gone) and are
/// older than the last packets read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
    pub shed: u64,
    /// SPAN duplicates dropped (`capture.dedup_window_ms`).
    pub duplicates: u64,
    pub processed: u64,
    pub unread: i64,
}

impl Accounting {
    /// From the kernel's totals and deguchi's: packets read, packets shed.
    #[must_use]
    pub fn of(l: &LiveStats, read: u64, shed: u64, duplicates: u64) -> Self {
        let signed = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        Self {
            received: l.received,
            dropped: l.dropped,
            if_dropped: l.if_dropped,
            shed,
            duplicates,
            processed: read.saturating_sub(shed).saturating_sub(duplicates),
            unread: signed(l.received) - signed(l.dropped) - signed(read),
        }
    }

    /// `received=.. dropped_by_kernel=.. dropped_by_interface=.. shed=..
    /// [duplicates=..] processed=.. unread=..` (duplicates when any)
    #[must_use]
    pub fn totals(&self) -> String {
        let dups = if self.duplicates > 0 {
            format!(" duplicates={}", self.duplicates)
        } else {
            String::new()
        };
        format!(
            "received={} dropped_by_kernel={} dropped_by_interface={} shed={}{dups} processed={} unread={}",
            self.received, self.dropped, self.if_dropped, self.shed, self.processed, self.unread
        )
    }

    /// The periodic line: what changed since `prev`, `secs` ago, as deltas
    /// and rates, then the totals.
    #[must_use]
    pub fn since(&self, prev: &Self, secs: f64, wire_bytes: u64) -> String {
        let secs = secs.max(1e-3);
        #[allow(clippy::cast_precision_loss)]
        let rate = |x: u64| x as f64 / secs;
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let processed = d(self.processed, prev.processed);
        format!(
            "last {secs:.0} s: received +{} ({:.0}/s) dropped_by_kernel +{} dropped_by_interface +{} shed +{} processed +{} ({:.0}/s, {:.1} Mbit/s read); totals: {}",
            d(self.received, prev.received),
            rate(d(self.received, prev.received)),
            d(self.dropped, prev.dropped),
            d(self.if_dropped, prev.if_dropped),
            d(self.shed, prev.shed),
            processed,
            rate(processed),
            rate(wire_bytes) * 8.0 / 1e6,
            self.totals()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::live::LiveStats;

    #[test]
    fn accounting_balances() {
        let l = LiveStats {
            received: (1u64 << 32) + 1000,
            dropped: 10,
            if_dropped: 0,
        };
        // read everything the kernel kept, shed 7 of it
        let read = l.received - l.dropped;
        let a = Accounting::of(&l, read, 7, 0);
        assert_eq!(a.unread, 0);
        assert_eq!(a.processed, a.received - a.dropped - a.shed);
        // 5 still in the kernel buffer
        let b = Accounting::of(&l, read - 5, 7, 0);
        assert_eq!(b.unread, 5);
        assert_eq!(
            i64::try_from(b.processed).unwrap(),
            i64::try_from(b.received - b.dropped - b.shed).unwrap() - b.unread
        );
        // 3 SPAN duplicates removed among what was read
        let c = Accounting::of(&l, read, 7, 3);
        assert_eq!(c.processed, c.received - c.dropped - c.shed - c.duplicates);
        assert!(c.totals().contains(" duplicates=3 "), "{}", c.totals());
        assert!(!a.totals().contains("duplicates"), "{}", a.totals());
        let line = b.since(&Accounting::default(), 2.0, 2_000_000);
        assert!(line.contains("processed +"), "{line}");
        assert!(line.contains("8.0 Mbit/s"), "{line}");
        assert!(line.contains("totals: received="), "{line}");
    }
}
