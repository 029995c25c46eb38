//! Detector state that survives a restart: baselines and beacon series,
//! snapshotted periodically (packet time) and at shutdown, loaded at start.
//!
//! File layout (little-endian):
//! ```text
//! "DGCHSTAT" | version u32 | payload length u64 | FNV-1a-64 of payload | payload
//! payload = postcard(Envelope { saved_at, sections: [(detector name, postcard bytes)] })
//! ```
//! Written to `PATH.tmp`, fsynced, renamed over `PATH` and the directory
//! fsynced: a crash leaves the old or the new snapshot, never half of one.
//! A file that is corrupt, truncated or of another version is reported,
//! renamed to `PATH.bad-<unix time>` (set aside, never deleted) and the
//! sensor starts fresh; it never stops the sensor.

use crate::time::Ts;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"DGCHSTAT";
/// Bumped whenever a detector's snapshot layout changes.
pub const VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 8;

#[derive(Serialize, Deserialize, Debug, Default)]
pub struct Envelope {
    pub saved_at: Ts,
    pub sections: Vec<(String, Vec<u8>)>,
}

/// Serialises an envelope with its header.
#[must_use]
pub fn encode(env: &Envelope) -> Vec<u8> {
    let payload = postcard::to_stdvec(env).unwrap_or_default();
    let mut v = Vec::with_capacity(HEADER + payload.len());
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&VERSION.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    v.extend_from_slice(&crate::fnv1a(payload.iter().copied()).to_le_bytes());
    v.extend_from_slice(&payload);
    v
}

/// Parses a state file's bytes.
///
/// # Errors
/// What is wrong with it, in words.
pub fn decode(b: &[u8]) -> Result<Envelope, String> {
    let head = b
        .get(..HEADER)
        .ok_or_else(|| format!("truncated header ({} bytes)", b.len()))?;
    if &head[..8] != MAGIC {
        return Err("not a deguchi state file (bad magic)".into());
    }
    let word = |r: std::ops::Range<usize>| -> u64 {
        let mut a = [0u8; 8];
        a[..r.len()].copy_from_slice(&head[r]);
        u64::from_le_bytes(a)
    };
    let version = word(8..12);
    if version != u64::from(VERSION) {
        return Err(format!(
            "state format version {version}, this deguchi reads version {VERSION}"
        ));
    }
    let len = usize::try_from(word(12..20)).map_err(|_| "absurd length")?;
    let sum = word(20..28);
    let payload = b
        .get(HEADER..)
        .filter(|p| p.len() == len)
        .ok_or_else(|| format!("payload is {} bytes, header says {len}", b.len() - HEADER))?;
    if crate::fnv1a(payload.iter().copied()) != sum {
        return Err("checksum mismatch (corrupt)".into());
    }
    postcard::from_bytes(payload).map_err(|e| format!("undecodable payload: {e}"))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
///
/// # Errors
/// The I/O error, with the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Loads the state at `path`: `None` when there is none or it was set aside.
/// Problems are logged, never fatal.
#[must_use]
pub fn load(path: &Path) -> Option<Envelope> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!("state {}: none yet, starting fresh", path.display());
            return None;
        }
        Err(e) => {
            tracing::warn!(
                "state {}: cannot read ({e}); starting fresh",
                path.display()
            );
            return None;
        }
    };
    match decode(&bytes) {
        Ok(env) => Some(env),
        Err(why) => {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".bad-{secs}"));
            let aside = PathBuf::from(aside);
            match std::fs::rename(path, &aside) {
                Ok(()) => tracing::warn!(
                    "state {}: {why}; set aside as {} and starting fresh",
                    path.display(),
                    aside.display()
                ),
                Err(e) => tracing::warn!(
                    "state {}: {why}; could not set it aside ({e}); starting fresh",
                    path.display()
                ),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_corruption_is_an_error() {
        let env = Envelope {
            saved_at: 42,
            sections: vec![("beacon".into(), vec![1, 2, 3])],
        };
        let b = encode(&env);
        let back = decode(&b).unwrap();
        assert_eq!(back.saved_at, 42);
        assert_eq!(back.sections, env.sections);
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err());
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(decode(&c).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn bad_file_is_set_aside() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.bin");
        std::fs::write(&p, b"garbage").unwrap();
        assert!(load(&p).is_none());
        assert!(!p.exists());
        let aside: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(aside.len(), 1);
        write_atomic(&p, &encode(&Envelope::default())).unwrap();
        assert!(load(&p).is_some());
    }
}
