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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// The outermost IP address pair of a frame, ordered (smaller first), found
/// by walking the same link layers as [`Decoder::decode`] but reading only
/// the two addresses of the first IP header. Every packet of a flow, both
/// directions, tunnelled or fragmented, has the same pair, so the capture
/// thread can pick a flow shard from it without decoding the packet (the
/// `ippair` scheduling of Suricata's autofp runmode). None when the frame
/// holds no IP header the decoder would reach.
#[must_use]
pub fn steer_pair(link: LinkType, data: &[u8]) -> Option<(u128, u128)> {
    if link == LinkType::Ethernet
        && let Some(p) = steer_ethernet_ip(data)
    {
        return Some(p);
    }
    steer_pair_walk(link, data)
}

/// [`steer_pair`] for the frames of almost every capture, Ethernet with at
/// most one 802.1Q tag and then IPv4 or IPv6, in a few loads instead of the
/// decoder's walk (which cost about 230 instructions a packet with two
/// shards). `None` for anything else, which takes the walk; where it answers
/// it gives the walk's answer (property test).
#[inline]
fn steer_ethernet_ip(d: &[u8]) -> Option<(u128, u128)> {
    let (mut et, mut off) = (be16(d, 12)?, 14);
    if et == 0x8100 {
        (et, off) = (be16(d, 16)?, 18);
    }
    let ip = d.get(off..)?;
    let (s, t) = match (et, ip.first()? >> 4) {
        (0x0800, 4) => (u128::from(be32(ip, 12)?), u128::from(be32(ip, 16)?)),
        (0x86dd, 6) => (
            u128::from_be_bytes(ip.get(8..24)?.try_into().ok()?),
            u128::from_be_bytes(ip.get(24..40)?.try_into().ok()?),
        ),
        _ => return None,
    };
    Some(if s <= t { (s, t) } else { (t, s) })
}

/// [`steer_pair`] by the decoder's walk of the link layers.
fn steer_pair_walk(link: LinkType, data: &[u8]) -> Option<(u128, u128)> {
    let mut none = Vec::new();
    let mut meta = PacketMeta::default();
    let mut ctx = Ctx {
        arena: &mut none,
        layers: 0,
        warnings: [false; DecodeWarning::ALL.len()],
        steer: true,
    };
    decode_link(link, data, &mut meta, &mut ctx).ok()?;
    Some(if meta.src <= meta.dst {
        (meta.src, meta.dst)
    } else {
        (meta.dst, meta.src)
    })
}

/// Steering half of [`decode_ip`]: the two addresses, nothing else.
fn steer_ip(d: &[u8], meta: &mut PacketMeta) -> Result<(), DecodeError> {
    let addr = |r: std::ops::Range<usize>| {
        d.get(r)
            .map(|b| b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x)))
            .ok_or(DecodeError::IpTruncated)
    };
    match d.first().map(|b| b >> 4) {
        Some(4) => {
            meta.src = addr(12..16)?;
            meta.dst = addr(16..20)?;
        }
        Some(6) => {
            meta.src = addr(8..24)?;
            meta.dst = addr(24..40)?;
        }
        _ => return Err(DecodeError::IpInvalid),
    }
    Ok(())
}

fn decode_link(
    link: LinkType,
    d: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeError> {
    match link {
        LinkType::Ethernet => decode_ethernet(d, meta, ctx),
        LinkType::Null | LinkType::Loop => {
            let fam = le32(d, 0).ok_or(DecodeError::LinkTruncated)?;
            let (le, be) = (fam, fam.swap_bytes());
            let fam = if link == LinkType::Loop || le > 0xffff {
                be
            } else {
                le
            };
            match fam {
                2 => decode_ip(tail(d, 4), meta, ctx),
                10 | 24 | 28 | 30 => decode_ip(tail(d, 4), meta, ctx),
                _ => Err(DecodeError::NonIp),
            }
        }
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => decode_ip(d, meta, ctx),
        LinkType::LinuxSll => {
            let proto = be16(d, 14).ok_or(DecodeError::LinkTruncated)?;
            let arphrd = be16(d, 2).ok_or(DecodeError::LinkTruncated)?;
            decode_sll_payload(arphrd, proto, tail(d, 16), meta, ctx)
        }
        LinkType::LinuxSll2 => {
            if d.len() < 20 {
                return Err(DecodeError::LinkTruncated);
            }
            let proto = be16(d, 0).ok_or(DecodeError::LinkTruncated)?;
            let arphrd = be16(d, 8).ok_or(DecodeError::LinkTruncated)?;
            decode_sll_payload(arphrd, proto, tail(d, 20), meta, ctx)
        }
        LinkType::Ppp => decode_ppp(d, meta, ctx),
        LinkType::PppEther => decode_pppoe_session(d, meta, ctx),
        LinkType::Nflog => decode_nflog(d, meta, ctx),
        LinkType::Chdlc => {
            let et = be16(d, 2).ok_or(DecodeError::LinkTruncated)?;
            decode_ether_type(et, tail(d, 4), meta, ctx)
        }
        LinkType::Fddi => {
            if d.len() < 13 {
                return Err(DecodeError::LinkTruncated);
            }
            decode_llc(tail(d, 13), meta, ctx)
        }
        LinkType::Ieee80211 => decode_80211(d, meta, ctx),
        LinkType::Radiotap => {
            let len = le16(d, 2)
                .map(usize::from)
                .ok_or(DecodeError::LinkTruncated)?;
            decode_80211(d.get(len..).ok_or(DecodeError::LinkTruncated)?, meta, ctx)
        }
        LinkType::Ppi => {
            let (Some(len), Some(dlt)) = (le16(d, 2), le32(d, 4)) else {
                return Err(DecodeError::LinkTruncated);
            };
            let len = usize::from(len);
            let dlt = dlt.cast_signed();
            ctx.layer()?;
            match LinkType::from_dlt(dlt) {
                Ok(LinkType::Ppi) | Err(_) => Err(DecodeError::NonIp),
                Ok(inner) => decode_link(
                    inner,
                    d.get(len..).ok_or(DecodeError::LinkTruncated)?,
                    meta,
                    ctx,
                ),
            }
        }
    }
}

/// 802.11 data frame: header length from frame control, then LLC/SNAP.
fn decode_80211(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    let (Some(&fc0), Some(&fc1)) = (d.first(), d.get(1)) else {
        return Err(DecodeError::LinkTruncated);
    };
    let ftype = (fc0 >> 2) & 0x3;
    let subtype = fc0 >> 4;
    if ftype != 2 || subtype & 0x4 != 0 {
        return Err(DecodeError::NonIp); // management, control, or null data
    }
    if fc1 & 0x40 != 0 {
        return Err(DecodeError::NonIp); // protected: encrypted payload
    }
    let mut hlen = 24;
    if fc1 & 0x03 == 0x03 {
        hlen += 6; // four-address frame
    }
    if subtype & 0x8 != 0 {
        hlen += 2; // QoS control
        if fc1 & 0x80 != 0 {
            hlen += 4; // HT control
        }
    }
    if d.len() < hlen {
        return Err(DecodeError::LinkTruncated);
    }
    decode_llc(tail(d, hlen), meta, ctx)
}

fn decode_sll_payload(
    arphrd: u16,
    proto: u16,
    payload: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeError> {
    match (arphrd, proto) {
        // ARPHRD_IPGRE: the protocol field is the GRE protocol type
        (778, 0x0800 | 0x86dd) => decode_ether_type(proto, payload, meta, ctx),
        (_, 0x0004) => decode_llc(payload, meta, ctx),
        (_, 0x0001 | 0x0003) => Err(DecodeError::NonIp),
        _ => decode_ether_type(proto, payload, meta, ctx),
    }
}

fn decode_ethernet(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    let et = be16(d, 12).ok_or(DecodeError::LinkTruncated)?;
    if et <= 1500 {
        return decode_llc(tail(d, 14), meta, ctx);
    }
    decode_ether_type(et, tail(d, 14), meta, ctx)
}

fn decode_llc(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    // SNAP: DSAP AA, SSAP AA, control 03, OUI (3), ethertype
    match d.get(0..3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let et = be16(d, 6).ok_or(DecodeError::EncapTruncated)?;
            decode_ether_type(et, tail(d, 8), meta, ctx)
        }
        _ => Err(DecodeError::NonIp),
    }
}

fn decode_ether_type(
    mut et: u16,
    mut d: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeError> {
    loop {
        ctx.layer()?;
        match et {
            0x0800 | 0x86dd => return decode_ip(d, meta, ctx),
            // 802.1Q, 802.1ad, legacy QinQ tags
            0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => {
                let tci = be16(d, 0).ok_or(DecodeError::EncapTruncated)?;
                et = be16(d, 2).ok_or(DecodeError::EncapTruncated)?;
                if meta.vlan == 0 {
                    meta.vlan = tci & 0x0fff;
                }
                d = tail(d, 4);
                if et <= 1500 {
                    return decode_llc(d, meta, ctx);
                }
            }
            // Cisco VN-Tag: 4 bytes, then the next ethertype
            0x8926 => {
                et = be16(d, 4).ok_or(DecodeError::EncapTruncated)?;
                d = tail(d, 6);
            }
            // Cisco MetaData (SGT): 6 bytes, then the next ethertype
            0x8909 => {
                et = be16(d, 6).ok_or(DecodeError::EncapTruncated)?;
                d = tail(d, 8);
            }
            0x8847 | 0x8848 => return decode_mpls(d, meta, ctx),
            0x8864 => return decode_pppoe_session(d, meta, ctx),
            _ => return Err(DecodeError::NonIp),
        }
    }
}

fn decode_mpls(mut d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    for _ in 0..16 {
        let label = be32(d, 0).ok_or(DecodeError::EncapTruncated)?;
        d = tail(d, 4);
        if label & 0x100 != 0 {
            // bottom of stack: guess the payload from its first nibble
            let first = *d.first().ok_or(DecodeError::EncapTruncated)?;
            return match first >> 4 {
                4 | 6 => decode_ip(d, meta, ctx),
                // pseudowire control word, then Ethernet
                0 => {
                    ctx.layer()?;
                    decode_ethernet(tail(d, 4), meta, ctx)
                }
                _ => Err(DecodeError::NonIp),
            };
        }
    }
    Err(DecodeError::TooManyLayers)
}

fn decode_pppoe_session(
    d: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeError> {
    // ver/type, code, session id (2), length (2), then the PPP protocol
    if d.len() < 6 {
        return Err(DecodeError::EncapTruncated);
    }
    decode_ppp_proto(tail(d, 6), meta, ctx)
}

fn decode_ppp(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    // optional HDLC address/control bytes
    let d = if d.get(0..2) == Some(&[0xff, 0x03]) {
        tail(d, 2)
    } else {
        d
    };
    decode_ppp_proto(d, meta, ctx)
}

fn decode_ppp_proto(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    ctx.layer()?;
    let first = *d.first().ok_or(DecodeError::EncapTruncated)?;
    // protocol field compression: a one-byte protocol is odd
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), tail(d, 1))
    } else {
        (be16(d, 0).ok_or(DecodeError::EncapTruncated)?, tail(d, 2))
    };
    match proto {
        0x0021 | 0x0057 => decode_ip(rest, meta, ctx),
        0x0281 => decode_mpls(rest, meta, ctx),
        _ => Err(DecodeError::NonIp),
    }
}

fn decode_nflog(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    // family (1), version (1), resource id (2), then TLVs with host-order
    // 16-bit length and type, padded to 4 bytes; type 9 = packet payload.
    if d.len() < 4 {
        return Err(DecodeError::LinkTruncated);
    }
    let mut off = 4usize;
    for _ in 0..64 {
        let (Some(len), Some(typ)) = (le16(d, off), le16(d, off + 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if typ == 9 {
            let end = (off + len).min(d.len());
            return decode_ip(d.get(off + 4..end).unwrap_or(&[]), meta, ctx);
        }
        off += (len + 3) & !3;
    }
    Err(DecodeError::NonIp)
}

/// Decodes an IP packet (either version) and its transport header.
/// What the transport stage needs from an IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IpParts<'a> {
    v6: bool,
    src: u128,
    dst: u128,
    proto: u8,
    /// Transport bytes captured (up to the declared length).
    payload: &'a [u8],
    /// Transport length the header declares.
    declared: usize,
    /// Fewer bytes captured than declared.
    incomplete: bool,
    fragmented: bool,
    later_fragment: bool,
}

/// The common case by hand: IPv4 without fragmentation, IPv6 straight to
/// TCP/UDP/ICMPv6; lengths consistent. Anything else is `None` and goes to
/// [`ip_full`], which agrees with this on every input this accepts (tested).
#[inline]
fn ip_fast(d: &[u8]) -> Option<IpParts<'_>> {
    let first = *d.first()?;
    match first >> 4 {
        4 => {
            let hl = usize::from(first & 0x0f) * 4;
            let total = usize::from(be16(d, 2)?);
            let frag = be16(d, 6)?;
            if hl < 20 || d.len() < hl || total < hl || frag & 0x3fff != 0 {
                return None;
            }
            let end = total.min(d.len());
            Some(IpParts {
                v6: false,
                src: u128::from(be32(d, 12)?),
                dst: u128::from(be32(d, 16)?),
                proto: *d.get(9)?,
                payload: d.get(hl..end)?,
                declared: total - hl,
                incomplete: d.len() < total,
                fragmented: false,
                later_fragment: false,
            })
        }
        6 => {
            let next = *d.get(6)?;
            let plen = usize::from(be16(d, 4)?);
            if d.len() < 40 || plen == 0 || !matches!(next, 6 | 17 | 58) {
                return None;
            }
            let addr = |o: usize| -> Option<u128> {
                Some(u128::from_be_bytes(d.get(o..o + 16)?.try_into().ok()?))
            };
            let end = (40 + plen).min(d.len());
            Some(IpParts {
                v6: true,
                src: addr(8)?,
                dst: addr(24)?,
                proto: next,
                payload: d.get(40..end)?,
                declared: plen,
                incomplete: d.len() < 40 + plen,
                fragmented: false,
                later_fragment: false,
            })
        }
        _ => None,
    }
}

/// Every IP header etherparse reads (options, extension chains, fragments,
/// jumbograms, inconsistent lengths).
fn ip_full(d: &[u8]) -> Result<IpParts<'_>, DecodeError> {
    let (ip, _ext_err) = match LaxIpSlice::from_slice(d) {
        Ok(v) => v,
        Err(etherparse::err::ip::LaxHeaderSliceError::Len(_)) => {
            return Err(DecodeError::IpTruncated);
        }
        Err(etherparse::err::ip::LaxHeaderSliceError::Content(_)) => {
            return Err(DecodeError::IpInvalid);
        }
    };
    let fragmented = ip.payload().fragmented;
    let (v6, src, dst, declared, later_fragment) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (
                false,
                u128::from(u32::from_be_bytes(h.source())),
                u128::from(u32::from_be_bytes(h.destination())),
                usize::from(h.total_len()).saturating_sub(h.slice().len()),
                fragmented && h.fragments_offset().value() != 0,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            let exts = v6.extensions();
            let plen = usize::from(h.payload_length());
            let declared = if plen == 0 {
                v6.payload().payload.len()
            } else {
                plen.saturating_sub(exts.slice().len())
            };
            // A bounds-checked walk, not `exts` iterated: etherparse 0.21's
            // extension iterator reads past a lax slice that stops inside the
            // chain (out-of-bounds read found by fuzzing, see fuzz/README.md).
            let later =
                fragmented && v6_later_fragment(h.next_header().0, exts.slice()).unwrap_or(false);
            (
                true,
                u128::from_be_bytes(h.source()),
                u128::from_be_bytes(h.destination()),
                declared,
                later,
            )
        }
    };
    let payload = ip.payload();
    Ok(IpParts {
        v6,
        src,
        dst,
        proto: payload.ip_number.0,
        payload: payload.payload,
        declared,
        incomplete: payload.incomplete,
        fragmented,
        later_fragment,
    })
}

fn decode_ip(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    ctx.layer()?;
    if ctx.steer {
        return steer_ip(d, meta);
    }
    let ip = match ip_fast(d) {
        Some(ip) => ip,
        None => ip_full(d)?,
    };
    meta.v6 = ip.v6;
    meta.src = ip.src;
    meta.dst = ip.dst;
    if ip.incomplete {
        ctx.warn(DecodeWarning::CaptureTruncated);
    }
    meta.proto = ip.proto;
    if ip.fragmented {
        meta.frag = if ip.later_fragment {
            Frag::Later
        } else {
            Frag::First
        };
    }
    if ip.later_fragment {
        meta.payload_len = u32::try_from(ip.declared).unwrap_or(u32::MAX);
        return Ok(());
    }
    decode_transport(ip.payload, ip.declared, meta, ctx)
}

/// Whether an IPv6 extension chain (`d`, first header `next`) holds a
/// fragment header with a non-zero offset.
fn v6_later_fragment(mut next: u8, mut d: &[u8]) -> Option<bool> {
    for _ in 0..16 {
        let len = match next {
            0 | 43 | 60 => (usize::from(*d.get(1)?) + 1) * 8,
            44 => {
                if be16(d, 2)? & 0xfff8 != 0 {
                    return Some(true);
                }
                8
            }
            51 => (usize::from(*d.get(1)?) + 2) * 4,
            _ => return Some(false),
        };
        next = *d.first()?;
        d = d.get(len..)?;
    }
    Some(false)
}

fn is_http_method(p: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    // most payload (TLS records, responses, bulk data) fails on the first byte
    matches!(
        p.first(),
        Some(b'G' | b'P' | b'H' | b'D' | b'O' | b'C' | b'T')
    ) && METHODS.iter().any(|m| p.starts_with(m))
}

fn copy_hint(kind: HintKind, p: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) {
    if p.is_empty() {
        return;
    }
    let n = p.len().min(HINT_COPY_MAX);
    let off = ctx.arena.len();
    let (Ok(off), Ok(len)) = (u32::try_from(off), u16::try_from(n)) else {
        return;
    };
    ctx.arena.extend_from_slice(p.get(..n).unwrap_or(&[]));
    meta.hint = HintRef { kind, len, off };
}

fn decode_transport(
    p: &[u8],
    declared: usize,
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> Result<(), DecodeError> {
    let declared32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match meta.proto {
        6 => {
            let (Some(sport), Some(dport)) = (be16(p, 0), be16(p, 2)) else {
                ctx.warn(DecodeWarning::TransportTruncated);
                return Ok(());
            };
            meta.sport = sport;
            meta.dport = dport;
            let (Some(&off_byte), Some(&flags)) = (p.get(12), p.get(13)) else {
                ctx.warn(DecodeWarning::TransportTruncated);
                return Ok(());
            };
            meta.tcp_flags = flags;
            let hlen = usize::from(off_byte >> 4) * 4;
            if hlen < 20 {
                ctx.warn(DecodeWarning::TransportTruncated);
                return Ok(());
            }
            meta.payload_len = declared32(declared.saturating_sub(hlen));
            let data = tail(p, hlen);
            if !data.is_empty() {
                if sport == 53 || dport == 53 {
                    copy_hint(HintKind::DnsTcp, data, meta, ctx);
                } else if data.len() > 5
                    && data.first() == Some(&0x16)
                    && data.get(1) == Some(&0x03)
                    && data.get(5) == Some(&0x01)
                {
                    copy_hint(HintKind::TlsClientHello, data, meta, ctx);
                } else if is_http_method(data) {
                    copy_hint(HintKind::HttpRequest, data, meta, ctx);
                }
            }
            Ok(())
        }
        17 => {
            let (Some(sport), Some(dport)) = (be16(p, 0), be16(p, 2)) else {
                ctx.warn(DecodeWarning::TransportTruncated);
                return Ok(());
            };
            meta.sport = sport;
            meta.dport = dport;
            let udp_len = be16(p, 4).map_or(declared, usize::from);
            let udp_len = if (8..=declared).contains(&udp_len) {
                udp_len
            } else {
                declared
            };
            meta.payload_len = declared32(udp_len.saturating_sub(8));
            let data = p.get(8..).unwrap_or(&[]);
            if meta.frag == Frag::None
                && ctx.layers < MAX_LAYERS
                && try_udp_tunnel(sport, dport, data, meta, ctx)
            {
                return Ok(());
            }
            if sport == 53 || dport == 53 {
                copy_hint(HintKind::DnsUdp, data, meta, ctx);
            }
            Ok(())
        }
        1 | 58 => {
            let (Some(&t), Some(&c)) = (p.first(), p.get(1)) else {
                ctx.warn(DecodeWarning::TransportTruncated);
                return Ok(());
            };
            meta.icmp_type = t;
            meta.icmp_code = c;
            let echo = if meta.proto == 1 {
                matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
            } else {
                matches!(t, 128 | 129)
            };
            if echo && let Some(id) = be16(p, 4) {
                meta.sport = id;
                meta.dport = id;
            }
            meta.payload_len = declared32(declared.saturating_sub(8));
            Ok(())
        }
        4 | 41 if meta.frag == Frag::None => {
            let outer = *meta;
            if decode_inner_ip(p, meta, ctx).is_ok() {
                set_tunnel(meta, &outer, Tunnel::IpInIp);
            } else {
                *meta = outer;
                meta.payload_len = declared32(declared);
                ctx.warn(DecodeWarning::TunnelInnerUndecodable);
            }
            Ok(())
        }
        47 if meta.frag == Frag::None => {
            let outer = *meta;
            match decode_gre(p, meta, ctx) {
                Ok(kind) => set_tunnel(meta, &outer, kind),
                Err(()) => {
                    *meta = outer;
                    meta.payload_len = declared32(declared);
                    ctx.warn(DecodeWarning::TunnelInnerUndecodable);
                }
            }
            Ok(())
        }
        _ => {
            meta.payload_len = declared32(declared);
            Ok(())
        }
    }
}

/// Keeps the outermost tunnel kind and the outer VLAN when an inner packet was decoded.
fn set_tunnel(meta: &mut PacketMeta, outer: &PacketMeta, kind: Tunnel) {
    if outer.tunnel != Tunnel::None {
        meta.tunnel = outer.tunnel;
    } else {
        meta.tunnel = kind;
    }
    if meta.vlan == 0 {
        meta.vlan = outer.vlan;
    }
}

/// Resets the per-packet fields and decodes an inner IP packet.
fn decode_inner_ip(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), ()> {
    reset_inner(meta);
    decode_ip(d, meta, ctx).map_err(|_| ())
}

fn decode_inner_ether(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), ()> {
    reset_inner(meta);
    decode_ethernet(d, meta, ctx).map_err(|_| ())
}

fn reset_inner(meta: &mut PacketMeta) {
    *meta = PacketMeta {
        ts: meta.ts,
        wire_len: meta.wire_len,
        tunnel: meta.tunnel,
        ..PacketMeta::default()
    };
}

fn decode_gre(p: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<Tunnel, ()> {
    let flags = be16(p, 0).ok_or(())?;
    let proto = be16(p, 2).ok_or(())?;
    let version = flags & 0x7;
    let mut off = 4usize;
    if version == 1 {
        // enhanced GRE (PPTP): key present, optional seq/ack, carries PPP
        off += 4;
        if flags & 0x1000 != 0 {
            off += 4;
        }
        if flags & 0x0080 != 0 {
            off += 4;
        }
        if proto != 0x880b {
            return Err(());
        }
        let body = p.get(off..).ok_or(())?;
        reset_inner(meta);
        decode_ppp(body, meta, ctx).map_err(|_| ())?;
        return Ok(Tunnel::Gre);
    }
    if version != 0 {
        return Err(());
    }
    if flags & 0x8000 != 0 || flags & 0x4000 != 0 {
        off += 4; // checksum + reserved, or routing offset
    }
    if flags & 0x2000 != 0 {
        off += 4; // key
    }
    let has_seq = flags & 0x1000 != 0;
    if has_seq {
        off += 4;
    }
    if flags & 0x4000 != 0 {
        // source route entries until a NULL entry
        for _ in 0..16 {
            let af = be16(p, off).ok_or(())?;
            let len = usize::from(*p.get(off + 3).ok_or(())?);
            off += 4 + len;
            if af == 0 && len == 0 {
                break;
            }
        }
    }
    let body = p.get(off..).ok_or(())?;
    match proto {
        0x0800 | 0x86dd => decode_inner_ip(body, meta, ctx).map(|()| Tunnel::Gre),
        0x6558 => decode_inner_ether(body, meta, ctx).map(|()| Tunnel::Gre),
        0x880b => {
            reset_inner(meta);
            decode_ppp(body, meta, ctx).map_err(|_| ())?;
            Ok(Tunnel::Gre)
        }
        // ERSPAN type II (sequence number present) has an 8-byte header;
        // type I (no sequence number) has none.
        0x88be => {
            let body = if has_seq {
                body.get(8..).ok_or(())?
            } else {
                body
            };
            decode_inner_ether(body, meta, ctx).map(|()| Tunnel::Erspan)
        }
        // ERSPAN type III: 12-byte header, plus an 8-byte platform subheader if O is set
        0x22eb => {
            let o = body.get(11).ok_or(())? & 0x01 != 0;
            let skip = if o { 20 } else { 12 };
            decode_inner_ether(body.get(skip..).ok_or(())?, meta, ctx).map(|()| Tunnel::Erspan)
        }
        // anything else an ethertype can name (MPLS, VLAN, Cisco MetaData, ...)
        other => {
            reset_inner(meta);
            decode_ether_type(other, body, meta, ctx).map_err(|_| ())?;
            Ok(Tunnel::Gre)
        }
    }
}

fn try_udp_tunnel(
    sport: u16,
    dport: u16,
    data: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> bool {
    let outer = *meta;
    let r = if dport == 4789 || dport == 8472 {
        // VXLAN: flags with the I bit, 3 reserved, VNI (3), reserved
        match data.first() {
            Some(f) if f & 0x08 != 0 && data.len() > 8 => {
                decode_inner_ether(tail(data, 8), meta, ctx).map(|()| Tunnel::Vxlan)
            }
            _ => return false,
        }
    } else if dport == 4790 {
        // VXLAN-GPE: flags, reserved, next protocol (1 IPv4, 2 IPv6, 3 Ethernet), VNI
        let (Some(&f), Some(&np)) = (data.first(), data.get(3)) else {
            return false;
        };
        if f & 0x08 == 0 {
            return false;
        }
        let body = tail(data, 8);
        match np {
            1 | 2 => decode_inner_ip(body, meta, ctx),
            3 => decode_inner_ether(body, meta, ctx),
            _ => return false,
        }
        .map(|()| Tunnel::Vxlan)
    } else if dport == 6081 {
        // Geneve: ver(2)|optlen(6), flags, protocol type, VNI, reserved, options
        let (Some(&b0), Some(proto)) = (data.first(), be16(data, 2)) else {
            return false;
        };
        if b0 >> 6 != 0 {
            return false;
        }
        let hlen = 8 + usize::from(b0 & 0x3f) * 4;
        let body = tail(data, hlen);
        match proto {
            0x6558 => decode_inner_ether(body, meta, ctx),
            0x0800 | 0x86dd => decode_inner_ip(body, meta, ctx),
            _ => return false,
        }
        .map(|()| Tunnel::Geneve)
    } else if sport == 2152 || dport == 2152 {
        match gtpu_payload(data) {
            Some(body) => decode_inner_ip(body, meta, ctx).map(|()| Tunnel::GtpU),
            None => return false,
        }
    } else if sport == 3544 || dport == 3544 {
        match teredo_payload(data) {
            Some(body) => decode_inner_ip(body, meta, ctx).map(|()| Tunnel::Teredo),
            None => return false,
        }
    } else {
        return false;
    };
    match r {
        Ok(kind) => {
            set_tunnel(meta, &outer, kind);
            true
        }
        Err(()) => {
            *meta = outer;
            ctx.warn(DecodeWarning::TunnelInnerUndecodable);
            false
        }
    }
}

/// GTP-U T-PDU payload (version 1, message type 0xff), or None.
fn gtpu_payload(d: &[u8]) -> Option<&[u8]> {
    let flags = *d.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *d.get(1)? != 0xff {
        return None;
    }
    let mut off = 8usize;
    if flags & 0x07 != 0 {
        // sequence (2), N-PDU (1), next extension type (1)
        let mut next = *d.get(11)?;
        off = 12;
        for _ in 0..8 {
            if next == 0 {
                break;
            }
            let units = usize::from(*d.get(off)?);
            if units == 0 {
                return None;
            }
            off += units * 4;
            next = *d.get(off.checked_sub(1)?)?;
        }
    }
    let body = d.get(off..)?;
    matches!(body.first().map(|b| b >> 4), Some(4 | 6)).then_some(body)
}

/// Teredo payload: IPv6, possibly after authentication and origin indication headers.
fn teredo_payload(d: &[u8]) -> Option<&[u8]> {
    let mut off = 0usize;
    for _ in 0..2 {
        match be16(d, off)? {
            0x0001 => {
                let id_len = usize::from(*d.get(off + 2)?);
                let au_len = usize::from(*d.get(off + 3)?);
                off += 4 + id_len + au_len + 8 + 1;
            }
            0x0000 => off += 8,
            _ => break,
        }
    }
    let body = d.get(off..)?;
    (body.first().map(|b| b >> 4) == Some(6) && body.len() >= 40).then_some(body)
}

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
