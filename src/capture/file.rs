//! Offline source: one pcap or pcapng file (or `-` for stdin) through libpcap.
//!
//! libpcap reads classic pcap (µs and ns, either byte order) and pcapng
//! (several interfaces with their own timestamp resolutions); we open with
//! nanosecond precision so no resolution is lost. On a read error the error
//! names the file, the record number and (for a file, pcap or pcapng) the
//! byte offset of the record or block that could not be read, read off the
//! disk after the fault. Everything read before stays read.

use super::chunked::ChunkedFile;
use super::{CaptureError, Frame, Next, link_type, ts_of};
use crate::decode::LinkType;
use pcap::{Capture, Offline, Precision};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct FileSource {
    cap: Capture<Offline>,
    name: String,
    /// The file, for locating a fault (None for stdin).
    path: Option<PathBuf>,
    link: LinkType,
    /// Byte offset of the next record (classic pcap only).
    offset: Option<u64>,
    /// Records read so far.
    pub records: u64,
    /// Total bytes of the file, when known.
    pub size: Option<u64>,
}

fn classic_magic(path: &Path) -> Option<bool> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut m = [0u8; 4];
    f.read_exact(&mut m).ok()?;
    let le = u32::from_le_bytes(m);
    Some(matches!(
        le,
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1
    ))
}

/// Relays stdin into a pipe that libpcap reads, polling so that a stop
/// request is seen within 100 ms even while the writer of stdin stays silent:
/// libpcap's own blocking read of stdin would not return on SIGTERM (the
/// signal handlers restart system calls). On stop the relay closes the pipe,
/// libpcap sees the end of the input, and the pipeline drains as usual.
fn stdin_relay(stop: Arc<AtomicBool>) -> std::io::Result<(PathBuf, std::os::fd::OwnedFd)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Write;
    use std::os::fd::AsFd;
    let (r, w) = nix::unistd::pipe().map_err(std::io::Error::from)?;
    let input = std::io::stdin().as_fd().try_clone_to_owned()?;
    std::thread::Builder::new()
        .name("stdin-relay".into())
        .spawn(move || {
            let mut input = std::fs::File::from(input);
            let mut out = std::fs::File::from(w);
            let mut buf = vec![0u8; 1 << 16];
            while !stop.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::from(100u16)) {
                    Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                    Ok(_) => {}
                    Err(_) => break,
                }
                match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if out.write_all(buf.get(..n).unwrap_or(&[])).is_err() {
                            break; // the reader is gone
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        })?;
    // libpcap opens the pipe's read end by name (its own descriptor)
    let path = PathBuf::from(format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&r)));
    Ok((path, r))
}

impl FileSource {
    /// Opens `path`; `-` is stdin, read through a relay that honours `stop`.
    ///
    /// # Errors
    /// As [`FileSource::open`].
    pub fn open_stoppable(path: &Path, stop: &Arc<AtomicBool>) -> Result<Self, CaptureError> {
        if path.as_os_str() != "-" {
            return Self::open(path);
        }
        let (relay, fd) = stdin_relay(Arc::clone(stop)).map_err(|e| CaptureError::Open {
            input: "-".into(),
            msg: format!("cannot read stdin: {e}"),
        })?;
        let mut s = Self::open_as(&relay, "-")?;
        drop(fd);
        s.path = None;
        s.offset = None;
        s.size = None;
        Ok(s)
    }

    /// Opens `path` (`-` = stdin).
    ///
    /// # Errors
    /// The file cannot be opened, is not a capture file, or has an unsupported link type.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Self::open_as(path, &path.display().to_string())
    }

    fn open_as(path: &Path, name: &str) -> Result<Self, CaptureError> {
        let name = name.to_owned();
        let is_stdin = path.as_os_str() == "-" || name == "-";
        if !is_stdin {
            let meta = std::fs::metadata(path).map_err(|e| CaptureError::Open {
                input: name.clone(),
                msg: e.to_string(),
            })?;
            if meta.is_dir() {
                return Err(CaptureError::Open {
                    input: name,
                    msg: "is a directory".to_owned(),
                });
            }
            if meta.len() == 0 {
                return Err(CaptureError::Open {
                    input: name,
                    msg: "empty file (0 bytes): not a pcap or pcapng capture".to_owned(),
                });
            }
        }
        let cap = Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| {
            CaptureError::Open {
                input: name.clone(),
                msg: explain_open(&e.to_string(), path, is_stdin),
            }
        })?;
        let link = link_type(&name, cap.get_datalink())?;
        let offset = if is_stdin {
            None
        } else {
            classic_magic(path).and_then(|c| c.then_some(24))
        };
        let size = if is_stdin {
            None
        } else {
            std::fs::metadata(path).ok().map(|m| m.len())
        };
        Ok(Self {
            cap,
            name,
            path: (!is_stdin).then(|| path.to_path_buf()),
            link,
            offset,
            records: 0,
            size,
        })
    }

    /// The fast reader for this file, when it is a regular file in classic
    /// pcap format and the host's byte order (see [`ChunkedFile`]).
    #[must_use]
    pub fn chunked(&self) -> Option<ChunkedFile> {
        let path = self.path.as_deref()?;
        if self.offset.is_none() || !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        ChunkedFile::open(path, &self.name, self.link)
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes consumed so far (classic pcap only), for progress.
    #[must_use]
    pub fn position(&self) -> Option<u64> {
        self.offset
    }

    /// Reads the next frame.
    ///
    /// # Errors
    /// A truncated or corrupt record, naming file, record number and byte offset.
    // a lending reader (the frame borrows the source), so not an Iterator
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.records += 1;
                if let Some(o) = self.offset.as_mut() {
                    *o += 16 + u64::from(p.header.caplen);
                }
                Ok(Next::Frame(Frame {
                    ts: ts_of(p.header, true),
                    wire_len: p.header.len.max(p.header.caplen),
                    link: self.link,
                    data: p.data,
                }))
            }
            Err(pcap::Error::NoMorePackets) => Ok(Next::End),
            Err(e) => {
                // libpcap cuts records longer than the snaplen to the snaplen, so
                // the running offset can fall short: read the offset off the disk
                let at = self
                    .path
                    .as_deref()
                    .and_then(|p| fault_offset(p, self.records))
                    .filter(|o| self.size.is_none_or(|s| *o <= s))
                    .or(self.offset);
                let where_ = match at {
                    Some(o) => format!("record {}, at byte offset {o}", self.records + 1),
                    None => format!("record {}", self.records + 1),
                };
                Err(CaptureError::Read {
                    input: self.name.clone(),
                    msg: e.to_string(),
                    where_,
                })
            }
        }
    }
}

/// Byte offset where the record after the first `records` starts, walked
/// from the record headers (classic pcap) or block lengths (pcapng) on disk;
/// for pcapng, the first block after those records that libpcap may have
/// failed on (a packet block or a malformed one). None when the file does
/// not let us know.
fn fault_offset(path: &Path, records: u64) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let size = f.metadata().ok()?.len();
    let mut r = BufReader::new(f);
    let mut b4 = [0u8; 4];
    r.read_exact(&mut b4).ok()?;
    let u32_at = |b: [u8; 4], be: bool| {
        if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    match b4 {
        [0xa1, 0xb2, 0xc3, 0xd4]
        | [0xa1, 0xb2, 0x3c, 0x4d]
        | [0xd4, 0xc3, 0xb2, 0xa1]
        | [0x4d, 0x3c, 0xb2, 0xa1] => {
            let be = b4[0] == 0xa1;
            let mut g = [0u8; 20];
            r.read_exact(&mut g).ok()?;
            let version = u32_at([g[0], g[1], g[2], g[3]], be);
            let (major, minor) = if be {
                (version >> 16, version & 0xffff)
            } else {
                (version & 0xffff, version >> 16)
            };
            // before version 2.3, caplen and len were stored the other way round
            let at = if (major, minor) < (2, 3) { 12 } else { 8 };
            let mut off = 24u64;
            let mut h = [0u8; 16];
            for _ in 0..records {
                r.read_exact(&mut h).ok()?;
                let caplen = u32_at(h.get(at..at + 4)?.try_into().ok()?, be);
                r.seek_relative(i64::from(caplen)).ok()?;
                off += 16 + u64::from(caplen);
            }
            Some(off)
        }
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let (mut off, mut seen, mut be) = (0u64, 0u64, false);
            let mut h = [0u8; 12];
            while off < size {
                r.seek(SeekFrom::Start(off)).ok()?;
                if r.read_exact(&mut h).is_err() {
                    return Some(off);
                }
                let btype = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
                if btype == 0x0a0d_0d0a {
                    be = h[8..12] == [0x1a, 0x2b, 0x3c, 0x4d];
                }
                let len = u64::from(u32_at([h[4], h[5], h[6], h[7]], be));
                let packet = matches!(u32_at([h[0], h[1], h[2], h[3]], be), 2 | 3 | 6);
                let valid = len >= 12 && len % 4 == 0 && off + len <= size;
                if seen == records && (packet || !valid) {
                    return Some(off);
                }
                if !valid {
                    return None;
                }
                seen += u64::from(packet);
                off += len;
            }
            Some(off)
        }
        _ => None,
    }
}

fn explain_open(msg: &str, path: &Path, is_stdin: bool) -> String {
    if msg.contains("unknown file format") {
        format!("{msg}: not a pcap or pcapng capture (bad magic number)")
    } else if msg.contains("file header bytes") {
        // libpcap counts what it got after the 4-byte magic number
        match std::fs::metadata(path) {
            Ok(m) if !is_stdin => format!(
                "{msg}: the file is {} bytes, shorter than a capture file header",
                m.len()
            ),
            _ => format!("{msg}: input shorter than a capture file header"),
        }
    } else {
        msg.to_owned()
    }
}
