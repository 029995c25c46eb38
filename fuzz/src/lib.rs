//! Fuzz target bodies; see `targets.rs` and ../README.md.
#[path = "targets.rs"]
pub mod targets;
