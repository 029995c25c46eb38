//! Beacon detection on the real captures in ../shared/pcaps/real/ whose ground
//! truth is stated in its GROUND_TRUTH.tsv. Skips cleanly when the folder is
//! absent (a user's clone does not have it).

mod common;
use common::{Alert, BeaconEvidence, deguchi};
use std::path::{Path, PathBuf};

fn real(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps/real")).join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not present", p.display());
        None
    }
}

fn alerts(file: &Path, extra: &[&str]) -> Vec<Alert> {
    let mut args = vec!["replay", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = deguchi(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::alerts(&o)
}

fn beacons_to(a: &[Alert], src: &str, dst: &str, port: u16) -> Vec<Alert> {
    a.iter()
        .filter(|x| {
            x.detector == "beacon"
                && x.src_ip == src
                && x.dest_ip == dst
                && x.dest_port == Some(port)
        })
        .cloned()
        .collect()
}

/// (file, extra args, internal host, C2, port, period range)
type Found = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    u16,
    (f64, f64),
);

const FOUND: &[Found] = &[
    // STRRAT: client pings every 5 s inside one TCP session
    (
        "strrat__strrat-4423258f-59bc-4a88-bfec-d8ac08c88538.pcap",
        &[],
        "192.168.100.11",
        "185.255.114.40",
        8219,
        (4.5, 5.5),
    ),
    // curl loop, new HTTPS connection every 2-3.6 s; the "internal" host is a
    // public CTU address, so the analyst names it
    (
        "strat__test-cc-capture-2.pcap",
        &["--home-net", "147.32.80.37"],
        "147.32.80.37",
        "141.193.213.20",
        443,
        (2.5, 3.5),
    ),
    // CALDERA manx: one TCP session, beacon every ~20 s; lab IPs, so the
    // agent host alone is home_net
    (
        "caldera__manx-tcp.pcap",
        &["--home-net", "172.18.0.3/32"],
        "172.18.0.3",
        "172.18.0.2",
        7010,
        (18.0, 22.0),
    ),
];

#[test]
fn real_c2_channels_are_found_with_their_period() {
    for (file, extra, src, dst, port, (lo, hi)) in FOUND {
        let Some(p) = real(file) else { return };
        let a = alerts(&p, extra);
        let b = beacons_to(&a, src, dst, *port);
        assert!(!b.is_empty(), "{file}: no beacon alert; got {a:?}");
        let last = b.last().unwrap();
        let period = last.evidence_as::<BeaconEvidence>().period_s;
        assert!(
            (*lo..=*hi).contains(&period),
            "{file}: period {period} not in {lo}..{hi}"
        );
        assert!(last.community_id.as_deref().unwrap().starts_with("1:"));
        assert!(b.len() <= 2, "{file}: alert storm: {}", b.len());
        // only the C2 channel alerts
        assert_eq!(b.len(), a.len(), "{file}: other alerts: {a:?}");
    }
}

/// Benign periodic traffic in real captures that must stay quiet.
#[test]
fn benign_periodic_real_traffic_is_quiet() {
    for (file, extra) in [
        // NTP every ~62 s to four servers, among a telnet scan
        ("strat__test7-malicious.pcap", &[][..]),
        // Google Nest log sink: periodic-ish IoT uploads
        ("ndpi__nest_log_sink.pcap", &[][..]),
        // a 1.9 h LAN session with a 30 s push: internal, never egress
        ("zeek-long-connections__long_connection.pcap", &[][..]),
    ] {
        let Some(p) = real(file) else { return };
        let a = alerts(&p, extra);
        assert!(a.is_empty(), "{file}: {a:?}");
    }
}

/// Stealers and DNS tunnels in real captures (GROUND_TRUTH.tsv).
#[test]
fn real_stealers_and_dns_tunnels_are_found() {
    for (file, detector, src, dst) in [
        (
            "agenttesla__a30789ce-1e1c-4f96-a097-78c34b9fb612.pcap",
            "exfil",
            "192.168.100.40",
            "43.255.154.57",
        ),
        (
            "agenttesla__f9421792-7d2c-47d3-90e0-07eb54ae12fa.pcap",
            "exfil",
            "192.168.100.164",
            "143.95.79.226",
        ),
        (
            "unit42__2023-01-Unit42-Wireshark-quiz.pcap",
            "exfil",
            "192.168.1.27",
            "204.11.58.28",
        ),
        (
            "ndpi__dns_exfiltration.pcap",
            "dns_tunnel",
            "192.168.220.56",
            "192.168.203.167",
        ),
        (
            "ndpi__dns-tunnel-iodine.pcap",
            "dns_tunnel",
            "10.0.2.30",
            "10.0.2.20",
        ),
        (
            "dmachard__sods.pcap",
            "dns_tunnel",
            "192.168.1.17",
            "192.168.1.210",
        ),
    ] {
        let Some(p) = real(file) else { return };
        let a = alerts(&p, &[]);
        assert!(
            a.iter()
                .any(|x| x.detector == detector && x.src_ip == src && x.dest_ip == dst),
            "{file}: {a:#?}"
        );
        assert!(
            a.iter().all(|x| x.src_ip == src),
            "{file}: only the infected host alerts: {a:#?}"
        );
        assert!(a.len() <= 3, "{file}: no storm: {}", a.len());
    }
}
