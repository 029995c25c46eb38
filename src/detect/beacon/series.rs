//! One beat added to its series, and the series scored when due.

use super::alert::make_alert;
use super::state::{BeatIn, Pair, PairKey};
use super::{Beacon, BeaconConfig};
use crate::alert::{Alert, Severity};
use crate::baseline::DestView;
use crate::detect::periodicity::{self, Beat, Periodicity};
use crate::time::{SEC, Ts};

impl Beacon {
    fn allowed(&self, b: &BeatIn, name: Option<&str>) -> bool {
        self.cfg.allow_ports.contains(&(b.proto, b.port))
            || self.allow_set.contains(b.dest_ip)
            || name.is_some_and(|n| self.allow_names.matches(n))
    }

    /// Whether the destination is popular (BAYWATCH), and how many hosts use it.
    fn is_popular(&self, dest: &DestView) -> (bool, usize) {
        let (n, active) = (dest.hosts, dest.active_hosts);
        (
            n >= self.cfg.popular_min_hosts
                && n as f64 >= self.cfg.popular_fraction * active as f64,
            n,
        )
    }

    /// Adds a beat to its series (`dest`: the shared baseline's view of
    /// its destination) and scores the series.
    pub(super) fn add(&mut self, b: BeatIn, dest: &DestView, out: &mut Vec<Alert>) {
        let name = dest.name.as_deref();
        if !crate::homenet::is_egress_dest(b.dest_ip) {
            return;
        }
        if self.allowed(&b, name) {
            self.stats.allowlisted += 1;
            return;
        }
        self.stats.beats += 1;
        let view = dest;
        let dest = view.id;
        let cap = self.cfg.max_pairs.max(1);
        let key = PairKey {
            host: b.host,
            dest,
            port: b.port,
            proto: b.proto,
            session: b.session,
        };
        let coalesce = i64::try_from(self.cfg.coalesce_ms).unwrap_or(1000) * (SEC / 1000);
        let max_samples = self
            .cfg
            .max_samples
            .max(periodicity_min(self.cfg.min_beats));
        let (slot, evicted) = self.pairs.get_or_insert_capped(
            key,
            cap,
            |p| p.last_seen,
            || Pair::new(&b, b.ts, b.ts),
        );
        self.stats.pairs_evicted += evicted as u64;
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        if b.ts < p.origin {
            // an earlier beat arrived late: move the origin back
            let shift = ds(p.origin - b.ts);
            for x in &mut p.beats {
                x.t_ds = x.t_ds.saturating_add(shift);
            }
            p.origin = b.ts;
        }
        p.bytes_out += b.out;
        p.bytes_in += b.inb;
        if b.ts >= p.last_seen {
            p.last_seen = b.ts;
        }
        // an alert names the flow of the beat that raised it (its EVE flow
        // record, still to be written, then says `alerted`), even a beat
        // that arrived late
        p.dest_ip = b.dest_ip;
        if b.in_session && p.in_session && p.src_port != b.src_port {
            p.mixed = true;
        }
        p.src_port = b.src_port;
        p.flow_id = b.flow_id;
        p.vlan = b.vlan;
        p.in_session |= b.in_session;
        p.keepalive |= b.keepalive;
        let t = ds(b.ts - p.origin);
        let beat = Beat {
            t_ds: t,
            out: u32::try_from(b.out).unwrap_or(u32::MAX),
            inb: u32::try_from(b.inb).unwrap_or(u32::MAX),
        };
        // insert in time order, merging beats within the coalescing window
        let co = ds(coalesce);
        let pos = p.beats.partition_point(|x| x.t_ds <= t);
        let near_prev = pos > 0 && t - p.beats[pos - 1].t_ds < co;
        let near_next = pos < p.beats.len() && p.beats[pos].t_ds - t < co;
        if near_prev {
            let x = &mut p.beats[pos - 1];
            x.out = x.out.saturating_add(beat.out);
            x.inb = x.inb.saturating_add(beat.inb);
            return;
        }
        if near_next {
            let x = &mut p.beats[pos];
            x.t_ds = t;
            x.out = x.out.saturating_add(beat.out);
            x.inb = x.inb.saturating_add(beat.inb);
            return;
        }
        if p.beats.len() == p.beats.capacity() {
            // grow by half (one at first), not double: most series stay
            // short; never past the one extra a full series holds briefly
            let room = (max_samples + 1).saturating_sub(p.beats.len());
            p.beats.reserve_exact((p.beats.len() / 2).min(room).max(1));
        }
        p.beats.insert(pos, beat);
        p.total_beats += 1;
        if p.beats.len() > max_samples {
            let extra = p.beats.len() - max_samples;
            p.beats.drain(..extra);
        }
        if p.beats.len() < self.cfg.min_beats.max(3) {
            return;
        }
        // a young series is scored at every beat (the first alert comes as
        // soon as the evidence suffices); one that is still not beacon-like
        // after 32 beats on a geometric schedule (see `due_for_scoring`);
        // each model waits out its own hold
        let (mut main_due, mut grid_due) = (true, true);
        if p.alerted.is_none() {
            (main_due, grid_due) = p.hold.take_beat();
            if !(main_due || grid_due) || !due_for_scoring(p.total_beats, max_samples) {
                return;
            }
        }
        let cfg = &self.cfg;
        // a series that cannot alert yet is not scored: in-session beats
        // need `min_session_span_s` of history, keep-alive probes
        // `keepalive_min_span_s` (the span of the beats as they came is at
        // least that of the merged beats the alert checks)
        let span = u64::from(p.beats.last().map_or(0, |x| x.t_ds) - p.beats[0].t_ds);
        if (p.in_session && span < cfg.min_session_span_s.saturating_mul(10))
            || (p.keepalive && span < cfg.keepalive_min_span_s.saturating_mul(10))
        {
            return;
        }
        let grid_due = grid_due && cfg.grid && p.in_session;
        if !main_due && !grid_due {
            return;
        }
        let (mut main_hold, mut grid_hold) = (p.hold.main(), p.hold.grid());
        let passes = |v: &Periodicity| {
            v.nats() >= cfg.threshold_nats
                && v.timing_nats >= cfg.threshold_nats / 2.0
                && v.period_s >= cfg.min_period_s
                && v.period_s <= cfg.max_period_s
        };
        self.stats.scored += 1;
        let mut found: Option<Periodicity> = None;
        if main_due {
            self.buf.clear();
            self.buf.extend(p.beats.iter().copied());
            periodicity::merge_close(&mut self.buf, cfg.merge_fraction, &mut self.scratch);
            let Some(mut v) = periodicity::evaluate(&self.buf, &mut self.scratch) else {
                return;
            };
            // the burst level: a reconnect loop (attempts half a second
            // apart, a burst of them every few seconds) fits the spacing
            // inside a burst, below `min_period_s`; such a series is scored
            // again with each run of beats closer than `min_period_s` as
            // one beat. (Only then: a second score of every failing series
            // doubled the cost of a busy link's random sessions.) `buf` is
            // only read further on when the series passes, so a failed
            // second score leaves it.
            if !passes(&v) && cfg.burst_level && v.period_s < cfg.min_period_s {
                let gap = (cfg.min_period_s * 10.0) as u32;
                if periodicity::merge_runs(&mut self.buf, gap)
                    && let Some(w) = periodicity::evaluate(&self.buf, &mut self.scratch)
                    && passes(&w)
                {
                    v = w;
                }
            }
            main_hold = failed_hold(&v, cfg);
            if passes(&v) {
                found = Some(v);
            }
        }
        // a heartbeat on an exact timer with extras between beats: scored
        // against the grid (`grid`) when the main model fails; loose
        // polling over many beats to a rare destination: the high-jitter
        // model, on the main model's schedule. Each sees the beats as they
        // came (before the merges above).
        if found.is_none() && grid_due {
            self.raw.clear();
            self.raw.extend(p.beats.iter().copied());
            if let Some(w) = periodicity::evaluate_grid(&self.raw, &mut self.scratch) {
                grid_hold = failed_hold(&w, cfg);
                if passes(&w) {
                    found = Some(w);
                    std::mem::swap(&mut self.buf, &mut self.raw);
                }
            }
        }
        // (a series long enough for it is scored by it even when the main
        // model passes: the better fit is the one reported)
        if main_due
            && cfg.high_jitter_min_beats > 0
            && p.total_beats >= cfg.high_jitter_min_beats
            && p.beats.len() >= 32
            && view.hosts <= cfg.high_jitter_max_hosts
        {
            self.raw.clear();
            self.raw.extend(p.beats.iter().copied());
            if let Some(w) = periodicity::evaluate_high_jitter(&self.raw, &mut self.scratch) {
                main_hold = main_hold.min(hold_after(&w, cfg.threshold_nats));
                if passes(&w) && found.is_none_or(|v| w.nats() > v.nats()) {
                    found = Some(w);
                    std::mem::swap(&mut self.buf, &mut self.raw);
                }
            }
        }
        let Some(mut v) = found else {
            if let Some(p) = self.pairs.at_mut(slot) {
                p.hold.set(main_hold, grid_hold);
            }
            return;
        };
        let nats = v.nats();
        // bursts inside one session a few seconds apart (a CRL fetched on a
        // timer over a keep-alive connection) reach the evidence within
        // seconds: such a series needs `min_session_span_s` of history
        let span = self.buf.last().map_or(0, |x| x.t_ds) - self.buf[0].t_ds;
        if p.in_session && u64::from(span) < self.cfg.min_session_span_s.saturating_mul(10) {
            return;
        }
        // a session held open by keep-alives alone is a beacon only when
        // it is held long (an IoT device's keep-alives on sessions it
        // renews every half hour are not)
        if p.keepalive && u64::from(span) < self.cfg.keepalive_min_span_s.saturating_mul(10) {
            return;
        }
        let sev = if nats >= self.cfg.high_nats {
            Severity::High
        } else {
            Severity::Medium
        };
        let last_ts = p.origin + i64::from(self.buf.last().map_or(0, |x| x.t_ds)) * (SEC / 10);
        let due = match p.alerted {
            None => true,
            Some(prev) => {
                sev < prev
                    || last_ts.saturating_sub(p.last_alert)
                        >= i64::try_from(self.cfg.realert_s).unwrap_or(i64::MAX / SEC) * SEC
            }
        };
        if !due {
            return;
        }
        let (popular, sharing) = self.is_popular(view);
        if popular {
            self.stats.suppressed_popular += 1;
            return;
        }
        // a destination several hosts started using only just now (everyone's
        // chat client opening in the morning) may be about to turn popular:
        // hold the alert until its popularity has settled; the next beat
        // re-evaluates
        let settle = i64::try_from(self.cfg.popular_settle_s).unwrap_or(3600) * SEC;
        if sharing >= 2 && last_ts - view.first_seen < settle {
            self.stats.held_settling += 1;
            return;
        }
        if key.session != 0 {
            // a session's own series: one alert for the pair, whichever of
            // its series raises it
            let pk = PairKey { session: 0, ..key };
            if let Some(q) = self.pairs.get_mut(&pk) {
                if q.alerted.is_some_and(|a| a >= sev) {
                    return;
                }
                q.alerted = Some(sev);
                q.last_alert = last_ts;
            } else {
                let origin = self.pairs.at(slot).map_or(last_ts, |p| p.origin);
                let (pslot, evicted) = self.pairs.get_or_insert_capped(
                    pk,
                    cap,
                    |p| p.last_seen,
                    // a placeholder holding the pair's alert state: its own
                    // beats (if any come) set the channel
                    || Pair::new(&b, origin, last_ts),
                );
                self.stats.pairs_evicted += evicted as u64;
                if pslot == slot {
                    // the session's series was evicted to make room
                    return;
                }
                if let Some(q) = self.pairs.at_mut(pslot) {
                    q.alerted = Some(sev);
                    q.last_alert = last_ts;
                }
            }
        }
        let Some(p) = self.pairs.at_mut(slot) else {
            return;
        };
        v.rita = periodicity::rita_scores(&self.buf);
        p.alerted = Some(sev);
        p.last_alert = last_ts;
        self.stats.alerts += 1;
        out.push(make_alert(
            p,
            name,
            b.host,
            b.port,
            b.proto,
            &v,
            sev,
            last_ts,
            sharing,
            key.session != 0,
            &self.cfg,
        ));
    }
}

/// Most a series' timing evidence rises with one more beat, nats: a regular
/// interval earns at most ~5.3 nats (a band of ±1 % at the jitter floor);
/// the rest is margin for the refit (period, jitter, miss rate) that one
/// interval can move.
pub(super) const RISE_PER_BEAT: f64 = 8.0;

/// Beats a series that just failed to score `v` waits before it is scored
/// again: as many as it surely needs to close its deficit (timing evidence
/// against half the threshold, the total against the threshold, the size
/// evidence, where the model has one, rising at most as fast as the
/// timing), at most 8. A series of
/// random arrivals sits tens of nats below and is scored every few beats;
/// a beacon still short of evidence is close and is scored at every beat.
/// Most beats a hold lasts.
pub(super) const MAX_HOLD: u8 = 8;

pub(super) fn hold_after(v: &periodicity::Periodicity, threshold: f64) -> u8 {
    let timing = (threshold / 2.0 - v.timing_nats) / RISE_PER_BEAT;
    // the total rises with the timing, and with the size evidence where
    // the model weighs sizes (the grid and high-jitter models do not: their
    // total is their timing evidence, which must reach the whole threshold)
    let rise = if v.weighs_sizes() {
        2.0 * RISE_PER_BEAT
    } else {
        RISE_PER_BEAT
    };
    let total = (threshold - v.nats()) / rise;
    let beats = timing.max(total).floor();
    if beats >= 1.0 {
        beats.min(f64::from(MAX_HOLD)) as u8
    } else {
        0
    }
}

/// Beats a series that failed to score `v` waits before that model scores
/// it again: the evidence it surely lacks ([`hold_after`]) or the packet
/// time `beacon.rescore_s` ([`time_hold`]), whichever is longer.
fn failed_hold(v: &Periodicity, cfg: &BeaconConfig) -> u8 {
    hold_after(v, cfg.threshold_nats).max(time_hold(v.period_s, cfg.rescore_s))
}

/// Beats a failing series with period `period_s` skips so that its next
/// score comes about `rescore_s` of packet time later (`beacon.rescore_s`):
/// `ceil(rescore_s / period_s) - 1`, at most 15; none at periods of
/// `rescore_s` or more.
pub(super) fn time_hold(period_s: f64, rescore_s: f64) -> u8 {
    if rescore_s <= 0.0 || period_s.is_nan() || period_s <= 0.0 {
        return 0;
    }
    ((rescore_s / period_s).ceil() - 1.0).clamp(0.0, 15.0) as u8
}

/// Whether a series that has not alerted is scored at its `n`-th beat:
/// every beat up to 32, then every `s`-th, `s` an eighth of the beats seen
/// (a power of two from 4, at most `window`, the samples a score looks at,
/// so that every beat is in at least one scored window). Chatty pairs that
/// are not beacons (a session with a burst every few seconds for hours)
/// then cost a score every ~12 % more beats instead of every fourth beat.
pub(super) fn due_for_scoring(n: u64, window: usize) -> bool {
    if n <= 32 {
        return true;
    }
    // the highest power of two at most x (x >= 1)
    let floor_pow2 = |x: u64| 1u64 << (63 - x.max(1).leading_zeros());
    let window = floor_pow2(u64::try_from(window).unwrap_or(u64::MAX).max(4));
    let step = floor_pow2(n / 8).clamp(4, window);
    n.is_multiple_of(step)
}

pub(super) fn periodicity_min(min_beats: usize) -> usize {
    min_beats.max(3) + 1
}

/// Tenths of a second, saturating.
pub(super) fn ds(ns: Ts) -> u32 {
    u32::try_from((ns.max(0)) / (SEC / 10)).unwrap_or(u32::MAX)
}
