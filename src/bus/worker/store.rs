//! A worker's leases (membership, rendezvous ownership) and its state
//! store (partition snapshots, end marks).

use super::super::wire::Run;
use super::Worker;
use super::generation::{Generation, PartState, RunState};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A partition's snapshot in the object store.
#[derive(Serialize, Deserialize)]
pub(super) struct PartSnapshot {
    pub(super) version: u16,
    pub(super) partition: u32,
    pub(super) partitions: u32,
    /// Read the subject again from here.
    pub(super) resume_from: u64,
    pub(super) merge: PartState,
    /// The analyzer's state file (partition's detector sections + baseline).
    pub(super) state: Vec<u8>,
}

/// How long a round of state-store reads or writes may take at most.
const STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) const SNAPSHOT_VERSION: u16 = 1;

/// The rendezvous owner of partition `p` among `members`.
fn owner(p: u32, members: &[String]) -> Option<&String> {
    members.iter().max_by_key(|m| {
        // FNV-1a then a splitmix64 finaliser: FNV alone mixes the last
        // bytes (the partition) too little into the high bits
        let mut x = crate::fnv1a(m.bytes().chain(p.to_le_bytes()));
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (x ^ (x >> 31), m.as_str())
    })
}

/// The partitions `me` owns among `members`.
#[must_use]
pub fn owned_by(me: &str, members: &[String], partitions: usize) -> Vec<u32> {
    (0..u32::try_from(partitions).unwrap_or(u32::MAX))
        .filter(|&p| owner(p, members).is_some_and(|o| o == me))
        .collect()
}

impl Worker {
    pub(super) fn renew_lease(&self) -> Result<(), String> {
        let kv = self.leases.clone();
        let key = format!("w.{}", self.id);
        self.bus
            .rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), kv.put(key, bytes::Bytes::new())).await
            })
            .map_err(|_| "lease renewal timed out".to_owned())?
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub(super) fn release_lease(&self) {
        let kv = self.leases.clone();
        let key = format!("w.{}", self.id);
        let _ = self.bus.rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(2), kv.delete(key)).await
        });
    }

    /// The workers whose leases are live, sorted.
    pub(super) fn members(&self) -> Result<Vec<String>, String> {
        let kv = self.leases.clone();
        self.bus
            .rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(3), async {
                    let mut keys = kv.keys().await.map_err(|e| e.to_string())?;
                    let mut v = Vec::new();
                    while let Some(k) = keys.next().await {
                        let k = k.map_err(|e| e.to_string())?;
                        if let Some(id) = k.strip_prefix("w.") {
                            v.push(id.to_owned());
                        }
                    }
                    Ok::<_, String>(v)
                })
                .await
            })
            .map_err(|_| "listing leases timed out".to_owned())?
            .map(|mut v| {
                v.sort();
                v
            })
    }

    pub(super) fn object_name(&self, p: u32) -> String {
        format!("part-{p}-of-{}", self.cfg.partitions.max(1))
    }

    /// Objects of the state store, read side by side (`None`: there is
    /// none, or the store did not answer). A store just made, or one whose
    /// stream is electing a leader after a server's loss, may leave a
    /// request unanswered: each read gets three short attempts, all of them
    /// within [`STORE_PATIENCE`], so a degraded store holds the worker for
    /// seconds, not minutes. (A snapshot not read means its partition is
    /// read again from the start of the stream: slower, never wrong.)
    pub(super) fn fetch_many(&self, names: &[String]) -> Vec<Option<Vec<u8>>> {
        use async_nats::jetstream::object_store::GetErrorKind;
        use tokio::io::AsyncReadExt as _;
        let reads = names.iter().map(|name| {
            let store = self.store.clone();
            let name = name.clone();
            async move {
                for _ in 0..3 {
                    let r = tokio::time::timeout(crate::bus::ATTEMPT, async {
                        match store.get(&name).await {
                            Ok(mut o) => {
                                let mut v = Vec::new();
                                o.read_to_end(&mut v)
                                    .await
                                    .map(|_| Some(v))
                                    .map_err(|e| e.to_string())
                            }
                            Err(e) if e.kind() == GetErrorKind::NotFound => Ok(None),
                            Err(e) => Err(e.to_string()),
                        }
                    })
                    .await;
                    match r {
                        Ok(Ok(v)) => return (v, true),
                        Ok(Err(e)) => tracing::debug!("bus: state store {name}: {e}"),
                        Err(_) => tracing::debug!("bus: state store {name}: timed out"),
                    }
                }
                (None, false)
            }
        });
        let got = self.bus.rt.block_on(async {
            tokio::time::timeout(STORE_PATIENCE, futures_util::future::join_all(reads)).await
        });
        match got {
            Ok(v) => v
                .into_iter()
                .zip(names)
                .map(|((bytes, answered), name)| {
                    if !answered {
                        tracing::warn!("bus: state store: {name} unreadable");
                    }
                    bytes
                })
                .collect(),
            Err(_) => {
                tracing::warn!("bus: state store did not answer in {STORE_PATIENCE:?}");
                names.iter().map(|_| None).collect()
            }
        }
    }

    /// Writes objects of the state store side by side (two attempts each,
    /// all within [`STORE_PATIENCE`]); the names of those not written.
    pub(super) fn put_many(&self, objects: Vec<(String, Vec<u8>)>) -> Vec<String> {
        let writes = objects.into_iter().map(|(name, bytes)| {
            let store = self.store.clone();
            async move {
                for _ in 0..2 {
                    let mut data = bytes.as_slice();
                    let r = tokio::time::timeout(
                        crate::bus::ATTEMPT * 2,
                        store.put(name.as_str(), &mut data),
                    )
                    .await;
                    if matches!(r, Ok(Ok(_))) {
                        return None;
                    }
                }
                Some(name)
            }
        });
        let n = writes.len();
        match self.bus.rt.block_on(async {
            tokio::time::timeout(STORE_PATIENCE, futures_util::future::join_all(writes)).await
        }) {
            Ok(v) => v.into_iter().flatten().collect(),
            Err(_) => vec![format!("{n} objects (timed out)")],
        }
    }

    /// The last snapshots of partitions `ps`, read side by side.
    pub(super) fn load_snapshots(&self, ps: &[u32]) -> Vec<Option<PartSnapshot>> {
        let t0 = Instant::now();
        let names: Vec<String> = ps.iter().map(|&p| self.object_name(p)).collect();
        let got = self.fetch_many(&names);
        tracing::debug!("bus: {} snapshots loaded in {:?}", ps.len(), t0.elapsed());
        ps.iter()
            .zip(got)
            .map(|(&p, bytes)| self.decode_snapshot(p, bytes))
            .collect()
    }

    fn decode_snapshot(&self, p: u32, got: Option<Vec<u8>>) -> Option<PartSnapshot> {
        let bytes = got.or_else(|| {
            let d = self.opts.state_dir.as_ref()?;
            std::fs::read(d.join(format!("{}.state", self.object_name(p)))).ok()
        })?;
        match postcard::from_bytes::<PartSnapshot>(&bytes) {
            Ok(s) if s.version == SNAPSHOT_VERSION && s.partition == p => Some(s),
            Ok(_) => {
                tracing::warn!("bus: snapshot of partition {p}: another version; starts fresh");
                None
            }
            Err(e) => {
                tracing::warn!("bus: snapshot of partition {p} unreadable ({e}); starts fresh");
                None
            }
        }
    }

    /// Saves the snapshots of partitions `ps` (and to `--state-dir`).
    pub(super) fn save_snapshots(&mut self, g: &mut Generation, ps: &[u32]) {
        let objects: Vec<(String, Vec<u8>)> = ps
            .iter()
            .filter_map(|&p| self.snapshot_object(g, p))
            .collect();
        let n = objects.len();
        let failed = self.put_many(objects);
        self.sum.snapshots += (n - failed.len().min(n)) as u64;
        if !failed.is_empty() {
            tracing::warn!("bus: snapshots not saved: {}", failed.join(", "));
        }
    }

    /// A partition's snapshot object (also written to `--state-dir`).
    fn snapshot_object(&self, g: &mut Generation, p: u32) -> Option<(String, Vec<u8>)> {
        let env = g.analyzer.partition_snapshot(p);
        let resume_from = g.resume_from(p);
        let st = g.parts.get(&p)?;
        let snap = PartSnapshot {
            version: SNAPSHOT_VERSION,
            partition: p,
            partitions: u32::try_from(self.cfg.partitions.max(1)).unwrap_or(u32::MAX),
            resume_from,
            merge: PartState {
                runs: st
                    .runs
                    .iter()
                    .map(|(k, r)| {
                        // a run with events not yet analysed is saved as
                        // far as the analysis got: reading again from
                        // `resume_from` brings its watermark and end back
                        let pending = !r.queue.is_empty()
                            || g.held.iter().any(|h| h.part == p && h.run == *k);
                        (
                            k.clone(),
                            RunState {
                                watermark: if pending { r.applied_key } else { r.watermark },
                                eof: r.eof && !pending,
                                applied_key: r.applied_key,
                                applied: r.applied,
                                released: r.applied,
                                queue: VecDeque::new(),
                            },
                        )
                    })
                    .collect(),
                last_stream_seq: st.last_stream_seq,
            },
            state: crate::state::encode(&env),
        };
        let bytes = postcard::to_stdvec(&snap).ok()?;
        if let Some(d) = &self.opts.state_dir {
            let path = d.join(format!("{}.state", self.object_name(p)));
            let tmp = path.with_extension("tmp");
            if std::fs::create_dir_all(d)
                .and_then(|()| std::fs::write(&tmp, &bytes))
                .and_then(|()| std::fs::rename(&tmp, &path))
                .is_err()
            {
                tracing::warn!("bus: cannot write {}", path.display());
            }
        }
        Some((self.object_name(p), bytes))
    }

    /// Marks the owned partitions analysed to the end of the known runs.
    pub(super) fn mark_done(&mut self, g: &Generation) {
        let runs: Vec<Run> = g.runs.keys().cloned().collect();
        let Ok(bytes) = postcard::to_stdvec(&runs) else {
            return;
        };
        let marks = g
            .owned
            .iter()
            .map(|&p| (format!("done-{}", self.object_name(p)), bytes.clone()))
            .collect();
        let failed = self.put_many(marks);
        if !failed.is_empty() {
            tracing::warn!("bus: end marks not saved: {}", failed.join(", "));
        }
    }

    /// Every partition (all workers') is marked done for every run this
    /// worker knows. Marks already read that name every known run are not
    /// read again, so a degraded store (a read now and then unanswered)
    /// delays the end by a round, not for as long as one of sixteen reads
    /// fails per round.
    pub(super) fn all_done(&self, g: &mut Generation) -> bool {
        let n = u32::try_from(self.cfg.partitions.max(1)).unwrap_or(u32::MAX);
        let covers = |runs: &Vec<Run>| g.runs.keys().all(|r| runs.contains(r));
        let open: Vec<u32> = (0..n)
            .filter(|p| !g.done_marks.get(p).is_some_and(covers))
            .collect();
        if open.is_empty() {
            return true;
        }
        let names: Vec<String> = open
            .iter()
            .map(|&p| format!("done-{}", self.object_name(p)))
            .collect();
        let mut all = true;
        for (p, got) in open.into_iter().zip(self.fetch_many(&names)) {
            match got.and_then(|b| postcard::from_bytes::<Vec<Run>>(&b).ok()) {
                Some(runs) => {
                    all &= g.runs.keys().all(|r| runs.contains(r));
                    g.done_marks.insert(p, runs);
                }
                None => all = false,
            }
        }
        all
    }

    pub(super) fn save_all(&mut self, g: &mut Generation) {
        let owned = g.owned.clone();
        self.save_snapshots(g, &owned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendezvous_moves_only_the_leavers_share() {
        let three: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let two: Vec<String> = ["a", "c"].iter().map(|s| (*s).to_owned()).collect();
        let mut all = Vec::new();
        for m in &three {
            all.extend(owned_by(m, &three, 64));
        }
        all.sort_unstable();
        assert_eq!(
            all,
            (0..64).collect::<Vec<u32>>(),
            "each partition has one owner"
        );
        for m in ["a", "c"] {
            let before = owned_by(m, &three, 64);
            let after = owned_by(m, &two, 64);
            assert!(
                before.iter().all(|p| after.contains(p)),
                "{m} keeps its partitions"
            );
        }
        for m in &three {
            let n = owned_by(m, &three, 64).len();
            assert!((12..=32).contains(&n), "{m} owns {n} of 64");
        }
        let two: Vec<String> = ["w1", "w2"].iter().map(|s| (*s).to_owned()).collect();
        let n = owned_by("w1", &two, 16).len();
        assert!((4..=12).contains(&n), "w1 owns {n} of 16");
    }
}
