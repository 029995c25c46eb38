//! Property tests of the packet decoder (`deguchi::decode`).
//!
//! - Totality: for every [`LinkType`], arbitrary bytes (with an arbitrary wire
//!   length) return `Ok` or a `DecodeError`, never a panic, and never leave
//!   hint bytes outside the arena.
//! - Robustness: valid frames built with etherparse (Ethernet, 802.1Q/QinQ,
//!   IPv4 with options, IPv6 with extension headers, TCP/UDP/ICMP, inside
//!   VXLAN or GRE, behind every link-layer header) survive byte flips,
//!   truncations and corrupted length fields.
//! - Symmetry: both directions of a TCP/UDP flow decode to the same
//!   `FlowKey` and the same shard, and the decoded 5-tuple is the one built.
//!
//! Case counts are modest (`PROPTEST_CASES` overrides them) so the file
//! runs in a few seconds with `cargo test --release --test proptest_decode`.

use deguchi::decode::{Decoder, LinkType, PacketMeta, Tunnel};
use deguchi::flow::key::FlowKey;
use etherparse::{
    IpHeaders, IpNumber, Ipv4Extensions, Ipv4Header, Ipv6Extensions, Ipv6FragmentHeader,
    Ipv6Header, Ipv6RawExtHeader, PacketBuilder,
};
use proptest::prelude::*;

const ALL_LINKS: [LinkType; 16] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ppp,
    LinkType::PppEther,
    LinkType::Nflog,
    LinkType::Chdlc,
    LinkType::Fddi,
    LinkType::Ieee80211,
    LinkType::Radiotap,
    LinkType::Ppi,
];

fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Decodes and checks the invariants every result must hold.
fn decode_checked(link: LinkType, data: &[u8], wire_len: u32) -> Option<PacketMeta> {
    let mut dec = Decoder::default();
    let mut arena = vec![0xee; 3]; // a non-empty arena: offsets must be relative to it
    let before = arena.len();
    let r = dec.decode(link, data, wire_len, 7, &mut arena);
    let errors: u64 = dec.counters.errors.iter().sum();
    match r {
        Ok(m) => {
            assert_eq!(errors, 0);
            assert_eq!(m.wire_len, wire_len);
            assert_eq!(m.ts, 7);
            let end = m.hint.off as usize + usize::from(m.hint.len);
            assert!(end <= arena.len(), "hint outside the arena");
            if m.hint.len > 0 {
                assert!(m.hint.off as usize >= before);
                assert!(usize::from(m.hint.len) <= deguchi::decode::HINT_COPY_MAX);
            }
            Some(m)
        }
        Err(_) => {
            assert_eq!(errors, 1, "one error counted per failed frame");
            assert_eq!(
                arena.len(),
                before,
                "a failed frame leaves the arena as it was"
            );
            None
        }
    }
}

fn wire(d: &[u8]) -> u32 {
    u32::try_from(d.len()).unwrap()
}

// ---------------------------------------------------------------- builders

#[derive(Clone, Copy, Debug)]
enum L3 {
    V4,
    V4Options,
    V6,
    V6Ext,
}

#[derive(Clone, Copy, Debug)]
enum L4 {
    Tcp,
    Udp,
    Icmp,
}

#[derive(Clone, Copy, Debug)]
enum Encap {
    None,
    Vxlan,
    GreIp,
    GreEther,
}

#[derive(Clone, Debug)]
struct Spec {
    l3: L3,
    l4: L4,
    vlans: u8,
    vlan_id: u16,
    encap: Encap,
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
}

fn ip_headers(l3: L3, src: [u8; 16], dst: [u8; 16]) -> IpHeaders {
    let s4 = [src[0], src[1], src[2], src[3]];
    let d4 = [dst[0], dst[1], dst[2], dst[3]];
    match l3 {
        L3::V4 | L3::V4Options => {
            let mut h = Ipv4Header::new(0, 64, IpNumber::UDP, s4, d4).unwrap();
            if matches!(l3, L3::V4Options) {
                // NOP, NOP, record route (len 11, ptr 4, two slots), EOL
                h.options = [1u8, 1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0].into();
            }
            IpHeaders::Ipv4(h, Ipv4Extensions::default())
        }
        L3::V6 | L3::V6Ext => {
            let h = Ipv6Header {
                hop_limit: 64,
                source: src,
                destination: dst,
                ..Ipv6Header::default()
            };
            let mut e = Ipv6Extensions::default();
            if matches!(l3, L3::V6Ext) {
                // hop-by-hop (PadN), destination options, and an atomic fragment header
                e.hop_by_hop_options =
                    Some(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap());
                e.destination_options =
                    Some(Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[1, 4, 0, 0, 0, 0]).unwrap());
                e.fragment = Some(Ipv6FragmentHeader::new(
                    IpNumber::UDP,
                    etherparse::IpFragOffset::ZERO,
                    false,
                    0x1234,
                ));
            }
            IpHeaders::Ipv6(h, e)
        }
    }
}

/// An IP packet (no link header) carrying the spec's transport.
fn ip_packet(s: &Spec, src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ip(ip_headers(s.l3, src, dst));
    let v6 = matches!(s.l3, L3::V6 | L3::V6Ext);
    let mut v = Vec::new();
    match s.l4 {
        L4::Tcp => b
            .tcp(sport, dport, 1, 1024)
            .ack(5)
            .psh()
            .write(&mut v, &s.payload)
            .unwrap(),
        L4::Udp => b.udp(sport, dport).write(&mut v, &s.payload).unwrap(),
        L4::Icmp if v6 => b
            .icmpv6_echo_request(sport, dport)
            .write(&mut v, &s.payload)
            .unwrap(),
        L4::Icmp => b
            .icmpv4_echo_request(sport, dport)
            .write(&mut v, &s.payload)
            .unwrap(),
    }
    v
}

fn ethertype_of(ip: &[u8]) -> [u8; 2] {
    if ip.first().map(|b| b >> 4) == Some(6) {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    }
}

/// Ethernet header with `vlans` tags (802.1ad outer, 802.1Q inner) around `body`.
fn ether(vlans: u8, vlan_id: u16, et: [u8; 2], body: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for i in 0..vlans {
        let tpid = if i + 1 < vlans { 0x88a8u16 } else { 0x8100 };
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&(vlan_id + u16::from(i)).to_be_bytes());
    }
    v.extend_from_slice(&et);
    v.extend_from_slice(body);
    v
}

/// Outer IPv4 (192.0.2.1 -> 192.0.2.2) carrying `payload` as `proto`.
fn outer_ipv4(proto: IpNumber, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(
        Ipv4Header::new(0, 64, proto, [192, 0, 2, 1], [192, 0, 2, 2]).unwrap(),
        Ipv4Extensions::default(),
    ))
    .write(&mut v, proto, payload)
    .unwrap();
    v
}

/// The full Ethernet frame of one direction of the spec's flow.
fn frame(s: &Spec, reverse: bool) -> Vec<u8> {
    let (src, dst, sport, dport) = if reverse {
        (s.dst, s.src, s.dport, s.sport)
    } else {
        (s.src, s.dst, s.sport, s.dport)
    };
    let inner = ip_packet(s, src, dst, sport, dport);
    match s.encap {
        Encap::None => ether(s.vlans, s.vlan_id, ethertype_of(&inner), &inner),
        Encap::Vxlan => {
            let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
            vx.extend_from_slice(&ether(0, 0, ethertype_of(&inner), &inner));
            let mut udp = Vec::new();
            PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                .udp(49152, 4789)
                .write(&mut udp, &vx)
                .unwrap();
            ether(s.vlans, s.vlan_id, [0x08, 0x00], &udp)
        }
        Encap::GreIp | Encap::GreEther => {
            let (proto, body) = if matches!(s.encap, Encap::GreIp) {
                (u16::from_be_bytes(ethertype_of(&inner)), inner)
            } else {
                (0x6558, ether(0, 0, ethertype_of(&inner), &inner))
            };
            // key present (flags 0x2000), version 0
            let mut gre = vec![0x20, 0x00];
            gre.extend_from_slice(&proto.to_be_bytes());
            gre.extend_from_slice(&[0, 0, 0, 9]);
            gre.extend_from_slice(&body);
            ether(
                s.vlans,
                s.vlan_id,
                [0x08, 0x00],
                &outer_ipv4(IpNumber::GRE, &gre),
            )
        }
    }
}

/// The IP packet of `frame` behind another link-layer header (`Ethernet` = as built).
fn relink(link: LinkType, eth: &[u8]) -> Vec<u8> {
    // strip the Ethernet header and tags down to the IP packet
    let mut off = 12;
    while matches!(eth.get(off..off + 2), Some([0x81, 0x00] | [0x88, 0xa8])) {
        off += 4;
    }
    let et = [eth[off], eth[off + 1]];
    let ip = &eth[off + 2..];
    let v6 = et == [0x86, 0xdd];
    let mut v = Vec::new();
    match link {
        LinkType::Ethernet => return eth.to_vec(),
        LinkType::Null => v.extend_from_slice(&(if v6 { 30u32 } else { 2 }).to_le_bytes()),
        LinkType::Loop => v.extend_from_slice(&(if v6 { 24u32 } else { 2 }).to_be_bytes()),
        LinkType::Raw | LinkType::Ipv4 | LinkType::Ipv6 => {}
        LinkType::LinuxSll => {
            v.extend_from_slice(&[0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
            v.extend_from_slice(&et);
        }
        LinkType::LinuxSll2 => {
            v.extend_from_slice(&et);
            v.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
        }
        LinkType::Ppp => v.extend_from_slice(&[0xff, 0x03, 0, if v6 { 0x57 } else { 0x21 }]),
        LinkType::PppEther => {
            v.extend_from_slice(&[0x11, 0, 0, 1, 0, 0, 0, if v6 { 0x57 } else { 0x21 }]);
        }
        LinkType::Nflog => {
            v.extend_from_slice(&[if v6 { 10 } else { 2 }, 0, 0, 0]);
            let tlv_len = u16::try_from(4 + ip.len()).unwrap();
            v.extend_from_slice(&tlv_len.to_le_bytes());
            v.extend_from_slice(&9u16.to_le_bytes());
        }
        LinkType::Chdlc => {
            v.extend_from_slice(&[0x0f, 0]);
            v.extend_from_slice(&et);
        }
        LinkType::Fddi => {
            v.extend_from_slice(&[0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
            v.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
            v.extend_from_slice(&et);
        }
        LinkType::Ieee80211 | LinkType::Radiotap | LinkType::Ppi => {
            let mut w = Vec::new();
            if link == LinkType::Radiotap {
                w.extend_from_slice(&[0, 0, 8, 0, 0, 0, 0, 0]);
            }
            if link == LinkType::Ppi {
                w.extend_from_slice(&[0, 0, 8, 0]);
                w.extend_from_slice(&105i32.to_le_bytes());
            }
            // data frame, to-DS, three addresses, sequence control
            w.extend_from_slice(&[0x08, 0x01, 0, 0]);
            w.extend_from_slice(&[1; 18]);
            w.extend_from_slice(&[0, 0]);
            w.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0]);
            w.extend_from_slice(&et);
            v = w;
        }
    }
    v.extend_from_slice(ip);
    v
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(L3::V4),
            Just(L3::V4Options),
            Just(L3::V6),
            Just(L3::V6Ext)
        ],
        prop_oneof![Just(L4::Tcp), Just(L4::Udp), Just(L4::Icmp)],
        0u8..3,
        1u16..4000,
        prop_oneof![
            3 => Just(Encap::None),
            1 => Just(Encap::Vxlan),
            1 => Just(Encap::GreIp),
            1 => Just(Encap::GreEther)
        ],
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u16>(),
        // ports that would look like a tunnel are excluded: the outer flow is checked separately
        any::<u16>().prop_filter("no tunnel port", |p| {
            ![2152, 3544, 4789, 4790, 6081, 8472].contains(p)
        }),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            |(l3, l4, vlans, vlan_id, encap, src, dst, sport, dport, payload)| Spec {
                l3,
                l4,
                vlans,
                vlan_id,
                encap,
                src,
                dst,
                sport: if [2152, 3544, 4789, 4790, 6081, 8472].contains(&sport) {
                    sport ^ 0x8000
                } else {
                    sport
                },
                dport,
                payload,
            },
        )
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    /// Overwrite a 16-bit field at `off` (relative to the IP header when `ip`).
    SetU16 {
        off: usize,
        val: u16,
        ip: bool,
    },
    SetU8 {
        off: usize,
        val: u8,
        ip: bool,
    },
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    // offsets of interesting fields relative to the IP header: v4 IHL/TOS/total
    // length/id/frag/proto, v6 payload length/next header, L4 length fields
    let len_field = prop::sample::select(vec![0usize, 2, 4, 6, 9, 24, 26, 32, 44, 46]);
    prop_oneof![
        3 => (any::<usize>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (len_field.clone(), prop_oneof![Just(0u16), Just(1), Just(0xffff), Just(0x8000), any::<u16>()])
            .prop_map(|(off, val)| Mutation::SetU16 { off, val, ip: true }),
        1 => (len_field, any::<u8>()).prop_map(|(off, val)| Mutation::SetU8 { off, val, ip: true }),
        1 => (any::<usize>(), any::<u16>()).prop_map(|(off, val)| Mutation::SetU16 { off, val, ip: false }),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..32).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn ip_offset(f: &[u8]) -> usize {
    let mut off = 12;
    while matches!(f.get(off..off + 2), Some([0x81, 0x00] | [0x88, 0xa8])) {
        off += 4;
    }
    off + 2
}

fn apply(f: &mut Vec<u8>, m: &Mutation, ip_off: usize) {
    if f.is_empty() {
        return;
    }
    let n = f.len();
    match m {
        Mutation::Flip(i, x) => f[i % n] ^= x,
        Mutation::Truncate(i) => f.truncate(i % n),
        Mutation::SetU16 { off, val, ip } => {
            let o = if *ip { ip_off + off } else { off % n };
            if o + 2 <= n {
                f[o..o + 2].copy_from_slice(&val.to_be_bytes());
            }
        }
        Mutation::SetU8 { off, val, ip } => {
            let o = if *ip { ip_off + off } else { off % n };
            if o < n {
                f[o] = *val;
            }
        }
        Mutation::Insert(i, b) => {
            let i = i % (n + 1);
            f.splice(i..i, b.iter().copied());
        }
        Mutation::Remove(i, k) => {
            let i = i % n;
            let e = (i + k).min(n);
            f.drain(i..e);
        }
    }
}

fn addr(b: [u8; 16], v6: bool) -> u128 {
    if v6 {
        u128::from_be_bytes(b)
    } else {
        u128::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(1000))]

    /// Any bytes, any link type, any wire length: a result, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(
        link in prop::sample::select(ALL_LINKS.to_vec()),
        data in prop::collection::vec(any::<u8>(), 0..600),
        wire_len in any::<u32>(),
    ) {
        decode_checked(link, &data, wire_len);
        decode_checked(link, &data, wire(&data));
    }

    /// Plausible link header, then noise: reaches the IP and tunnel parsers more often.
    #[test]
    fn link_header_then_noise_never_panics(
        link in prop::sample::select(ALL_LINKS.to_vec()),
        v6 in any::<bool>(),
        noise in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut ip = vec![if v6 { 0x60 } else { 0x45 }];
        ip.extend_from_slice(&noise);
        let head = ether(0, 0, if v6 { [0x86, 0xdd] } else { [0x08, 0x00] }, &ip);
        let f = relink(link, &head);
        decode_checked(link, &f, wire(&f));
    }

    /// Valid frames decode to the 5-tuple that was built, behind every link type.
    #[test]
    fn valid_frames_decode_to_what_was_built(s in arb_spec(), li in 0usize..ALL_LINKS.len()) {
        let link = ALL_LINKS[li];
        let eth = frame(&s, false);
        // 802.11 and the others carry no VLAN tags: relink drops them
        let f = relink(link, &eth);
        let m = decode_checked(link, &f, wire(&f)).expect("a valid frame decodes");
        let v6 = matches!(s.l3, L3::V6 | L3::V6Ext);
        prop_assert_eq!(m.v6, v6);
        prop_assert_eq!(m.src, addr(s.src, v6));
        prop_assert_eq!(m.dst, addr(s.dst, v6));
        match s.l4 {
            L4::Tcp | L4::Udp => {
                prop_assert_eq!((m.sport, m.dport), (s.sport, s.dport));
                prop_assert_eq!(m.payload_len as usize, s.payload.len());
            }
            L4::Icmp => prop_assert_eq!(m.sport, s.sport), // echo id stands in for ports
        }
        let want_tunnel = match s.encap {
            Encap::None => Tunnel::None,
            Encap::Vxlan => Tunnel::Vxlan,
            Encap::GreIp | Encap::GreEther => Tunnel::Gre,
        };
        prop_assert_eq!(m.tunnel, want_tunnel);
        if link == LinkType::Ethernet && s.vlans > 0 {
            prop_assert_eq!(m.vlan, s.vlan_id);
        }
    }

    /// Byte flips, truncations, inserted/removed bytes and corrupted length
    /// fields of valid frames (every link type): never a panic.
    #[test]
    fn mutated_valid_frames_never_panic(
        s in arb_spec(),
        li in 0usize..ALL_LINKS.len(),
        muts in prop::collection::vec(arb_mutation(), 1..5),
        wire_extra in 0u32..3000,
    ) {
        let link = ALL_LINKS[li];
        let eth = frame(&s, false);
        let ip_off = ip_offset(&eth);
        let mut f = relink(link, &eth);
        // where the IP header sits behind this link type
        let hdr = (f.len() + ip_off).saturating_sub(eth.len());
        for m in &muts {
            apply(&mut f, m, hdr);
        }
        decode_checked(link, &f, wire(&f) + wire_extra);
    }

    /// Both directions of a TCP/UDP flow: one key, one shard, opposite `src_is_a`.
    #[test]
    fn both_directions_same_key_and_shard(
        s in arb_spec().prop_filter("tcp or udp", |s| !matches!(s.l4, L4::Icmp)),
        shards in 1usize..64,
        seeds in any::<[u64; 4]>(),
    ) {
        let a = decode_checked(LinkType::Ethernet, &frame(&s, false), 100).unwrap();
        let b = decode_checked(LinkType::Ethernet, &frame(&s, true), 100).unwrap();
        prop_assert_eq!((a.sport, a.dport), (b.dport, b.sport));
        prop_assert_eq!((a.src, a.dst), (b.dst, b.src));
        let (ka, sa) = FlowKey::of(&a);
        let (kb, sb) = FlowKey::of(&b);
        prop_assert_eq!(ka, kb);
        if (a.src, a.sport) != (a.dst, a.dport) {
            prop_assert_ne!(sa, sb);
        }
        let h = ahash::RandomState::with_seeds(seeds[0], seeds[1], seeds[2], seeds[3]);
        let sh = ka.shard(&h, shards);
        prop_assert!(sh < shards);
        prop_assert_eq!(sh, kb.shard(&h, shards));
        // the key does not depend on the tunnel or the link layer carrying the flow
        let plain = Spec { encap: Encap::None, vlans: 0, ..s.clone() };
        let mut p = decode_checked(LinkType::Ethernet, &frame(&plain, false), 100).unwrap();
        p.vlan = a.vlan;
        prop_assert_eq!(FlowKey::of(&p).0, ka);
    }
}

/// Every truncation of every kind of valid frame, behind every link type.
#[test]
fn every_prefix_of_each_kind_of_frame() {
    let mut n = 0;
    for l3 in [L3::V4, L3::V4Options, L3::V6, L3::V6Ext] {
        for l4 in [L4::Tcp, L4::Udp, L4::Icmp] {
            for encap in [Encap::None, Encap::Vxlan, Encap::GreIp, Encap::GreEther] {
                let s = Spec {
                    l3,
                    l4,
                    vlans: 2,
                    vlan_id: 10,
                    encap,
                    src: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    dst: [8, 8, 8, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                    sport: 40000,
                    dport: 443,
                    payload: b"\x16\x03\x01\x00\x10\x01GET / HTTP/1.1\r\n".to_vec(),
                };
                let eth = frame(&s, false);
                for link in ALL_LINKS {
                    let f = relink(link, &eth);
                    for cut in 0..=f.len() {
                        decode_checked(link, &f[..cut], wire(&f));
                        n += 1;
                    }
                }
            }
        }
    }
    assert!(n > 10_000);
}
