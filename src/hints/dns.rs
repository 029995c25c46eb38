//! DNS message summary: header, first question, A/AAAA answers.
//!
//! Wire format per RFC 1035 §4.1 (header, question, resource records); names per §3.1 and
//! compression per §4.1.4. TCP messages carry a 2-byte length prefix (RFC 1035 §4.2.2,
//! RFC 7766); a message cut short by the capture is parsed as far as it goes.
//!
//! Bounds: a name may follow at most [`MAX_HOPS`] compression pointers, each of which must
//! point strictly backwards (to a "prior occurrence", §4.1.4) so self-pointers and forward
//! jumps are rejected; its uncompressed wire length must be <= 255 octets (§2.3.4). Label
//! types 01/10 (extended, reserved) are rejected. At most 8 answer addresses are collected.
//!
//! Name text: labels joined by `.`, no trailing dot, the root is the empty string. ASCII
//! letters are lowercased. Any byte outside 0x21..=0x7e, and a `.` inside a label, is
//! replaced by `?` (one byte for one byte, so lengths are kept and the text is always
//! printable ASCII without spaces; the replacement is lossy by design).

use super::Reader;
use arrayvec::ArrayVec;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Maximum compression pointers followed while decoding one name.
pub const MAX_HOPS: usize = 16;
/// Maximum answer addresses collected.
pub const MAX_ANSWERS: usize = 8;
const MAX_NAME_WIRE: usize = 255;
const HEADER_LEN: usize = 12;
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A decoded domain name as printable dotted ASCII (see the module docs).
#[derive(Clone)]
pub struct DnsName {
    len: u8,
    buf: [u8; 255],
}

impl DnsName {
    /// The empty (root) name.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            len: 0,
            buf: [0; 255],
        }
    }
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
    /// The name as text; always valid since only printable ASCII is stored.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
    #[must_use]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Append one byte; silently ignored when full (cannot happen for names <= 255 octets).
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len = self.len.saturating_add(1);
        }
    }
}

impl Default for DnsName {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl PartialEq for DnsName {
    fn eq(&self, o: &Self) -> bool {
        self.as_bytes() == o.as_bytes()
    }
}
impl Eq for DnsName {}

/// What one DNS message says, as far as the flow hints need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsSummary {
    pub id: u16,
    pub is_response: bool,
    pub opcode: u8,
    /// TC bit: the response was truncated by the server.
    pub truncated: bool,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    /// Name of the first question (empty if there is none).
    pub qname: DnsName,
    /// Type of the first question (0 if there is none).
    pub qtype: u16,
    /// IN A / IN AAAA addresses from the answer section (responses only), in order.
    pub answers: ArrayVec<IpAddr, MAX_ANSWERS>,
}

fn sanitize(b: u8) -> u8 {
    if b.is_ascii_graphic() && b != b'.' {
        b.to_ascii_lowercase()
    } else {
        b'?'
    }
}

/// Decode the name at offset `off` of message `m`. Returns the name and the offset just
/// past it *in place* (after the first pointer if compressed).
#[must_use]
pub fn read_name(m: &[u8], off: usize) -> Option<(DnsName, usize)> {
    let mut out = DnsName::new();
    let mut pos = off;
    let mut end = None;
    let mut hops = 0usize;
    let mut wire = 1usize; // the terminating root label
    // Each iteration either adds >= 2 wire octets (bounded by MAX_NAME_WIRE) or is a hop
    // (bounded by MAX_HOPS).
    loop {
        let len = *m.get(pos)?;
        let next = pos.checked_add(1)?;
        match len >> 6 {
            0 if len == 0 => return Some((out, end.unwrap_or(next))),
            0 => {
                let label = m.get(next..)?.get(..usize::from(len))?;
                wire = wire.checked_add(label.len())?.checked_add(1)?;
                if wire > MAX_NAME_WIRE {
                    return None;
                }
                if !out.is_empty() {
                    out.push(b'.');
                }
                label.iter().for_each(|&b| out.push(sanitize(b)));
                pos = next.checked_add(label.len())?;
            }
            3 => {
                let target = usize::from(len & 0x3f) << 8 | usize::from(*m.get(next)?);
                end = end.or(next.checked_add(1));
                hops = hops.checked_add(1)?;
                if hops > MAX_HOPS || target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
}

/// Consume a (possibly compressed) name without decoding it.
fn skip_name(r: &mut Reader<'_>) -> Option<()> {
    // Every iteration consumes >= 1 byte.
    loop {
        let len = r.u8()?;
        match len >> 6 {
            0 if len == 0 => return Some(()),
            0 => {
                r.take(usize::from(len))?;
            }
            3 => {
                r.u8()?;
                return Some(());
            }
            _ => return None,
        }
    }
}

/// Summarise a DNS message (UDP payload). `None` if it is clearly not DNS or the first
/// question is incomplete; truncation inside the answers just ends the answer list.
#[must_use]
pub fn parse(m: &[u8]) -> Option<DnsSummary> {
    let mut r = Reader(m);
    let id = r.u16()?;
    let flags = r.u16()?;
    let (qdcount, ancount) = (r.u16()?, r.u16()?);
    r.take(4)?; // nscount, arcount
    let opcode = u8::try_from(flags >> 11 & 0xf).ok()?;
    // Opcodes: 0 QUERY, 1 IQUERY, 2 STATUS, 4 NOTIFY, 5 UPDATE (3 and 6.. unassigned).
    if opcode == 3 || opcode > 5 || (qdcount == 0 && ancount == 0) || qdcount > 16 {
        return None;
    }
    let mut s = DnsSummary {
        id,
        is_response: flags & 0x8000 != 0,
        opcode,
        truncated: flags & 0x0200 != 0,
        rcode: u8::try_from(flags & 0xf).ok()?,
        qdcount,
        ancount,
        qname: DnsName::new(),
        qtype: 0,
        answers: ArrayVec::new(),
    };
    let mut r = Reader(m.get(HEADER_LEN..)?);
    if qdcount > 0 {
        let (name, end) = read_name(m, HEADER_LEN)?;
        r = Reader(m.get(end..)?);
        s.qtype = r.u16()?;
        r.u16()?; // qclass
        s.qname = name;
    }
    if !s.is_response {
        return Some(s);
    }
    for _ in 1..qdcount {
        if skip_name(&mut r).and_then(|()| r.take(4)).is_none() {
            return Some(s);
        }
    }
    for _ in 0..ancount {
        let Some((ty, class, rdata)) = (|| {
            skip_name(&mut r)?;
            let (ty, class) = (r.u16()?, r.u16()?);
            r.take(4)?; // ttl
            Some((ty, class, r.vec16()?))
        })() else {
            break;
        };
        let addr = match (class, ty) {
            (CLASS_IN, TYPE_A) => <[u8; 4]>::try_from(rdata)
                .ok()
                .map(|a| Ipv4Addr::from(a).into()),
            (CLASS_IN, TYPE_AAAA) => <[u8; 16]>::try_from(rdata)
                .ok()
                .map(|a| Ipv6Addr::from(a).into()),
            _ => None,
        };
        if let Some(a) = addr {
            if s.answers.try_push(a).is_err() {
                break;
            }
        }
    }
    Some(s)
}

/// Summarise a DNS-over-TCP message at the start of a segment (2-byte length prefix).
/// A message cut short by the capture is parsed as far as it goes.
#[must_use]
pub fn parse_tcp(m: &[u8]) -> Option<DnsSummary> {
    let mut r = Reader(m);
    let len = usize::from(r.u16()?);
    if len < HEADER_LEN {
        return None;
    }
    parse(r.take_upto(len))
}
