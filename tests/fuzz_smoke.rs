//! Stable-toolchain fuzz smoke: the bodies of the cargo-fuzz targets
//! (`fuzz/src/targets.rs`) over their seed corpora (`fuzz/corpus/NAME/`)
//! plus random mutations of them, from a fixed seed, for a bounded time.
//!
//! - `FUZZ_SMOKE_SECS`: seconds per target (default 3; 0 = corpus only)
//! - `FUZZ_SMOKE_SEED`: PRNG seed (default fixed, so runs are reproducible)
//!
//! A panicking input is written to `$TMPDIR/deguchi-fuzz-crash-TARGET-N` and
//! reported with its hex bytes; turn it into a regression test in
//! `fuzz_regressions.rs`. The libFuzzer targets (nightly, `cargo fuzz run`)
//! explore much further; see fuzz/README.md.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

const INTERESTING: [u16; 10] = [
    0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff,
];

/// One to four libFuzzer-style mutations of `v` (sometimes spliced with `other`).
fn mutate(v: &mut Vec<u8>, other: &[u8], r: &mut Rng) {
    for _ in 0..=r.below(4) {
        let n = v.len();
        match r.below(9) {
            0 if n > 0 => {
                let i = r.below(n);
                v[i] ^= 1 << r.below(8);
            }
            1 if n > 0 => {
                let i = r.below(n);
                v[i] = r.byte();
            }
            2 if n > 1 => {
                let i = r.below(n - 1);
                let x = INTERESTING[r.below(INTERESTING.len())].to_be_bytes();
                v[i..i + 2].copy_from_slice(&x);
            }
            3 if n > 0 => {
                let i = r.below(n);
                v.truncate(i);
            }
            4 => {
                let i = r.below(n + 1);
                let k = 1 + r.below(16);
                let bytes: Vec<u8> = (0..k).map(|_| r.byte()).collect();
                v.splice(i..i, bytes);
            }
            5 if n > 0 => {
                let i = r.below(n);
                let e = (i + 1 + r.below(32)).min(n);
                v.drain(i..e);
            }
            6 if n > 0 => {
                // duplicate a chunk (repeated headers, stacked tags)
                let i = r.below(n);
                let e = (i + 1 + r.below(32)).min(n);
                let chunk = v[i..e].to_vec();
                v.splice(i..i, chunk);
            }
            7 if !other.is_empty() => {
                // crossover: our head, the other's tail
                let i = r.below(n + 1);
                let j = r.below(other.len());
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            8 if n > 3 => {
                let i = r.below(n - 3);
                let x = r.next().to_le_bytes();
                v[i..i + 4].copy_from_slice(&x[..4]);
            }
            _ => {}
        }
    }
    v.truncate(1 << 16);
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut v: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    v.push(Vec::new());
    v
}

fn env_num(k: &str, d: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

/// Runs `f` over the corpus, then over mutations until the time is up.
/// Returns (executions, executions per second).
fn smoke(name: &str, extra_seeds: Vec<Vec<u8>>, f: &dyn Fn(&[u8])) -> (u64, f64) {
    let mut seeds = corpus(name);
    seeds.extend(extra_seeds);
    let secs = env_num("FUZZ_SMOKE_SECS", 3);
    let mut r = Rng(env_num("FUZZ_SMOKE_SEED", 0x6465_6775_6368_6921) | 1);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut execs = 0u64;
    let run = |input: &[u8], execs: &mut u64| {
        *execs += 1;
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(input)));
        if res.is_err() {
            let p = std::env::temp_dir().join(format!("deguchi-fuzz-crash-{name}-{execs}"));
            let _ = std::fs::write(&p, input);
            let hex: String = input.iter().take(512).map(|b| format!("{b:02x}")).collect();
            panic!(
                "{name}: input {} ({} bytes) panicked; hex (first 512): {hex}",
                p.display(),
                input.len()
            );
        }
    };
    for s in &seeds {
        run(s, &mut execs);
    }
    while Instant::now() < deadline {
        for _ in 0..64 {
            let a = r.below(seeds.len());
            let b = r.below(seeds.len());
            let mut v = seeds[a].clone();
            mutate(&mut v, &seeds[b], &mut r);
            run(&v, &mut execs);
        }
    }
    let rate = execs as f64 / started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "fuzz smoke {name}: {execs} execs from {} seeds, {rate:.0} execs/s",
        seeds.len()
    );
    (execs, rate)
}

#[test]
fn smoke_decode() {
    // without a corpus: one plausible frame per link type
    let extra = targets::LINKS
        .iter()
        .map(|l| {
            let mut v = vec![targets::link_index(*l)];
            v.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
            v.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 53, 0, 53, 0, 8, 0, 0]);
            v
        })
        .collect();
    let (n, _) = smoke("decode", extra, &targets::decode);
    assert!(n > 0);
}

#[test]
fn smoke_hints() {
    let extra = vec![
        b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03".to_vec(),
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01"
            .to_vec(),
    ];
    let (n, _) = smoke("hints", extra, &targets::hints);
    assert!(n > 0);
}

#[test]
fn smoke_pcap_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("in.pcap");
    let mut extra = Vec::new();
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/bad");
    if let Ok(rd) = std::fs::read_dir(bad) {
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        extra.extend(files.iter().filter_map(|f| std::fs::read(f).ok()));
    }
    let (n, _) = smoke("pcap_file", extra, &|b| targets::pcap_file(b, &p));
    assert!(n > 0);
}
