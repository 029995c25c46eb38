//! One generation of a worker: a fixed membership and set of owned
//! partitions; the merge of the sensors' runs by watermarks, the sightings
//! pre-pass, and detection gated by the other workers' sightings.

use super::super::wire::Run;
use super::{Worker, WorkerError};
use crate::analysis::Analyzer;
use crate::flow::event::FlowEvent;
use crate::sink::Out;
use crate::time::Ts;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// Per run (sensor), on one partition: how far it got and what waits.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct RunState {
    pub(super) watermark: Ts,
    pub(super) eof: bool,
    /// Last event the detectors saw: (batch sequence, index in the batch + 1).
    pub(super) applied: (u64, u32),
    /// Its key.
    pub(super) applied_key: Ts,
    /// Last event taken off the queue (to the pre-pass), not yet applied.
    #[serde(skip)]
    pub(super) released: (u64, u32),
    #[serde(skip)]
    pub(super) queue: VecDeque<Queued>,
}

#[derive(Debug)]
pub(super) struct Queued {
    pub(super) key: Ts,
    pub(super) seq: u64,
    pub(super) idx: u32,
    pub(super) stream_seq: u64,
    pub(super) ev: FlowEvent,
}

/// An event past the merge and the sightings pre-pass, waiting for the
/// other workers' sightings up to its key.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) key: Ts,
    pub(super) part: u32,
    pub(super) run: Run,
    pub(super) seq: u64,
    pub(super) idx: u32,
    pub(super) stream_seq: u64,
    pub(super) ev: FlowEvent,
}

/// One owned partition's merge state.
#[derive(Default, Debug, Serialize, Deserialize)]
pub(super) struct PartState {
    pub(super) runs: BTreeMap<Run, RunState>,
    /// Highest stream sequence received on this partition's subject.
    pub(super) last_stream_seq: u64,
}

/// One generation: a fixed membership, a fixed set of owned partitions.
pub(super) struct Generation {
    pub(super) owned: Vec<u32>,
    pub(super) epoch: u64,
    /// The other workers, whose sightings watermarks gate detection.
    pub(super) others: Vec<String>,
    pub(super) parts: HashMap<u32, PartState>,
    /// Pre-pass: the first sightings this worker's partitions make, found
    /// as soon as the merge releases events (a baseline of its own, fed in
    /// the same order as the analyzer's).
    pub(super) pre: crate::baseline::Baseline,
    pub(super) home: crate::homenet::HomeNet,
    pub(super) held: VecDeque<Held>,
    pub(super) analyzer: Analyzer,
    /// Other workers' sightings, by key.
    pub(super) remote: std::collections::BinaryHeap<std::cmp::Reverse<(Ts, u64, std::net::IpAddr)>>,
    /// Other workers' sightings watermarks in this epoch.
    pub(super) remote_wm: HashMap<String, Ts>,
    /// Sightings to publish, and the watermark last published.
    pub(super) outgoing: Vec<(Ts, u64, std::net::IpAddr)>,
    pub(super) sent_wm: Ts,
    pub(super) rx: tokio::sync::mpsc::Receiver<Incoming>,
    pub(super) tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Runs seen on any owned partition.
    pub(super) runs: BTreeMap<Run, ()>,
    /// The newest watermark received, the key last analysed (lag).
    pub(super) newest: Ts,
    pub(super) detected: Ts,
    /// End marks read so far (partition, the runs it names): a mark once
    /// read need not be read again while it names every known run.
    pub(super) done_marks: HashMap<u32, Vec<Run>>,
}

pub(super) enum Incoming {
    Events(u32, u64, bytes::Bytes),
    Sightings(bytes::Bytes),
    Failed(String),
}

/// The epoch of a membership: a hash of the sorted worker ids.
pub(super) fn epoch_of(members: &[String]) -> u64 {
    crate::fnv1a(members.iter().flat_map(|m| m.bytes().chain([0])))
}

impl Worker {
    pub(super) fn start_generation(
        &mut self,
        owned: Vec<u32>,
        members: &[String],
    ) -> Result<Generation, WorkerError> {
        let mut analyzer = Analyzer::from_config(&self.cfg);
        analyzer.keep_flows = false;
        let mut pre = crate::baseline::Baseline::new(&self.cfg.baseline);
        pre.keep_sightings();
        let mut parts = HashMap::new();
        let mut starts = Vec::new();
        let snaps = self.load_snapshots(&owned);
        for (&p, snap) in owned.iter().zip(snaps) {
            let (st, from) = match snap {
                Some(s) => {
                    if let Ok(env) = crate::state::decode(&s.state) {
                        for (name, bytes) in &env.sections {
                            if name == crate::baseline::SECTION && pre.merge(bytes).is_err() {
                                tracing::warn!("bus: partition {p}: baseline unreadable");
                            }
                        }
                        analyzer.restore_merging(env, std::path::Path::new(&self.object_name(p)));
                    }
                    (s.merge, s.resume_from)
                }
                None => (PartState::default(), 1),
            };
            let mut st = st;
            st.last_stream_seq = from.saturating_sub(1);
            for r in st.runs.values_mut() {
                r.released = r.applied;
            }
            parts.insert(p, st);
            starts.push((p, from));
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Incoming>(256);
        let mut tasks = Vec::new();
        let c = self.bus.cfg.clone();
        for (p, from) in starts {
            let js = self.bus.js.clone();
            let tx = tx.clone();
            let stream = c.events_stream.clone();
            let subject = c.events_subject(p);
            tasks.push(self.bus.rt.spawn(async move {
                consume(js, stream, subject, from, tx, move |seq, payload| {
                    Incoming::Events(p, seq, payload)
                })
                .await;
            }));
        }
        {
            let js = self.bus.js.clone();
            let tx = tx.clone();
            let stream = c.sightings_stream.clone();
            let subject = c.sightings_subject();
            tasks.push(self.bus.rt.spawn(async move {
                consume(js, stream, subject, 1, tx, |_, payload| {
                    Incoming::Sightings(payload)
                })
                .await;
            }));
        }
        let mut runs = BTreeMap::new();
        for st in parts.values() {
            for r in st.runs.keys() {
                runs.insert(r.clone(), ());
            }
        }
        Ok(Generation {
            owned,
            epoch: epoch_of(members),
            others: members.iter().filter(|m| **m != self.id).cloned().collect(),
            parts,
            pre,
            home: self.cfg.home_net.clone(),
            held: VecDeque::new(),
            analyzer,
            remote: std::collections::BinaryHeap::new(),
            remote_wm: HashMap::new(),
            outgoing: Vec::new(),
            sent_wm: i64::MIN,
            rx,
            tasks,
            runs,
            newest: i64::MIN,
            detected: i64::MIN,
            done_marks: HashMap::new(),
        })
    }
}

impl Generation {
    /// The key below which every owned partition has heard from every
    /// known run (`i64::MIN` before any run is known).
    pub(super) fn input_watermark(&self) -> Ts {
        if self.runs.is_empty() {
            return i64::MIN;
        }
        let mut w = i64::MAX;
        for st in self.parts.values() {
            for run in self.runs.keys() {
                let rw = match st.runs.get(run) {
                    Some(r) if r.eof && r.queue.is_empty() => i64::MAX,
                    Some(r) if r.eof => r.queue.back().map_or(i64::MAX, |q| q.key),
                    Some(r) => r.watermark,
                    None => i64::MIN,
                };
                w = w.min(rw);
            }
        }
        w
    }

    /// Stage 1: releases every event the sensors' watermarks have passed,
    /// in key order, through the sightings pre-pass into `held`.
    pub(super) fn merge(&mut self) -> usize {
        let w = self.input_watermark();
        let mut ready: Vec<Held> = Vec::new();
        for (&p, st) in &mut self.parts {
            for (run, r) in &mut st.runs {
                while r.queue.front().is_some_and(|q| q.key <= w) {
                    if let Some(q) = r.queue.pop_front() {
                        r.released = (q.seq, q.idx);
                        ready.push(Held {
                            key: q.key,
                            part: p,
                            run: run.clone(),
                            seq: q.seq,
                            idx: q.idx,
                            stream_seq: q.stream_seq,
                            ev: q.ev,
                        });
                    }
                }
            }
        }
        let n = ready.len();
        ready.sort_by(|a, b| {
            (a.key, &a.run, a.part, a.seq, a.idx).cmp(&(b.key, &b.run, b.part, b.seq, b.idx))
        });
        for h in ready {
            let (dir, feed) = crate::analysis::classify(&self.home, &h.ev);
            if feed {
                self.pre.observe(&h.ev, dir, &self.home);
                for (id, host, _) in self.pre.take_sightings() {
                    self.outgoing.push((h.key, id, host));
                }
            }
            self.held.push_back(h);
        }
        n
    }

    /// The other workers' sightings watermark: detection may pass keys
    /// below it.
    pub(super) fn sightings_watermark(&self) -> Ts {
        self.others
            .iter()
            .map(|o| self.remote_wm.get(o).copied().unwrap_or(i64::MIN))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Stage 2: runs the detectors over held events every other worker's
    /// sightings have passed, each after the sightings up to its key.
    pub(super) fn detect(&mut self, out: &mut Vec<Out>) -> u64 {
        let g = self.sightings_watermark();
        let passed = |k: Ts| g == i64::MAX || k < g;
        let mut n = 0u64;
        let mut evs: Vec<FlowEvent> = Vec::new();
        while let Some(k) = self.held.front().map(|h| h.key).filter(|&k| passed(k)) {
            // sightings up to this key first
            while let Some(std::cmp::Reverse(s)) = self.remote.peek().copied() {
                if s.0 > k {
                    break;
                }
                self.remote.pop();
                self.analyzer.baseline_mut().sighting(s.1, s.2, s.0);
            }
            let limit = self.remote.peek().map_or(i64::MAX, |r| r.0.0);
            evs.clear();
            while evs.len() < 1024 {
                let Some(h) = self.held.front() else { break };
                if !(passed(h.key) && h.key < limit) {
                    break;
                }
                let Some(h) = self.held.pop_front() else {
                    break;
                };
                self.detected = self.detected.max(h.key);
                if let Some(r) = self
                    .parts
                    .get_mut(&h.part)
                    .and_then(|st| st.runs.get_mut(&h.run))
                {
                    r.applied = (h.seq, h.idx);
                    r.applied_key = h.key;
                }
                evs.push(h.ev);
            }
            if evs.is_empty() {
                break;
            }
            n += evs.len() as u64;
            self.analyzer.on_batch(&mut evs, out);
        }
        n
    }

    /// Every known run has ended on every owned partition, every event is
    /// analysed, and every other worker has said the same.
    pub(super) fn all_ended(&self) -> bool {
        !self.runs.is_empty()
            && self.held.is_empty()
            && self.input_watermark() == i64::MAX
            && self.sightings_watermark() == i64::MAX
    }

    /// The stream sequence partition `p` is to be read again from after a
    /// restore: the first that holds an event the detectors have not seen.
    pub(super) fn resume_from(&self, p: u32) -> u64 {
        let Some(st) = self.parts.get(&p) else {
            return 1;
        };
        let queued = st
            .runs
            .values()
            .filter_map(|r| r.queue.front().map(|q| q.stream_seq));
        let held = self
            .held
            .iter()
            .filter(|h| h.part == p)
            .map(|h| h.stream_seq);
        queued.chain(held).min().unwrap_or(st.last_stream_seq + 1)
    }
}

/// Reads `subject` of `stream` from sequence `from` with an ordered
/// consumer (recreated by the client when a server goes away), forwarding
/// each message's stream sequence and payload.
pub(super) async fn consume(
    js: async_nats::jetstream::Context,
    stream: String,
    subject: String,
    from: u64,
    tx: tokio::sync::mpsc::Sender<Incoming>,
    wrap: impl Fn(u64, bytes::Bytes) -> Incoming,
) {
    use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
    let mut from = from.max(1);
    loop {
        let started = async {
            let s = js.get_stream(&stream).await.map_err(|e| e.to_string())?;
            let c = s
                .create_consumer(OrderedConfig {
                    filter_subject: subject.clone(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            c.messages().await.map_err(|e| e.to_string())
        }
        .await;
        let mut msgs = match started {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Incoming::Failed(format!("{subject}: {e}"))).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let m = match tokio::time::timeout(STALL_CHECK, msgs.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    // quiet: fine if the subject has nothing newer; a
                    // consumer left behind by a server's loss (its
                    // recreation lost in a leader election) is dropped and
                    // made again from where it got to
                    if stalled(&js, &stream, &subject, from).await {
                        let _ = tx
                            .send(Incoming::Failed(format!(
                                "{subject}: no delivery in {STALL_CHECK:?} with messages \
                                 from {from} on the stream; consumer made again"
                            )))
                            .await;
                        break;
                    }
                    continue;
                }
            };
            match m {
                Ok(m) => {
                    let seq = m.info().map_or(0, |i| i.stream_sequence);
                    if seq > 0 {
                        from = seq + 1;
                    }
                    if tx.send(wrap(seq, m.message.payload.clone())).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Incoming::Failed(format!("{subject}: {e}"))).await;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// How long a consumer may deliver nothing before the stream is asked
/// whether it holds messages the consumer should have delivered.
const STALL_CHECK: Duration = Duration::from_secs(5);

/// True when `subject`'s last message on `stream` is at or after `from`
/// (so a consumer reading from `from` owes a delivery). Unanswered: false
/// (the next quiet period asks again).
async fn stalled(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
    from: u64,
) -> bool {
    let last = tokio::time::timeout(crate::bus::ATTEMPT, async {
        let s = js.get_stream_no_info(stream).await.ok()?;
        s.get_last_raw_message_by_subject(subject).await.ok()
    })
    .await;
    matches!(last, Ok(Some(m)) if m.sequence >= from)
}
