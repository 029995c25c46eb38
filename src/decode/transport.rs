//! Transport: TCP, UDP, ICMP and ICMPv6 ports, flags and lengths, and the
//! payload bytes worth a hint (TLS ClientHello, HTTP request, DNS).

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn is_http_method(p: &[u8]) -> bool {
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

pub(super) fn copy_hint(kind: HintKind, p: &[u8], meta: &mut PacketMeta, ctx: &mut Ctx<'_>) {
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

pub(super) fn decode_transport(
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
