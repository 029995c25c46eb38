//! Packet-clock time: nanoseconds since the Unix epoch, taken from capture
//! record headers (never from the wall clock), so a replay equals a live run.

use chrono::{DateTime, SecondsFormat, Utc};

/// Nanoseconds since 1970-01-01T00:00:00Z, from the packet clock.
pub type Ts = i64;

/// One second in [`Ts`] units.
pub const SEC: Ts = 1_000_000_000;

/// Builds a [`Ts`] from seconds and a sub-second fraction in nanoseconds.
#[must_use]
pub fn from_parts(secs: i64, nanos: i64) -> Ts {
    secs.saturating_mul(SEC).saturating_add(nanos)
}

/// RFC 3339 with microseconds and a `Z` suffix, e.g. `2026-03-02T08:00:00.000001Z`.
#[must_use]
pub fn rfc3339(ts: Ts) -> String {
    let dt = DateTime::<Utc>::from_timestamp(ts.div_euclid(SEC), 0)
        .map(|d| d + chrono::Duration::nanoseconds(ts.rem_euclid(SEC)));
    match dt {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => "1970-01-01T00:00:00.000000Z".to_owned(),
    }
}

/// Suricata EVE's timestamp: microseconds and a numeric UTC offset, e.g.
/// `2024-03-03T22:57:40.556097+0000` (what EVE's schema and its consumers,
/// Filebeat's and Splunk's Suricata parsers, expect).
#[must_use]
pub fn eve(ts: Ts) -> String {
    let dt = DateTime::<Utc>::from_timestamp(ts.div_euclid(SEC), 0)
        .map(|d| d + chrono::Duration::nanoseconds(ts.rem_euclid(SEC)));
    match dt {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6f+0000").to_string(),
        None => "1970-01-01T00:00:00.000000+0000".to_owned(),
    }
}

/// Seconds as a float, for durations in JSON evidence.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn secs_f64(d: Ts) -> f64 {
    d as f64 / SEC as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_micros() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339(from_parts(1_772_409_600, 1_500)),
            "2026-03-02T00:00:00.000001Z"
        );
        // beyond 2106 (32-bit unsigned seconds overflow) still formats
        assert!(rfc3339(from_parts(4_323_283_200, 0)).starts_with("2107-01-01T00:00:00"));
        assert!(rfc3339(-1).starts_with("1969-12-31T23:59:59.999999"));
    }

    #[test]
    fn formats_eve_timestamps() {
        assert_eq!(eve(0), "1970-01-01T00:00:00.000000+0000");
        assert_eq!(
            eve(from_parts(1_709_506_660, 556_097_999)),
            "2024-03-03T22:57:40.556097+0000"
        );
        assert!(eve(from_parts(4_323_283_200, 0)).starts_with("2107-01-01T00:00:00.000000+"));
        assert_eq!(eve(-1), "1969-12-31T23:59:59.999999+0000");
        assert!(eve(i64::MIN).starts_with("1677-09-21T00:12:43."));
    }
}
