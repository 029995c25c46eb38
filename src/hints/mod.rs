//! TEMPORARY STUB (replaced by the real parsers).
pub mod dns;
pub mod http;
pub mod tls;
