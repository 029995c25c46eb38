//! IPv4 and IPv6: the hand-written fast path for plain headers, etherparse
//! for the rest (options, extension headers, fragments).

#[allow(clippy::wildcard_imports)]
use super::*;

/// Decodes an IP packet (either version) and its transport header.
/// What the transport stage needs from an IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IpParts<'a> {
    pub(super) v6: bool,
    pub(super) src: u128,
    pub(super) dst: u128,
    pub(super) proto: u8,
    /// Transport bytes captured (up to the declared length).
    pub(super) payload: &'a [u8],
    /// Transport length the header declares.
    pub(super) declared: usize,
    /// Fewer bytes captured than declared.
    pub(super) incomplete: bool,
    pub(super) fragmented: bool,
    pub(super) later_fragment: bool,
}

/// The common case by hand: IPv4 without fragmentation, IPv6 straight to
/// TCP/UDP/ICMPv6; lengths consistent. Anything else is `None` and goes to
/// [`ip_full`], which agrees with this on every input this accepts (tested).
#[inline]
pub(super) fn ip_fast(d: &[u8]) -> Option<IpParts<'_>> {
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
pub(super) fn ip_full(d: &[u8]) -> Result<IpParts<'_>, DecodeError> {
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

pub(super) fn decode_ip(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
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
pub(super) fn v6_later_fragment(mut next: u8, mut d: &[u8]) -> Option<bool> {
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
