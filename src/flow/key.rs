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
    }
}
