//! Canonical bidirectional flow key.

use crate::decode::PacketMeta;
use std::hash::{BuildHasher, Hash};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Both directions of a flow map to the same key: the endpoint with the
/// smaller (address, port) is `a`. VLAN id is part of the key (as Suricata's
/// `vlan.use-for-tracking`), so the same 5-tuple on two VLANs is two flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub a: u128,
    pub b: u128,
    pub pa: u16,
    pub pb: u16,
    pub vlan: u16,
    pub proto: u8,
    pub v6: bool,
}

impl FlowKey {
    /// Canonical key of a packet and whether the packet's source is endpoint `a`.
    #[must_use]
    #[inline]
    pub fn of(m: &PacketMeta) -> (Self, bool) {
        let src_is_a = (m.src, m.sport) <= (m.dst, m.dport);
        let (a, pa, b, pb) = if src_is_a {
            (m.src, m.sport, m.dst, m.dport)
        } else {
            (m.dst, m.dport, m.src, m.sport)
        };
        (
            Self {
                a,
                b,
                pa,
                pb,
                vlan: m.vlan,
                proto: m.proto,
                v6: m.v6,
            },
            src_is_a,
        )
    }

    /// Shard index for this key: a symmetric hash (the key is canonical), so
    /// both directions land on the same shard.
    #[must_use]
    #[inline]
    pub fn shard<S: BuildHasher>(&self, hasher: &S, shards: usize) -> usize {
        let mut h = hasher.build_hasher();
        self.hash(&mut h);
        let x = std::hash::Hasher::finish(&h);
        // multiply-shift range reduction
        usize::try_from((u128::from(x) * shards as u128) >> 64).unwrap_or(0)
    }
}

/// The keyed hash of flow keys and address pairs, the flow table's and the
/// shard steering's per-packet hash: each 64-bit half of the key is mixed
/// with a secret key word, pairs of words are multiplied into 128 bits and
/// folded (the folded multiply of wyhash and of ahash's portable path).
/// Deriving `Hash` and feeding ahash's hasher takes one round per field
/// (seven); this takes three multiplies (counts in `benches/HISTORY.md`,
/// session 6). The key words
/// are random per process, so flooding one bucket with crafted addresses
/// and ports takes knowing them (hash flooding is the reason the index
/// hash is keyed at all).
#[derive(Clone, Debug)]
pub struct KeyHasher {
    k: [u64; 6],
}

impl Default for KeyHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyHasher {
    /// Random key words (from ahash's per-process random source).
    #[must_use]
    pub fn new() -> Self {
        Self::from_state(&ahash::RandomState::new())
    }

    /// Fixed key words derived from `seed` (tests, benches).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self::from_state(&ahash::RandomState::with_seeds(
            seed,
            !seed,
            seed.rotate_left(17),
            0x5bd1_e995,
        ))
    }

    /// Key words drawn from `r`.
    fn from_state(r: &ahash::RandomState) -> Self {
        Self {
            k: std::array::from_fn(|i| r.hash_one(i) | 1),
        }
    }

    #[inline]
    fn fold(a: u64, b: u64) -> u64 {
        let r = u128::from(a) * u128::from(b);
        #[allow(clippy::cast_possible_truncation)]
        let (lo, hi) = (r as u64, (r >> 64) as u64);
        lo ^ hi
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation)]
    fn pair_words(&self, a: u128, b: u128) -> u64 {
        Self::fold(a as u64 ^ self.k[0], (a >> 64) as u64 ^ self.k[1])
            ^ Self::fold(b as u64 ^ self.k[2], (b >> 64) as u64 ^ self.k[3]).rotate_left(32)
    }

    /// Hash of a flow key.
    #[inline]
    #[must_use]
    pub fn key(&self, k: &FlowKey) -> u64 {
        let tail = u64::from(k.pa)
            | u64::from(k.pb) << 16
            | u64::from(k.vlan) << 32
            | u64::from(k.proto) << 48
            | u64::from(k.v6) << 56;
        Self::finish(Self::fold(
            self.pair_words(k.a, k.b) ^ self.k[4],
            tail ^ self.k[5],
        ))
    }

    /// Avalanche (SplitMix64's finaliser): one folded multiply of keys that
    /// differ only in a counter (ports) leaves the low bits clumped.
    #[inline]
    fn finish(mut h: u64) -> u64 {
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }

    /// Hash of an (outer) address pair, for steering frames to shards.
    #[inline]
    #[must_use]
    pub fn pair(&self, p: (u128, u128)) -> u64 {
        Self::finish(Self::fold(self.pair_words(p.0, p.1), self.k[5]))
    }
}

/// Converts a decoded address to an `IpAddr`.
#[must_use]
pub fn ip_of(addr: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(addr))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            u32::try_from(addr & 0xffff_ffff).unwrap_or(0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_one_key() {
        let m = PacketMeta {
            src: 10,
            dst: 5,
            sport: 1000,
            dport: 80,
            proto: 6,
            ..PacketMeta::default()
        };
        let r = PacketMeta {
            src: 5,
            dst: 10,
            sport: 80,
            dport: 1000,
            proto: 6,
            ..PacketMeta::default()
        };
        let (k1, s1) = FlowKey::of(&m);
        let (k2, s2) = FlowKey::of(&r);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
        let h = ahash::RandomState::with_seeds(1, 2, 3, 4);
        assert_eq!(k1.shard(&h, 7), k2.shard(&h, 7));
        let kh = KeyHasher::with_seed(9);
        assert_eq!(kh.key(&k1), kh.key(&k2));
    }

    /// Keys that differ in one field (the flows of one busy host: ports
    /// counting up, one server, IPv4) spread over the bits the flow index
    /// uses: the low bits pick the bucket, the top 7 the tag.
    #[test]
    fn key_hash_spreads_sequential_keys() {
        let kh = KeyHasher::with_seed(1);
        let base = FlowKey {
            a: 0x0a00_0001,
            b: 0xc633_6401,
            pa: 0,
            pb: 443,
            vlan: 0,
            proto: 6,
            v6: false,
        };
        let n = 1u32 << 16;
        let mut low = vec![0u32; 1 << 10];
        let mut top = [0u32; 128];
        let mut seen = std::collections::HashSet::new();
        for p in 0..n {
            let h = kh.key(&FlowKey {
                pa: u16::try_from(p).unwrap(),
                ..base
            });
            low[usize::try_from(h & 1023).unwrap()] += 1;
            top[usize::try_from(h >> 57).unwrap()] += 1;
            seen.insert(h);
        }
        assert_eq!(seen.len(), n as usize, "no collisions among 65,536 keys");
        // 64 a bucket expected: every bucket within a generous band
        assert!(low.iter().all(|&c| (24..=112).contains(&c)), "{low:?}");
        assert!(top.iter().all(|&c| (384..=640).contains(&c)), "{top:?}");
        // addresses counting up (a /16 of clients) too
        let mut low = vec![0u32; 1 << 10];
        for x in 0..n {
            let h = kh.key(&FlowKey {
                a: 0x0a00_0000 | u128::from(x),
                ..base
            });
            low[usize::try_from(h & 1023).unwrap()] += 1;
        }
        assert!(low.iter().all(|&c| (24..=112).contains(&c)), "{low:?}");
        // and another process's keys give other hashes
        assert_ne!(kh.key(&base), KeyHasher::with_seed(2).key(&base));
    }
}
