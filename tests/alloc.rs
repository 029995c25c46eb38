//! The hot path allocates nothing per packet: a counting global allocator
//! (this test binary only) around decoding 10 000 frames and around the
//! flow-shard update of packets of flows already in the table.

use deguchi::decode::{Decoder, LinkType, PacketMeta};
use deguchi::flow::table::{FlowEvent, FlowTable, TableConfig};
use etherparse::PacketBuilder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (r, ALLOCS.load(Ordering::SeqCst))
}

fn frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..10_000u32 {
        let mut f = Vec::new();
        let b = i.to_be_bytes();
        match i % 3 {
            0 => PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, b[2], b[3]], [93, 184, 216, 34], 64)
                .tcp(40_000 + (i % 500) as u16, 443, 1, 65_535)
                .ack(1)
                .write(&mut f, &[0x17; 300])
                .unwrap(),
            1 => PacketBuilder::ethernet2([1; 6], [2; 6])
                .single_vlan(etherparse::VlanId::try_new(20).unwrap())
                .ipv6(
                    [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b[2], b[3]],
                    [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    64,
                )
                .udp(50_000, 443)
                .write(&mut f, &[0u8; 200])
                .unwrap(),
            _ => {
                let mut inner = Vec::new();
                PacketBuilder::ethernet2([3; 6], [4; 6])
                    .ipv4([10, 1, b[2], b[3]], [198, 51, 100, 1], 64)
                    .tcp(41_000, 80, 1, 65_535)
                    .write(&mut inner, &[0u8; 64])
                    .unwrap();
                let mut pl = vec![0x08, 0, 0, 0, 0, 0, 0x10, 0];
                pl.extend_from_slice(&inner);
                PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
                    .udp(40_000, 4789)
                    .write(&mut f, &pl)
                    .unwrap();
            }
        }
        v.push(f);
    }
    v
}

#[test]
fn decode_and_shard_update_do_not_allocate_per_packet() {
    // the counter counts
    let (v, n) = counted(|| std::hint::black_box(Vec::<u8>::with_capacity(64)));
    assert!(n >= 1 && v.capacity() >= 64);
    let frames = frames();
    let mut dec = Decoder::default();
    let mut arena: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut metas: Vec<PacketMeta> = Vec::with_capacity(frames.len());
    let ((), n) = counted(|| {
        for (i, f) in frames.iter().enumerate() {
            let m = dec
                .decode(
                    LinkType::Ethernet,
                    f,
                    f.len() as u32,
                    i as i64 * 1000,
                    &mut arena,
                )
                .unwrap();
            metas.push(m);
        }
    });
    assert_eq!(
        n,
        0,
        "decode allocated {n} times for {} frames",
        frames.len()
    );

    // a warm table: the first pass inserts the flows, the second must not allocate
    let mut table = FlowTable::new(TableConfig::default());
    let mut out: Vec<FlowEvent> = Vec::with_capacity(1024);
    for m in &metas {
        table.update(m, &arena, &mut out);
    }
    out.clear();
    let later: Vec<PacketMeta> = metas
        .iter()
        .map(|m| PacketMeta {
            // half a second later: same bursts, no timeouts
            ts: m.ts + 500_000_000,
            ..*m
        })
        .collect();
    let ((), n) = counted(|| {
        for m in &later {
            table.update(m, &arena, &mut out);
        }
    });
    assert!(out.is_empty(), "no events expected: {}", out.len());
    assert_eq!(
        n,
        0,
        "shard update allocated {n} times for {} packets",
        later.len()
    );
}
