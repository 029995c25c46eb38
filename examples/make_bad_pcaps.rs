//! Writes the broken captures of `pcaps/bad/` (see its README.md).
//!
//! ```text
//! cargo run --example make_bad_pcaps -- pcaps/bad
//! ```
//!
//! Every capture file starts with valid records (one complete TCP session,
//! 10.0.0.5:40000 -> 93.184.216.34:443, built with etherparse) before its
//! fault, so a reader can check that what came before the fault is kept.
//! The output is deterministic: running it again gives the same bytes.

use deguchi_synth::pcap;
use etherparse::PacketBuilder;
use std::path::Path;

/// 2026-03-02T00:00:00Z in seconds.
const T0: u32 = 1_772_409_600;

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: &str, payload: &[u8]) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, 1000, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(1);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).expect("building a frame");
    v
}

/// One TCP session (`n` data segments, 6 + n frames) starting at `t` seconds,
/// one record per millisecond: (sec, usec, frame).
fn session(t: u32, sport: u16, n: u32) -> Vec<(u32, u32, Vec<u8>)> {
    let (c, s) = ([10, 0, 0, 5], [93, 184, 216, 34]);
    let mut f = vec![
        tcp(c, sport, s, 443, "S", &[]),
        tcp(s, 443, c, sport, "SA", &[]),
        tcp(c, sport, s, 443, "A", &[]),
    ];
    for _ in 0..n {
        f.push(tcp(c, sport, s, 443, "AP", &[0x42; 100]));
    }
    f.push(tcp(c, sport, s, 443, "FA", &[]));
    f.push(tcp(s, 443, c, sport, "FA", &[]));
    f.push(tcp(c, sport, s, 443, "A", &[]));
    f.into_iter()
        .zip(0u32..)
        .map(|(fr, i)| (t, i * 1000, fr))
        .collect()
}

/// A record header with the fields as given (a broken file lies in them),
/// then `data`.
fn record(v: &mut Vec<u8>, sec: u32, usec: u32, caplen: u32, len: u32, data: &[u8]) {
    v.extend_from_slice(&pcap::record_header(sec, usec, caplen, len));
    v.extend_from_slice(data);
}

fn len32(d: &[u8]) -> u32 {
    u32::try_from(d.len()).expect("small frame")
}

/// A classic µs pcap (little-endian, Ethernet, snaplen 65535) of `recs`.
fn classic(recs: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    pcap::pcap_bytes(recs.iter().map(|(s, u, f)| {
        (
            u64::from(*s) * 1_000_000 + u64::from(*u),
            f.as_slice(),
            len32(f),
        )
    }))
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// A pcapng block: type, total length, body (padded), total length.
fn block(btype: u32, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    pad4(&mut b);
    let total = len32(&b) + 12;
    let mut v = Vec::new();
    v.extend_from_slice(&btype.to_le_bytes());
    v.extend_from_slice(&total.to_le_bytes());
    v.extend_from_slice(&b);
    v.extend_from_slice(&total.to_le_bytes());
    v
}

/// pcapng: section header, one Ethernet interface (µs), enhanced packet blocks.
fn pcapng(recs: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes()); // section length unknown
    let mut v = block(0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&1u16.to_le_bytes()); // Ethernet
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&block(1, &idb));
    for (s, u, f) in recs {
        v.extend_from_slice(&epb(*s, *u, f));
    }
    v
}

fn epb(sec: u32, usec: u32, f: &[u8]) -> Vec<u8> {
    let ts = u64::from(sec) * 1_000_000 + u64::from(usec);
    let mut b = Vec::new();
    b.extend_from_slice(&0u32.to_le_bytes()); // interface 0
    b.extend_from_slice(&u32::try_from(ts >> 32).expect("high").to_le_bytes());
    b.extend_from_slice(&u32::try_from(ts & 0xffff_ffff).expect("low").to_le_bytes());
    b.extend_from_slice(&len32(f).to_le_bytes());
    b.extend_from_slice(&len32(f).to_le_bytes());
    b.extend_from_slice(f);
    block(6, &b)
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "pcaps/bad".to_owned());
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).expect("creating the output folder");
    // the valid prefix of every file: 10 records of one complete session
    let good = session(T0, 40000, 4);
    let good_pcap = classic(&good);
    let next = tcp([10, 0, 0, 5], 40001, [93, 184, 216, 34], 443, "S", &[]);
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();

    // 1. the 24-byte global header cut after 10 bytes
    files.push(("truncated-global-header.pcap", good_pcap[..10].to_vec()));

    // 2. 10 records, then 8 of the 16 bytes of the 11th record header
    let mut v = good_pcap.clone();
    record(&mut v, T0 + 1, 0, len32(&next), len32(&next), &next);
    v.truncate(good_pcap.len() + 8);
    files.push(("record-header-cut.pcap", v));

    // 3. 10 records, then the 11th record cut in the middle of its data
    let mut v = good_pcap.clone();
    record(&mut v, T0 + 1, 0, len32(&next), len32(&next), &next);
    v.truncate(good_pcap.len() + 16 + next.len() / 2);
    files.push(("record-cut-mid-packet.pcap", v));

    // 4. a bad magic number, then an otherwise valid file
    let mut v = good_pcap.clone();
    v[..4].copy_from_slice(&0xdead_beefu32.to_le_bytes());
    files.push(("bad-magic.pcap", v));

    // 5. snaplen 96 in the header, but later records have caplen 150..250 (> snaplen)
    let mut v = pcap::file_header(96).to_vec();
    for (s, u, f) in &good {
        let keep = &f[..f.len().min(96)];
        record(&mut v, *s, *u, len32(keep), len32(f), keep);
    }
    let big = tcp(
        [10, 0, 0, 5],
        40001,
        [93, 184, 216, 34],
        443,
        "AP",
        &[0x43; 200],
    );
    for i in 0..2 {
        record(&mut v, T0 + 1, i * 1000, len32(&big), len32(&big), &big);
    }
    // and one more ordinary record after them
    let mut cut = v.clone();
    record(&mut v, T0 + 1, 5000, len32(&next), len32(&next), &next);
    files.push(("caplen-over-snaplen.pcap", v));

    // 5b. the same, then a record cut mid-packet: the error's byte offset must
    //     count the on-disk size of the oversized records, not the snaplen
    record(
        &mut cut,
        T0 + 1,
        5000,
        len32(&next),
        len32(&next),
        &next[..20],
    );
    files.push(("caplen-over-snaplen-then-cut.pcap", cut));

    // 6. 10 records, then a record header claiming 0x7fffffff captured bytes
    let mut v = good_pcap.clone();
    record(&mut v, T0 + 1, 0, 0x7fff_ffff, 0x7fff_ffff, &next);
    files.push(("absurd-caplen.pcap", v));

    // 7. zero-length records (caplen 0; wire len 0 and 60) between valid ones
    let mut v = pcap::file_header(65535).to_vec();
    for (i, (s, u, f)) in good.iter().enumerate() {
        record(&mut v, *s, *u, len32(f), len32(f), f);
        if i == 4 {
            record(&mut v, *s, *u + 1, 0, 0, &[]);
            record(&mut v, *s, *u + 2, 0, 60, &[]);
        }
    }
    files.push(("zero-length-records.pcap", v));

    // 8. timestamps going backwards: a session at T0+60 s, then one at T0
    //    (a minute earlier), then a lone SYN back at T0+61 s
    let mut recs = session(T0 + 60, 40002, 2);
    recs.extend(session(T0, 40000, 4));
    recs.push((T0 + 61, 0, next.clone()));
    files.push(("timestamps-backwards.pcap", classic(&recs)));

    // 9. not a capture at all
    files.push((
        "not-a-capture.txt",
        b"# tcpdump -i eth0 output pasted into a file\n10:00:00.000000 IP 10.0.0.5.40000 > 93.184.216.34.443: Flags [S]\n".to_vec(),
    ));

    // 10. an empty file
    files.push(("empty.pcap", Vec::new()));

    // 11. pcapng: 10 packets, then an enhanced packet block whose total length is absurd
    let mut v = pcapng(&good);
    let mut bad = epb(T0 + 1, 0, &next);
    bad[4..8].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    v.extend_from_slice(&bad);
    files.push(("pcapng-corrupt-block-length.pcapng", v));

    // 12. pcapng: 10 packets, then a block cut in the middle of its body
    let mut v = pcapng(&good);
    let b = epb(T0 + 1, 0, &next);
    v.extend_from_slice(&b[..b.len() / 2]);
    files.push(("pcapng-block-cut.pcapng", v));

    for (name, bytes) in &files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        println!("{:>6}  {}", bytes.len(), p.display());
    }
}
