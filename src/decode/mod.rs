//! Decode stage: one captured frame (`&[u8]` plus its link type) becomes a
//! [`PacketMeta`], a small `Copy` summary with no borrow and no heap.
//!
//! Contract
//! - Total: any byte sequence returns `Ok(meta)` or a [`DecodeError`]; no
//!   input panics (no unchecked indexing: every read goes through `get`).
//! - No allocation: the only growth is the caller's reusable `arena`, into
//!   which the first bytes of the few payloads worth a hint (TLS ClientHello,
//!   HTTP request, DNS) are copied; the arena is cleared per batch, so its
//!   capacity is reused.
//! - Byte counts use the wire length from the capture record, never the
//!   captured length.
//!
//! Layers: link (Ethernet, Linux SLL/SLL2, raw IPv4/IPv6, BSD null/loop, PPP,
//! PPP-in-HDLC, PPPoE, NFLOG, Cisco HDLC, FDDI, 802.11 with radiotap or PPI) -> any stack of 802.1Q / 802.1ad / QinQ tags,
//! VN-Tag, MPLS labels (with pseudowire control word), PPPoE session, LLC/SNAP
//! -> IPv4 (with options) / IPv6 (with extension headers) via `etherparse`
//! -> TCP, UDP, ICMP, ICMPv6 by hand (ports, flags, lengths only).
//!
//! Tunnels are decoded to the **inner** flow: GRE (IPv4/IPv6/transparent
//! Ethernet bridging/PPP, ERSPAN type I/II/III), VXLAN (UDP 4789 and 8472),
//! VXLAN-GPE (UDP 4790), Geneve (UDP 6081), IP-in-IP (4in4, 6in4, 4in6, 6in6), Teredo (UDP 3544)
//! and GTP-U (UDP 2152). The packet's whole wire length is counted on the
//! inner flow and `tunnel` names the outermost tunnel. If the inner packet
//! cannot be decoded the packet stays on the outer flow (counted as
//! `tunnel_inner_undecodable`). Mirror feeds delivered by ERSPAN or VXLAN are
//! therefore analysed as the traffic they carry.
//!
//! IP fragments: the first fragment carries the ports and joins its 5-tuple
//! flow; later fragments have no transport header and are attributed to the
//! IP pair (a flow keyed by addresses and protocol with ports 0). No
//! reassembly.

use crate::time::Ts;
use etherparse::LaxIpSlice;

/// Link types deguchi decodes (libpcap `DLT_*` values, see [`LinkType::from_dlt`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// BSD loopback, address family in host byte order.
    Null,
    /// OpenBSD loopback, address family in network byte order.
    Loop,
    /// Raw IP, version from the first nibble.
    Raw,
    Ipv4,
    Ipv6,
    LinuxSll,
    LinuxSll2,
    /// PPP, optionally with HDLC address/control bytes.
    Ppp,
    /// PPPoE without Ethernet header (DLT_PPP_ETHER).
    PppEther,
    /// Linux netfilter NFLOG.
    Nflog,
    /// Cisco HDLC.
    Chdlc,
    /// FDDI (frame control, MACs, then LLC/SNAP).
    Fddi,
    /// IEEE 802.11 data frames (LLC/SNAP payload; protected frames are opaque).
    Ieee80211,
    /// 802.11 behind a radiotap header.
    Radiotap,
    /// Per-Packet Information header, then the link type it names.
    Ppi,
}

impl LinkType {
    /// Maps a libpcap data link type to a supported [`LinkType`].
    ///
    /// # Errors
    /// The link type number when it is not supported.
    pub fn from_dlt(dlt: i32) -> Result<Self, i32> {
        Ok(match dlt {
            1 => Self::Ethernet,
            0 => Self::Null,
            108 => Self::Loop,
            12 | 14 | 101 => Self::Raw,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            113 => Self::LinuxSll,
            276 => Self::LinuxSll2,
            9 | 50 => Self::Ppp,
            51 => Self::PppEther,
            239 => Self::Nflog,
            104 => Self::Chdlc,
            10 => Self::Fddi,
            105 => Self::Ieee80211,
            127 => Self::Radiotap,
            192 => Self::Ppi,
            other => return Err(other),
        })
    }
}

impl LinkType {
    /// The libpcap `DLT_*` value to write in a pcap header (the usual one
    /// where [`LinkType::from_dlt`] takes several).
    #[must_use]
    pub fn dlt(self) -> u32 {
        match self {
            Self::Ethernet => 1,
            Self::Null => 0,
            Self::Loop => 108,
            Self::Raw => 101,
            Self::Ipv4 => 228,
            Self::Ipv6 => 229,
            Self::LinuxSll => 113,
            Self::LinuxSll2 => 276,
            Self::Ppp => 9,
            Self::PppEther => 51,
            Self::Nflog => 239,
            Self::Chdlc => 104,
            Self::Fddi => 10,
            Self::Ieee80211 => 105,
            Self::Radiotap => 127,
            Self::Ppi => 192,
        }
    }
}

/// Outermost tunnel a packet was carried in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Tunnel {
    #[default]
    None = 0,
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    IpInIp,
    Teredo,
    GtpU,
}

impl Tunnel {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gre => "gre",
            Self::Erspan => "erspan",
            Self::Vxlan => "vxlan",
            Self::Geneve => "geneve",
            Self::IpInIp => "ipip",
            Self::Teredo => "teredo",
            Self::GtpU => "gtpu",
        }
    }
}

/// Which application parser may find something in the copied payload bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum HintKind {
    #[default]
    None = 0,
    /// TCP payload starting like a TLS ClientHello record.
    TlsClientHello,
    /// TCP payload starting with an HTTP request method.
    HttpRequest,
    /// UDP payload to or from port 53.
    DnsUdp,
    /// TCP payload to or from port 53 (length-prefixed).
    DnsTcp,
}

/// Where a packet's hint bytes sit in the batch arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HintRef {
    pub kind: HintKind,
    pub len: u16,
    pub off: u32,
}

/// Fragment position of a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum Frag {
    #[default]
    None = 0,
    /// First fragment: carries the transport header.
    First,
    /// A later fragment: no transport header, ports are 0.
    Later,
}

/// Everything later stages need from one packet. `Copy`, no heap, no borrow.
///
/// Addresses are `u128`: IPv6 as is, IPv4 in the low 32 bits with `v6 == false`.
/// For ICMP echo the identifier stands in both port fields (so request and
/// reply share a flow); for other ICMP messages the ports are 0. The ICMP type
/// and code are kept separately for the Community ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketMeta {
    pub ts: Ts,
    pub wire_len: u32,
    /// Transport payload length from the IP/UDP length fields (not the captured length).
    pub payload_len: u32,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
    /// Outermost VLAN id (0 = untagged).
    pub vlan: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub v6: bool,
    pub frag: Frag,
    pub tunnel: Tunnel,
    pub hint: HintRef,
}

/// TCP flag bits as in the header.
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// Why a frame yielded no flow packet. Counted per reason, never logged per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DecodeError {
    /// Frame shorter than its link-layer header.
    LinkTruncated = 0,
    /// A frame that carries no IP (ARP, STP, LLDP, ...).
    NonIp,
    /// IP header cut short by the capture length.
    IpTruncated,
    /// IP header with an invalid version or header length.
    IpInvalid,
    /// More than the supported number of stacked encapsulations.
    TooManyLayers,
    /// A VLAN/MPLS/PPPoE/tunnel header cut short.
    EncapTruncated,
}

impl DecodeError {
    pub const ALL: [Self; 6] = [
        Self::LinkTruncated,
        Self::NonIp,
        Self::IpTruncated,
        Self::IpInvalid,
        Self::TooManyLayers,
        Self::EncapTruncated,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkTruncated => "link_truncated",
            Self::NonIp => "non_ip",
            Self::IpTruncated => "ip_truncated",
            Self::IpInvalid => "ip_invalid",
            Self::TooManyLayers => "too_many_layers",
            Self::EncapTruncated => "encap_truncated",
        }
    }
}

/// Anomalies in packets that were still attributed to a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DecodeWarning {
    /// Transport header cut short: attributed to the IP pair with ports 0 or partial.
    TransportTruncated = 0,
    /// Tunnel found but its inner packet is not decodable: kept as the outer flow.
    TunnelInnerUndecodable,
    /// IP payload shorter than its length fields say (snaplen): counted by wire length.
    CaptureTruncated,
}

impl DecodeWarning {
    pub const ALL: [Self; 3] = [
        Self::TransportTruncated,
        Self::TunnelInnerUndecodable,
        Self::CaptureTruncated,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportTruncated => "transport_truncated",
            Self::TunnelInnerUndecodable => "tunnel_inner_undecodable",
            Self::CaptureTruncated => "capture_truncated",
        }
    }
}

/// Per-reason counters kept by the decode stage.
#[derive(Clone, Debug, Default)]
pub struct DecodeCounters {
    pub errors: [u64; DecodeError::ALL.len()],
    pub warnings: [u64; DecodeWarning::ALL.len()],
    pub tunneled: u64,
    pub fragments: u64,
}

impl DecodeCounters {
    /// Adds another decoder's counts (one decoder per flow shard).
    pub fn add(&mut self, o: &Self) {
        for (a, b) in self.errors.iter_mut().zip(o.errors) {
            *a += b;
        }
        for (a, b) in self.warnings.iter_mut().zip(o.warnings) {
            *a += b;
        }
        self.tunneled += o.tunneled;
        self.fragments += o.fragments;
    }
}

/// Bytes of payload copied for hint parsers (a ClientHello with its SNI fits).
pub const HINT_COPY_MAX: usize = 2048;
const MAX_LAYERS: u8 = 12;

/// The decoder: stateless apart from its counters.
#[derive(Debug, Default)]
pub struct Decoder {
    pub counters: DecodeCounters,
}

struct Ctx<'a> {
    arena: &'a mut Vec<u8>,
    layers: u8,
    warnings: [bool; DecodeWarning::ALL.len()],
    /// Steering only: stop at the first IP header, after its addresses.
    steer: bool,
}

impl Ctx<'_> {
    fn layer(&mut self) -> Result<(), DecodeError> {
        self.layers += 1;
        if self.layers > MAX_LAYERS {
            Err(DecodeError::TooManyLayers)
        } else {
            Ok(())
        }
    }
    fn warn(&mut self, w: DecodeWarning) {
        if let Some(x) = self.warnings.get_mut(w as usize) {
            *x = true;
        }
    }
}

#[inline]
fn be16(d: &[u8], off: usize) -> Option<u16> {
    match d.get(off..off + 2) {
        Some(&[a, b]) => Some(u16::from_be_bytes([a, b])),
        _ => None,
    }
}

#[inline]
fn be32(d: &[u8], off: usize) -> Option<u32> {
    match d.get(off..off + 4) {
        Some(&[a, b, c, e]) => Some(u32::from_be_bytes([a, b, c, e])),
        _ => None,
    }
}

#[inline]
fn le16(d: &[u8], off: usize) -> Option<u16> {
    match d.get(off..off + 2) {
        Some(&[a, b]) => Some(u16::from_le_bytes([a, b])),
        _ => None,
    }
}

#[inline]
fn le32(d: &[u8], off: usize) -> Option<u32> {
    match d.get(off..off + 4) {
        Some(&[a, b, c, e]) => Some(u32::from_le_bytes([a, b, c, e])),
        _ => None,
    }
}

#[inline]
fn tail(d: &[u8], off: usize) -> &[u8] {
    d.get(off..).unwrap_or(&[])
}

impl Decoder {
    /// Decodes one frame.
    ///
    /// # Errors
    /// A [`DecodeError`] when the frame carries no decodable IP packet; the
    /// reason is also counted in [`Decoder::counters`].
    pub fn decode(
        &mut self,
        link: LinkType,
        data: &[u8],
        wire_len: u32,
        ts: Ts,
        arena: &mut Vec<u8>,
    ) -> Result<PacketMeta, DecodeError> {
        let mut meta = PacketMeta::default();
        self.decode_into(link, data, wire_len, ts, arena, &mut meta)
            .map(|()| meta)
    }

    /// [`Decoder::decode`] into a caller's `PacketMeta` (the shards decode
    /// into their lookahead slots, saving two copies of it per packet).
    ///
    /// # Errors
    /// As [`Decoder::decode`]; `meta` is then unspecified.
    pub fn decode_into(
        &mut self,
        link: LinkType,
        data: &[u8],
        wire_len: u32,
        ts: Ts,
        arena: &mut Vec<u8>,
        meta: &mut PacketMeta,
    ) -> Result<(), DecodeError> {
        let mark = arena.len();
        *meta = PacketMeta {
            ts,
            wire_len,
            ..PacketMeta::default()
        };
        let mut ctx = Ctx {
            arena,
            layers: 0,
            warnings: [false; DecodeWarning::ALL.len()],
            steer: false,
        };
        let r = decode_link(link, data, meta, &mut ctx);
        if ctx.warnings != [false; DecodeWarning::ALL.len()] {
            for (n, w) in self.counters.warnings.iter_mut().zip(ctx.warnings) {
                *n += u64::from(w);
            }
        }
        match r {
            Ok(()) => {
                if meta.tunnel != Tunnel::None {
                    self.counters.tunneled += 1;
                }
                if meta.frag != Frag::None {
                    self.counters.fragments += 1;
                }
                Ok(())
            }
            Err(e) => {
                ctx.arena.truncate(mark);
                if let Some(n) = self.counters.errors.get_mut(e as usize) {
                    *n += 1;
                }
                Err(e)
            }
        }
    }
}

mod ip;
mod link;
mod steer;
mod transport;
mod tunnel;

use ip::*;
use link::*;
pub use steer::steer_pair;
use steer::*;
use transport::*;
use tunnel::*;

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn eth_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [8, 8, 8, 8], 64)
            .udp(sport, dport);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    fn dec(link: LinkType, d: &[u8]) -> Result<PacketMeta, DecodeError> {
        let mut arena = Vec::new();
        #[allow(clippy::cast_possible_truncation)]
        Decoder::default().decode(link, d, d.len() as u32, 0, &mut arena)
    }

    #[test]
    fn udp_over_ethernet() {
        let f = eth_udp(
            5000,
            53,
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
        );
        let m = dec(LinkType::Ethernet, &f).unwrap();
        assert_eq!(m.proto, 17);
        assert_eq!((m.sport, m.dport), (5000, 53));
        assert_eq!(m.src, 0x0a00_0001);
        assert_eq!(m.payload_len, 12);
        assert_eq!(m.hint.kind, HintKind::DnsUdp);
    }

    #[test]
    fn vlan_qinq_and_vxlan_inner() {
        let inner = {
            let b = PacketBuilder::ethernet2([3; 6], [4; 6])
                .ipv4([192, 168, 1, 5], [1, 2, 3, 4], 64)
                .tcp(40000, 443, 1, 1000)
                .syn();
            let mut v = Vec::new();
            b.write(&mut v, &[]).unwrap();
            v
        };
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&inner);
        let outer = eth_udp(33333, 4789, &vx);
        // insert a QinQ pair of tags after the MACs
        let mut tagged = outer[..12].to_vec();
        tagged.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
        tagged.extend_from_slice(&outer[12..]);
        let m = dec(LinkType::Ethernet, &tagged).unwrap();
        assert_eq!(m.tunnel, Tunnel::Vxlan);
        assert_eq!(m.vlan, 100);
        assert_eq!((m.sport, m.dport, m.proto), (40000, 443, 6));
        assert_eq!(m.tcp_flags & tcp::SYN, tcp::SYN);
        assert_eq!(m.src, u128::from(u32::from_be_bytes([192, 168, 1, 5])));
        #[allow(clippy::cast_possible_truncation)]
        let wl = tagged.len() as u32;
        assert_eq!(m.wire_len, wl);
    }

    #[test]
    fn steering_pair_is_symmetric_and_outermost() {
        let a = eth_udp(5353, 53, b"q");
        let mut b = Vec::new();
        PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4([8, 8, 8, 8], [10, 0, 0, 1], 64)
            .udp(53, 5353)
            .write(&mut b, b"answer")
            .unwrap();
        let pa = steer_pair(LinkType::Ethernet, &a).expect("an IP pair");
        assert_eq!(Some(pa), steer_pair(LinkType::Ethernet, &b));
        let (ten, eight) = (
            u128::from(u32::from_be_bytes([10, 0, 0, 1])),
            u128::from(u32::from_be_bytes([8, 8, 8, 8])),
        );
        assert_eq!(pa, (eight, ten));
        // VXLAN inside QinQ: the outer pair, so every inner flow stays on one shard
        let inner = eth_udp(1, 2, b"x");
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&inner);
        let outer = eth_udp(33333, 4789, &vx);
        let mut tagged = outer[..12].to_vec();
        tagged.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0a]);
        tagged.extend_from_slice(&outer[12..]);
        assert_eq!(steer_pair(LinkType::Ethernet, &tagged), Some((eight, ten)));
        // a later fragment (no ports) steers with its flow
        let mut frag = a.clone();
        frag[14 + 6] = 0x00;
        frag[14 + 7] = 0x10;
        assert_eq!(steer_pair(LinkType::Ethernet, &frag), Some(pa));
        // no IP header: none (the frame goes to shard 0, whose decoder counts it)
        let mut arp = a.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(steer_pair(LinkType::Ethernet, &arp), None);
        assert_eq!(steer_pair(LinkType::Ethernet, &a[..20]), None);
    }

    #[test]
    fn truncated_and_garbage_never_panic() {
        let f = eth_udp(1, 2, b"hello world");
        for cut in 0..f.len() {
            for link in [
                LinkType::Ethernet,
                LinkType::Raw,
                LinkType::LinuxSll,
                LinkType::LinuxSll2,
                LinkType::Null,
                LinkType::Ppp,
                LinkType::PppEther,
                LinkType::Nflog,
            ] {
                let _ = dec(link, &f[..cut]);
            }
        }
        assert_eq!(
            dec(LinkType::Ethernet, &f[..10]),
            Err(DecodeError::LinkTruncated)
        );
    }

    proptest::proptest! {
        /// The steering fast path gives the decoder walk's pair wherever it
        /// answers: on arbitrary bytes behind the common Ethernet headers,
        /// cut anywhere.
        #[test]
        fn steering_fast_path_agrees_with_the_walk(
            et in proptest::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x88a8, 0x0806, 0x05dc]),
            inner in proptest::sample::select(vec![0x0800u16, 0x86dd, 0x8100, 0x0806]),
            first in proptest::sample::select(vec![0x45u8, 0x46, 0x60, 0x6f, 0x40, 0x50, 0x00]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 16..64),
            cut in 0usize..100,
        ) {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&et.to_be_bytes());
            if et == 0x8100 || et == 0x88a8 {
                f.extend_from_slice(&[0, 7]);
                f.extend_from_slice(&inner.to_be_bytes());
            }
            f.push(first);
            f.extend_from_slice(&body);
            f.truncate(cut.max(1));
            if let Some(p) = steer_ethernet_ip(&f) {
                proptest::prop_assert_eq!(Some(p), steer_pair_walk(LinkType::Ethernet, &f));
            }
            proptest::prop_assert_eq!(
                steer_pair(LinkType::Ethernet, &f),
                steer_pair_walk(LinkType::Ethernet, &f)
            );
        }

        /// The hand-written fast path agrees with etherparse wherever it answers.
        #[test]
        fn ip_fast_path_agrees_with_etherparse(
            v6 in proptest::bool::ANY,
            proto in proptest::sample::select(vec![1u8, 6, 17, 58, 0, 44, 47, 4]),
            ihl in 4u8..8,
            declared in 0u16..120,
            flags in proptest::sample::select(vec![0u16, 0x4000, 0x2000, 0x0001, 0x3fff]),
            cut in 0usize..160,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..140),
        ) {
            let mut d = if v6 {
                let mut h = vec![0x60, 0, 0, 0];
                h.extend_from_slice(&declared.to_be_bytes());
                h.extend_from_slice(&[proto, 64]);
                h.extend((0..32).map(|i| i as u8));
                h
            } else {
                let mut h = vec![0x40 | ihl, 0];
                h.extend_from_slice(&(declared + u16::from(ihl) * 4).to_be_bytes());
                h.extend_from_slice(&[0, 1]);
                h.extend_from_slice(&flags.to_be_bytes());
                h.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 192, 0, 2, 7]);
                h.extend(std::iter::repeat_n(1u8, usize::from(ihl.saturating_sub(5)) * 4));
                h
            };
            d.extend_from_slice(&body);
            d.truncate(cut.max(1));
            if let Some(fast) = ip_fast(&d) {
                proptest::prop_assert_eq!(Ok(fast), ip_full(&d));
            }
        }
    }

    #[test]
    fn ip_fast_path_takes_plain_packets() {
        let f = eth_udp(5353, 53, b"hello");
        let ip = f.get(14..).unwrap_or(&[]);
        let fast = ip_fast(ip).expect("plain IPv4/UDP takes the fast path");
        assert_eq!(Ok(fast), ip_full(ip));
        assert_eq!(
            (fast.proto, fast.declared, fast.incomplete),
            (17, 13, false)
        );
    }

    #[test]
    fn arp_is_non_ip() {
        let mut f = vec![0xff; 12];
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0; 28]);
        assert_eq!(dec(LinkType::Ethernet, &f), Err(DecodeError::NonIp));
    }

    /// Fuzzing regression (cargo fuzz, decode target): IPv6 whose next header
    /// is a fragment header but whose extension chain is cut/inconsistent made
    /// etherparse's extension iterator read past the frame (ASan:
    /// heap-buffer-overflow in Ipv6RawExtHeaderSlice::from_slice_unchecked).
    #[test]
    fn fuzz_ipv6_ext_chain_cut_inside() {
        let crash: &[u8] = &[
            0x00, 0x78, 0x31, 0xc1, 0xcb, 0xb2, 0x5e, 0x00, 0x0c, 0x29, 0x2f, 0x80, 0x31, 0x86,
            0xdd, 0x60, 0x00, 0x00, 0x00, 0x00, 0x44, 0x2c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00,
            0x01, 0x00, 0x02, 0x00, 0x00, 0x1c, 0x99, 0x66, 0xd7, 0x30, 0x88, 0x01, 0x00, 0x02,
            0x00, 0x16, 0x3e, 0x37, 0xf6, 0x04, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54, 0x00, 0x00,
            0x40, 0x00, 0x40, 0x01, 0x23, 0xda, 0xdb,
        ];
        // the fuzz input's first byte (0) selects Ethernet
        let _ = dec(LinkType::Ethernet, &crash[1..]);
        for cut in 0..crash.len() {
            let _ = dec(LinkType::Ethernet, &crash[1..cut.max(1)]);
        }
        // a later fragment behind hop-by-hop options is still recognised
        let mut v6 = vec![0x60, 0, 0, 0, 0, 16, 0, 64];
        v6.extend_from_slice(&[0x20; 32]);
        v6.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop, next = fragment
        v6.extend_from_slice(&[6, 0, 0x05, 0x39, 0, 0, 0, 1]); // offset 167, next = TCP
        let m = dec(LinkType::Raw, &v6).unwrap();
        assert_eq!(m.frag, Frag::Later);
        assert_eq!((m.sport, m.dport), (0, 0));
    }

    #[test]
    fn mpls_then_ipv4() {
        let f = eth_udp(1000, 2000, b"x");
        let mut m = f[..12].to_vec();
        m.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
        m.extend_from_slice(&f[14..]);
        let meta = dec(LinkType::Ethernet, &m).unwrap();
        assert_eq!((meta.sport, meta.dport), (1000, 2000));
    }
}
