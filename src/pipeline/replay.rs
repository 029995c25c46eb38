//! Replay: the input loop over pcap/pcapng files.

use super::Summary;
use super::feeder::Feeder;
use crate::capture::Next;
use crate::capture::chunked::ChunkedFile;
use crate::capture::file::FileSource;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Reads a classic pcap file through [`ChunkedFile`] (see there).
fn replay_chunked(
    feeder: &mut Feeder,
    mut src: ChunkedFile,
    stop: &AtomicBool,
    summary: &mut Summary,
    progress: bool,
) {
    let mut recs = Vec::with_capacity(crate::capture::chunked::CHUNK / 64);
    let mut last_progress = Instant::now();
    let link = src.link();
    loop {
        match src.next_chunk(&mut recs) {
            Ok(Some(chunk)) => feeder.chunk(&chunk, &recs, link),
            Ok(None) => break,
            Err(e) => {
                tracing::error!("{e}");
                summary.input_errors.push(e);
                break;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            show_progress(
                src.name(),
                feeder.packets,
                Some(src.position()),
                Some(src.size),
            );
        }
    }
}

/// The progress line of a replay on a terminal (stderr).
fn show_progress(name: &str, packets: u64, position: Option<u64>, size: Option<u64>) {
    let pct = match (position, size) {
        #[allow(clippy::cast_precision_loss)]
        (Some(p), Some(s)) if s > 0 => format!(" {:.0}%", p as f64 * 100.0 / s as f64),
        _ => String::new(),
    };
    crate::stderr::say(&format!("\rdeguchi: {name} {packets} packets{pct}   "));
}

pub(super) fn replay(
    feeder: &mut Feeder,
    files: &[PathBuf],
    stop: &Arc<AtomicBool>,
    summary: &mut Summary,
) {
    let progress = std::io::stderr().is_terminal();
    // DEGUCHI_READER=libpcap: every file through libpcap (troubleshooting, tests)
    let libpcap_only = std::env::var_os("DEGUCHI_READER").is_some_and(|v| v == "libpcap");
    let mut last_progress = Instant::now();
    for path in files {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut src = match FileSource::open_stoppable(path, stop) {
            Ok(s) => s,
            Err(_) if stop.load(Ordering::Relaxed) => break,
            Err(e) => {
                tracing::error!("{e}");
                summary.input_errors.push(e);
                continue;
            }
        };
        if let Some(fast) = src.chunked().filter(|_| !libpcap_only) {
            drop(src);
            replay_chunked(feeder, fast, stop, summary, progress);
            continue;
        }
        loop {
            match src.next() {
                Ok(Next::Frame(f)) => feeder.frame(&f),
                Ok(Next::End) => break,
                Ok(Next::Idle) => {}
                // input cut short by a stop request (stdin relay closed)
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(e) => {
                    tracing::error!("{e}");
                    summary.input_errors.push(e);
                    break;
                }
            }
            if feeder.packets & 0xff == 0 && stop.load(Ordering::Relaxed) {
                break;
            }
            if feeder.packets & 0xffff == 0
                && progress
                && last_progress.elapsed() >= Duration::from_secs(1)
            {
                last_progress = Instant::now();
                show_progress(src.name(), feeder.packets, src.position(), src.size);
            }
        }
    }
    if progress && feeder.packets > 0xffff {
        crate::stderr::say("\n");
    }
}
