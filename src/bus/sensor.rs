//! Sensor mode (`--publish`): the pipeline's analysis stage replaced by a
//! publisher. Each flow event gets its direction (as the analysis planner
//! would), its partition ([`crate::analysis::partition::route`]) and a key
//! (the sensor's packet clock, never decreasing), and goes into its
//! partition's batch. Batches go out when full or every quarter second;
//! partitions with nothing new get an empty batch carrying the watermark,
//! so workers can merge sensors in packet-time order. At the end of a
//! replay every partition gets an end-of-input batch.
//!
//! Publishing is pipelined (up to [`IN_FLIGHT`] batches awaiting their
//! acknowledgement). A batch that is not acknowledged is sent again with
//! the same message id (JetStream drops the copy if the first one landed).
//! A replay waits for the bus as long as it takes (until a signal); a live
//! sensor gives a batch up after [`LIVE_PATIENCE`] and counts its events as
//! shed: capture never waits for the bus.

use super::wire::{Batch, Run, VERSION};
use super::{Bus, BusConfig};
use crate::analysis::partition;
use crate::flow::event::FlowEvent;
use crate::homenet::{Direction, HomeNet};
use crate::sink::Out;
use crate::time::Ts;
use crossbeam_channel::{Receiver, Sender};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Batches published and not yet acknowledged, at most.
const IN_FLIGHT: usize = 256;
/// How long a live sensor tries to get one batch acknowledged.
const LIVE_PATIENCE: Duration = Duration::from_secs(2);
/// Wall time between flushes of partial batches and watermarks.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// What the publisher did, for the exit summary.
#[derive(Default, Debug, Clone)]
pub struct Published {
    pub batches: u64,
    pub events: u64,
    pub bytes: u64,
    pub resent: u64,
    pub shed_batches: u64,
    pub shed_events: u64,
}

struct InFlight {
    ack: async_nats::jetstream::context::PublishAckFuture,
    subject: String,
    id: String,
    payload: bytes::Bytes,
    events: u64,
}

/// The publisher (one thread).
pub struct Publisher {
    bus: Bus,
    home: HomeNet,
    run: Run,
    n: usize,
    bufs: Vec<Vec<(Ts, FlowEvent)>>,
    seqs: Vec<u64>,
    sent_wm: Vec<Ts>,
    clock: Ts,
    last_flush: Instant,
    inflight: VecDeque<InFlight>,
    live: bool,
    /// Live: since when the bus has not answered (batches are shed at once
    /// meanwhile, one probe a second), and the last probe.
    down_since: Option<Instant>,
    last_probe: Instant,
    stop: Arc<AtomicBool>,
    pub done: Published,
}

impl Publisher {
    /// A publisher of `partitions` partitions on `bus`.
    #[must_use]
    pub fn new(
        bus: Bus,
        home: HomeNet,
        partitions: usize,
        live: bool,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let n = partitions.max(1);
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let run = Run {
            sensor: bus.cfg.sensor_name(),
            started,
        };
        Self {
            bus,
            home,
            run,
            n,
            bufs: (0..n).map(|_| Vec::new()).collect(),
            seqs: vec![0; n],
            sent_wm: vec![i64::MIN; n],
            clock: i64::MIN,
            last_flush: Instant::now(),
            inflight: VecDeque::new(),
            live,
            down_since: None,
            last_probe: Instant::now(),
            stop,
            done: Published::default(),
        }
    }

    /// Routes a shard's events into the partitions' batches; flow records
    /// (direction set) are copied to `flows` when they are written.
    pub fn add(&mut self, evs: &mut Vec<FlowEvent>, flows: Option<&mut Vec<Out>>) {
        let mut flows = flows;
        for mut ev in evs.drain(..) {
            let (dir, ts) = match &mut ev {
                FlowEvent::End(r) => {
                    r.direction = self.home.direction(r.src_ip, r.dest_ip);
                    if let Some(f) = flows.as_deref_mut() {
                        f.push(Out::Flow(Box::new(r.clone())));
                    }
                    (r.direction, r.end)
                }
                FlowEvent::Burst(b) => (self.home.direction(b.src_ip, b.dest_ip), b.end),
                FlowEvent::Progress(p) => (self.home.direction(p.src_ip, p.dest_ip), p.ts),
                FlowEvent::DnsQuery(q) => (Direction::Outbound, q.ts),
                FlowEvent::DnsAnswer(a) => (Direction::Outbound, a.ts),
            };
            self.clock = self.clock.max(ts);
            let p = partition::route(&ev, dir, self.n) as usize;
            if let Some(b) = self.bufs.get_mut(p) {
                b.push((self.clock, ev));
                if b.len() >= self.bus.cfg.batch_events {
                    self.publish(p, false);
                }
            }
        }
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush(false);
        }
    }

    /// Sends every partial batch, and the watermark to partitions with
    /// nothing new; `eof`: the run's end, to every partition.
    pub fn flush(&mut self, eof: bool) {
        if self.live {
            // live: packet time is wall time; a quiet link still moves the
            // watermark (events made later carry at least the clock)
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            self.clock = self.clock.max(now - 2 * crate::time::SEC);
        }
        for p in 0..self.n {
            let has = self.bufs.get(p).is_some_and(|b| !b.is_empty());
            let behind = self.sent_wm.get(p).is_some_and(|w| *w < self.clock);
            if has || behind || eof {
                self.publish(p, eof);
            }
        }
        self.last_flush = Instant::now();
        if eof {
            self.drain_acks();
        }
    }

    fn publish(&mut self, p: usize, eof: bool) {
        let Some(buf) = self.bufs.get_mut(p) else {
            return;
        };
        let events = std::mem::take(buf);
        let Some(seq) = self.seqs.get_mut(p) else {
            return;
        };
        *seq += 1;
        let batch = Batch {
            version: VERSION,
            run: self.run.clone(),
            partitions: u32::try_from(self.n).unwrap_or(u32::MAX),
            partition: u32::try_from(p).unwrap_or(u32::MAX),
            seq: *seq,
            watermark: self.clock,
            eof,
            events,
        };
        if let Some(w) = self.sent_wm.get_mut(p) {
            *w = self.clock;
        }
        let payload = match postcard::to_stdvec(&batch) {
            Ok(v) => bytes::Bytes::from(v),
            Err(e) => {
                tracing::error!(
                    "bus: batch not encodable ({e}); {} events lost",
                    batch.events.len()
                );
                return;
            }
        };
        let n_events = batch.events.len() as u64;
        if self.live && self.bus_down() {
            // live, the bus away: shed now, capture never waits for it
            self.shed(n_events);
            return;
        }
        let subject = self.bus.cfg.events_subject(batch.partition);
        let id = batch.msg_id();
        drop(batch);
        while self.inflight.len() >= IN_FLIGHT {
            self.settle_oldest();
        }
        match self.send(&subject, &id, payload.clone()) {
            Ok(ack) => self.inflight.push_back(InFlight {
                ack,
                subject,
                id,
                payload,
                events: n_events,
            }),
            Err(e) => {
                tracing::debug!("bus: publish {id}: {e}");
                self.resend_until_acked(&subject, &id, payload, n_events);
            }
        }
    }

    fn send(
        &self,
        subject: &str,
        id: &str,
        payload: bytes::Bytes,
    ) -> Result<async_nats::jetstream::context::PublishAckFuture, String> {
        let msg = async_nats::jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(id);
        let js = self.bus.js.clone();
        let subject = subject.to_owned();
        // (the client queues while disconnected; a full queue must not
        // hold a live sensor)
        self.bus
            .rt
            .block_on(async move {
                tokio::time::timeout(LIVE_PATIENCE, js.send_publish(subject, msg)).await
            })
            .map_err(|_| "the client's queue is full (bus unreachable)".to_owned())?
            .map_err(|e| e.to_string())
    }

    /// Sends one batch and waits up to `patience` for its acknowledgement.
    fn send_acked(
        &self,
        subject: &str,
        id: &str,
        payload: bytes::Bytes,
        patience: Duration,
    ) -> Result<(), String> {
        let ack = self.send(subject, id, payload)?;
        self.bus
            .rt
            .block_on(async { tokio::time::timeout(patience, ack).await })
            .map_err(|_| format!("no acknowledgement in {patience:?}"))?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Live: the bus failed lately, and it is not yet time for a probe.
    fn bus_down(&mut self) -> bool {
        if self.down_since.is_none() || self.last_probe.elapsed() >= Duration::from_secs(1) {
            // no failure, or a probe is due: this batch tries
            return false;
        }
        true
    }

    /// A batch acknowledged by the bus: counted as published; a live
    /// sensor whose bus was away says it is back.
    fn delivered(&mut self, events: u64, bytes: usize) {
        self.done.batches += 1;
        self.done.events += events;
        self.done.bytes += bytes as u64;
        let m = &crate::metrics::m().bus;
        m.published_batches.inc();
        m.published_events.inc_by(events);
        m.published_bytes.inc_by(bytes as u64);
        if let Some(t) = self.down_since.take() {
            tracing::info!(
                "bus: publishing again after {:.1} s; {} batches ({} events) shed so far",
                t.elapsed().as_secs_f64(),
                self.done.shed_batches,
                self.done.shed_events
            );
        }
    }

    /// Live: a batch given up, counted.
    fn shed(&mut self, events: u64) {
        self.done.shed_batches += 1;
        self.done.shed_events += events;
        crate::metrics::m().bus.shed_events.inc_by(events);
    }

    /// Waits for the oldest batch's acknowledgement; re-sends it if none.
    fn settle_oldest(&mut self) {
        let Some(f) = self.inflight.pop_front() else {
            return;
        };
        let patience = if self.live {
            LIVE_PATIENCE
        } else {
            Duration::from_secs(5)
        };
        let ack = self
            .bus
            .rt
            .block_on(async { tokio::time::timeout(patience, f.ack).await });
        match ack {
            Ok(Ok(_)) => self.delivered(f.events, f.payload.len()),
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "no acknowledgement in 5 s".into(),
                };
                tracing::debug!("bus: batch {}: {why}; sending it again", f.id);
                self.resend_until_acked(&f.subject, &f.id, f.payload, f.events);
            }
        }
    }

    /// Sends one batch until it is acknowledged; a live sensor gives up
    /// after [`LIVE_PATIENCE`] (the batch is shed and counted), a replay
    /// only on a signal.
    fn resend_until_acked(&mut self, subject: &str, id: &str, payload: bytes::Bytes, events: u64) {
        if self.live {
            // one short try (unless the bus is known away), then shed
            if self.bus_down() {
                self.shed(events);
                return;
            }
            self.last_probe = Instant::now();
            if !self.bus.streams_ready {
                // a bus that was away at the start: its streams too
                self.bus.streams_ready =
                    self.bus.ensure_streams(Duration::from_millis(1500)).is_ok();
            }
            let len = payload.len();
            match self.send_acked(subject, id, payload, LIVE_PATIENCE) {
                Ok(_) => self.delivered(events, len),
                Err(e) => {
                    if self.down_since.is_none() {
                        tracing::warn!(
                            "bus: {e}; the live sensor sheds event batches (counted) until it answers"
                        );
                        self.down_since = Some(Instant::now());
                    }
                    self.shed(events);
                }
            }
            return;
        }
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut warned = false;
        loop {
            self.done.resent += 1;
            crate::metrics::m().bus.resent_batches.inc();
            match self.send_acked(subject, id, payload.clone(), Duration::from_secs(5)) {
                Ok(_) => {
                    self.delivered(events, payload.len());
                    if warned {
                        tracing::info!("bus: publishing again");
                    }
                    return;
                }
                Err(e) => {
                    if self.stop.load(Ordering::Relaxed) && started.elapsed() >= LIVE_PATIENCE {
                        self.done.shed_batches += 1;
                        self.done.shed_events += events;
                        crate::metrics::m().bus.shed_events.inc_by(events);
                        tracing::error!(
                            "bus: {e}; stopping: batch {id} ({events} events) not delivered"
                        );
                        return;
                    }
                    if !warned {
                        tracing::warn!("bus: {e}; waiting for the bus (replay)");
                        warned = true;
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Waits for every batch in flight.
    pub fn drain_acks(&mut self) {
        while !self.inflight.is_empty() {
            self.settle_oldest();
        }
    }

    /// The exit summary line.
    #[must_use]
    pub fn summary(&self) -> String {
        let d = &self.done;
        format!(
            "bus: sensor {} published {} events in {} batches ({} bytes) to {} partitions; {} re-sent, {} batches ({} events) shed",
            self.run.sensor,
            d.events,
            d.batches,
            d.bytes,
            self.n,
            d.resent,
            d.shed_batches,
            d.shed_events
        )
    }
}

/// The publisher thread: in place of the analysis thread of a local run.
pub fn publisher_thread(
    mut p: Publisher,
    keep_flows: bool,
    rx: &Receiver<Vec<FlowEvent>>,
    back: &Sender<Vec<FlowEvent>>,
    tx: &Sender<Vec<Out>>,
) -> (Vec<(String, f64)>, Vec<String>) {
    let mut flows = Vec::new();
    loop {
        match rx.recv_timeout(FLUSH_EVERY) {
            Ok(mut evs) => {
                p.add(&mut evs, keep_flows.then_some(&mut flows));
                let _ = back.try_send(evs);
                if !flows.is_empty() && tx.send(std::mem::take(&mut flows)).is_err() {
                    break;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => p.flush(false),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    p.flush(true);
    let line = p.summary();
    (
        vec![("publish".to_owned(), crate::pipeline::thread_cpu_s())],
        vec![line],
    )
}

/// Connects a sensor to the bus: a replay waits for it (until a signal); a
/// live sensor starts capturing at once and publishes once the bus answers.
///
/// # Errors
/// Interrupted by a signal before the bus answered.
pub fn connect(cfg: &BusConfig, live: bool, stop: &AtomicBool) -> Result<Bus, super::BusError> {
    let name = format!("deguchi-sensor-{}", cfg.sensor_name());
    if live {
        // capture starts whether the bus answers or not: batches are shed
        // (counted) until it does
        return Bus::connect_lazy(cfg, &name);
    }
    loop {
        match Bus::connect(cfg, &name, Duration::from_secs(10)) {
            Ok(b) => return Ok(b),
            Err(e) if stop.load(Ordering::Relaxed) => return Err(e),
            Err(e) => tracing::warn!("{e}; retrying"),
        }
    }
}
