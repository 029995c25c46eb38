//! The beacon detector's state as saved in a snapshot.

use super::state::{Pair, PairKey};
use serde::{Deserialize, Serialize};

/// What survives a restart: every series (popularity and resolved names
/// are the shared baseline's, [`crate::baseline`]).
#[derive(Serialize, Deserialize)]
pub(super) struct Snapshot {
    pub(super) pairs: Vec<(PairKey, Pair)>,
}

/// Layout version of [`Snapshot`].
pub(super) const SNAPSHOT_VERSION: u32 = 4;
