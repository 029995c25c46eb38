//! The project's one classic-pcap writer: µs timestamps, little-endian,
//! version 2.4, Ethernet. The generator writes its captures with it, and the
//! sensor's tests, benches, examples and fuzz smoke build their inputs with
//! it ([`pcap_bytes`] in memory, [`file_header`] and [`record_header`] for
//! deliberately broken files).

use crate::Record;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Magic number of a classic pcap with microsecond timestamps.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length the writer declares unless told otherwise.
pub const SNAPLEN: u32 = 65535;

/// The 24-byte global header: [`MAGIC_US`], version 2.4, zone and sigfigs
/// 0, `snaplen`, Ethernet.
#[must_use]
pub fn file_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    let fields: [&[u8]; 7] = [
        &MAGIC_US.to_le_bytes(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &0i32.to_le_bytes(),
        &0u32.to_le_bytes(),
        &snaplen.to_le_bytes(),
        &LINKTYPE_ETHERNET.to_le_bytes(),
    ];
    let mut at = 0;
    for f in fields {
        h[at..at + f.len()].copy_from_slice(f);
        at += f.len();
    }
    h
}

/// A 16-byte record header, fields as given (a broken file may lie in them).
#[must_use]
pub fn record_header(sec: u32, usec: u32, caplen: u32, len: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    for (i, v) in [sec, usec, caplen, len].into_iter().enumerate() {
        h[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    h
}

/// Writes a classic pcap record by record.
pub struct PcapWriter<W: Write> {
    w: W,
    /// Records written.
    pub records: u64,
    /// Bytes written, the global header included.
    pub bytes: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates `path` (buffered) and writes the global header.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Self::new(BufWriter::with_capacity(1 << 20, File::create(path)?))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (snaplen [`SNAPLEN`]) to `w`.
    ///
    /// # Errors
    /// The write fails.
    pub fn new(mut w: W) -> std::io::Result<Self> {
        w.write_all(&file_header(SNAPLEN))?;
        Ok(Self {
            w,
            records: 0,
            bytes: 24,
        })
    }

    /// Writes one record.
    ///
    /// # Errors
    /// The write fails.
    pub fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.frame(r.ts_us, &r.frame, r.wire)
    }

    /// Writes `frame` captured at `ts_us` (µs since the epoch; seconds beyond
    /// 32 bits saturate) with wire length `wire` (at least the captured
    /// length).
    ///
    /// # Errors
    /// The write fails.
    pub fn frame(&mut self, ts_us: u64, frame: &[u8], wire: u32) -> std::io::Result<()> {
        let secs = u32::try_from(ts_us / 1_000_000).unwrap_or(u32::MAX);
        let us = (ts_us % 1_000_000) as u32;
        let cap = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.w
            .write_all(&record_header(secs, us, cap, wire.max(cap)))?;
        self.w.write_all(frame)?;
        self.records += 1;
        self.bytes += 16 + u64::from(cap);
        Ok(())
    }

    /// Flushes; returns (records, bytes) written.
    ///
    /// # Errors
    /// The flush fails.
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.w.flush()?;
        Ok((self.records, self.bytes))
    }
}

/// A whole capture in memory from (µs timestamp, captured bytes, wire
/// length) records.
#[must_use]
pub fn pcap_bytes<'a>(records: impl IntoIterator<Item = (u64, &'a [u8], u32)>) -> Vec<u8> {
    let mut w = PcapWriter {
        w: file_header(SNAPLEN).to_vec(),
        records: 0,
        bytes: 24,
    };
    for (ts, frame, wire) in records {
        // writing to a Vec cannot fail
        let _ = w.frame(ts, frame, wire);
    }
    w.w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_laid_out_as_libpcap_reads_it() {
        let v = pcap_bytes([(1_772_409_600_000_001, &[7u8, 8, 9][..], 60)]);
        assert_eq!(v.len(), 24 + 16 + 3);
        assert_eq!(v[..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(v[16..20], 65535u32.to_le_bytes());
        assert_eq!(v[24..28], 1_772_409_600u32.to_le_bytes());
        assert_eq!(v[28..32], 1u32.to_le_bytes());
        assert_eq!(v[32..36], 3u32.to_le_bytes());
        assert_eq!(v[36..40], 60u32.to_le_bytes());
        assert_eq!(v[40..], [7, 8, 9]);
        // the wire length is never below the captured length
        let w = pcap_bytes([(0, &[1u8; 10][..], 4)]);
        assert_eq!(w[36..40], 10u32.to_le_bytes());
    }
}
