//! Untrusted strings (SNI, HTTP Host and URI, DNS names) cannot forge a
//! second JSON line: every output line is one whole JSON object, with no raw
//! control character, and the hostile text comes back intact as a string.

mod common;
use common::*;

#[test]
fn hostile_names_stay_inside_their_json_strings() {
    let (c, s) = ([10, 0, 0, 5], [203, 0, 113, 9]);
    let sni = r#"evil"},{"event_type":"alert","x":"\"#;
    let hello = deguchi_synth::packets::client_hello(sni, 1);
    let http = b"GET /a\"b\\c%1b HTTP/1.1\r\nHost: h\"o\\st\x1b.example\r\n\r\n".to_vec();
    let dns = deguchi_synth::packets::dns_query(7, "a\nb\"c.\u{1}x.example.com", 1);
    let mut frames = Vec::new();
    let mut t = T0;
    for (port, payload) in [(443u16, hello), (80, http)] {
        frames.extend(tcp_exchange(t, (c, 40_000 + port), (s, port), &[payload]));
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
    }
    // one whole flow record per line
    let all: Vec<Flow> = lines.iter().map(|l| parse_flow(l)).collect();
    let tls = all.iter().find(|v| v.dest_port == Some(443)).unwrap();
    assert_eq!(
        tls.tls.as_ref().unwrap().sni,
        sni,
        "the SNI comes back intact, as a string"
    );
    let http = all.iter().find(|v| v.dest_port == Some(80)).unwrap();
    let h = http.http.as_ref().unwrap();
    // the request was parsed; its hostile bytes are escaped, not dropped
    assert_eq!(h.http_method, "GET", "{http:?}");
    assert_eq!(h.url.as_deref(), Some("/a\"b\\c%1b"));
    // a Host carrying a control character is not a host name: dropped
    assert!(h.hostname.is_none(), "{http:?}");
    let dns = all.iter().find(|v| v.dest_port == Some(53)).unwrap();
    let q = &dns.deguchi.dns.as_ref().unwrap().queries[0];
    assert!(!q.chars().any(char::is_control), "{q:?}");
}

/// What each kind of flow records as hints, through the whole pipeline: a
/// TLS flow its SNI and nothing else; an HTTP flow the first request's
/// method, URI and Host; a DNS flow each name once (repeats not stored
/// again), each answer once, the last response's rcode.
#[test]
fn flow_records_carry_each_flows_hints() {
    use deguchi_synth::packets::{client_hello, dns_query, dns_response};
    use std::net::IpAddr;
    let (c, s, r) = ([10, 0, 0, 5], [203, 0, 113, 9], [10, 0, 0, 53]);
    let mut frames = Vec::new();
    let mut t = T0;
    let first = b"GET /first?q=1 HTTP/1.1\r\nHost: web.example\r\n\r\n".to_vec();
    let second = b"POST /second HTTP/1.1\r\nHost: other.example\r\n\r\n".to_vec();
    for (port, payloads) in [
        (443u16, vec![client_hello("tls.example", 1)]),
        (80, vec![first, second]),
    ] {
        frames.extend(tcp_exchange(t, (c, 40_000 + port), (s, port), &payloads));
        t += 1_000_000;
    }
    let a1: IpAddr = "198.51.100.7".parse().unwrap();
    let a2: IpAddr = "2001:db8::7".parse().unwrap();
    frames.push((t, udp(c, 5353, r, 53, &dns_query(7, "a.example.com", 1))));
    frames.push((
        t + 100,
        udp(c, 5353, r, 53, &dns_query(8, "a.example.com", 28)),
    ));
    frames.push((
        t + 200,
        udp(c, 5353, r, 53, &dns_query(9, "b.example.com", 1)),
    ));
    frames.push((
        t + 300,
        udp(
            r,
            53,
            c,
            5353,
            &dns_response(7, "a.example.com", 1, &[a1, a2]),
        ),
    ));
    frames.push((
        t + 400,
        udp(r, 53, c, 5353, &dns_response(8, "a.example.com", 1, &[a1])),
    ));
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("hints.pcap");
    std::fs::write(&p, pcap_bytes(&frames)).unwrap();

    let o = deguchi(&["replay", p.to_str().unwrap(), "--flows", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all: Vec<Flow> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(parse_flow)
        .collect();
    assert_eq!(all.len(), 3, "{all:?}");
    let port = |n: u16| all.iter().find(|v| v.dest_port == Some(n)).unwrap();
    let tls = port(443);
    assert_eq!(tls.tls.as_ref().unwrap().sni, "tls.example");
    assert_eq!(sections(tls), ["tls"], "{tls:?}");
    let http = port(80);
    let h = http.http.as_ref().unwrap();
    assert_eq!(h.http_method, "GET", "the first request: {http:?}");
    assert_eq!(h.url.as_deref(), Some("/first?q=1"));
    assert_eq!(h.hostname.as_deref(), Some("web.example"));
    assert_eq!(sections(http), ["http"], "{http:?}");
    let dns = port(53);
    let q = dns.deguchi.dns.as_ref().unwrap();
    assert_eq!(q.queries, ["a.example.com", "b.example.com"]);
    assert_eq!(q.answers, ["198.51.100.7", "2001:db8::7"]);
    assert_eq!(q.rcode, Some(0));
    assert_eq!(sections(dns), ["dns"], "{dns:?}");
}

/// Which application sections (`tls`, `http`, `dns`) a flow record carries.
fn sections(v: &Flow) -> Vec<&'static str> {
    [
        ("tls", v.tls.is_some()),
        ("http", v.http.is_some()),
        ("dns", v.deguchi.dns.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect()
}
