//! deguchi (出口, "exit"): an egress-traffic anomaly detector.
//!
//! Pipeline: capture -> decode -> flow shards -> analysis (baselines and
//! detectors) -> writer. See `pipeline` for the threads and channels and the
//! README for the picture.
//!
//! Lints: crate-wide ones in the workspace `[lints]` table (Cargo.toml,
//! `unsafe_code` denied there); the panic-freedom rule for the modules that
//! read packet and file bytes once, here (`panic_free!`).

/// Declares modules that read attacker-controlled bytes (packets, capture
/// files): outside tests they hold no panic path, so `unwrap`, `expect`,
/// indexing and `panic!` are denied in them (CI runs clippy with
/// `-D warnings`). The one place that rule is written: the decoder, the
/// community id, the hint parsers (`hints`, `src/lib.rs`) and the capture-file
/// path (`capture::chunked`, `capture::file`, `src/capture/mod.rs`).
macro_rules! panic_free {
    ($($(#[$attr:meta])* $vis:vis mod $name:ident;)*) => {$(
        #[cfg_attr(
            not(test),
            deny(
                clippy::unwrap_used,
                clippy::expect_used,
                clippy::indexing_slicing,
                clippy::panic
            )
        )]
        $(#[$attr])*
        $vis mod $name;
    )*};
}

pub mod alert;
pub mod analysis;
pub mod baseline;
pub mod bus;
pub mod capture;
pub mod config;
pub mod detect;
pub mod evidence;
pub mod flow;
pub mod homenet;
pub mod metrics;
pub mod outputs;
pub mod pipeline;
pub mod report;
pub mod settings;
pub mod sink;
pub mod state;
pub mod stderr;
pub mod time;
panic_free! {
    pub mod community_id;
    pub mod decode;
    // the parsers also do no unchecked arithmetic
    #[cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]
    pub mod hints;
}

/// FNV-1a, 64-bit: the stable (unseeded) hash of destination ids, DNS
/// names, host fingerprints and the state file's checksum.
pub(crate) fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod fnv_tests {
    #[test]
    fn fnv1a_64_reference_values() {
        // from the FNV reference test suite (draft-eastlake-fnv)
        assert_eq!(super::fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(*b"foobar"), 0x8594_4171_f739_67e8);
    }
}

/// mimalloc options for a long-running sensor, set once at start by the
/// binary (which makes mimalloc its global allocator): freed memory goes
/// back to the OS at once (`purge_delay` 0) and arenas commit memory as it
/// is used (`arena_eager_commit` 0), so the resident size follows the live
/// flow and host state instead of the high-water mark of every thread.
/// Transparent huge pages are off (`allow_thp` 0): with them mimalloc asks
/// the kernel for 2 MiB pages, which cost peak RSS and CPU (zeroing whole
/// huge pages on first touch) for no gain in speed (measured with
/// `benches/replay.sh`; figures in `benches/HISTORY.md`, session 5).
/// The option numbers are those of mimalloc v2's `mi_option_e`; a test checks
/// that they still name the options whose defaults we expect.
/// A `MIMALLOC_*` variable in the environment wins over these settings.
pub fn tune_allocator() {
    // sets `opt` unless the environment names it; true when it did
    let set = |opt, env: &str, v| {
        let ours = std::env::var_os(env).is_none();
        if ours {
            // SAFETY: a plain setter of mimalloc's global option table.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_option_set(opt, v);
            }
        }
        ours
    };
    set(MI_OPTION_EAGER_COMMIT, "MIMALLOC_EAGER_COMMIT", 0);
    set(
        MI_OPTION_ARENA_EAGER_COMMIT,
        "MIMALLOC_ARENA_EAGER_COMMIT",
        0,
    );
    set(MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0);
    if set(MI_OPTION_ALLOW_THP, "MIMALLOC_ALLOW_THP", 0) {
        // mimalloc reserved its first arena (and advised huge pages on it)
        // before `main`; the option alone covers only later mappings, so
        // turn THP off for the process as mimalloc itself would at start.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::prctl::set_thp_disable(true);
    }
}

const MI_OPTION_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 3;
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 37;

#[cfg(test)]
mod allocator_tests {
    #[test]
    fn mimalloc_option_numbers_name_the_options_we_mean() {
        // defaults documented in mimalloc.h: eager_commit=1,
        // arena_eager_commit=2, purge_delay=10, allow_thp=1
        #[allow(unsafe_code)]
        // SAFETY: plain getters of mimalloc's global option table.
        let (seg, eager, delay, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::MI_OPTION_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ALLOW_THP),
            )
        };
        assert_eq!((seg, eager, delay, thp), (1, 2, 10, 1));
    }
}
