//! Link layers: Ethernet and its tags, 802.11, Linux SLL, PPP, PPPoE, MPLS,
//! NFLOG, LLC/SNAP, down to the first IP header.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn decode_link(
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
pub(super) fn decode_80211(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
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

pub(super) fn decode_sll_payload(
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

pub(super) fn decode_ethernet(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    let et = be16(d, 12).ok_or(DecodeError::LinkTruncated)?;
    if et <= 1500 {
        return decode_llc(tail(d, 14), meta, ctx);
    }
    decode_ether_type(et, tail(d, 14), meta, ctx)
}

pub(super) fn decode_llc(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    // SNAP: DSAP AA, SSAP AA, control 03, OUI (3), ethertype
    match d.get(0..3) {
        Some([0xaa, 0xaa, 0x03]) => {
            let et = be16(d, 6).ok_or(DecodeError::EncapTruncated)?;
            decode_ether_type(et, tail(d, 8), meta, ctx)
        }
        _ => Err(DecodeError::NonIp),
    }
}

pub(super) fn decode_ether_type(
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

pub(super) fn decode_mpls(mut d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
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

pub(super) fn decode_pppoe_session(
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

pub(super) fn decode_ppp(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
    // optional HDLC address/control bytes
    let d = if d.get(0..2) == Some(&[0xff, 0x03]) {
        tail(d, 2)
    } else {
        d
    };
    decode_ppp_proto(d, meta, ctx)
}

pub(super) fn decode_ppp_proto(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
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

pub(super) fn decode_nflog(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), DecodeError> {
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
