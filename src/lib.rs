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
