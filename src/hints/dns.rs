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
        if let Some(a) = addr
            && s.answers.try_push(a).is_err()
        {
            break;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BING: &[u8] = include_bytes!("testdata/dns_resp_www.bing.com.bin");
    const BING_Q: &[u8] = include_bytes!("testdata/dns_query_www.bing.com.bin");
    const FB6: &[u8] = include_bytes!("testdata/dns_resp_aaaa_star.c10r.facebook.com.bin");
    const ALL: [&[u8]; 3] = [BING, BING_Q, FB6];

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn tcp(m: &[u8]) -> Vec<u8> {
        let mut v = (m.len() as u16).to_be_bytes().to_vec();
        v.extend(m);
        v
    }

    /// Header + raw question bytes (qtype/qclass appended) + raw trailing bytes.
    fn msg(flags: u16, qd: u16, an: u16, qname_wire: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut v = vec![0x12, 0x34];
        for x in [flags, qd, an, 0, 0] {
            v.extend(x.to_be_bytes());
        }
        v.extend(qname_wire);
        v.extend([0, 1, 0, 1]);
        v.extend(tail);
        v
    }

    #[test]
    fn real_a_response_with_cnames() {
        let s = parse(BING).unwrap();
        assert!(s.is_response && !s.truncated);
        assert_eq!(
            (s.id, s.opcode, s.rcode, s.qdcount, s.ancount),
            (0x44d7, 0, 0, 1, 12)
        );
        assert_eq!((s.qname.as_str(), s.qtype), ("www.bing.com", 1));
        // tshark lists 9 A records after 3 CNAMEs; the first 8 are kept.
        let want = ips(&[
            "184.86.251.19",
            "184.86.251.25",
            "184.86.251.21",
            "184.86.251.20",
            "184.86.251.28",
            "184.86.251.22",
            "184.86.251.24",
            "184.86.251.23",
        ]);
        assert_eq!(s.answers.to_vec(), want);
        assert_eq!(parse_tcp(&tcp(BING)), Some(s));
    }

    #[test]
    fn real_query_and_aaaa_response() {
        let q = parse(BING_Q).unwrap();
        assert!(!q.is_response && q.answers.is_empty());
        assert_eq!(
            (q.qname.as_str(), q.qtype, q.ancount),
            ("www.bing.com", 1, 0)
        );
        let s = parse(FB6).unwrap();
        assert_eq!((s.qname.as_str(), s.qtype), ("star.c10r.facebook.com", 28));
        // Only the answer section counts, not the AAAA/A glue in the additional section.
        assert_eq!(
            s.answers.to_vec(),
            ips(&["2a03:2880:1010:6f03:face:b00c:0:2"])
        );
    }

    #[test]
    fn compressed_names_in_answer_section() {
        // Walk the BING answers with read_name: owner names and CNAME targets all use
        // pointers into earlier names.
        let mut pos = 12 + 14 + 4;
        let mut owners = vec![];
        let mut targets = vec![];
        for _ in 0..12 {
            let (owner, end) = read_name(BING, pos).unwrap();
            owners.push(owner.as_str().to_owned());
            let ty = u16::from_be_bytes([BING[end], BING[end + 1]]);
            let rdlen = usize::from(u16::from_be_bytes([BING[end + 8], BING[end + 9]]));
            if ty == 5 {
                targets.push(read_name(BING, end + 10).unwrap().0.as_str().to_owned());
            }
            pos = end + 10 + rdlen;
        }
        assert_eq!(pos, BING.len());
        let cn = [
            "www-www.bing.com.trafficmanager.net",
            "www.bing.com.edgekey.net",
            "e86303.dscx.akamaiedge.net",
        ];
        assert_eq!(targets, cn);
        assert_eq!(owners[..3], ["www.bing.com", cn[0], cn[1]]);
        assert!(owners[3..].iter().all(|o| o == cn[2]));
    }

    #[test]
    fn every_prefix_is_none_or_consistent() {
        for full in ALL {
            let want = parse(full).unwrap();
            for n in 0..=full.len() {
                for got in [parse(&full[..n]), parse_tcp(&tcp(full)[..n + 2])] {
                    let Some(got) = got else { continue };
                    assert_eq!(
                        (&got.qname, got.qtype, got.rcode),
                        (&want.qname, want.qtype, want.rcode)
                    );
                    assert!(want.answers.starts_with(&got.answers), "prefix {n}");
                }
            }
            // The header alone is not enough; the complete question is.
            assert_eq!(parse(&full[..12]), None);
        }
        // TCP: a length prefix longer than the data is tolerated; shorter than a header is not.
        let mut t = tcp(BING);
        t.truncate(200);
        assert_eq!(parse_tcp(&t).unwrap().qname.as_str(), "www.bing.com");
        assert_eq!(
            parse_tcp(&[0, 11, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            None
        );
    }

    #[test]
    fn pointer_loops_and_bad_pointers() {
        // Self pointer at the question.
        assert_eq!(parse(&msg(0, 1, 0, &[0xc0, 12], &[])), None);
        // Forward pointer (to a valid name further on) is rejected.
        assert_eq!(parse(&msg(0, 1, 0, &[0xc0, 14, 1, b'a', 0], &[])), None);
        // Backward loop: "a" then a pointer back to the label start: hop limit ends it.
        assert_eq!(parse(&msg(0, 1, 0, &[1, b'a', 0xc0, 12], &[])), None);
        // Direct read_name loops (two pointers pointing at each other).
        let m = [0xc0, 2, 0xc0, 0];
        assert_eq!(read_name(&m, 2), None);
        assert_eq!(read_name(&m, 0), None);
        // Reserved label types 0x40 / 0x80.
        assert_eq!(parse(&msg(0, 1, 0, &[0x41, b'a', 0], &[])), None);
        assert_eq!(parse(&msg(0, 1, 0, &[0x81, b'a', 0], &[])), None);
        // A legitimate backward chain: name at 12 is "b", answer owner "x" + ptr to 12.
        assert_eq!(read_name(&[], 0), None);
        let m = msg(
            0x8180,
            1,
            1,
            &[1, b'b', 0],
            &[1, b'x', 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 10, 0, 0, 1],
        );
        assert_eq!(read_name(&m, 19).unwrap(), (name("x.b"), 23));
        assert_eq!(parse(&m).unwrap().answers.to_vec(), ips(&["10.0.0.1"]));
    }

    fn name(s: &str) -> DnsName {
        let mut n = DnsName::new();
        s.bytes().for_each(|b| n.push(b));
        n
    }

    #[test]
    fn name_text_and_limits() {
        // Case folded, non-printables and in-label dots replaced byte for byte; root = "".
        let q = [
            3, b'W', 0, b'w', 3, b'a', b'.', b'b', 4, b'C', b'O', b' ', 0xff, 0,
        ];
        assert_eq!(
            parse(&msg(0, 1, 0, &q, &[])).unwrap().qname.as_str(),
            "w?w.a?b.co??"
        );
        let root = parse(&msg(0, 1, 0, &[0], &[])).unwrap();
        assert!(root.qname.is_empty());
        // 255-octet wire name (63 * 3 + 61 + 4 length octets + root) fits; 256 does not.
        let wire = |last: u8| {
            let mut w = vec![];
            for l in [63, 63, 63, last] {
                w.push(l);
                w.extend(std::iter::repeat_n(b'a', usize::from(l)));
            }
            w.push(0);
            w
        };
        let ok = parse(&msg(0, 1, 0, &wire(61), &[])).unwrap();
        assert_eq!((ok.qname.len(), wire(61).len()), (253, 255));
        assert_eq!(parse(&msg(0, 1, 0, &wire(62), &[])), None);
        // Labels longer than 63 are pointer/reserved types by construction; 64 = 0x40.
        assert_eq!(parse(&msg(0, 1, 0, &[64], &[])), None);
    }

    #[test]
    fn header_sanity() {
        let q = [1, b'a', 0];
        assert!(parse(&msg(0, 1, 0, &q, &[])).is_some());
        assert_eq!(parse(&msg(0, 0, 0, &q, &[])), None); // nothing asked or answered
        assert_eq!(parse(&msg(3 << 11, 1, 0, &q, &[])), None); // opcode 3 unassigned
        assert_eq!(parse(&msg(6 << 11, 1, 0, &q, &[])), None);
        assert_eq!(parse(&msg(0, 17, 0, &q, &[])), None);
        let s = parse(&msg(0x8000 | (5 << 11) | 0x0200 | 3, 1, 0, &q, &[])).unwrap();
        assert_eq!(
            (s.opcode, s.truncated, s.rcode, s.is_response),
            (5, true, 3, true)
        );
        // A / AAAA with wrong rdlength, non-IN class, and other types are skipped.
        let rr = |ty: u16, class: u16, rd: &[u8]| {
            let mut v = vec![0xc0, 12];
            v.extend(ty.to_be_bytes());
            v.extend(class.to_be_bytes());
            v.extend([0, 0, 0, 60]);
            v.extend((rd.len() as u16).to_be_bytes());
            v.extend(rd);
            v
        };
        let mut tail = rr(1, 1, &[1, 2, 3]);
        tail.extend(rr(1, 3, &[1, 2, 3, 4]));
        tail.extend(rr(16, 1, b"\x03txt"));
        tail.extend(rr(28, 1, &[0; 16]));
        tail.extend(rr(1, 1, &[9, 9, 9, 9]));
        let s = parse(&msg(0x8180, 1, 5, &q, &tail)).unwrap();
        assert_eq!(s.answers.to_vec(), ips(&["::", "9.9.9.9"]));
        // Claimed ancount larger than present: stops cleanly.
        let s = parse(&msg(0x8180, 1, 60000, &q, &tail)).unwrap();
        assert_eq!(s.answers.len(), 2);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn random_bytes_never_panic(v in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&v);
            let _ = parse_tcp(&v);
        }

        #[test]
        fn random_body_after_plausible_header(
            v in proptest::collection::vec(any::<u8>(), 0..300),
            an in 0u16..20,
        ) {
            let mut m = vec![0, 1, 0x81, 0x80, 0, 1];
            m.extend(an.to_be_bytes());
            m.extend([0, 0, 0, 0]);
            m.extend(v);
            if let Some(s) = parse(&m) {
                prop_assert!(s.qname.as_bytes().iter().all(u8::is_ascii_graphic));
                prop_assert!(s.qname.len() <= 253);
            }
            // Every offset as a name start, too.
            for off in 0..m.len() {
                if let Some((n, end)) = read_name(&m, off) {
                    prop_assert!(end > off && end <= m.len() && n.len() <= 253);
                }
            }
        }

        #[test]
        fn mutations_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            cut in any::<usize>(),
        ) {
            let mut m = ALL[which].to_vec();
            for (i, b) in edits {
                let i = i % m.len();
                m[i] = b;
            }
            m.truncate(cut % (m.len() + 1));
            if let Some(s) = parse(&m) {
                prop_assert!(s.qname.as_bytes().iter().all(u8::is_ascii_graphic));
            }
            let _ = parse_tcp(&tcp(&m));
        }
    }
}
