//! A flood of unique flows (SYN flood from spoofed sources, UDP scan, random
//! DNS names) under small memory caps: the flow table stays under its cap,
//! enters emergency mode, and the beacon inside the flood is still found.

mod common;
use common::{alerts, deguchi};

#[test]
fn flood_stays_under_caps_and_the_beacon_is_still_found() {
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("flood.pcap");
    let o = deguchi(&[
        "gen",
        "flood",
        "--flows",
        "300000",
        "-o",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let cfg = d.path().join("small.toml");
    std::fs::write(
        &cfg,
        "[flow]\nmemcap_mb = 2\n[beacon]\nmax_pairs = 1000\n[exfil]\nmax_hosts = 1000\nmax_pairs = 2000\n[dns_tunnel]\nmax_domains = 1000\n",
    )
    .unwrap();
    let o = deguchi(&[
        "replay",
        pcap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--workers",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = String::from_utf8_lossy(&o.stderr);
    let field = |name: &str| -> u64 {
        let i = log
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name} in {log}"));
        log[i + name.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let cap = (2usize << 20) / deguchi::flow::table::bytes_per_flow();
    let peak = field("peak") as usize;
    assert!(peak <= cap, "peak {peak} flows over the cap {cap}");
    assert!(field("emergency") >= 1, "emergency mode entered: {log}");
    let a = alerts(&o);
    assert!(
        a.iter().any(|x| x.detector == "beacon"
            && x.src_ip == "10.0.1.66"
            && x.dest_ip == "203.0.113.66"),
        "the beacon inside the flood: {a:#?}"
    );
    assert!(a.len() <= 3, "{a:#?}");
}
