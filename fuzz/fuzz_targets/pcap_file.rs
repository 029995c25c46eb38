#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// One scratch file per fuzzing process (libFuzzer workers are processes).
fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("deguchi-fuzz-{}.pcap", std::process::id())))
}

fuzz_target!(|data: &[u8]| deguchi_fuzz::targets::pcap_file(data, scratch()));
