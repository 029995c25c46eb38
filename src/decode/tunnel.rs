//! Tunnels decoded to the inner flow: GRE (and ERSPAN), VXLAN, VXLAN-GPE,
//! Geneve, IP-in-IP, Teredo, GTP-U.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Keeps the outermost tunnel kind and the outer VLAN when an inner packet was decoded.
pub(super) fn set_tunnel(meta: &mut PacketMeta, outer: &PacketMeta, kind: Tunnel) {
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
pub(super) fn decode_inner_ip(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), ()> {
    reset_inner(meta);
    decode_ip(d, meta, ctx).map_err(|_| ())
}

pub(super) fn decode_inner_ether(d: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<(), ()> {
    reset_inner(meta);
    decode_ethernet(d, meta, ctx).map_err(|_| ())
}

pub(super) fn reset_inner(meta: &mut PacketMeta) {
    *meta = PacketMeta {
        ts: meta.ts,
        wire_len: meta.wire_len,
        tunnel: meta.tunnel,
        ..PacketMeta::default()
    };
}

pub(super) fn decode_gre(p: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) -> Result<Tunnel, ()> {
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

pub(super) fn try_udp_tunnel(
    sport: u16,
    dport: u16,
    data: &[u8],
    meta: &mut PacketMeta,
    ctx: &mut Ctx<'_>,
) -> bool {
    // the tunnel the ports name, before the copy of the outer packet's
    // meta: most UDP is no tunnel
    enum Udp {
        Vxlan,
        VxlanGpe,
        Geneve,
        GtpU,
        Teredo,
    }
    let port = if dport == 4789 || dport == 8472 {
        Udp::Vxlan
    } else if dport == 4790 {
        Udp::VxlanGpe
    } else if dport == 6081 {
        Udp::Geneve
    } else if sport == 2152 || dport == 2152 {
        Udp::GtpU
    } else if sport == 3544 || dport == 3544 {
        Udp::Teredo
    } else {
        return false;
    };
    let outer = *meta;
    let r = match port {
        Udp::Vxlan => {
            // VXLAN: flags with the I bit, 3 reserved, VNI (3), reserved
            match data.first() {
                Some(f) if f & 0x08 != 0 && data.len() > 8 => {
                    decode_inner_ether(tail(data, 8), meta, ctx).map(|()| Tunnel::Vxlan)
                }
                _ => return false,
            }
        }
        Udp::VxlanGpe => {
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
        }
        Udp::Geneve => {
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
        }
        Udp::GtpU => match gtpu_payload(data) {
            Some(body) => decode_inner_ip(body, meta, ctx).map(|()| Tunnel::GtpU),
            None => return false,
        },
        Udp::Teredo => match teredo_payload(data) {
            Some(body) => decode_inner_ip(body, meta, ctx).map(|()| Tunnel::Teredo),
            None => return false,
        },
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
pub(super) fn gtpu_payload(d: &[u8]) -> Option<&[u8]> {
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
pub(super) fn teredo_payload(d: &[u8]) -> Option<&[u8]> {
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
