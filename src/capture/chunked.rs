//! Offline fast path: a classic pcap file read in large chunks, its records
//! handed out in place.
//!
//! libpcap's offline reader copies every record twice (kernel -> stdio
//! buffer -> libpcap's buffer) and the pipeline then copied it a third time
//! into a shard's batch; on a file of small packets that per-record work was
//! most of the capture thread's time. Here the file is `read(2)` in chunks of
//! [`CHUNK`] bytes into reusable buffers shared (`Arc`) with the shards, and
//! a record is only its offset and length inside a chunk: nothing is copied
//! per packet.
//!
//! libpcap stays the authority on the file: [`super::file::FileSource`] opens
//! every file through libpcap first (header checks, link type, errors), and
//! only a classic pcap file in the host's byte order comes here. pcapng,
//! byte-swapped files (whose pseudo-headers libpcap rewrites in place), the
//! rare pcap variants and stdin stay on libpcap. Records are read exactly as
//! libpcap's `sf-pcap.c` reads them: the caplen/len swap of files older than
//! version 2.4, records longer than the snapshot length cut to it, a caplen
//! over 262144 (libpcap's maximum for every link type we decode) refused, a
//! truncated last record reported. `tests/chunked.rs` checks the records
//! against libpcap's on every real capture and on damaged files.
//!
//! Unlike an `mmap`, a file truncated by another process while it is read
//! cannot crash the reader (SIGBUS): it just ends early. Memory stays
//! bounded: a chunk is reused once every batch that points into it has been
//! processed, so the buffers in use are bounded by the batches in flight.

use super::CaptureError;
use crate::decode::LinkType;
use crate::time::Ts;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// Bytes read per chunk. Large enough that the per-chunk costs (a read,
/// a flush of pending batches) vanish, small enough that the chunks held by
/// batches in flight stay a few MiB.
pub const CHUNK: usize = 512 * 1024;

/// libpcap's `MAXIMUM_SNAPLEN`: the largest caplen it accepts for the link
/// types deguchi decodes (`max_snaplen_for_dlt`).
const MAX_CAPLEN: u32 = 262_144;

/// One record inside a chunk: its bytes are `chunk[off..off + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rec {
    pub ts: Ts,
    /// Length on the wire (at least the captured length).
    pub wire_len: u32,
    pub off: u32,
    pub len: u32,
}

/// A buffer of file bytes, shared with the batches that point into it.
pub type Chunk = Arc<Vec<u8>>;

/// How record header lengths are stored (libpcap's `lengths_swapped`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lengths {
    Normal,
    /// Files before version 2.3 store len before caplen.
    Swapped,
    /// Version 2.3 files may or may not: swapped when caplen > len.
    Maybe,
}

/// A classic pcap file being read chunk by chunk.
pub struct ChunkedFile {
    file: File,
    name: String,
    link: LinkType,
    nanos: bool,
    lengths: Lengths,
    /// The file's snapshot length as libpcap uses it.
    snapshot: u32,
    /// Chunks, reused once no batch points into them.
    pool: Vec<Chunk>,
    /// The chunk read last, whose unfinished tail starts the next one.
    cur: Option<Chunk>,
    /// `cur[tail.0..tail.1]`: the start of a record not yet complete.
    tail: (usize, usize),
    /// Bytes the next chunk must hold at least (a record larger than [`CHUNK`]).
    need: usize,
    eof: bool,
    /// An error met after the records already handed out; returned next.
    failed: Option<CaptureError>,
    /// File offset of the next record.
    offset: u64,
    /// Records read so far.
    pub records: u64,
    /// Total bytes of the file.
    pub size: u64,
}

/// The host-order `u32` at `b[i..i + 4]` (pcap files in the host's byte
/// order are the only ones this reader takes).
fn ne_u32(b: &[u8], i: usize) -> Option<u32> {
    b.get(i..i + 4)
        .and_then(|x| x.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// What the 24-byte header of a file says, when the fast path can read it.
fn fast_header(h: &[u8; 24]) -> Option<(bool, Lengths, u32)> {
    let u32_at = |i: usize| ne_u32(h, i);
    let u16_at = |i: usize| {
        h.get(i..i + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_ne_bytes)
    };
    let nanos = match u32_at(0)? {
        0xa1b2_c3d4 => false,
        0xa1b2_3c4d => true,
        _ => return None, // byte-swapped or a variant: libpcap reads it
    };
    let (major, minor) = (u16_at(4)?, u16_at(6)?);
    let lengths = match (major, minor) {
        (2, m) if m < 3 => Lengths::Swapped,
        (2, 3) => Lengths::Maybe,
        (2, _) => Lengths::Normal,
        _ => return None,
    };
    let snap = u32_at(16)?;
    let snapshot = if snap == 0 || snap > MAX_CAPLEN {
        MAX_CAPLEN
    } else {
        snap
    };
    Some((nanos, lengths, snapshot))
}

impl ChunkedFile {
    /// Opens `path` for the fast path, after libpcap accepted it with link
    /// type `link`; None when the file is not a classic pcap file in the
    /// host's byte order (libpcap reads those).
    #[must_use]
    pub fn open(path: &Path, name: &str, link: LinkType) -> Option<Self> {
        let mut file = File::open(path).ok()?;
        let size = file.metadata().ok()?.len();
        let mut h = [0u8; 24];
        file.read_exact(&mut h).ok()?;
        let (nanos, lengths, snapshot) = fast_header(&h)?;
        Some(Self {
            file,
            name: name.to_owned(),
            link,
            nanos,
            lengths,
            snapshot,
            pool: Vec::new(),
            cur: None,
            tail: (0, 0),
            need: CHUNK,
            eof: false,
            failed: None,
            offset: 24,
            records: 0,
            size,
        })
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Bytes consumed so far, for progress.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// A buffer of at least `need` bytes no batch points into.
    fn free_chunk(&mut self, need: usize) -> Chunk {
        let free = self
            .pool
            .iter_mut()
            .position(|c| c.len() >= need && Arc::get_mut(c).is_some());
        match free {
            Some(i) => self.pool.swap_remove(i),
            None => Arc::new(vec![0u8; need.max(CHUNK)]),
        }
    }

    fn read_error(&self, msg: String) -> CaptureError {
        CaptureError::Read {
            input: self.name.clone(),
            msg,
            where_: format!(
                "record {}, at byte offset {}",
                self.records + 1,
                self.offset
            ),
        }
    }

    /// Reads the next chunk and appends its complete records to `recs`
    /// (cleared first). `Ok(None)` at the end of the file. An error after
    /// some records is returned by the next call, so those records are
    /// handed out first.
    ///
    /// # Errors
    /// A read error, a corrupt record header or a truncated last record,
    /// naming the file, the record number and its byte offset.
    pub fn next_chunk(&mut self, recs: &mut Vec<Rec>) -> Result<Option<Chunk>, CaptureError> {
        recs.clear();
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let (t0, t1) = self.tail;
        if self.eof && t1 == t0 {
            return Ok(None);
        }
        let mut chunk = self.free_chunk(self.need);
        let Some(buf) = Arc::get_mut(&mut chunk) else {
            return Ok(None); // unreachable: a fresh or unshared chunk
        };
        // the unfinished record from the previous chunk comes first
        let mut filled = t1 - t0;
        if let (Some(src), Some(dst)) = (
            self.cur.as_ref().and_then(|prev| prev.get(t0..t1)),
            buf.get_mut(..filled),
        ) {
            dst.copy_from_slice(src);
        }
        let mut io_err = None;
        while !self.eof && filled < buf.len() {
            match self.file.read(buf.get_mut(filled..).unwrap_or(&mut [])) {
                Ok(0) => self.eof = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    io_err = Some(e.to_string());
                }
            }
        }
        let (end, err) = self.walk(buf.get(..filled).unwrap_or(&[]), recs);
        if let Some(msg) = io_err.or(err) {
            // a read error comes first: it may be why the last record is cut
            self.eof = true;
            self.failed = Some(self.read_error(msg));
            self.tail = (0, 0);
        } else {
            self.tail = (end, filled);
        }
        if let Some(prev) = self.cur.replace(Arc::clone(&chunk)) {
            self.pool.push(prev);
        }
        if recs.is_empty() {
            // nothing complete yet (a record larger than a chunk): go on
            return match self.failed.take() {
                Some(e) => Err(e),
                None if self.eof && self.tail.0 == self.tail.1 => Ok(None),
                None => self.next_chunk(recs),
            };
        }
        Ok(Some(chunk))
    }

    /// Walks the records in `b`; returns where the first incomplete one
    /// starts and, at the end of the file or on a bad header, the error.
    fn walk(&mut self, b: &[u8], recs: &mut Vec<Rec>) -> (usize, Option<String>) {
        let mut p = 0usize;
        self.need = CHUNK;
        loop {
            let Some(h) = b.get(p..p + 16) else {
                let left = b.len() - p;
                return if self.eof && left > 0 {
                    (
                        p,
                        Some(format!(
                            "truncated dump file; tried to read 16 header bytes, only got {left}"
                        )),
                    )
                } else {
                    (p, None)
                };
            };
            let w = |i: usize| ne_u32(h, i).unwrap_or(0);
            let (sec, frac) = (w(0).cast_signed(), w(4).cast_signed());
            let (mut caplen, mut len) = (w(8), w(12));
            match self.lengths {
                Lengths::Swapped => std::mem::swap(&mut caplen, &mut len),
                Lengths::Maybe if caplen > len => std::mem::swap(&mut caplen, &mut len),
                _ => {}
            }
            if caplen > MAX_CAPLEN {
                return (
                    p,
                    Some(format!(
                        "invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}"
                    )),
                );
            }
            let body = caplen as usize;
            let Some(data_end) = (p + 16).checked_add(body).filter(|e| *e <= b.len()) else {
                if self.eof {
                    let got = b.len() - p - 16;
                    return (
                        p,
                        Some(format!(
                            "truncated dump file; tried to read {caplen} captured bytes, only got {got}"
                        )),
                    );
                }
                self.need = (16 + body).max(CHUNK);
                return (p, None);
            };
            let (Ok(off), Ok(kept)) = (u32::try_from(p + 16), u32::try_from(body)) else {
                return (p, Some("record beyond 4 GiB in one chunk".to_owned()));
            };
            // libpcap cuts a record longer than the snapshot length to it
            let kept = kept.min(self.snapshot);
            let nanos = if self.nanos {
                i64::from(frac)
            } else {
                i64::from(frac).saturating_mul(1000)
            };
            recs.push(Rec {
                ts: crate::time::from_parts(i64::from(sec), nanos),
                wire_len: len.max(kept),
                off,
                len: kept,
            });
            self.records += 1;
            self.offset += 16 + u64::from(caplen);
            p = data_end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, major: u16, minor: u16, snap: u32) -> Vec<u8> {
        let mut h = magic.to_ne_bytes().to_vec();
        h.extend_from_slice(&major.to_ne_bytes());
        h.extend_from_slice(&minor.to_ne_bytes());
        h.extend_from_slice(&[0; 8]);
        h.extend_from_slice(&snap.to_ne_bytes());
        h.extend_from_slice(&1u32.to_ne_bytes());
        h
    }

    fn record(sec: u32, frac: u32, caplen: u32, len: u32, fill: u8) -> Vec<u8> {
        let mut r = Vec::new();
        for v in [sec, frac, caplen, len] {
            r.extend_from_slice(&v.to_ne_bytes());
        }
        r.extend(std::iter::repeat_n(fill, caplen as usize));
        r
    }

    fn read_all(bytes: &[u8]) -> (Vec<(Rec, Vec<u8>)>, Option<String>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.pcap");
        std::fs::write(&p, bytes).unwrap();
        let mut f = ChunkedFile::open(&p, "t.pcap", LinkType::Ethernet).unwrap();
        let (mut out, mut recs) = (Vec::new(), Vec::new());
        loop {
            match f.next_chunk(&mut recs) {
                Ok(Some(c)) => {
                    for r in &recs {
                        out.push((*r, c[r.off as usize..(r.off + r.len) as usize].to_vec()));
                    }
                }
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn records_across_chunks_and_larger_than_a_chunk() {
        let mut f = header(0xa1b2_c3d4, 2, 4, 65535);
        let sizes = [60u32, 1514, 200_000, 70, 262_144, 9];
        let mut n = 0;
        while f.len() < 3 * CHUNK {
            let s = sizes[n % sizes.len()];
            f.extend(record(100 + n as u32, 5, s, s + 4, n as u8));
            n += 1;
        }
        let (recs, err) = read_all(&f);
        assert_eq!(err, None);
        assert_eq!(recs.len(), n);
        for (i, (r, d)) in recs.iter().enumerate() {
            let s = sizes[i % sizes.len()].min(65535);
            assert_eq!(r.len, s, "record {i} cut to the snapshot length");
            assert_eq!(r.wire_len, sizes[i % sizes.len()] + 4);
            assert_eq!(r.ts, (100 + i as i64) * 1_000_000_000 + 5_000);
            assert!(d.iter().all(|b| *b == i as u8));
        }
    }

    #[test]
    fn truncated_and_corrupt_files_keep_what_came_before() {
        let mut f = header(0xa1b2_3c4d, 2, 4, 0);
        f.extend(record(1, 7, 60, 60, 1));
        f.extend(record(2, 7, 60, 60, 2));
        let whole = f.len();
        f.extend(record(3, 7, 60, 60, 3));
        let (recs, err) = read_all(&f[..f.len() - 10]);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].0.ts, 2_000_000_007, "nanosecond file");
        let err = err.unwrap();
        assert!(
            err.contains("tried to read 60 captured bytes, only got 50")
                && err.contains(&format!("record 3, at byte offset {whole}")),
            "{err}"
        );
        let (recs, err) = read_all(&f[..whole + 5]);
        assert_eq!(recs.len(), 2);
        assert!(err.unwrap().contains("16 header bytes, only got 5"));
        let mut bad = f[..whole].to_vec();
        bad.extend(record(3, 0, 0, 0, 0));
        bad[whole + 8..whole + 12].copy_from_slice(&u32::MAX.to_ne_bytes());
        let (recs, err) = read_all(&bad);
        assert_eq!(recs.len(), 2);
        assert!(
            err.unwrap()
                .contains("invalid packet capture length 4294967295")
        );
    }

    #[test]
    fn old_versions_swap_lengths_and_variants_are_left_to_libpcap() {
        let mut f = header(0xa1b2_c3d4, 2, 2, 65535);
        let mut r = record(1, 0, 60, 60, 1);
        r[8..12].copy_from_slice(&100u32.to_ne_bytes()); // len first
        f.extend(r);
        let (recs, _) = read_all(&f);
        assert_eq!((recs[0].0.len, recs[0].0.wire_len), (60, 100));
        assert!(fast_header(&header(0xa1b2_c3d4, 2, 4, 0).try_into().unwrap()).is_some());
        let swapped = header(0xa1b2_c3d4u32.swap_bytes(), 2, 4, 0);
        assert!(fast_header(&swapped.try_into().unwrap()).is_none());
        assert!(fast_header(&header(0xa1b2_cd34, 2, 4, 0).try_into().unwrap()).is_none());
    }
}
