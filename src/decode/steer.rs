//! Steering: the address pair of a frame's first IP header, found with as
//! little decoding as possible, so the capture thread can pick a shard.

#[allow(clippy::wildcard_imports)]
use super::*;

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
pub(super) fn steer_ethernet_ip(d: &[u8]) -> Option<(u128, u128)> {
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
pub(super) fn steer_pair_walk(link: LinkType, data: &[u8]) -> Option<(u128, u128)> {
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
pub(super) fn steer_ip(d: &[u8], meta: &mut PacketMeta) -> Result<(), DecodeError> {
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
