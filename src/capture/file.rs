//! Offline source: one pcap or pcapng file (or `-` for stdin) through libpcap.
//!
//! libpcap reads classic pcap (µs and ns, either byte order) and pcapng
//! (several interfaces with their own timestamp resolutions); we open with
//! nanosecond precision so no resolution is lost. On a read error the error
//! names the file, the record number and, for classic pcap, the byte offset
//! of the record that could not be read. Everything read before stays read.

use super::{CaptureError, Frame, Next, link_type, ts_of};
use crate::decode::LinkType;
use pcap::{Capture, Offline, Precision};
use std::io::Read;
use std::path::Path;

pub struct FileSource {
    cap: Capture<Offline>,
    name: String,
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

impl FileSource {
    /// Opens `path` (`-` = stdin).
    ///
    /// # Errors
    /// The file cannot be opened, is not a capture file, or has an unsupported link type.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        let is_stdin = path.as_os_str() == "-";
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
                msg: explain_open(&e.to_string()),
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
            link,
            offset,
            records: 0,
            size,
        })
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
                let where_ = match self.offset {
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

fn explain_open(msg: &str) -> String {
    if msg.contains("unknown file format") {
        format!("{msg}: not a pcap or pcapng capture (bad magic number)")
    } else {
        msg.to_owned()
    }
}
