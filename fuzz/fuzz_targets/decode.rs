#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| deguchi_fuzz::targets::decode(data));
