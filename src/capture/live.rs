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
    totals: StatsTotals,
}

/// Capture statistics from the kernel, 64-bit totals since the capture
/// opened (see [`StatsTotals`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets the kernel passed the filter (including those it dropped).
    pub received: u64,
    /// Dropped by the kernel: the capture buffer was full.
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

impl LiveStats {
    /// Field-wise sum (the totals of successive captures).
    #[must_use]
    pub fn plus(&self, o: &Self) -> Self {
        Self {
            received: self.received + o.received,
            dropped: self.dropped + o.dropped,
            if_dropped: self.if_dropped + o.if_dropped,
        }
    }
}

/// One of libpcap's 32-bit counters accumulated into 64 bits: every read
/// adds the difference to the previous one, modulo 2^32, so a wrap (after
/// 4.29 G packets, 72 minutes at 1 Mpps) is carried, provided it is read
/// at least once per 2^32 counts (deguchi reads every second or so).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counter32 {
    last: u32,
    total: u64,
}

impl Counter32 {
    /// Takes libpcap's current value; returns the 64-bit total.
    pub fn update(&mut self, raw: u32) -> u64 {
        self.total += u64::from(raw.wrapping_sub(self.last));
        self.last = raw;
        self.total
    }

    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The three counters of `pcap_stats`, accumulated.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsTotals {
    received: Counter32,
    dropped: Counter32,
    if_dropped: Counter32,
}

impl StatsTotals {
    /// Takes a `pcap_stats` reading (received, dropped, if_dropped).
    pub fn update(&mut self, received: u32, dropped: u32, if_dropped: u32) -> LiveStats {
        LiveStats {
            received: self.received.update(received),
            dropped: self.dropped.update(dropped),
            if_dropped: self.if_dropped.update(if_dropped),
        }
    }

    #[must_use]
    pub fn get(&self) -> LiveStats {
        LiveStats {
            received: self.received.total(),
            dropped: self.dropped.total(),
            if_dropped: self.if_dropped.total(),
        }
    }
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
            // at most 2047 MiB (config::BUFFER_MB_MAX): fits a C int
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
            cap.filter(bpf, true).map_err(|e| CaptureError::Filter {
                input: iface.to_owned(),
                bpf: bpf.clone(),
                msg: e.to_string(),
            })?;
        }
        let link = link_type(iface, cap.get_datalink())?;
        Ok(Self {
            cap,
            name: iface.to_owned(),
            link,
            poll_ms: timeout,
            totals: StatsTotals::default(),
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

    /// Kernel capture statistics: 64-bit totals, updated from libpcap's
    /// 32-bit counters by this call (call it at least once per 2^32 packets);
    /// the last totals when libpcap cannot be asked (interface gone).
    pub fn stats(&mut self) -> LiveStats {
        match self.cap.stats() {
            Ok(s) => self.totals.update(s.received, s.dropped, s.if_dropped),
            Err(_) => self.totals.get(),
        }
    }

    #[must_use]
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// Joins this (activated) capture socket to AF_PACKET fanout group
    /// `group`: the kernel then hands each packet to one socket of the
    /// group, chosen by the flow hash of the packet (symmetric: both
    /// directions of a flow go to one socket), fragments reassembled first
    /// for the hash (`PACKET_FANOUT_FLAG_DEFRAG`).
    ///
    /// # Errors
    /// The socket is not an AF_PACKET socket, or the group exists with
    /// another mode (another process with the same group id).
    pub fn join_fanout(&self, group: u16) -> Result<(), CaptureError> {
        use std::os::fd::AsRawFd;
        let arg: libc::c_int = fanout_arg(group);
        let fd = self.cap.as_raw_fd();
        let size = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
        #[allow(unsafe_code)]
        // SAFETY: `fd` is the open socket of `self.cap` (alive for this
        // call); `arg` is a c_int on the stack and `size` its size, as
        // setsockopt(2) reads for PACKET_FANOUT.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                std::ptr::from_ref(&arg).cast(),
                size,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(CaptureError::Live {
                input: self.name.clone(),
                msg: format!(
                    "cannot join AF_PACKET fanout group {group}: {}",
                    std::io::Error::last_os_error()
                ),
            })
        }
    }
}

/// The `PACKET_FANOUT` argument: group id in the low 16 bits, mode and
/// flags in the high 16 (hash mode, defragment flag).
#[must_use]
pub fn fanout_arg(group: u16) -> libc::c_int {
    const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
    let mode = libc::PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG;
    libc::c_int::from_ne_bytes((u32::from(group) | (mode << 16)).to_ne_bytes())
}

/// The fanout group id of this process: its pid, folded to 16 bits (two
/// deguchi processes on one host get different groups).
#[must_use]
pub fn fanout_group() -> u16 {
    let pid = std::process::id();
    u16::try_from((pid ^ (pid >> 16)) & 0xffff).unwrap_or(0)
}

/// Opens `n` captures on `iface`; with `n` > 1 each joins fanout group
/// `group` right after it is activated.
///
/// # Errors
/// As [`LiveSource::open`] and [`LiveSource::join_fanout`].
pub fn open_group(
    iface: &str,
    cfg: &CaptureConfig,
    n: usize,
    group: u16,
) -> Result<Vec<LiveSource>, CaptureError> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let s = LiveSource::open(iface, cfg)?;
        if n > 1 {
            s.join_fanout(group)?;
        }
        v.push(s);
    }
    Ok(v)
}

/// The calling thread's scheduling priority raised for a live capture
/// (`capture.priority`); dropping it puts back the nice value it had.
#[derive(Debug)]
pub struct RaisedPriority {
    tid: libc::id_t,
    /// The thread's nice value before, and now.
    pub before: i32,
    pub now: i32,
}

impl Drop for RaisedPriority {
    fn drop(&mut self) {
        // lowering a priority is always permitted
        if self.now != self.before {
            let _ = set_nice(self.tid, self.before);
        }
    }
}

/// Raises the calling thread's scheduling priority to nice `-boost`, or
/// leaves it when it is that high already (never lowers it). Threads it
/// starts afterwards inherit the value (Linux keeps nice per thread).
///
/// # Errors
/// Not permitted: raising a priority takes `CAP_SYS_NICE` or an
/// `RLIMIT_NICE` allowing it (systemd `LimitNICE=`).
pub fn raise_thread_priority(boost: u32) -> std::io::Result<RaisedPriority> {
    #[allow(unsafe_code)]
    // SAFETY: gettid(2) has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() };
    let tid = libc::id_t::try_from(tid).unwrap_or(0);
    let before = get_nice(tid)?;
    let want = -i32::try_from(boost.min(20)).unwrap_or(20);
    if before <= want {
        return Ok(RaisedPriority {
            tid,
            before,
            now: before,
        });
    }
    set_nice(tid, want)?;
    Ok(RaisedPriority {
        tid,
        before,
        now: want,
    })
}

/// Thread `tid`'s nice value (`getpriority(2)`, which may return -1 as a
/// value: errno tells).
fn get_nice(tid: libc::id_t) -> std::io::Result<i32> {
    #[allow(unsafe_code)]
    // SAFETY: errno is this thread's; getpriority(2) only reads its
    // arguments.
    let n = unsafe {
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    };
    if n == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error().is_some_and(|c| c != 0) {
            return Err(e);
        }
    }
    Ok(n)
}

fn set_nice(tid: libc::id_t, nice: i32) -> std::io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: setpriority(2) only reads its arguments.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits until `fd` is readable or `ms` elapse.
fn poll_readable(fd: BorrowedFd<'_>, ms: i32) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let _ = poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_carries_the_32_bit_wrap() {
        let mut c = Counter32::default();
        assert_eq!(c.update(10), 10);
        assert_eq!(c.update(u32::MAX - 5), u64::from(u32::MAX) - 5);
        // wraps: 6 to reach 2^32, 20 more
        assert_eq!(c.update(20), (1u64 << 32) + 20);
        // unchanged reading adds nothing
        assert_eq!(c.update(20), (1u64 << 32) + 20);
        // many wraps, each read within 2^32 counts of the last
        let mut raw = 20u32;
        let mut want = (1u64 << 32) + 20;
        for _ in 0..10 {
            raw = raw.wrapping_add(3_000_000_000);
            want += 3_000_000_000;
            assert_eq!(c.update(raw), want);
        }
        assert!(c.total() > 7 * (1u64 << 32));
    }

    #[test]
    fn fanout_argument_layout() {
        // group 0x1234, PACKET_FANOUT_HASH (0) | PACKET_FANOUT_FLAG_DEFRAG
        assert_eq!(fanout_arg(0x1234), 0x8000_1234_u32 as libc::c_int);
    }

    #[test]
    fn totals_accumulate_every_field() {
        let mut t = StatsTotals::default();
        t.update(u32::MAX, 7, 0);
        let s = t.update(5, 9, 1);
        assert_eq!(
            s,
            LiveStats {
                received: u64::from(u32::MAX) + 6,
                dropped: 9,
                if_dropped: 1,
            }
        );
        assert_eq!(t.get(), s);
    }
}
