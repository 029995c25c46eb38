//! Site-wide baselines, kept once and fed once per event: which internal
//! hosts use each external destination and since when (popularity, after
//! BAYWATCH), the names hosts were told addresses have (DNS answers), and
//! the site's internal resolvers.
//!
//! The analysis planner feeds it in event order, before the event is routed
//! to the partition that owns its host, and hands the result to the
//! detectors in the event's [`crate::detect::EventCtx`]. So every detector
//! reads the same numbers, and they are the same whether the hosts are
//! analysed in one partition or in many, on one thread or several: output
//! stays deterministic.
//!
//! A concurrent map (`dashmap`) would let partitions update it in place, but
//! then what a detector reads would depend on how far the other partitions
//! got: the single writer in event order is what keeps the output
//! byte-identical for any partition count.

use crate::flow::event::FlowEvent;
use crate::homenet::{Direction, HomeNet, is_egress_dest};
use crate::time::Ts;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

/// Internal hosts counted per destination at most (a destination this
/// popular is popular by any threshold).
const DEST_HOSTS_CAP: usize = 256;
/// Internal resolvers remembered at most.
const RESOLVERS_CAP: usize = 64;

/// What the detectors learn about the remote side of a flow event.
#[derive(Clone, Debug, Default)]
pub struct DestView {
    /// Stable id of the destination: FNV-1a of its name if the host used one
    /// (TLS SNI, HTTP Host, else the name in a DNS answer the host got for
    /// this address), else of the address.
    pub id: u64,
    /// That name.
    pub name: Option<Arc<str>>,
    /// Internal hosts seen using it (capped at 256), this event's included.
    pub hosts: usize,
    /// Internal hosts active towards egress destinations.
    pub active_hosts: usize,
    /// Packet time it was first seen.
    pub first_seen: Ts,
}

/// The hasher of the baseline's maps: one multiply-fold per word written,
/// seeded per map from the standard library's random keys (so an attacker
/// choosing destination names cannot aim their ids at one bucket). The keys
/// are FNV-1a ids and addresses, a word or two each: ahash spent more
/// instructions on them for no better spread.
#[derive(Clone, Copy)]
struct FoldState(u64);

impl Default for FoldState {
    fn default() -> Self {
        Self(std::hash::RandomState::new().build_hasher().finish())
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }

    fn write_u16(&mut self, x: u16) {
        self.write_u64(u64::from(x));
    }

    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }

    fn write_u64(&mut self, x: u64) {
        // the high and low halves of the 128-bit product folded: every bit
        // of the input reaches the low bits (the bucket) and the top seven
        // (hashbrown's tag)
        let p = u128::from(self.0 ^ x) * 0x9e37_79b9_7f4a_7c15;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }

    fn write_u128(&mut self, x: u128) {
        self.write_u64(x as u64);
        self.write_u64((x >> 64) as u64);
    }

    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

/// The internal hosts seen using one destination, for popularity counts: a
/// sorted list of host fingerprints (the IPv4 address itself; FNV-1a of an
/// IPv6 one), capped. A lookup is a binary search over 8-byte words instead
/// of a scan over 17-byte addresses, which matters for the destinations
/// everyone uses: every flow to them asks whether its host is new.
///
/// The first [`HOSTS_INLINE`] fingerprints live in the set itself, in the
/// destination's map entry (64 bytes with them, one cache line; 48 with a
/// `Vec`, whose heap block was a second, dependent cache miss): most
/// destinations have a few hosts. Serialised as a sequence of u64, the same
/// bytes as the `Vec<u64>` it was.
#[derive(Clone, Debug, Default)]
pub struct HostSet(SmallVec<[u64; HOSTS_INLINE]>);

/// Host fingerprints a [`HostSet`] keeps without an allocation.
const HOSTS_INLINE: usize = 4;

impl Serialize for HostSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for HostSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // through a Vec: serde's cautious preallocation for the length a
        // state file claims (smallvec reserves all of it)
        Vec::<u64>::deserialize(d).map(|v| Self(SmallVec::from_vec(v)))
    }
}

impl HostSet {
    fn fingerprint(ip: std::net::IpAddr) -> u64 {
        match ip {
            std::net::IpAddr::V4(a) => u64::from(u32::from(a)),
            // never equal to an IPv4 fingerprint (bit 63 set)
            std::net::IpAddr::V6(a) => crate::fnv1a(a.octets()) | 1 << 63,
        }
    }

    /// Adds `ip` unless the set holds it already or holds `cap` hosts;
    /// true if it was added.
    pub fn insert(&mut self, ip: std::net::IpAddr, cap: usize) -> bool {
        if self.0.len() >= cap {
            // full: the popular destinations, where nothing changes any more
            return false;
        }
        let f = Self::fingerprint(ip);
        match self.0.binary_search(&f) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, f);
                true
            }
        }
    }

    /// Adds every host of `other` (up to `cap`).
    fn union(&mut self, other: &Self, cap: usize) {
        for f in &other.0 {
            if self.0.len() >= cap {
                return;
            }
            if let Err(at) = self.0.binary_search(f) {
                self.0.insert(at, *f);
            }
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

/// The internal hosts active towards egress destinations, each with the
/// packet time of its last flow event. Every flow event probes this table:
/// IPv4 hosts are keyed by their address as a u32, which makes 16-byte
/// entries instead of the 32 an `IpAddr` key takes (half the cache lines
/// for the same hosts); IPv6 hosts have their own table.
#[derive(Default)]
struct Hosts {
    v4: HashMap<u32, Ts, FoldState>,
    v6: HashMap<std::net::Ipv6Addr, Ts, FoldState>,
}

impl Hosts {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The time kept for `ip`, set to `ts` if it had none.
    fn entry(&mut self, ip: IpAddr, ts: Ts) -> &mut Ts {
        match ip {
            IpAddr::V4(a) => self.v4.entry(u32::from(a)).or_insert(ts),
            IpAddr::V6(a) => self.v6.entry(a).or_insert(ts),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (IpAddr, Ts)> + '_ {
        let v4 = self.v4.iter().map(|(a, t)| (IpAddr::V4((*a).into()), *t));
        v4.chain(self.v6.iter().map(|(a, t)| (IpAddr::V6(*a), *t)))
    }

    /// [`crate::detect::evict_oldest`] over both tables as one.
    fn evict_oldest(&mut self) -> usize {
        let old = crate::detect::oldest_sixteenth(self.iter().map(|(ip, t)| (t, ip)).collect());
        for (_, ip) in &old {
            match ip {
                IpAddr::V4(a) => self.v4.remove(&u32::from(*a)),
                IpAddr::V6(a) => self.v6.remove(a),
            };
        }
        old.len()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct DestInfo {
    hosts: HostSet,
    last_seen: Ts,
    first_seen: Ts,
}

/// `[baseline]` settings.
#[derive(Clone, Debug)]
pub struct BaselineConfig {
    /// Entries each map (destinations, hosts, names) holds at most; the
    /// oldest sixteenth goes when one is full.
    pub max_entries: usize,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
        }
    }
}

/// The shared baselines.
pub struct Baseline {
    cap: usize,
    dests: HashMap<u64, DestInfo, FoldState>,
    hosts: Hosts,
    names: HashMap<(IpAddr, IpAddr), (Arc<str>, Ts), FoldState>,
    resolvers: Vec<IpAddr>,
    /// First sightings of (destination, host) since the last
    /// [`Self::take_sightings`], when kept (a bus worker shares them with
    /// the other workers: the site-wide baseline).
    journal: Option<Vec<(u64, IpAddr, Ts)>>,
    /// Entries dropped for the cap: destinations, hosts, names.
    evicted: [u64; 3],
}

/// A resolved name as stored: (host, address) -> (name, when).
type NameEntry = ((IpAddr, IpAddr), (Box<str>, Ts));

/// What survives a restart.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    dests: Vec<(u64, DestInfo)>,
    hosts: Vec<(IpAddr, Ts)>,
    names: Vec<NameEntry>,
    resolvers: Vec<IpAddr>,
}

/// Stable FNV-1a over a destination's identity (name, else address).
#[must_use]
pub fn dest_id(name: Option<&str>, ip: IpAddr) -> u64 {
    use std::iter::once;
    match (name, ip) {
        (Some(n), _) => crate::fnv1a(once(b'n').chain(n.bytes().map(|b| b.to_ascii_lowercase()))),
        (None, IpAddr::V4(a)) => {
            // one array, unrolled (the chain was a loop)
            let [w, x, y, z] = a.octets();
            crate::fnv1a([b'i', w, x, y, z])
        }
        (None, IpAddr::V6(a)) => crate::fnv1a(once(b'i').chain(a.octets())),
    }
}

/// The snapshot section name of the baselines.
pub const SECTION: &str = "baseline";

impl Baseline {
    #[must_use]
    pub fn new(cfg: &BaselineConfig) -> Self {
        Self {
            cap: cfg.max_entries.max(16),
            dests: HashMap::default(),
            hosts: Hosts::default(),
            names: HashMap::default(),
            resolvers: Vec::new(),
            journal: None,
            evicted: [0; 3],
        }
    }

    /// Keeps first sightings for [`Self::take_sightings`].
    pub fn keep_sightings(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The first sightings since the last call.
    pub fn take_sightings(&mut self) -> Vec<(u64, IpAddr, Ts)> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A first sighting made elsewhere (another worker's partitions):
    /// `host` uses destination `id` since `ts`.
    pub fn sighting(&mut self, id: u64, host: IpAddr, ts: Ts) {
        self.hosts.entry(host, ts);
        let d = self.dests.entry(id).or_default();
        d.last_seen = d.last_seen.max(ts);
        if d.first_seen == 0 || ts < d.first_seen {
            d.first_seen = ts;
        }
        d.hosts.insert(host, DEST_HOSTS_CAP);
        if self.hosts.len() > self.cap {
            self.evicted[1] += self.hosts.evict_oldest() as u64;
        }
        if self.dests.len() > self.cap {
            self.evicted[0] += crate::detect::evict_oldest(&mut self.dests, |d| d.last_seen) as u64;
        }
    }

    /// Feeds one event (direction `dir` already classified) and returns
    /// the destination view of a flow event and whether a DNS query's
    /// client is an internal resolver.
    pub fn observe(
        &mut self,
        ev: &FlowEvent,
        dir: Direction,
        home: &HomeNet,
    ) -> (Option<DestView>, bool) {
        match ev {
            FlowEvent::End(r) if matches!(r.proto, 6 | 17) => {
                let name = r.hints.as_deref().and_then(|h| h.dest_name_shared());
                let view = self.flow(dir, r.start, (r.src_ip, r.dest_ip), name);
                (view, false)
            }
            FlowEvent::Burst(b) if matches!(b.proto, 6 | 17) && dir == Direction::Outbound => (
                self.flow(dir, b.ts, (b.src_ip, b.dest_ip), b.name.clone()),
                false,
            ),
            FlowEvent::Progress(p) if matches!(p.proto, 6 | 17) => (
                self.flow(dir, p.ts, (p.src_ip, p.dest_ip), p.name.clone()),
                false,
            ),
            FlowEvent::DnsAnswer(d) => {
                if !d.name.is_empty() {
                    let name: Arc<str> = d.name.as_str().into();
                    for a in &d.addrs {
                        self.names.insert((d.client, *a), (Arc::clone(&name), d.ts));
                    }
                    if self.names.len() > self.cap {
                        self.evicted[2] +=
                            crate::detect::evict_oldest(&mut self.names, |(_, t)| *t) as u64;
                    }
                }
                (None, false)
            }
            FlowEvent::DnsQuery(q) => {
                if home.contains(q.client)
                    && home.contains(q.server)
                    && !self.resolvers.contains(&q.server)
                    && self.resolvers.len() < RESOLVERS_CAP
                {
                    self.resolvers.push(q.server);
                }
                (None, self.resolvers.contains(&q.client))
            }
            _ => (None, false),
        }
    }

    /// A flow event between `ends` (originator, responder): counts its
    /// internal host towards its remote side when that is an egress
    /// destination.
    fn flow(
        &mut self,
        dir: Direction,
        ts: Ts,
        ends: (IpAddr, IpAddr),
        hint: Option<Arc<str>>,
    ) -> Option<DestView> {
        let (host, remote) = match dir {
            Direction::Outbound => ends,
            Direction::Inbound => (ends.1, ends.0),
            _ => return None,
        };
        if !is_egress_dest(remote) {
            return None;
        }
        let name = hint.or_else(|| self.names.get(&(host, remote)).map(|(n, _)| Arc::clone(n)));
        let id = dest_id(name.as_deref(), remote);
        // one probe (`insert` reserves room first, even for a known host)
        *self.hosts.entry(host, ts) = ts;
        let d = self.dests.entry(id).or_default();
        d.last_seen = d.last_seen.max(ts);
        if d.first_seen == 0 || ts < d.first_seen {
            d.first_seen = ts;
        }
        if d.hosts.insert(host, DEST_HOSTS_CAP)
            && let Some(j) = self.journal.as_mut()
        {
            j.push((id, host, ts));
        }
        let (hosts, first_seen) = (d.hosts.len(), d.first_seen);
        if self.hosts.len() > self.cap {
            self.evicted[1] += self.hosts.evict_oldest() as u64;
        }
        if self.dests.len() > self.cap {
            self.evicted[0] += crate::detect::evict_oldest(&mut self.dests, |d| d.last_seen) as u64;
        }
        Some(DestView {
            id,
            name,
            hosts,
            active_hosts: self.hosts.len(),
            first_seen,
        })
    }

    /// Entries and evictions, for the metrics (see [`Self::STATE_KINDS`]).
    #[must_use]
    pub fn state_counts(&self) -> [u64; 7] {
        let [d, h, n] = self.evicted;
        [
            self.dests.len() as u64,
            d,
            self.hosts.len() as u64,
            h,
            self.names.len() as u64,
            n,
            self.resolvers.len() as u64,
        ]
    }

    /// What each of [`Self::state_counts`] is.
    pub const STATE_KINDS: &'static [crate::metrics::StateKind] = {
        use crate::metrics::StateKind::{Entries, Evictions};
        &[
            Entries("destinations"),
            Evictions("destinations"),
            Entries("hosts"),
            Evictions("hosts"),
            Entries("names"),
            Evictions("names"),
            Entries("resolvers"),
        ]
    };

    /// One line for the exit summary.
    #[must_use]
    pub fn summary(&self) -> String {
        format!(
            "baseline {} destinations, {} active hosts, {} resolved names, {} resolvers",
            self.dests.len(),
            self.hosts.len(),
            self.names.len(),
            self.resolvers.len()
        )
    }

    /// Serialised state for a snapshot (entries sorted: the same bytes for
    /// the same state, whatever the maps' hash seeds).
    #[must_use]
    pub fn save(&self) -> Vec<u8> {
        let mut snap = Snapshot {
            dests: self
                .dests
                .iter()
                .map(|(k, d)| {
                    (
                        *k,
                        DestInfo {
                            hosts: d.hosts.clone(),
                            last_seen: d.last_seen,
                            first_seen: d.first_seen,
                        },
                    )
                })
                .collect(),
            hosts: self.hosts.iter().collect(),
            names: self
                .names
                .iter()
                .map(|(k, (n, t))| (*k, (Box::from(&**n), *t)))
                .collect(),
            resolvers: self.resolvers.clone(),
        };
        snap.dests.sort_unstable_by_key(|d| d.0);
        snap.hosts.sort_unstable();
        snap.names.sort_unstable_by_key(|a| a.0);
        postcard::to_stdvec(&snap).unwrap_or_default()
    }

    /// Adds a snapshot taken by [`Self::save`] to this baseline (a bus
    /// worker restoring partitions saved by others): hosts per destination
    /// united, the earliest first sighting, the latest last one, names and
    /// resolvers this one lacks.
    ///
    /// # Errors
    /// The bytes do not decode.
    pub fn merge(&mut self, bytes: &[u8]) -> Result<(), postcard::Error> {
        let s: Snapshot = postcard::from_bytes(bytes)?;
        for (k, d) in s.dests {
            let e = self.dests.entry(k).or_default();
            e.hosts.union(&d.hosts, DEST_HOSTS_CAP);
            e.last_seen = e.last_seen.max(d.last_seen);
            if e.first_seen == 0 || (d.first_seen != 0 && d.first_seen < e.first_seen) {
                e.first_seen = d.first_seen;
            }
        }
        for (h, t) in s.hosts {
            let e = self.hosts.entry(h, t);
            *e = (*e).max(t);
        }
        for (k, (n, t)) in s.names {
            self.names.entry(k).or_insert((Arc::from(n), t));
        }
        for r in s.resolvers {
            if !self.resolvers.contains(&r) && self.resolvers.len() < RESOLVERS_CAP {
                self.resolvers.push(r);
            }
        }
        Ok(())
    }

    /// Restores a snapshot taken by [`Self::save`].
    ///
    /// # Errors
    /// The bytes do not decode.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), postcard::Error> {
        let s: Snapshot = postcard::from_bytes(bytes)?;
        self.dests = s.dests.into_iter().collect();
        self.hosts = Hosts::default();
        for (h, t) in s.hosts {
            *self.hosts.entry(h, t) = t;
        }
        self.names = s
            .names
            .into_iter()
            .map(|(k, (n, t))| (k, (Arc::from(n), t)))
            .collect();
        self.resolvers = s.resolvers;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Baseline, BaselineConfig, HostSet};
    use crate::homenet::Direction;
    use std::net::IpAddr;

    #[test]
    fn host_set_serialises_as_the_vec_it_was() {
        // inline, at the inline size, spilled, full
        for n in [0u64, 1, 4, 5, 300] {
            let mut s = HostSet::default();
            for i in 0..n {
                s.insert(IpAddr::from([10, 0, (i >> 8) as u8, i as u8]), 256);
            }
            let v: Vec<u64> = s.0.to_vec();
            let bytes = postcard::to_stdvec(&s).unwrap();
            assert_eq!(bytes, postcard::to_stdvec(&v).unwrap());
            let back: HostSet = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back.0.as_slice(), v.as_slice());
        }
    }

    #[test]
    fn save_load_save_gives_the_same_bytes() {
        let mut b = Baseline::new(&BaselineConfig::default());
        let hosts: [IpAddr; 3] = [
            "10.0.0.1".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            "::ffff:10.0.0.1".parse().unwrap(),
        ];
        for (i, h) in hosts.iter().cycle().take(40).enumerate() {
            let remote = IpAddr::from([93, 184, 216, (i % 7) as u8]);
            let ts = 1_000 + i as i64;
            let v = b.flow(Direction::Outbound, ts, (*h, remote), None).unwrap();
            assert!(v.hosts >= 1);
        }
        assert_eq!(b.hosts.len(), 3);
        let saved = b.save();
        let mut c = Baseline::new(&BaselineConfig::default());
        c.load(&saved).unwrap();
        assert_eq!(c.save(), saved);
        let mut m = Baseline::new(&BaselineConfig::default());
        m.merge(&saved).unwrap();
        assert_eq!(m.save(), saved);
    }

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
