//! Community ID v1 flow hashing (corelight/community-id-spec).
//!
//! Hash input, all big-endian: `seed(2) . saddr(4|16) . daddr(4|16) . proto(1) . 0(1)
//! [. sport(2) . dport(2)]`, after ordering the endpoints so the smaller `(ip, port)`
//! tuple comes first (ip bytewise, then port). Ports are hashed only for TCP, UDP, SCTP,
//! ICMP and ICMPv6; for ICMP/ICMPv6 the "ports" are type/code, except that types with a
//! request/response counterpart (Zeek's mapping) use the counterpart type in place of the
//! code. Unmapped ICMP types are "one-way": the endpoints are never swapped.
//! Result: `"1:" + base64(SHA1(input))`. Only the returned `String` is allocated.
use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use std::net::IpAddr;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP6: u8 = 58;
const SCTP: u8 = 132;

/// Counterpart ICMPv4 type (echo, router, timestamp, info, mask request/reply pairs).
fn icmp4_counterpart(t: u16) -> Option<u16> {
    Some(match t {
        0 => 8,
        8 => 0,
        9 => 10,
        10 => 9,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// Counterpart ICMPv6 type (echo, MLD, ND router/neighbor, WRU, HAAD request/reply pairs).
fn icmp6_counterpart(t: u16) -> Option<u16> {
    Some(match t {
        128 => 129,
        129 => 128,
        130 => 131,
        131 => 130,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

/// Address bytes in network order, without allocating.
fn octets(a: &IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => {
            let (head, _) = b.split_at_mut(4);
            head.copy_from_slice(&v4.octets());
            (b, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 16),
    }
}

/// Community ID v1 of a flow. For ICMP (1) / ICMPv6 (58) pass the type as `sport` and
/// the code as `dport`; for protocols other than TCP/UDP/SCTP/ICMP/ICMPv6 the ports are
/// ignored (not hashed), as the spec requires.
#[must_use]
pub fn community_id_v1(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    let (mut sport, mut dport) = (sport, dport);
    let mut one_way = false;
    let map = match proto {
        ICMP => Some(icmp4_counterpart as fn(u16) -> Option<u16>),
        ICMP6 => Some(icmp6_counterpart as fn(u16) -> Option<u16>),
        _ => None,
    };
    if let Some(map) = map {
        match map(sport) {
            Some(other) => dport = other,
            None => one_way = true,
        }
    }
    let has_ports = matches!(proto, TCP | UDP | SCTP | ICMP | ICMP6);

    let (sa, sn) = octets(&src);
    let (da, dn) = octets(&dst);
    let s = sa.get(..sn).unwrap_or(&[]);
    let d = da.get(..dn).unwrap_or(&[]);
    let (first, second) = if one_way || (s, sport) <= (d, dport) {
        (s, d)
    } else {
        std::mem::swap(&mut sport, &mut dport);
        (d, s)
    };

    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(first);
    h.update(second);
    h.update([proto, 0]);
    if has_ports {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    let digest = h.finalize();

    let mut out = String::with_capacity(2 + 28);
    out.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_vectors() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/vectors/community-id"
        );
        let Ok(rd) = std::fs::read_dir(dir) else {
            eprintln!("note: {dir} absent; skipping Community ID vector test");
            return;
        };
        let mut n = 0;
        for ent in rd {
            let path = ent.unwrap().path();
            let Some(name) = path.file_name().and_then(|s| s.to_str()) else {
                continue;
            };
            if !name.ends_with(".json") {
                continue;
            }
            let seed: u16 = if name.contains("seed1") { 1 } else { 0 };
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for e in v.as_array().unwrap() {
                let num = |k: &str| e[k].as_u64().unwrap_or(0);
                let ip = |k: &str| e[k].as_str().unwrap().parse::<IpAddr>().unwrap();
                let (proto, sp, dp) =
                    (num("proto") as u8, num("sport") as u16, num("dport") as u16);
                let want = e["communityid"].as_str().unwrap();
                let got = community_id_v1(seed, ip("saddr"), ip("daddr"), proto, sp, dp);
                assert_eq!(got, want, "{name}: {e}");
                n += 1;
            }
        }
        assert!(n > 0, "no vectors found in {dir}");
        eprintln!("checked {n} Community ID vectors");
    }

    #[test]
    fn spec_readme_example_symmetry() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            community_id_v1(0, a, b, 6, 1234, 80),
            community_id_v1(0, b, a, 6, 80, 1234)
        );
        // Same address: ports decide.
        assert_eq!(
            community_id_v1(0, a, a, 17, 1, 2),
            community_id_v1(0, a, a, 17, 2, 1)
        );
        // Port-less protocol: ports are not hashed.
        assert_eq!(
            community_id_v1(0, a, b, 47, 1, 2),
            community_id_v1(0, a, b, 47, 0, 0)
        );
        assert!(community_id_v1(0, a, b, 6, 1, 2).starts_with("1:"));
    }
}
