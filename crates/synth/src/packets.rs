//! Frame builders for the generator: Ethernet (optional 802.1Q), IPv4/IPv6,
//! TCP/UDP via etherparse; application payloads the sensor parses (TLS
//! ClientHello with SNI, HTTP request with Host, DNS query/response).

use crate::Record;
use etherparse::PacketBuilder;
use std::net::IpAddr;

/// Payload bytes kept in a bulk record (the rest is wire length only).
pub const KEEP: usize = 16;
/// Largest payload per generated segment (keeps packet counts of bulk
/// transfers modest; the wire length stays true).
pub const SEG: usize = 16_000;

/// One side of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ep {
    pub ip: IpAddr,
    pub vlan: Option<u16>,
}

impl Ep {
    #[must_use]
    pub fn v4(a: [u8; 4]) -> Self {
        Self {
            ip: IpAddr::from(a),
            vlan: None,
        }
    }
}

#[derive(Clone, Copy)]
pub enum L4 {
    Tcp { sport: u16, dport: u16, flags: u8 },
    Udp { sport: u16, dport: u16 },
}

/// TCP headers of both directions of one connection with the same `flags`:
/// (client -> server, server -> client).
#[must_use]
pub fn tcp_pair(client_port: u16, server_port: u16, flags: u8) -> (L4, L4) {
    (
        L4::Tcp {
            sport: client_port,
            dport: server_port,
            flags,
        },
        L4::Tcp {
            sport: server_port,
            dport: client_port,
            flags,
        },
    )
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;
pub const RST: u8 = 0x04;

fn mac(ip: IpAddr) -> [u8; 6] {
    let o = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets()[12..].to_vec(),
    };
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// Builds a frame carrying `payload`; `claimed` (>= payload.len()) is the
/// payload length the headers state, so a short record can stand for a
/// full-size packet. Returns the record's bytes and its wire length.
#[must_use]
pub fn frame(src: &Ep, dst: &Ep, l4: L4, payload: &[u8], claimed: usize) -> (Vec<u8>, u32) {
    let vlan = src.vlan.or(dst.vlan);
    let eth = PacketBuilder::ethernet2(mac(src.ip), mac(dst.ip));
    let mut v = Vec::with_capacity(96 + payload.len());
    macro_rules! finish {
        ($ip:expr) => {{
            let r = match l4 {
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                } => {
                    let mut b = $ip.tcp(sport, dport, 1000, 64_240);
                    if flags & SYN != 0 {
                        b = b.syn();
                    }
                    if flags & ACK != 0 {
                        b = b.ack(1);
                    }
                    if flags & FIN != 0 {
                        b = b.fin();
                    }
                    if flags & PSH != 0 {
                        b = b.psh();
                    }
                    if flags & RST != 0 {
                        b = b.rst();
                    }
                    b.write(&mut v, payload)
                }
                L4::Udp { sport, dport } => $ip.udp(sport, dport).write(&mut v, payload),
            };
            debug_assert!(r.is_ok());
        }};
    }
    match (src.ip, dst.ip, vlan) {
        (IpAddr::V4(a), IpAddr::V4(b), None) => finish!(eth.ipv4(a.octets(), b.octets(), 64)),
        (IpAddr::V4(a), IpAddr::V4(b), Some(id)) => finish!(
            eth.single_vlan(etherparse::VlanId::try_new(id).unwrap_or_default())
                .ipv4(a.octets(), b.octets(), 64)
        ),
        (IpAddr::V6(a), IpAddr::V6(b), None) => finish!(eth.ipv6(a.octets(), b.octets(), 64)),
        (IpAddr::V6(a), IpAddr::V6(b), Some(id)) => finish!(
            eth.single_vlan(etherparse::VlanId::try_new(id).unwrap_or_default())
                .ipv6(a.octets(), b.octets(), 64)
        ),
        _ => {}
    }
    let extra = claimed.saturating_sub(payload.len());
    if extra > 0 {
        patch_lengths(&mut v, vlan.is_some(), extra);
    }
    let wire = u32::try_from(v.len() + extra).unwrap_or(u32::MAX);
    (v, wire)
}

/// Adds `extra` to the IP (and UDP) length fields; fixes the IPv4 checksum.
fn patch_lengths(v: &mut [u8], vlan: bool, extra: usize) {
    let ip = if vlan { 18 } else { 14 };
    let add16 = |v: &mut [u8], at: usize| {
        if let Some(s) = v.get_mut(at..at + 2) {
            let x = u16::from_be_bytes([s[0], s[1]]);
            let y = x.saturating_add(u16::try_from(extra).unwrap_or(u16::MAX));
            s.copy_from_slice(&y.to_be_bytes());
        }
    };
    let Some(&first) = v.get(ip) else { return };
    let (proto, l4) = if first >> 4 == 4 {
        add16(v, ip + 2);
        // header checksum
        v[ip + 10] = 0;
        v[ip + 11] = 0;
        let ihl = usize::from(first & 0x0f) * 4;
        let mut sum: u32 = 0;
        for c in v[ip..ip + ihl].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let ck = !(sum as u16);
        v[ip + 10..ip + 12].copy_from_slice(&ck.to_be_bytes());
        (v[ip + 9], ip + ihl)
    } else {
        add16(v, ip + 4);
        (v[ip + 6], ip + 40)
    };
    if proto == 17 {
        add16(v, l4 + 4);
    }
}

/// A record with `len` payload bytes of which only [`KEEP`] are captured.
#[must_use]
pub fn bulk(ts_us: u64, src: &Ep, dst: &Ep, l4: L4, len: usize) -> Record {
    let keep = len.min(KEEP);
    let (frame, wire) = self::frame(src, dst, l4, &[0x5a; KEEP][..keep], len);
    Record { ts_us, frame, wire }
}

/// A fully captured record.
#[must_use]
pub fn full(ts_us: u64, src: &Ep, dst: &Ep, l4: L4, payload: &[u8]) -> Record {
    let (frame, wire) = self::frame(src, dst, l4, payload, payload.len());
    Record { ts_us, frame, wire }
}

/// A TLS 1.2/1.3 ClientHello record naming `sni`.
#[must_use]
pub fn client_hello(sni: &str, random: u64) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    // server_name
    let list_len = 3 + name.len();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&u16::try_from(list_len + 2).unwrap_or(0).to_be_bytes());
    ext.extend_from_slice(&u16::try_from(list_len).unwrap_or(0).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&u16::try_from(name.len()).unwrap_or(0).to_be_bytes());
    ext.extend_from_slice(name);
    // supported_versions: TLS 1.3, 1.2
    ext.extend_from_slice(&[0x00, 0x2b, 0x00, 0x05, 0x04, 0x03, 0x04, 0x03, 0x03]);
    let mut body = vec![0x03, 0x03];
    for i in 0..4 {
        body.extend_from_slice(&random.rotate_left(i * 16).to_be_bytes());
    }
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x06, 0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    body.extend_from_slice(&u16::try_from(ext.len()).unwrap_or(0).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&u32::try_from(body.len()).unwrap_or(0).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16::try_from(hs.len()).unwrap_or(0).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// An HTTP/1.1 request.
#[must_use]
pub fn http_request(method: &str, host: &str, path: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

fn qname(m: &mut Vec<u8>, name: &str) {
    for l in name.split('.').filter(|l| !l.is_empty()) {
        let l = &l.as_bytes()[..l.len().min(63)];
        m.push(u8::try_from(l.len()).unwrap_or(63));
        m.extend_from_slice(l);
    }
    m.push(0);
}

/// A DNS query message.
#[must_use]
pub fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    qname(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m
}

/// A DNS response with A/AAAA answers (name compressed to the question).
#[must_use]
pub fn dns_response(id: u16, name: &str, qtype: u16, answers: &[IpAddr]) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&u16::try_from(answers.len()).unwrap_or(0).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    qname(&mut m, name);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    for a in answers {
        m.extend_from_slice(&[0xc0, 0x0c]);
        match a {
            IpAddr::V4(x) => {
                m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
                m.extend_from_slice(&x.octets());
            }
            IpAddr::V6(x) => {
                m.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0x0e, 0x10, 0, 16]);
                m.extend_from_slice(&x.octets());
            }
        }
    }
    m
}

/// What a TCP conversation does after the handshake.
pub struct Conv<'a> {
    /// First client payload (ClientHello, HTTP request), fully captured.
    pub hello: Option<&'a [u8]>,
    /// (client sends?, bytes, pause before it in µs)
    pub exchanges: &'a [(bool, usize, u64)],
    pub close: bool,
    pub rtt_us: u64,
}

/// Emits a TCP conversation starting at `t0`; returns when it ended.
pub fn tcp_conv(
    out: &mut Vec<Record>,
    t0: u64,
    c: &Ep,
    cport: u16,
    s: &Ep,
    sport: u16,
    conv: &Conv<'_>,
) -> u64 {
    let (up, down) = tcp_pair(cport, sport, ACK | PSH);
    let tcp = |from_c: bool, flags: u8| {
        let (to_s, to_c) = tcp_pair(cport, sport, flags);
        if from_c { to_s } else { to_c }
    };
    let rtt = conv.rtt_us.max(200);
    let mut t = t0;
    out.push(full(t, c, s, tcp(true, SYN), &[]));
    t += rtt / 2;
    out.push(full(t, s, c, tcp(false, SYN | ACK), &[]));
    t += rtt / 2;
    out.push(full(t, c, s, tcp(true, ACK), &[]));
    if let Some(h) = conv.hello {
        t += 100;
        out.push(full(t, c, s, up, h));
        t += rtt / 2;
        out.push(full(t, s, c, tcp(false, ACK), &[]));
    }
    for &(from_c, n, pause) in conv.exchanges {
        t += pause.max(50);
        let (a, b, l4) = if from_c { (c, s, up) } else { (s, c, down) };
        let mut left = n;
        let mut k = 0;
        while left > 0 {
            let seg = left.min(SEG);
            out.push(bulk(t, a, b, l4, seg));
            left -= seg;
            k += 1;
            // ~12 Mbit/s per segment of 16 kB
            t += 10_000;
        }
        if k > 0 {
            t += rtt / 2;
            out.push(full(t, b, a, tcp(!from_c, ACK), &[]));
        }
    }
    if conv.close {
        t += 1_000;
        out.push(full(t, c, s, tcp(true, FIN | ACK), &[]));
        t += rtt / 2;
        out.push(full(t, s, c, tcp(false, FIN | ACK), &[]));
        t += rtt / 2;
        out.push(full(t, c, s, tcp(true, ACK), &[]));
    }
    t
}
