//! Capture stage: packet sources (pcap/pcapng files, stdin, live interfaces)
//! through libpcap. A source hands out borrowed [`Frame`]s, valid until the
//! next read; nothing is copied here.

panic_free! {
    pub mod chunked;
    pub mod file;
}
pub mod dedup;
pub mod live;
pub mod privdrop;
pub mod watch;

use crate::decode::LinkType;
use crate::time::Ts;

/// One captured frame, borrowed from libpcap's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Ts,
    /// Length on the wire (record header `len`), used for all byte counts.
    pub wire_len: u32,
    pub link: LinkType,
    pub data: &'a [u8],
}

/// What a read produced.
#[derive(Debug)]
pub enum Next<'a> {
    Frame(Frame<'a>),
    /// No packet within the read timeout (live only).
    Idle,
    /// End of this source.
    End,
}

/// A capture problem, naming the input and where it happened.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{input}: cannot open: {msg}")]
    Open { input: String, msg: String },
    #[error(
        "{input}: unsupported link type {dlt} ({name}); supported: Ethernet, Linux SLL/SLL2, raw IPv4/IPv6, BSD null/loopback, PPP, PPPoE, NFLOG, Cisco HDLC, FDDI, 802.11 (plain, radiotap, PPI)"
    )]
    LinkType {
        input: String,
        dlt: i32,
        name: String,
    },
    #[error("{input}: {msg} ({where_})")]
    Read {
        input: String,
        msg: String,
        where_: String,
    },
    #[error("{input}: {msg}")]
    Live { input: String, msg: String },
    /// The BPF filter does not compile (a usage error: exit 2).
    #[error("{input}: BPF filter {bpf:?}: {msg}")]
    Filter {
        input: String,
        bpf: String,
        msg: String,
    },
}

/// Maps a libpcap link type to ours, or a [`CaptureError::LinkType`].
pub(crate) fn link_type(input: &str, dlt: pcap::Linktype) -> Result<LinkType, CaptureError> {
    LinkType::from_dlt(dlt.0).map_err(|n| CaptureError::LinkType {
        input: input.to_owned(),
        dlt: n,
        name: dlt.get_name().unwrap_or_else(|_| "unknown".to_owned()),
    })
}

/// Packet timestamp from a libpcap header opened with nanosecond precision.
pub(crate) fn ts_of(h: &pcap::PacketHeader, nanos: bool) -> Ts {
    // time_t and suseconds_t are i64 here, narrower on other targets
    #[allow(clippy::useless_conversion)]
    let (sec, frac) = (i64::from(h.ts.tv_sec), i64::from(h.ts.tv_usec));
    if nanos {
        crate::time::from_parts(sec, frac)
    } else {
        crate::time::from_parts(sec, frac.saturating_mul(1000))
    }
}
