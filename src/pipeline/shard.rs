//! The flow shards: decode, flow table, evidence rings.

use super::{Batch, dispose, set_len, thread_cpu_s};
use crate::decode::{DecodeCounters, Decoder, PacketMeta};
use crate::evidence::{EvidenceCounters, Store};
use crate::flow::table::{FlowEvent, FlowTable, Located, TableCounters};
use crate::time::{SEC, Ts};
use crossbeam_channel::{Receiver, Sender};
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) struct ShardOut {
    pub(super) evidence: EvidenceCounters,
    pub(super) cpu_s: f64,
    pub(super) counters: TableCounters,
    pub(super) decode: DecodeCounters,
    pub(super) decoded: u64,
}

/// Event vectors travel shard -> analysis and come back emptied, so neither
/// side allocates them in steady state (nor frees on another thread).
pub(super) struct Events {
    pub(super) tx: Sender<Vec<FlowEvent>>,
    pub(super) pool: Receiver<Vec<FlowEvent>>,
    /// `deguchi_queue_depth{queue="shard->analysis"}`.
    pub(super) depth: Gauge,
}

impl Events {
    /// Sends `v` (if it holds events) and leaves an empty recycled vector in
    /// its place; false once analysis is gone.
    fn send(&self, v: &mut Vec<FlowEvent>) -> bool {
        if v.is_empty() {
            return true;
        }
        let next = self.pool.try_recv().unwrap_or_default();
        let ok = self.tx.send(std::mem::replace(v, next)).is_ok();
        set_len(&self.depth, self.tx.len());
        ok
    }
}

/// Packets a shard decodes ahead of updating them (see [`FlowTable::locate`]).
const AHEAD: usize = 8;
/// Packets between a packet's hint-slot prefetch and its entry prefetch.
const STAGE2: usize = 4;

/// A packet decoded and located, waiting for its flow update.
#[derive(Default)]
struct Ahead {
    m: PacketMeta,
    at: Located,
    hints: Vec<u8>,
}

impl Ahead {
    fn apply(&self, table: &mut FlowTable, clock: &mut Ts, events: &mut Vec<FlowEvent>) {
        // expire in packet time as packets arrive, not only per batch
        if self.m.ts >= clock.saturating_add(SEC) {
            *clock = self.m.ts;
            table.expire(*clock, events);
        }
        table.update_located(&self.m, &self.at, &self.hints, events);
    }
}

pub(super) fn shard_thread(
    id: usize,
    mut table: FlowTable,
    rx: Receiver<Batch>,
    recycle: Sender<Batch>,
    tx: Events,
    queued_bytes: Option<Arc<AtomicUsize>>,
    mut evidence: Option<Store>,
) -> ShardOut {
    let mut decoder = Decoder::default();
    // packets decoded and located ahead of their update, each with its own
    // hint bytes: while packet i updates its flow, the entries of packets
    // i+1..i+AHEAD-1 are already on their way into the cache
    let mut ring: [Ahead; AHEAD] = std::array::from_fn(|_| Ahead::default());
    let (mut head, mut queued) = (0usize, 0usize);
    let mut decoded = 0u64;
    let mut events = Vec::new();
    let mut clock = i64::MIN;
    let mut published = crate::metrics::ShardDelta::default();
    let m = crate::metrics::m();
    let label = crate::metrics::ShardLabel {
        shard: id.to_string(),
    };
    let batches_c = m.stage(&format!("shard-{id}"));
    let packets_c = m.shard_packets.get_or_create_owned(&label);
    let events_c = m.shard_events.get_or_create_owned(&label);
    let depth = m.queue(&format!("capture->shard-{id}"), rx.capacity().unwrap_or(0));
    for mut b in &rx {
        batches_c.inc();
        set_len(&depth, rx.len());
        packets_c.inc_by(b.frames.len() as u64);
        if let Some(q) = &queued_bytes {
            // off the live queue: its bytes no longer count against the budget
            q.fetch_sub(b.cost(), Ordering::Relaxed);
        }
        for f in &b.frames {
            if queued == AHEAD {
                ring[head].apply(&mut table, &mut clock, &mut events);
                head = (head + 1) % AHEAD;
                queued -= 1;
            }
            let slot = &mut ring[(head + queued) % AHEAD];
            slot.hints.clear();
            let (m, hints) = (&mut slot.m, &mut slot.hints);
            if decoder
                .decode_into(f.link, b.data(f), f.wire_len, f.ts, hints, m)
                .is_err()
            {
                continue;
            }
            decoded += 1;
            if let Some(ev) = evidence.as_mut() {
                ev.record(&slot.m, f.link, b.data(f));
            }
            slot.at = table.locate(&slot.m);
            queued += 1;
            if queued > STAGE2 {
                // the packet STAGE2 behind this one: its hint slot has had
                // time to arrive; now its flow entry starts loading
                table.prefetch_entry(&ring[(head + queued - 1 - STAGE2) % AHEAD].at);
            }
        }
        while queued > 0 {
            ring[head].apply(&mut table, &mut clock, &mut events);
            head = (head + 1) % AHEAD;
            queued -= 1;
        }
        clock = clock.max(b.clock);
        table.expire(clock, &mut events);
        published.publish(decoded, &decoder.counters, &table.counters);
        events_c.inc_by(events.len() as u64);
        if !tx.send(&mut events) {
            break;
        }
        if let Some(ev) = evidence.as_mut() {
            ev.serve();
        }
        b.clear();
        let _ = recycle.try_send(b);
    }
    loop {
        let done = table.flush_some(1024, &mut events);
        events_c.inc_by(events.len() as u64);
        if !tx.send(&mut events) || done {
            break;
        }
    }
    published.publish(decoded, &decoder.counters, &table.counters);
    // analysis may finish now; the alerts of the final flush still ask for
    // their packets until the writer is done
    drop(tx);
    let ev_counters = evidence
        .as_mut()
        .map_or_else(EvidenceCounters::default, |ev| {
            ev.serve_to_end();
            ev.counters
        });
    let out = ShardOut {
        evidence: ev_counters,
        cpu_s: thread_cpu_s(),
        counters: table.counters.clone(),
        decode: decoder.counters,
        decoded,
    };
    dispose(table);
    out
}
