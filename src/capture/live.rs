//! Live source: libpcap on an interface, non-blocking, woken by `poll(2)`.
//!
//! With libpcap 1.10 on Linux a blocking read may not return on its timeout
//! while the interface is idle (libpcap issues #1001, #1489). So the handle is
//! non-blocking and we `poll` its selectable fd with our own timeout: shutdown,
//! batch flushing and periodic statistics never wait for a packet.

use super::{CaptureError, Frame, Next, link_type, ts_of};
use crate::config::CaptureConfig;
use crate::decode::LinkType;
use pcap::{Active, Capture};
use std::os::fd::{AsFd, BorrowedFd};

pub struct LiveSource {
    cap: Capture<Active>,
    name: String,
    link: LinkType,
    poll_ms: i32,
}

/// Capture statistics from the kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiveStats {
    pub received: u64,
    pub dropped: u64,
    pub if_dropped: u64,
}

impl LiveSource {
    /// Opens and activates `iface`.
    ///
    /// # Errors
    /// The interface cannot be opened (missing, no permission), the BPF filter
    /// does not compile, or the link type is unsupported.
    pub fn open(iface: &str, cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        let err = |msg: String| CaptureError::Live {
            input: iface.to_owned(),
            msg,
        };
        let timeout = i32::try_from(cfg.read_timeout_ms).unwrap_or(100);
        let cap = Capture::from_device(iface)
            .map_err(|e| err(format!("cannot open interface: {e}")))?
            .promisc(cfg.promisc)
            .snaplen(i32::try_from(cfg.snaplen).unwrap_or(65535))
            .buffer_size(i32::try_from(u64::from(cfg.buffer_mb) << 20).unwrap_or(i32::MAX))
            .timeout(timeout)
            .immediate_mode(cfg.immediate)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(|e| err(format!("cannot start capture: {e}")))?;
        let mut cap = cap
            .setnonblock()
            .map_err(|e| err(format!("cannot set non-blocking mode: {e}")))?;
        if let Some(bpf) = &cfg.bpf {
            cap.filter(bpf, true)
                .map_err(|e| err(format!("BPF filter {bpf:?}: {e}")))?;
        }
        let link = link_type(iface, cap.get_datalink())?;
        Ok(Self {
            cap,
            name: iface.to_owned(),
            link,
            poll_ms: timeout,
        })
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame without waiting; `Idle` when none is buffered.
    ///
    /// # Errors
    /// A capture failure (interface gone, ...).
    // a lending reader (the frame borrows the source), so not an Iterator
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Next<'_>, CaptureError> {
        let link = self.link;
        match self.cap.next_packet() {
            Ok(p) => Ok(Next::Frame(Frame {
                ts: ts_of(p.header, true),
                wire_len: p.header.len.max(p.header.caplen),
                link,
                data: p.data,
            })),
            Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => Ok(Next::Idle),
            Err(e) => Err(CaptureError::Live {
                input: self.name.clone(),
                msg: e.to_string(),
            }),
        }
    }

    /// Waits until a packet is readable or the read timeout elapses.
    pub fn wait(&self) {
        poll_readable(self.cap.as_fd(), self.poll_ms);
    }

    /// Kernel capture statistics.
    #[must_use]
    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: u64::from(s.received),
            dropped: u64::from(s.dropped),
            if_dropped: u64::from(s.if_dropped),
        })
    }

    #[must_use]
    pub fn link(&self) -> LinkType {
        self.link
    }
}

/// Waits until `fd` is readable or `ms` elapse.
fn poll_readable(fd: BorrowedFd<'_>, ms: i32) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout);
}
