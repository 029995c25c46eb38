//! deguchi (出口, "exit"): an egress-traffic anomaly detector.
//!
//! Pipeline: capture -> decode -> flow shards -> analysis (baselines and
//! detectors) -> writer. See `pipeline` for the threads and channels and the
//! README for the picture.
#![deny(unsafe_code)]

pub mod alert;
pub mod analysis;
pub mod capture;
pub mod community_id;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod hints;
pub mod homenet;
pub mod pipeline;
pub mod sink;
pub mod state;
pub mod synth;
pub mod time;

/// mimalloc options for a long-running sensor, set once at start by the
/// binary (which makes mimalloc its global allocator): freed memory goes
/// back to the OS at once (`purge_delay` 0) and arenas commit memory as it
/// is used (`arena_eager_commit` 0), so the resident size follows the live
/// flow and host state instead of the high-water mark of every thread.
/// The option numbers are those of mimalloc v3's `mi_option_e`; a test checks
/// that they still name the options whose defaults we expect.
/// A `MIMALLOC_*` variable in the environment wins over these settings.
pub fn tune_allocator() {
    let set = |opt, env: &str, v| {
        if std::env::var_os(env).is_none() {
            // SAFETY: a plain setter of mimalloc's global option table.
            #[allow(unsafe_code)]
            unsafe {
                libmimalloc_sys::mi_option_set(opt, v);
            }
        }
    };
    set(MI_OPTION_EAGER_COMMIT, "MIMALLOC_EAGER_COMMIT", 0);
    set(
        MI_OPTION_ARENA_EAGER_COMMIT,
        "MIMALLOC_ARENA_EAGER_COMMIT",
        0,
    );
    set(MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0);
}

const MI_OPTION_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 3;
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod allocator_tests {
    #[test]
    fn mimalloc_option_numbers_name_the_options_we_mean() {
        // defaults documented in mimalloc.h: arena_eager_commit=2, purge_delay=10
        #[allow(unsafe_code)]
        let (seg, eager, delay) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::MI_OPTION_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
            )
        };
        assert_eq!((seg, eager, delay), (1, 2, 10));
    }
}
