//! Detectors: fed per flow, burst or DNS answer by the analysis stage, never per packet.
//!
//! Each detector is a component in a folder of its own (`beacon/`,
//! `exfil/`, `dns_tunnel/`): its config section (`config.rs`: keys,
//! defaults, validation), its state, its findings and evidence, its snapshot
//! version. [`REGISTRY`] lists them; the configuration loader walks it and
//! never imports a detector type. Adding a detector is one folder plus one
//! line in [`REGISTRY`] (the README's architecture section shows a small one).
//!
//! Detectors run inside analysis partitions: each partition owns the state
//! of the internal hosts hashed to it and sees only their events, so a
//! detector keeps per-host (or per host and destination) state only.
//! What is shared by all hosts (destination popularity, the names hosts
//! resolved, the site's internal resolvers) is kept once, in
//! [`crate::baseline`], and reaches every detector through the event's
//! [`EventCtx`].

pub mod beacon;
pub mod dns_tunnel;
pub mod exfil;
pub mod periodicity;
pub mod slabmap;

use crate::alert::Alert;
use crate::baseline::DestView;
use crate::flow::event::{BurstEvent, DnsAnswer, DnsQuery, ProgressEvent};
use crate::flow::record::FlowRecord;
use crate::homenet::{Direction, HomeNet};
use crate::settings::Check;
use crate::time::Ts;
use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// What the analysis decided about an event before any partition sees it
/// (once, in event order): its direction against `home_net` and the shared
/// baselines as of this event.
#[derive(Clone, Copy, Debug)]
pub struct EventCtx<'a> {
    /// Direction of a flow event (`End`, `Burst`, `Progress`), from its originator.
    pub dir: Direction,
    /// The remote side of an outbound or inbound TCP/UDP flow event to an
    /// egress destination: its identity and popularity.
    pub dest: Option<&'a DestView>,
    /// A DNS query's client is one of the site's internal resolvers.
    pub client_is_resolver: bool,
}

impl EventCtx<'_> {
    /// A context with nothing shared (unit tests, benches).
    #[must_use]
    pub fn plain(dir: Direction) -> EventCtx<'static> {
        EventCtx {
            dir,
            dest: None,
            client_is_resolver: false,
        }
    }
}

/// A snapshot section a detector could not read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot version {found}, this build reads {expected}")]
    Version { found: u32, expected: u32 },
    #[error("undecodable snapshot: {0}")]
    Decode(#[from] postcard::Error),
}

/// A detector: fed per flow event (never per packet), emits alerts. One
/// instance per analysis partition.
pub trait Detector: Send {
    fn name(&self) -> &'static str;
    /// A flow ended.
    fn on_flow(&mut self, _r: &FlowRecord, _cx: &EventCtx<'_>, _out: &mut Vec<Alert>) {}
    /// A burst of activity inside a long-lived flow ended (see [`BurstEvent`]).
    fn on_burst(&mut self, _b: &BurstEvent, _cx: &EventCtx<'_>, _out: &mut Vec<Alert>) {}
    /// A flow moved more payload (outbound or inbound flows only; `cx.dir` from its originator).
    fn on_progress(&mut self, _p: &ProgressEvent, _cx: &EventCtx<'_>, _out: &mut Vec<Alert>) {}
    /// A host sent a DNS query.
    fn on_dns_query(&mut self, _q: &DnsQuery, _cx: &EventCtx<'_>, _out: &mut Vec<Alert>) {}
    /// A host received DNS answers.
    fn on_dns(&mut self, _d: &DnsAnswer, _cx: &EventCtx<'_>, _out: &mut Vec<Alert>) {}
    /// Packet time advanced to `now`.
    fn on_tick(&mut self, _now: Ts, _out: &mut Vec<Alert>) {}
    /// End of input: last chance to report.
    fn finish(&mut self, _out: &mut Vec<Alert>) {}
    /// Layout version of [`Self::save`]'s bytes; bumped when it changes.
    fn snapshot_version(&self) -> u32 {
        1
    }
    /// Counts of the state held, for the exit summary (summed over the
    /// partitions, then given to [`Self::state_line`]).
    fn state_counts(&self) -> Vec<u64> {
        Vec::new()
    }
    /// What each of [`Self::state_counts`] is, for the metrics
    /// (`deguchi_detector_state_entries`, `..._evictions_total`); counts
    /// past its end are not published.
    fn state_kinds(&self) -> &'static [crate::metrics::StateKind] {
        &[]
    }
    /// The exit summary's line for `counts` (the sum of every partition's
    /// [`Self::state_counts`]); evictions mean a cap was reached.
    fn state_line(&self, _counts: &[u64]) -> Option<String> {
        None
    }
    /// Serialised state for a snapshot (`None`: nothing to keep).
    fn save(&mut self) -> Option<Vec<u8>> {
        None
    }
    /// Restores a snapshot taken by `save` (of this detector's
    /// [`Self::snapshot_version`]; the analysis checks it).
    ///
    /// # Errors
    /// The snapshot does not decode.
    fn load(&mut self, _bytes: &[u8]) -> Result<(), SnapshotError> {
        Ok(())
    }
}

/// What a detector is built with besides its own section.
#[derive(Clone, Debug)]
pub struct BuildEnv {
    pub home_net: HomeNet,
    /// Analysis partitions: a detector's caps are shared among them, so
    /// that all instances together hold what the config allows.
    pub partitions: usize,
    /// The partition this instance is built for (`0..partitions`).
    pub partition: usize,
}

impl BuildEnv {
    /// This partition's share of `cap`: the partitions' shares add up to
    /// `cap` (each at least 1).
    #[must_use]
    pub fn share(&self, cap: usize) -> usize {
        let n = self.partitions.max(1);
        (cap / n + usize::from(self.partition < cap % n)).max(1)
    }
}

/// A detector's validated config section.
pub trait DetectorConfig: Any + std::fmt::Debug + Send + Sync {
    fn enabled(&self) -> bool;
    /// One instance of the detector (one per analysis partition).
    fn build(&self, env: &BuildEnv) -> Box<dyn Detector>;
    fn clone_box(&self) -> Box<dyn DetectorConfig>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A registered detector: its config section's name and keys, its
/// defaults, and how the section is read.
pub struct Component {
    /// Section name in the config file, and the detector's name.
    pub name: &'static str,
    /// The section's defaults.
    pub defaults: fn() -> Box<dyn DetectorConfig>,
    /// Reads the section from the config root (absent: the defaults),
    /// every problem into the checker, named `section.key`.
    pub parse: fn(&mut Check<'_>, &toml::Table) -> Box<dyn DetectorConfig>,
}

/// Every detector this build has, in the order they see each event (and
/// so the order of their alerts for one event).
pub const REGISTRY: &[Component] = &[beacon::COMPONENT, dns_tunnel::COMPONENT, exfil::COMPONENT];

/// The detector sections of a configuration, one per [`REGISTRY`] entry, in its order.
#[derive(Debug)]
pub struct Detectors(Vec<Box<dyn DetectorConfig>>);

impl Clone for Detectors {
    fn clone(&self) -> Self {
        Self(self.0.iter().map(|c| c.clone_box()).collect())
    }
}

impl Default for Detectors {
    fn default() -> Self {
        Self(REGISTRY.iter().map(|c| (c.defaults)()).collect())
    }
}

impl Detectors {
    /// Reads every registered detector's section from `root`.
    pub fn parse(c: &mut Check<'_>, root: &toml::Table) -> Self {
        Self(REGISTRY.iter().map(|comp| (comp.parse)(c, root)).collect())
    }

    /// Section names of every registered detector.
    pub fn names() -> impl Iterator<Item = &'static str> {
        REGISTRY.iter().map(|c| c.name)
    }

    /// The section of type `T` (e.g. `BeaconConfig`).
    #[must_use]
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.iter().find_map(|c| c.as_any().downcast_ref())
    }

    /// The section of type `T`, to change it.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.0
            .iter_mut()
            .find_map(|c| c.as_any_mut().downcast_mut())
    }

    /// One instance of every enabled detector, in registry order.
    #[must_use]
    pub fn build(&self, env: &BuildEnv) -> Vec<Box<dyn Detector>> {
        self.0
            .iter()
            .filter(|c| c.enabled())
            .map(|c| c.build(env))
            .collect()
    }
}

/// Implements [`DetectorConfig`] and declares the `COMPONENT` of a detector
/// whose config type has `enabled`, `Default`, `Clone`, and a
/// `parse(&mut Check, &Table, &Self) -> Self` reader.
#[macro_export]
macro_rules! detector_component {
    ($name:literal, $cfg:ty, $parse:path, |$c:ident, $env:ident| $build:expr) => {
        impl $crate::detect::DetectorConfig for $cfg {
            fn enabled(&self) -> bool {
                self.enabled
            }
            fn build(&self, $env: &$crate::detect::BuildEnv) -> Box<dyn $crate::detect::Detector> {
                let $c = self;
                Box::new($build)
            }
            fn clone_box(&self) -> Box<dyn $crate::detect::DetectorConfig> {
                Box::new(self.clone())
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
            fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
                self
            }
        }

        /// This detector's entry in [`crate::detect::REGISTRY`].
        pub const COMPONENT: $crate::detect::Component = $crate::detect::Component {
            name: $name,
            defaults: || Box::new(<$cfg>::default()),
            parse: |c, root| Box::new($parse(c, root, &<$cfg>::default())),
        };
    };
}

/// The eviction policy of every capped detector map: of `aged` (age, key),
/// the sixteenth with the oldest ages, at least one entry if there is any.
pub(crate) fn oldest_sixteenth<K>(mut aged: Vec<(Ts, K)>) -> Vec<(Ts, K)> {
    let n = (aged.len() / 16).max(1).min(aged.len());
    if n > 0 {
        aged.select_nth_unstable_by_key(n - 1, |e| e.0);
    }
    aged.truncate(n);
    aged
}

/// Removes the oldest sixteenth of a map (at least one entry); returns how many.
pub(crate) fn evict_oldest<K: Clone + Eq + Hash, V, S: BuildHasher>(
    map: &mut HashMap<K, V, S>,
    age: impl Fn(&V) -> Ts,
) -> usize {
    let old = oldest_sixteenth(map.iter().map(|(k, x)| (age(x), k.clone())).collect());
    for (_, k) in &old {
        map.remove(k);
    }
    old.len()
}

/// Domain suffixes (allowlists), matched case-insensitively on label
/// boundaries: `ntp.org` matches `ntp.org` and `a.b.NTP.org`, not
/// `evilntp.org`. A name is looked up once per label (its tail from each
/// dot, up to the longest suffix) in a hash set, instead of being compared
/// with every suffix of the list: the beacon detector asks this of every
/// named beat.
#[derive(Clone, Debug, Default)]
pub struct DomainSuffixes {
    /// Lower case, without leading dots.
    set: std::collections::HashSet<Box<[u8]>, ahash::RandomState>,
    longest: usize,
}

impl DomainSuffixes {
    #[must_use]
    pub fn new<S: AsRef<str>>(suffixes: &[S]) -> Self {
        let set: std::collections::HashSet<Box<[u8]>, ahash::RandomState> = suffixes
            .iter()
            .map(|s| {
                s.as_ref()
                    .trim_start_matches('.')
                    .to_ascii_lowercase()
                    .into_bytes()
                    .into()
            })
            .collect();
        let longest = set.iter().map(|s| s.len()).max().unwrap_or(0);
        Self { set, longest }
    }

    /// True when `name` is one of the suffixes or ends with `.` and one.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        if self.set.is_empty() {
            return false;
        }
        let b = name.as_bytes();
        // the tail that can hold a match, with the dot before it
        let keep = b.len().min(self.longest + 1);
        let mut stack = [0u8; 256];
        let mut heap = Vec::new();
        let tail: &mut [u8] = if keep <= stack.len() {
            &mut stack[..keep]
        } else {
            heap.resize(keep, 0);
            &mut heap
        };
        tail.copy_from_slice(&b[b.len() - keep..]);
        tail.make_ascii_lowercase();
        if b.len() <= self.longest && self.set.contains(&*tail) {
            return true;
        }
        (0..tail.len()).any(|i| tail[i] == b'.' && self.set.contains(&tail[i + 1..]))
    }
}

#[cfg(test)]
mod tests {
    use super::DomainSuffixes;

    /// The suffix-by-suffix comparison `DomainSuffixes` replaced.
    fn reference(name: &str, suffixes: &[&str]) -> bool {
        suffixes.iter().any(|s| {
            let s = s.trim_start_matches('.');
            name.len() >= s.len()
                && name.as_bytes()[name.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
                && (name.len() == s.len() || name.as_bytes()[name.len() - s.len() - 1] == b'.')
        })
    }

    #[test]
    fn domain_suffixes_match_on_label_boundaries_like_a_scan_of_the_list() {
        let lists: [&[&str]; 4] = [
            &["ntp.org", ".time.windows.com", "Slack.COM", "zoom.us"],
            &[""],
            &["a", "b.a", "x"],
            &[],
        ];
        let names = [
            "ntp.org",
            "a.b.NTP.org",
            "evilntp.org",
            "ntp.org.",
            "org",
            "",
            ".",
            "..",
            "time.windows.com",
            "xtime.windows.com",
            "a.time.windows.com",
            "slack.com",
            "edge.SLACK.com",
            "slack.co",
            "zoom.us",
            "a.zoom.us.evil",
            "a",
            "b.a",
            "ba",
            "c.b.a",
            "x.",
            "x",
            ".x",
            "a..a",
        ];
        for list in lists {
            let set = DomainSuffixes::new(list);
            for n in names {
                assert_eq!(set.matches(n), reference(n, list), "{n:?} against {list:?}");
            }
            // longer than the stack buffer
            let long = format!("{}.zoom.us", "l".repeat(400));
            assert_eq!(set.matches(&long), reference(&long, list));
        }
        let huge = "y".repeat(300);
        let set = DomainSuffixes::new(&[huge.as_str()]);
        assert!(set.matches(&format!("a.{huge}")));
        assert!(!set.matches(&format!("a{huge}")));
    }
}
