//! The capture side: steering frames into per-shard batches, the live queue.

use super::{Batch, RawFrame, Shed, set_len};
use crate::capture::Frame;
use crate::capture::chunked::{Chunk, Rec};
use crate::decode::LinkType;
use crate::time::{SEC, Ts};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A batch is sent early once its frames hold this many bytes (live capture
/// with a large snaplen), so batches in flight stay small.
const BATCH_BYTES: usize = 1 << 20;

/// Live: a shard's batch waiting for room in a full queue keeps growing up
/// to this many times a batch's size (frames or bytes) before it is shed.
const HOLD_BATCHES: usize = 4;

/// The capture side: steering, per-shard pending batches, channels.
pub(super) struct Feeder {
    pub(super) pending: Vec<Batch>,
    pub(super) txs: Vec<Sender<Batch>>,
    pub(super) pool: Receiver<Batch>,
    pub(super) hasher: crate::flow::key::KeyHasher,
    pub(super) batch_size: usize,
    pub(super) clock: Ts,
    pub(super) last_tick: Ts,
    pub(super) live: bool,
    pub(super) packets: u64,
    pub(super) wire_bytes: u64,
    pub(super) shed: u64,
    pub(super) shed_by: [u64; 2],
    /// Live: bytes in the shard queues (sent, not yet taken by a shard),
    /// and the most they may hold.
    pub(super) queued_bytes: Arc<AtomicUsize>,
    pub(super) queue_budget: usize,
    /// `deguchi_stage_batches_total{stage="capture"}` and the depth of
    /// each shard's queue.
    pub(super) batches_c: Counter,
    pub(super) depths: Vec<Gauge>,
    /// SPAN duplicate removal (`capture.dedup_window_ms`).
    pub(super) dedup: Option<crate::capture::dedup::Dedup>,
    /// Totals already added to the process metrics.
    pub(super) published: [u64; 4],
    /// Fanout: this feeder's totals for the supervising thread (packets,
    /// wire bytes, shed, duplicates), stored at each send.
    pub(super) tally: Option<Arc<Tally>>,
}

/// A capture thread's totals, read by the thread that supervises it.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) packets: std::sync::atomic::AtomicU64,
    pub(super) wire_bytes: std::sync::atomic::AtomicU64,
    pub(super) shed: std::sync::atomic::AtomicU64,
    pub(super) duplicates: std::sync::atomic::AtomicU64,
}

impl Feeder {
    /// Packets dropped as SPAN duplicates.
    pub(super) fn duplicates(&self) -> u64 {
        self.dedup.as_ref().map_or(0, |d| d.dropped)
    }

    /// Adds what changed since the last call to the process metrics (and
    /// the fanout tally).
    pub(super) fn publish(&mut self) {
        let now = [self.packets, self.wire_bytes, self.shed, self.duplicates()];
        let d = |i: usize| now[i] - self.published[i];
        crate::metrics::m().capture(d(0), d(1), d(2), d(3), self.clock);
        self.published = now;
        if let Some(t) = &self.tally {
            t.packets.store(now[0], Ordering::Relaxed);
            t.wire_bytes.store(now[1], Ordering::Relaxed);
            t.shed.store(now[2], Ordering::Relaxed);
            t.duplicates.store(now[3], Ordering::Relaxed);
        }
    }

    /// A feeder for one more capture thread (fanout): the same shards,
    /// batch pool, steering hash, queue budget and settings, its own
    /// pending batches and counts.
    pub(super) fn for_thread(&self, window_ms: u64) -> Self {
        Self {
            pending: (0..self.txs.len()).map(|_| Batch::default()).collect(),
            txs: self.txs.clone(),
            pool: self.pool.clone(),
            hasher: self.hasher.clone(),
            batch_size: self.batch_size,
            clock: self.clock,
            last_tick: self.last_tick,
            live: self.live,
            packets: 0,
            wire_bytes: 0,
            shed: 0,
            shed_by: [0; 2],
            queued_bytes: Arc::clone(&self.queued_bytes),
            queue_budget: self.queue_budget,
            dedup: (window_ms > 0).then(|| crate::capture::dedup::Dedup::new(window_ms)),
            published: [0; 4],
            tally: Some(Arc::new(Tally::default())),
            batches_c: self.batches_c.clone(),
            depths: self.depths.clone(),
        }
    }

    /// Adds the totals of a fanout thread's feeder, once it is finished.
    pub(super) fn absorb(&mut self, o: &Self) {
        self.packets += o.packets;
        self.wire_bytes += o.wire_bytes;
        self.shed += o.shed;
        for (a, b) in self.shed_by.iter_mut().zip(o.shed_by) {
            *a += b;
        }
        if let (Some(a), Some(b)) = (self.dedup.as_mut(), o.dedup.as_ref()) {
            a.dropped += b.dropped;
        }
        self.clock = self.clock.max(o.clock);
        self.published = [self.packets, self.wire_bytes, self.shed, self.duplicates()];
    }

    fn fresh(&self) -> Batch {
        self.pool.try_recv().unwrap_or_else(|_| Batch {
            frames: Vec::with_capacity(self.batch_size),
            ..Batch::default()
        })
    }

    fn send(&mut self, s: usize) {
        self.publish();
        if self.live {
            self.send_live(s);
        } else {
            let fresh = self.fresh();
            let mut b = std::mem::replace(&mut self.pending[s], fresh);
            b.clock = self.clock;
            let _ = self.txs[s].send(b);
            self.batches_c.inc();
        }
        if let (Some(g), Some(tx)) = (self.depths.get(s), self.txs.get(s)) {
            set_len(g, tx.len());
        }
    }

    /// Live: never blocks. A batch that does not fit (the shard's channel
    /// full, or the queues' byte budget spent) stays pending and keeps
    /// taking frames, to go with the next send that finds room; only once it
    /// reaches [`HOLD_BATCHES`] batches' worth is it shed, counted, and
    /// reused as the next pending batch.
    fn send_live(&mut self, s: usize) {
        let Some(b) = self.pending.get_mut(s) else {
            return;
        };
        let cost = b.cost();
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        // a channel not full now takes it (unless another capture thread
        // filled it meanwhile: then the batch stays pending, below)
        let room = !self.txs[s].is_full() && (queued == 0 || queued + cost <= self.queue_budget);
        if !room {
            if b.frames.len() >= self.batch_size * HOLD_BATCHES
                || b.bytes.len() >= BATCH_BYTES * HOLD_BATCHES
            {
                self.shed(s, Shed::QueueFull);
            }
            return;
        }
        let fresh = self.fresh();
        let mut b = std::mem::replace(&mut self.pending[s], fresh);
        b.clock = self.clock;
        self.queued_bytes.fetch_add(cost, Ordering::Relaxed);
        match self.txs[s].try_send(b) {
            Ok(()) => {
                self.batches_c.inc();
            }
            Err(TrySendError::Full(b)) => {
                // fanout: another capture thread took the last slot; the
                // batch waits, as when there was no room
                self.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                drop(std::mem::replace(&mut self.pending[s], b));
            }
            Err(TrySendError::Disconnected(b)) => {
                self.queued_bytes.fetch_sub(cost, Ordering::Relaxed);
                // the shard is gone (or, impossibly, the channel filled):
                // the batch comes back as the pending one, emptied
                drop(std::mem::replace(&mut self.pending[s], b));
                self.shed(s, Shed::ShardGone);
            }
        }
    }

    /// The end of input: every pending batch is sent, waiting for room (the
    /// shards are draining, so live capture waits too, rather than shed
    /// what it has read), and the shard channels are closed.
    pub(super) fn finish(&mut self) {
        for s in 0..self.txs.len() {
            let Some(p) = self.pending.get_mut(s) else {
                continue;
            };
            let mut b = std::mem::take(p);
            b.clock = self.clock;
            if self.live {
                self.queued_bytes.fetch_add(b.cost(), Ordering::Relaxed);
            }
            let _ = self.txs[s].send(b);
            self.batches_c.inc();
        }
        self.txs.clear();
        // the shards drain their queues to the end
        for g in &self.depths {
            g.set(0);
        }
    }

    /// Sheds shard `s`'s pending batch: counted, emptied, kept for reuse.
    fn shed(&mut self, s: usize, why: Shed) {
        if let Some(b) = self.pending.get_mut(s) {
            let n = b.frames.len() as u64;
            self.shed += n;
            self.shed_by[why as usize] += n;
            b.clear();
        }
    }

    /// The shard of a frame: a seeded hash of its outer IP pair.
    #[inline]
    fn shard_of(&self, link: LinkType, data: &[u8]) -> usize {
        let n = self.txs.len();
        match (n > 1).then(|| crate::decode::steer_pair(link, data)) {
            Some(Some(pair)) => {
                let h = self.hasher.pair(pair);
                // multiply-shift range reduction
                usize::try_from((u128::from(h) * n as u128) >> 64).unwrap_or(0)
            }
            _ => 0,
        }
    }

    #[inline]
    fn count(&mut self, ts: Ts, wire_len: u32) {
        self.packets += 1;
        self.wire_bytes += u64::from(wire_len);
        if ts > self.clock {
            self.clock = ts;
        }
    }

    /// Sends the pending batches that hold frames.
    fn send_filled(&mut self) {
        for s in 0..self.txs.len() {
            if self.pending.get(s).is_some_and(|b| !b.frames.is_empty()) {
                self.send(s);
            }
        }
    }

    /// The records of one chunk of a classic pcap file: steered, not copied.
    /// Every batch holding them is sent before the next chunk, so a batch
    /// points into one chunk only.
    pub(super) fn chunk(&mut self, chunk: &Chunk, recs: &[Rec], link: LinkType) {
        if self.pending.iter().any(|b| {
            !b.bytes.is_empty() || b.chunk.as_ref().is_some_and(|c| !Arc::ptr_eq(c, chunk))
        }) {
            self.send_filled();
        }
        for r in recs {
            self.count(r.ts, r.wire_len);
            let data = chunk
                .get(r.off as usize..(r.off + r.len) as usize)
                .unwrap_or(&[]);
            if let Some(d) = self.dedup.as_mut()
                && d.is_duplicate(r.ts, r.wire_len, data)
            {
                continue;
            }
            let s = self.shard_of(link, data);
            let Some(b) = self.pending.get_mut(s) else {
                continue;
            };
            if b.chunk.is_none() {
                b.chunk = Some(Arc::clone(chunk));
            }
            b.frames.push(RawFrame {
                ts: r.ts,
                wire_len: r.wire_len,
                off: r.off,
                len: r.len,
                link,
            });
            if b.frames.len() >= self.batch_size {
                self.send(s);
            }
            if self.clock >= self.last_tick.saturating_add(SEC) {
                self.tick();
            }
        }
        self.send_filled();
    }

    /// One frame borrowed from libpcap: copied into its shard's batch.
    #[inline]
    pub(super) fn frame(&mut self, f: &Frame<'_>) {
        self.count(f.ts, f.wire_len);
        if let Some(d) = self.dedup.as_mut()
            && d.is_duplicate(f.ts, f.wire_len, f.data)
        {
            return;
        }
        let s = self.shard_of(f.link, f.data);
        if self.pending.get(s).is_some_and(|b| b.chunk.is_some()) {
            self.send_filled();
        }
        let Some(b) = self.pending.get_mut(s) else {
            return;
        };
        let (Ok(off), Ok(len)) = (u32::try_from(b.bytes.len()), u32::try_from(f.data.len())) else {
            return;
        };
        b.bytes.extend_from_slice(f.data);
        b.frames.push(RawFrame {
            ts: f.ts,
            wire_len: f.wire_len,
            off,
            len,
            link: f.link,
        });
        if b.frames.len() >= self.batch_size || b.bytes.len() >= BATCH_BYTES {
            self.send(s);
        }
        if self.clock >= self.last_tick.saturating_add(SEC) {
            self.tick();
        }
    }

    /// Sends every pending batch (even empty ones, as clock ticks).
    pub(super) fn tick(&mut self) {
        self.last_tick = self.clock;
        for s in 0..self.txs.len() {
            self.send(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;

    /// A live feeder for one shard whose channel holds `slots` batches.
    fn live_feeder(slots: usize, budget: usize) -> (Feeder, Receiver<Batch>) {
        let (tx, rx) = bounded::<Batch>(slots);
        let (_pool_tx, pool) = bounded::<Batch>(4);
        let f = Feeder {
            pending: vec![Batch::default()],
            txs: vec![tx],
            pool,
            hasher: crate::flow::key::KeyHasher::new(),
            batch_size: 4,
            clock: 0,
            last_tick: i64::MAX, // no ticks
            live: true,
            packets: 0,
            wire_bytes: 0,
            shed: 0,
            shed_by: [0; 2],
            queued_bytes: Arc::new(AtomicUsize::new(0)),
            queue_budget: budget,
            batches_c: Counter::default(),
            depths: Vec::new(),
            dedup: None,
            published: [0; 4],
            tally: None,
        };
        (f, rx)
    }

    fn frame(f: &mut Feeder) {
        let data = [0u8; 60];
        f.frame(&Frame {
            ts: 1,
            wire_len: 60,
            link: LinkType::Ethernet,
            data: &data,
        });
    }

    #[test]
    fn live_queue_holds_then_sheds_and_reuses() {
        let (mut f, rx) = live_feeder(1, usize::MAX);
        // the first batch goes; the channel (1 slot) is then full
        for _ in 0..4 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        // the next batch waits and keeps filling up to HOLD_BATCHES batches
        for _ in 0..4 * HOLD_BATCHES - 1 {
            frame(&mut f);
        }
        assert_eq!(f.shed, 0, "nothing shed while the pending batch has room");
        assert_eq!(f.pending[0].frames.len(), 4 * HOLD_BATCHES - 1);
        let cap = f.pending[0].frames.capacity();
        frame(&mut f);
        assert_eq!(f.shed, (4 * HOLD_BATCHES) as u64);
        assert_eq!(f.shed_by[Shed::QueueFull as usize], f.shed);
        // the shed batch is the next pending one, emptied, capacity kept
        assert!(f.pending[0].frames.is_empty());
        assert_eq!(f.pending[0].frames.capacity(), cap);
        // room again: the waiting batch goes with the next send
        let b = rx.recv().unwrap();
        f.queued_bytes.fetch_sub(b.cost(), Ordering::Relaxed);
        for _ in 0..4 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(f.packets - f.shed, 8);
        // the end of input sends what waits, full channel or not
        frame(&mut f);
        let t = std::thread::spawn(move || rx.iter().map(|b| b.frames.len()).sum::<usize>());
        f.finish();
        assert_eq!(t.join().unwrap(), 5);
    }

    #[test]
    fn live_queue_byte_budget_and_gone_shard() {
        // budget of one batch: the second waits though the channel has slots
        let (mut f, rx) = live_feeder(64, 4 * 60 + 4 * std::mem::size_of::<RawFrame>());
        for _ in 0..8 {
            frame(&mut f);
        }
        assert_eq!(rx.len(), 1);
        assert_eq!(f.pending[0].frames.len(), 4);
        drop(rx);
        frame(&mut f);
        // still no room (nobody takes from the queue): held, not shed
        assert_eq!(f.shed, 0);
        f.queued_bytes.store(0, Ordering::Relaxed);
        frame(&mut f);
        assert_eq!(f.shed_by[Shed::ShardGone as usize], 10 - 4);
        assert_eq!(f.shed_by[Shed::QueueFull as usize], 0);
    }
}
