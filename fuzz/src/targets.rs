//! The fuzz targets' bodies, shared by the libFuzzer targets
//! (`fuzz/fuzz_targets/*.rs`, `cargo fuzz run NAME`) and the stable smoke
//! runner (`tests/fuzz_smoke.rs` in the main crate, plain `cargo test`).
//! Plain Rust: depends on `deguchi` and `std` only.

use deguchi::decode::{Decoder, LinkType};

/// Every link type, in the order the `decode` target's first byte selects them.
pub const LINKS: [LinkType; 16] = [
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

/// Index of a link type in [`LINKS`] (the first byte of a `decode` input).
pub fn link_index(l: LinkType) -> u8 {
    LINKS
        .iter()
        .position(|x| *x == l)
        .and_then(|i| u8::try_from(i).ok())
        .unwrap_or(0)
}

/// `decode`: the first byte picks the link type, the rest is the frame.
/// Checks the decoder's contract: no panic, hint bytes inside the arena,
/// a failed frame leaves the arena unchanged.
pub fn decode(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(sel) % LINKS.len()];
    let wire = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    let mut dec = Decoder::default();
    let mut arena = Vec::new();
    for wire_len in [wire, wire.saturating_add(u32::from(sel))] {
        let before = arena.len();
        match dec.decode(link, frame, wire_len, 0, &mut arena) {
            Ok(m) => {
                let end = m.hint.off as usize + usize::from(m.hint.len);
                assert!(end <= arena.len(), "hint outside the arena");
                assert_eq!(m.wire_len, wire_len);
            }
            Err(_) => assert_eq!(arena.len(), before, "failed frame grew the arena"),
        }
    }
}

/// `hints`: every application parser over the same bytes.
pub fn hints(data: &[u8]) {
    use deguchi::hints::{dns, http, tls};
    if let Some(sni) = tls::client_hello_sni(data) {
        assert!(sni.len() <= data.len());
    }
    if let Some(r) = http::parse_request(data) {
        assert!(r.method.len() + r.uri.len() <= data.len());
        if let Some(h) = r.host {
            assert!(h.len() <= data.len());
        }
    }
    for s in [dns::parse(data), dns::parse_tcp(data)]
        .into_iter()
        .flatten()
    {
        assert!(s.qname.as_bytes().len() <= 255);
        let _ = (s.is_response, s.rcode, s.answers.len());
    }
}

/// `pcap_file`: the bytes as a capture file through libpcap and the file
/// source, every frame through the decoder. Errors are fine; panics are not.
pub fn pcap_file(data: &[u8], path: &std::path::Path) {
    use deguchi::capture::Next;
    use deguchi::capture::file::FileSource;
    if std::fs::write(path, data).is_err() {
        return;
    }
    let Ok(mut src) = FileSource::open(path) else {
        return;
    };
    let mut dec = Decoder::default();
    let mut arena = Vec::new();
    for _ in 0..100_000 {
        match src.next() {
            Ok(Next::Frame(f)) => {
                let _ = dec.decode(f.link, f.data, f.wire_len, f.ts, &mut arena);
                arena.clear();
            }
            Ok(Next::Idle) => {}
            Ok(Next::End) | Err(_) => break,
        }
    }
    if let (Some(pos), Some(size)) = (src.position(), src.size) {
        assert!(pos <= size, "position {pos} beyond the file size {size}");
    }
}
