//! The analysis thread and its helper lanes.

use super::{dispose, set_len, spawn, thread_cpu_s};
use crate::analysis::{Analyzer, Lane, LaneOut, Sections, Step};
use crate::flow::table::FlowEvent;
use crate::sink::{Out, SinkError};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A batch for the helper lanes: the events and their steps, read-only.
type Job = Arc<(Vec<FlowEvent>, Vec<Step>)>;

/// What a helper lane hands back at the end: its last alerts, its state
/// sections (for the final snapshot), its state counts, its CPU seconds.
type LaneEnd = (LaneOut, Sections, Vec<(&'static str, Vec<u64>)>, f64);

/// A detector lane on a thread of its own: runs every batch the analysis
/// thread plans, alongside the analysis thread's own lane. The thread gets
/// its lane through `give`: at once, or (the end-of-input split, see
/// [`super::run`]) only when the input has ended.
struct Helper {
    /// `Some` until the lane is handed over.
    give: Option<Sender<Lane>>,
    jobs: Sender<Job>,
    results: Receiver<LaneOut>,
    handle: std::thread::JoinHandle<Option<LaneEnd>>,
    /// The lane has stopped (reported once).
    dead: bool,
}

impl Helper {
    /// Starts a helper thread waiting for its lane.
    fn start(k: usize, snapshots: bool) -> Result<Self, SinkError> {
        let (give, lane_rx) = bounded::<Lane>(1);
        let (jobs, job_rx) = bounded::<Job>(1);
        let (res_tx, results) = bounded::<LaneOut>(1);
        let handle = spawn(format!("analysis-{k}"), move || {
            // no lane: the input ended before one was handed over
            let lane = lane_rx.recv().ok()?;
            Some(helper_thread(lane, &job_rx, &res_tx, snapshots))
        })?;
        Ok(Self {
            give: Some(give),
            jobs,
            results,
            handle,
            dead: false,
        })
    }

    /// Hands the lane over; gives it back if the thread is gone.
    fn give(&mut self, lane: Lane) -> Result<(), Lane> {
        match self.give.take() {
            Some(g) => g.send(lane).map_err(|e| e.into_inner()),
            None => Err(lane),
        }
    }
}

fn helper_thread(
    mut lane: Lane,
    jobs: &Receiver<Job>,
    results: &Sender<LaneOut>,
    snapshots: bool,
) -> LaneEnd {
    for job in jobs {
        let mut o = LaneOut::default();
        lane.run(&job.0, &job.1, &mut o);
        // the analysis thread takes the batch back once every lane is done
        drop(job);
        if results.send(o).is_err() {
            break;
        }
    }
    let mut o = LaneOut::default();
    lane.finish(&mut o);
    let sections = if snapshots {
        lane.sections()
    } else {
        Vec::new()
    };
    let end = (o, sections, lane.state_counts(), thread_cpu_s());
    dispose(lane);
    end
}

/// CPU seconds of the analysis thread and of each helper lane, and the
/// detectors' state summaries.
type AnalysisEnd = (Vec<(String, f64)>, Vec<String>);

/// The analysis thread's helpers: `active` run their lanes from the start;
/// `spare` (the end-of-input split) get the analyzer's last local lane
/// once `input_done` is set.
pub(super) struct Helpers {
    active: Vec<Helper>,
    spare: Option<Helper>,
    input_done: Arc<AtomicBool>,
}

/// Starts a thread for each helper lane, and a spare one if `spare`.
pub(super) fn start_helpers(
    lanes: Vec<Lane>,
    spare: bool,
    snapshots: bool,
    input_done: Arc<AtomicBool>,
) -> Result<Helpers, SinkError> {
    let mut active = Vec::new();
    for (k, lane) in lanes.into_iter().enumerate() {
        let mut h = Helper::start(k + 1, snapshots)?;
        // the thread was just started and waits for it
        if h.give(lane).is_ok() {
            active.push(h);
        }
    }
    let spare = if spare {
        Some(Helper::start(1, snapshots)?)
    } else {
        None
    };
    Ok(Helpers {
        active,
        spare,
        input_done,
    })
}

/// Consecutive batches taken from a queue at least half full after which
/// the single analysis thread hands its second lane to the spare thread:
/// the stage keeps one thread while it keeps up (most links: the merge of
/// two lanes costs more than it saves) and takes a second core as soon as
/// it is the pipeline's bottleneck (a busy link of many chatty sessions).
const SPLIT_AFTER_BATCHES_BEHIND: u32 = 8;

pub(super) fn analysis_thread(
    mut an: Analyzer,
    mut hs: Helpers,
    rx: Receiver<Vec<FlowEvent>>,
    back: Sender<Vec<FlowEvent>>,
    tx: Sender<Vec<Out>>,
) -> AnalysisEnd {
    let mut out = Vec::new();
    let mut more = Vec::new();
    let m = crate::metrics::m();
    let batches_c = m.stage("analysis");
    let in_depth = m.queue("shard->analysis", rx.capacity().unwrap_or(0));
    let out_depth = m.queue("analysis->writer", tx.capacity().unwrap_or(0));
    let cap = rx.capacity().unwrap_or(0);
    let mut behind = 0u32;
    for mut evs in &rx {
        batches_c.inc();
        set_len(&in_depth, rx.len());
        // analysis is the bottleneck when its input queue stays at least
        // half full: the shards wait on it (replay) or are about to shed
        // (live)
        behind = if cap > 0 && rx.len() * 2 >= cap {
            behind + 1
        } else {
            0
        };
        if hs.spare.is_some()
            && (hs.input_done.load(Ordering::Relaxed) || behind >= SPLIT_AFTER_BATCHES_BEHIND)
        {
            // the end of input (what is left is the flush of every open
            // flow, with the capture and shard threads idle), or a busy
            // link whose events this thread cannot keep up with: the last
            // lane moves to the spare thread and the two work side by side
            if behind >= SPLIT_AFTER_BATCHES_BEHIND {
                tracing::debug!("analysis behind its input: second lane on its own thread");
            }
            if let (Some(mut h), Some(lane)) = (hs.spare.take(), an.pop_lane()) {
                match h.give(lane) {
                    Ok(()) => hs.active.push(h),
                    Err(lane) => an.push_lane(lane),
                }
            }
        }
        let helpers = &mut hs.active;
        if helpers.is_empty() {
            an.on_batch(&mut evs, &mut out);
        } else {
            let plan = an.plan(&mut evs);
            let job: Job = Arc::new((evs, plan));
            for h in helpers.iter() {
                let _ = h.jobs.send(Arc::clone(&job));
            }
            an.run_lanes(&job.0, &job.1);
            more.clear();
            for (k, h) in helpers.iter_mut().enumerate() {
                match h.results.recv() {
                    Ok(o) => more.push(o),
                    Err(_) => {
                        // only a panic in a detector ends a lane early
                        if !h.dead {
                            h.dead = true;
                            tracing::error!(
                                "analysis lane {} stopped; its detectors report nothing more",
                                k + 1
                            );
                        }
                        more.push(LaneOut::default());
                    }
                }
            }
            // every helper dropped its handle before answering
            let mut job = job;
            let (batch, plan) = loop {
                match Arc::try_unwrap(job) {
                    Ok(x) => break x,
                    Err(j) => {
                        job = j;
                        std::thread::yield_now();
                    }
                }
            };
            evs = batch;
            an.merge(&mut evs, &plan, &mut more, &mut out);
            an.recycle_plan(plan);
        }
        let _ = back.try_send(evs);
        if !out.is_empty() && tx.send(std::mem::take(&mut out)).is_err() {
            break;
        }
        set_len(&out_depth, tx.len());
    }
    let mut ends = Vec::new();
    let mut cpu = Vec::new();
    let mut counts = Vec::new();
    // a spare that never got its lane ends with nothing
    drop(hs.spare.take());
    for (k, h) in hs.active.into_iter().enumerate() {
        drop(h.jobs);
        if let Ok(Some((o, sections, s, c))) = h.handle.join() {
            ends.push((o, sections));
            counts.extend(s);
            cpu.push((format!("analysis-{}", k + 1), c));
        }
    }
    let summary = an.state_summary(&counts);
    an.finish_with(ends, &mut out);
    if !out.is_empty() {
        let _ = tx.send(out);
    }
    cpu.insert(0, ("analysis".to_owned(), thread_cpu_s()));
    dispose(an);
    (cpu, summary)
}
