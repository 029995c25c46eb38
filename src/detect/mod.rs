//! Detectors: fed per flow, burst or DNS answer by the analysis stage, never per packet.

pub mod beacon;
pub mod dns_tunnel;
pub mod exfil;
pub mod periodicity;
pub mod slabmap;

use crate::analysis::Detector;
use crate::config::Config;
use crate::time::Ts;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// The detectors the configuration enables.
#[must_use]
pub fn build(cfg: &Config) -> Vec<Box<dyn Detector>> {
    let mut v: Vec<Box<dyn Detector>> = Vec::new();
    if cfg.beacon.enabled {
        v.push(Box::new(beacon::Beacon::new(cfg.beacon.clone())));
    }
    if cfg.dns_tunnel.enabled {
        v.push(Box::new(dns_tunnel::DnsTunnel::new(
            cfg.dns_tunnel.clone(),
            cfg.home_net.clone(),
        )));
    }
    if cfg.exfil.enabled {
        v.push(Box::new(exfil::Exfil::new(cfg.exfil.clone())));
    }
    v
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

/// The internal hosts seen using one destination, for popularity counts: a
/// sorted list of host fingerprints (the IPv4 address itself; FNV-1a of an
/// IPv6 one), capped. A lookup is a binary search over 8-byte words instead
/// of a scan over 17-byte addresses, which matters for the destinations
/// everyone uses: every flow to them asks whether its host is new.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct HostSet(Vec<u64>);

impl HostSet {
    fn fingerprint(ip: std::net::IpAddr) -> u64 {
        match ip {
            std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
            // never equal to an IPv4 fingerprint (bit 63 set)
            std::net::IpAddr::V6(a) => crate::fnv1a(a.octets()) | 1 << 63,
        }
    }

    /// Adds `ip` unless the set holds it already or holds `cap` hosts.
    pub fn insert(&mut self, ip: std::net::IpAddr, cap: usize) {
        if self.0.len() >= cap {
            // full: the popular destinations, where nothing changes any more
            return;
        }
        let f = Self::fingerprint(ip);
        if let Err(at) = self.0.binary_search(&f) {
            self.0.insert(at, f);
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
    use super::{DomainSuffixes, HostSet};

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
    use std::net::IpAddr;

    #[test]
    fn host_set_counts_distinct_hosts_up_to_its_cap() {
        let mut s = HostSet::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        let c: IpAddr = "::10.0.0.1".parse().unwrap();
        for ip in [a, b, a, c, b] {
            s.insert(ip, 8);
        }
        assert_eq!(s.len(), 3);
        for i in 0..20u8 {
            s.insert(IpAddr::from([10, 1, 0, i]), 8);
        }
        assert_eq!(s.len(), 8);
        assert!(!s.is_empty());
    }
}
