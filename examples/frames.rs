//! Writes a capture of fixed-size frames for the live-capture benchmarks
//! (`benches/loss-curve.sh`, `scripts/veth-harness.sh`): UDP between
//! `flows` pairs of hosts, both directions, 10 µs apart.
//!
//!     cargo run --release --example frames -- SIZE PACKETS FLOWS OUT.pcap [--dup]
//!
//! SIZE is the Ethernet frame length (60..=9000; 64 = "small frames",
//! 5500 = "5.5 KB frames", needing a veth MTU above 5486). `--dup` writes
//! every frame twice, 3 µs apart (what a SPAN port mirroring both
//! directions of a switch port delivers).

use deguchi_synth::pcap::PcapWriter;
use etherparse::PacketBuilder;

fn main() -> std::io::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: frames SIZE PACKETS FLOWS OUT.pcap [--dup]");
        std::process::exit(2);
    }
    let size: usize = a[0].parse().expect("SIZE");
    let packets: u64 = a[1].parse().expect("PACKETS");
    let flows: u32 = a[2].parse().expect("FLOWS");
    let dup = a.get(4).is_some_and(|x| x == "--dup");
    assert!((60..=9000).contains(&size), "SIZE 60..=9000");
    let mut payload = vec![0x5a_u8; size.saturating_sub(14 + 20 + 8)];
    let mut w = PcapWriter::create(std::path::Path::new(&a[3]))?;
    let mut ts = 1_700_000_000_000_000_u64;
    let mut frame = Vec::with_capacity(size);
    for i in 0..packets {
        let f = u32::try_from(i % u64::from(flows.max(1))).unwrap_or(0);
        let inner = [10, 1, (f >> 8) as u8, f as u8];
        let outer = [198, 51, 100, (f % 200) as u8 + 1];
        let (sport, dport) = (20_000 + (f % 40_000) as u16, 443);
        // every other packet of a flow is a reply
        let reply = (i / u64::from(flows.max(1))) % 2 == 1;
        let b = if reply {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1])
                .ipv4(outer, inner, 64)
                .udp(dport, sport)
        } else {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4(inner, outer, 64)
                .udp(sport, dport)
        };
        // every packet's bytes differ (a sequence number up front), as
        // real packets' do: only --dup makes byte-equal copies
        for (p, x) in payload.iter_mut().zip(i.to_be_bytes()) {
            *p = x;
        }
        frame.clear();
        b.write(&mut frame, &payload).expect("frame");
        let wire = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        w.frame(ts, &frame, wire)?;
        if dup {
            w.frame(ts + 3, &frame, wire)?;
        }
        ts += 10;
    }
    let (n, bytes) = w.finish()?;
    eprintln!("{n} frames, {bytes} bytes");
    Ok(())
}
