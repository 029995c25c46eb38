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

#[cfg(test)]
mod tests {
    use super::HostSet;
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
