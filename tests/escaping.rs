//! Untrusted strings (SNI, HTTP Host and URI, DNS names) cannot forge a
//! second JSON line: every output line is one whole JSON object, with no raw
//! control character, and the hostile text comes back intact as a string.

mod common;
use common::*;

#[test]
fn hostile_names_stay_inside_their_json_strings() {
    let (c, s) = ([10, 0, 0, 5], [203, 0, 113, 9]);
    let sni = r#"evil"},{"event_type":"alert","x":"\"#;
    let hello = deguchi::synth::packets::client_hello(sni, 1);
    let http = b"GET /a\"b\\c%1b HTTP/1.1\r\nHost: h\"o\\st\x1b.example\r\n\r\n".to_vec();
    let dns = deguchi::synth::packets::dns_query(7, "a\nb\"c.\u{1}x.example.com", 1);
    let mut frames = Vec::new();
    let mut t = T0;
    for (port, payload) in [(443u16, hello), (80, http)] {
        frames.push((t, tcp(c, 40_000 + port, s, port, "S", &[])));
        frames.push((t + 1000, tcp(s, port, c, 40_000 + port, "SA", &[])));
        frames.push((t + 2000, tcp(c, 40_000 + port, s, port, "A", &[])));
        frames.push((t + 3000, tcp(c, 40_000 + port, s, port, "AP", &payload)));
        frames.push((t + 4000, tcp(c, 40_000 + port, s, port, "FA", &[])));
        frames.push((t + 5000, tcp(s, port, c, 40_000 + port, "FA", &[])));
        frames.push((t + 6000, tcp(c, 40_000 + port, s, port, "A", &[])));
        t += 1_000_000;
    }
    frames.push((t, udp(c, 5353, [10, 0, 0, 53], 53, &dns)));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("hostile.pcap");
    std::fs::write(&p, pcap_bytes(&frames)).unwrap();

    let o = deguchi(&["replay", p.to_str().unwrap(), "--flows", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "three flows, three lines: {out}");
    for l in &lines {
        assert!(
            !l.chars().any(char::is_control),
            "raw control character in {l:?}"
        );
        let v: serde_json::Value = serde_json::from_str(l).expect("one whole JSON object");
        assert_eq!(v["event_type"], "flow");
    }
    let all: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tls = all.iter().find(|v| v["dest_port"] == 443).unwrap();
    assert_eq!(
        tls["tls"]["sni"], sni,
        "the SNI comes back intact, as a string"
    );
    let http = all.iter().find(|v| v["dest_port"] == 80).unwrap();
    // the request was parsed; its hostile bytes are escaped, not dropped
    assert_eq!(http["http"]["http_method"], "GET", "{http}");
    assert_eq!(http["http"]["url"], "/a\"b\\c%1b");
    // a Host carrying a control character is not a host name: dropped
    assert!(http["http"]["hostname"].is_null(), "{http}");
    let dns = all.iter().find(|v| v["dest_port"] == 53).unwrap();
    let q = dns["dns"]["queries"][0].as_str().unwrap();
    assert!(!q.chars().any(char::is_control), "{q:?}");
}
