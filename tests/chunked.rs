//! The classic-pcap fast reader (`capture::chunked`) hands out exactly the
//! records libpcap does: same timestamps, lengths and bytes, same number of
//! records before an error. Checked on every real capture in
//! ../shared/pcaps/real (skipped when absent), on the project's own
//! captures, and on those cut and damaged at many points.

use deguchi::capture::chunked::ChunkedFile;
use deguchi::capture::file::FileSource;
use deguchi::capture::{Frame, Next};
use std::path::{Path, PathBuf};

/// (ts, wire_len, bytes) of every record, and whether reading failed.
type Records = (Vec<(i64, u32, Vec<u8>)>, bool);

fn via_libpcap(path: &Path) -> Option<Records> {
    let mut src = FileSource::open(path).ok()?;
    let mut out = Vec::new();
    loop {
        match src.next() {
            Ok(Next::Frame(Frame {
                ts, wire_len, data, ..
            })) => out.push((ts, wire_len, data.to_vec())),
            Ok(Next::End) => return Some((out, false)),
            Ok(Next::Idle) => {}
            Err(_) => return Some((out, true)),
        }
    }
}

fn via_chunks(path: &Path) -> Option<Records> {
    let src = FileSource::open(path).ok()?;
    let mut fast: ChunkedFile = src.chunked()?;
    let (mut out, mut recs) = (Vec::new(), Vec::new());
    loop {
        match fast.next_chunk(&mut recs) {
            Ok(Some(c)) => {
                for r in &recs {
                    let d = c[r.off as usize..(r.off + r.len) as usize].to_vec();
                    out.push((r.ts, r.wire_len, d));
                }
            }
            Ok(None) => return Some((out, false)),
            Err(_) => return Some((out, true)),
        }
    }
}

/// Compares the two readers on `path`; returns whether the fast path applied.
fn same(path: &Path) -> bool {
    let Some(fast) = via_chunks(path) else {
        return false;
    };
    let slow = via_libpcap(path).expect("libpcap opened it first");
    assert_eq!(
        fast.0.len(),
        slow.0.len(),
        "{}: record count",
        path.display()
    );
    for (i, (a, b)) in fast.0.iter().zip(&slow.0).enumerate() {
        assert_eq!(a, b, "{}: record {}", path.display(), i + 1);
    }
    assert_eq!(fast.1, slow.1, "{}: error at the end", path.display());
    true
}

fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "cap"));
    v.sort();
    v
}

#[test]
fn real_captures_read_as_libpcap_reads_them() {
    let dir = &Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps/real");
    if !dir.join("SOURCES.tsv").exists() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let all = captures(dir);
    let fast = all.iter().filter(|p| same(p)).count();
    eprintln!("{fast} of {} captures on the fast path", all.len());
    assert!(fast > all.len() / 2, "most real captures are classic pcap");
}

#[test]
fn cut_and_damaged_files_fail_where_libpcap_fails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = std::fs::read(root.join("pcaps/sample.pcap")).expect("bundled sample");
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("cut.pcap");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for round in 0..300 {
        let mut bytes = sample.clone();
        if round % 2 == 0 {
            bytes.truncate(24 + next(bytes.len() - 24));
        } else {
            // a corrupt record length somewhere after the file header
            let at = 24 + next(bytes.len() - 28);
            bytes[at..at + 4].copy_from_slice(&(next(1 << 20) as u32).to_ne_bytes());
        }
        std::fs::write(&p, &bytes).unwrap();
        same(&p);
    }
    for f in captures(&root.join("pcaps/bad")) {
        same(&f);
    }
    for f in captures(&root.join("pcaps")) {
        assert!(
            same(&f),
            "{}: the project's captures take the fast path",
            f.display()
        );
    }
}
