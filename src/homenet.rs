//! `home_net`: which addresses are internal, and the direction of a flow.

use ipnet::IpNet;
use serde::Serialize;
use std::net::IpAddr;

/// Suricata's default HOME_NET (RFC 1918) plus IPv6 unique-local and link-local.
pub const DEFAULT_HOME_NET: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "fe80::/10",
    "169.254.0.0/16",
];

/// Direction of a flow relative to the home network, from its originator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// internal originator -> external responder
    Outbound,
    /// external originator -> internal responder
    Inbound,
    /// both internal
    Internal,
    /// neither internal
    External,
}

impl Direction {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
            Self::Internal => "internal",
            Self::External => "external",
        }
    }
}

/// True for a destination traffic can leave the site for: unicast, not
/// loopback, unspecified, multicast or broadcast (SSDP, mDNS and the like are
/// never egress, whatever `home_net` says).
#[must_use]
pub fn is_egress_dest(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_multicast() || a.is_broadcast() || a.is_unspecified() || a.is_loopback())
        }
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified() || a.is_loopback()),
    }
}

/// CIDRs as (network, mask) words per family, for membership tests on the
/// per-event path (`IpNet::contains` rebuilds the mask from the prefix on
/// every call). An IPv4 network never holds an IPv6 address, nor the
/// reverse, as with `IpNet`.
#[derive(Clone, Debug, Default)]
pub struct CidrSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl CidrSet {
    #[must_use]
    pub fn new(nets: &[IpNet]) -> Self {
        let mut s = Self::default();
        for n in nets {
            match n {
                IpNet::V4(n) => {
                    let m = u32::MAX
                        .checked_shl(32 - u32::from(n.prefix_len()))
                        .unwrap_or(0);
                    s.v4.push((u32::from(n.network()) & m, m));
                }
                IpNet::V6(n) => {
                    let m = u128::MAX
                        .checked_shl(128 - u32::from(n.prefix_len()))
                        .unwrap_or(0);
                    s.v6.push((u128::from(n.network()) & m, m));
                }
            }
        }
        s
    }

    #[inline]
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(n, m)| a & m == n)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(n, m)| a & m == n)
            }
        }
    }
}

/// An entry of a CIDR list that is neither a CIDR nor an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR {0:?}")]
pub struct InvalidCidr(pub String);

/// A set of CIDRs.
#[derive(Clone, Debug)]
pub struct HomeNet {
    nets: Vec<IpNet>,
    set: CidrSet,
}

impl HomeNet {
    /// Parses CIDRs (a bare address is a /32 or /128).
    ///
    /// # Errors
    /// Every entry that does not parse, with its text.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, Vec<InvalidCidr>> {
        let mut nets = Vec::new();
        let mut errs = Vec::new();
        for s in items {
            let s = s.as_ref().trim();
            match s.parse::<IpNet>() {
                Ok(n) => nets.push(n.trunc()),
                Err(_) => match s.parse::<IpAddr>() {
                    Ok(a) => nets.push(IpNet::from(a)),
                    Err(_) => errs.push(InvalidCidr(s.to_owned())),
                },
            }
        }
        if errs.is_empty() {
            let set = CidrSet::new(&nets);
            Ok(Self { nets, set })
        } else {
            Err(errs)
        }
    }

    #[must_use]
    pub fn default_nets() -> Self {
        Self::parse(DEFAULT_HOME_NET).unwrap_or(Self {
            nets: Vec::new(),
            set: CidrSet::default(),
        })
    }

    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.set.contains(ip)
    }

    #[must_use]
    pub fn direction(&self, orig: IpAddr, resp: IpAddr) -> Direction {
        match (self.contains(orig), self.contains(resp)) {
            (true, false) => Direction::Outbound,
            (false, true) => Direction::Inbound,
            (true, true) => Direction::Internal,
            (false, false) => Direction::External,
        }
    }

    #[must_use]
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_set_agrees_with_ipnet() {
        let nets: Vec<IpNet> = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.1.128/25",
            "0.0.0.0/0",
            "1.2.3.4/32",
            "fc00::/7",
            "fe80::/10",
            "2001:db8::1/128",
            "::/0",
            "::ffff:0:0/96",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ip: IpAddr = if i % 2 == 0 {
                // near the v4 networks' edges as often as not
                let base = [0x0a00_0000u32, 0xac10_0000, 0xc0a8_0180, 0x0102_0304][i % 8 / 2];
                IpAddr::from((base ^ ((x as u32) >> (x % 32))).to_be_bytes())
            } else {
                let base = [
                    0xfc00u128 << 112,
                    0xfe80 << 112,
                    0x2001_0db8 << 96 | 1,
                    0xffff << 32,
                ][i % 8 / 2];
                IpAddr::from((base ^ (u128::from(x) << (x % 64) >> (x % 97))).to_be_bytes())
            };
            for k in 0..nets.len() {
                let one = CidrSet::new(&nets[k..=k]);
                assert_eq!(one.contains(ip), nets[k].contains(&ip), "{} {ip}", nets[k]);
            }
        }
    }

    #[test]
    fn directions() {
        let h = HomeNet::default_nets();
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let b: IpAddr = "8.8.8.8".parse().unwrap();
        let c: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(h.direction(a, b), Direction::Outbound);
        assert_eq!(h.direction(b, a), Direction::Inbound);
        assert_eq!(h.direction(a, c), Direction::Internal);
        assert_eq!(h.direction(b, b), Direction::External);
        assert!(
            HomeNet::parse(&["10.0.0.0/33", "x", "1.2.3.4"])
                .unwrap_err()
                .len()
                == 2
        );
    }
}
