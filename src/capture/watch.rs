//! Link watch for live capture: a dead SPAN port must not look like a quiet
//! network. Once a second the capture loop asks [`LinkWatch::poll`], which
//! reads the interface's `operstate` from sysfs and the time since the last
//! packet; link down and up, and "no packets for N seconds" (and their end)
//! are logged once per change and counted for the exit summary. Each is
//! also a health event ([`Health`]) for the alert stream, as are the
//! interface vanishing and its capture being reopened.

use std::path::PathBuf;
use std::time::Duration;

/// Link changes and silences seen, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkCounters {
    /// The link went down (or the interface vanished).
    pub down: u64,
    /// The link came back up.
    pub up: u64,
    /// Periods of no packets for `capture.idle_warn_s` seconds or more.
    pub idle: u64,
    /// The capture was reopened after the interface had gone.
    pub reopened: u64,
}

/// What [`LinkWatch::poll`] saw change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Down,
    Up,
    Idle,
    Traffic,
}

/// A link-health event for the alert stream (an EVE `engine` event, see
/// `sink::Sinks::health`).
#[derive(Clone, Debug)]
pub struct Health {
    /// `link_down`, `link_up`, `idle`, `traffic`, `gone`, `reopened`
    pub event: &'static str,
    pub iface: String,
    /// The log line's text.
    pub message: String,
    /// true: a warning (`log_level` `Warning`); false: `Info`.
    pub warning: bool,
    /// Wall clock, nanoseconds since the epoch.
    pub ts: crate::time::Ts,
    /// The counts so far (this event included).
    pub counters: LinkCounters,
}

pub struct LinkWatch {
    iface: String,
    /// Where health events go (the writer); none = log only.
    health: Option<crossbeam_channel::Sender<Health>>,
    operstate: PathBuf,
    up: Option<bool>,
    idle_after: Option<Duration>,
    idle: bool,
    pub counters: LinkCounters,
}

/// Whether an `operstate` value means packets can flow: `up`, or `unknown`
/// (loopback and some virtual devices never say `up`). `None`: the
/// interface is gone.
#[must_use]
pub fn is_up(operstate: Option<&str>) -> bool {
    matches!(operstate.map(str::trim), Some("up" | "unknown"))
}

impl LinkWatch {
    /// `idle_warn_s` 0 = no idle warning.
    #[must_use]
    pub fn new(iface: &str, idle_warn_s: u64) -> Self {
        Self {
            iface: iface.to_owned(),
            health: None,
            operstate: PathBuf::from(format!("/sys/class/net/{iface}/operstate")),
            up: None,
            idle_after: (idle_warn_s > 0).then(|| Duration::from_secs(idle_warn_s)),
            idle: false,
            counters: LinkCounters::default(),
        }
    }

    /// Health events go to `tx` too (never blocking: a full channel loses one).
    #[must_use]
    pub fn with_health(mut self, tx: Option<crossbeam_channel::Sender<Health>>) -> Self {
        self.health = tx;
        self
    }

    /// Logs `message` and sends it as health event `event`.
    pub fn report(&self, event: &'static str, warning: bool, message: String) {
        if warning {
            tracing::warn!("{message}");
        } else {
            tracing::info!("{message}");
        }
        self.send(event, warning, message);
    }

    /// Sends health event `event` (not logged here).
    pub fn send(&self, event: &'static str, warning: bool, message: String) {
        if let Some(tx) = &self.health {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
            let _ = tx.try_send(Health {
                event,
                iface: self.iface.clone(),
                message,
                warning,
                ts,
                counters: self.counters,
            });
        }
    }

    /// Reads the link state and checks the silence; logs, counts and
    /// reports changes.
    pub fn poll(&mut self, since_packet: Duration) {
        let state = std::fs::read_to_string(&self.operstate).ok();
        for c in self.observe(state.as_deref(), since_packet) {
            let iface = &self.iface;
            let (event, warning, message) = match c {
                Change::Down => (
                    "link_down",
                    true,
                    format!(
                        "link down on {iface} (operstate {}): no packets can arrive",
                        state.as_deref().map_or("absent: interface gone", str::trim)
                    ),
                ),
                Change::Up => ("link_up", false, format!("link up on {iface}")),
                Change::Idle => (
                    "idle",
                    true,
                    format!(
                        "no packets on {iface} for {} s (dead mirror port?)",
                        since_packet.as_secs()
                    ),
                ),
                Change::Traffic => ("traffic", false, format!("packets on {iface} again")),
            };
            self.report(event, warning, message);
        }
    }

    /// The state machine behind [`poll`](Self::poll): `operstate` as read
    /// (`None`: gone), time since the last packet; returns what changed.
    pub fn observe(&mut self, operstate: Option<&str>, since_packet: Duration) -> Vec<Change> {
        let mut out = Vec::new();
        let up = is_up(operstate);
        match (self.up, up) {
            (Some(true) | None, false) => {
                self.counters.down += 1;
                out.push(Change::Down);
            }
            (Some(false), true) => {
                self.counters.up += 1;
                out.push(Change::Up);
            }
            _ => {}
        }
        self.up = Some(up);
        if let Some(after) = self.idle_after {
            if !self.idle && since_packet >= after {
                self.idle = true;
                self.counters.idle += 1;
                out.push(Change::Idle);
            } else if self.idle && since_packet < after {
                self.idle = false;
                out.push(Change::Traffic);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_reported_once() {
        let mut w = LinkWatch::new("x", 5);
        let s = Duration::from_secs;
        assert!(w.observe(Some("up\n"), s(0)).is_empty());
        assert!(w.observe(Some("up\n"), s(1)).is_empty());
        assert_eq!(w.observe(Some("down\n"), s(2)), [Change::Down]);
        assert!(w.observe(Some("down\n"), s(3)).is_empty());
        assert_eq!(w.observe(Some("down\n"), s(5)), [Change::Idle]);
        assert!(w.observe(None, s(9)).is_empty());
        assert_eq!(w.observe(Some("unknown"), s(10)), [Change::Up]);
        assert_eq!(w.observe(Some("up"), s(0)), [Change::Traffic]);
        assert_eq!(
            w.counters,
            LinkCounters {
                down: 1,
                up: 1,
                idle: 1,
                reopened: 0
            }
        );
        // gone at the first look counts as down
        let mut g = LinkWatch::new("y", 0);
        assert_eq!(g.observe(None, s(100)), [Change::Down]);
    }
}
