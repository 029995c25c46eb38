//! What travels on the bus, in postcard: batches of flow events per
//! partition, and first sightings for the site-wide baseline.

use crate::flow::event::FlowEvent;
use crate::time::Ts;
use serde::{Deserialize, Serialize};

/// Version of [`Batch`]; a worker refuses batches of another.
pub const VERSION: u16 = 1;

/// A sensor's run: its name and when it started (a restarted sensor is a
/// new run, with sequences from 1 again).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Run {
    pub sensor: String,
    pub started: u64,
}

/// One partition's events from one sensor.
#[derive(Debug, Serialize, Deserialize)]
pub struct Batch {
    pub version: u16,
    pub run: Run,
    /// Partitions the sensor routes to (`general.partitions`): sensors and
    /// workers must agree.
    pub partitions: u32,
    pub partition: u32,
    /// 1, 2, ... per (run, partition); with the run, the de-duplication id.
    pub seq: u64,
    /// Every later event of this run has a key at least this (packet time).
    pub watermark: Ts,
    /// The run ended: no more events from it.
    pub eof: bool,
    /// Events with their keys: the sensor's packet clock when the event
    /// was made (never decreasing within a run).
    pub events: Vec<(Ts, FlowEvent)>,
}

impl Batch {
    /// The JetStream message id (de-duplication of a re-sent batch).
    #[must_use]
    pub fn msg_id(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.run.sensor, self.run.started, self.partition, self.seq
        )
    }
}

/// First sightings a worker made of internal hosts using destinations,
/// with its watermark: the site-wide baseline's feed.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Sightings {
    pub version: u16,
    pub worker: String,
    /// The worker group's membership the sender worked under (a hash of
    /// the sorted worker ids); watermarks count only within one.
    pub epoch: u64,
    /// No later sighting from this worker in this epoch has a smaller key
    /// (`i64::MAX`: its input has ended).
    pub watermark: Ts,
    /// (key, destination id, host): the event key it was first seen at.
    pub dests: Vec<(Ts, u64, std::net::IpAddr)>,
}
