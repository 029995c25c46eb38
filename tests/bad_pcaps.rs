//! Broken captures (`pcaps/bad/`, see its README.md, regenerate with
//! `cargo run --example make_bad_pcaps -- pcaps/bad`): the documented exit
//! code, an error naming the file, what is wrong and where, no panic, and the
//! flows of every record before the fault written. Also the intentionally
//! broken real captures in ../shared/pcaps/real (skipped when absent).

mod common;
use common::{Flow, flow_pkts, read_flows};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    file: &'static str,
    exit: i32,
    /// Substrings stderr must contain (besides the file name).
    expect: &'static [&'static str],
    /// Packets in the flow records written.
    pkts: u64,
}

const CASES: &[Case] = &[
    Case {
        file: "truncated-global-header.pcap",
        exit: 3,
        expect: &[
            "cannot open",
            "truncated dump file",
            "the file is 10 bytes, shorter than a capture file header",
        ],
        pkts: 0,
    },
    Case {
        file: "record-header-cut.pcap",
        exit: 3,
        expect: &[
            "truncated dump file",
            "16 header bytes",
            "record 11, at byte offset 1124",
        ],
        pkts: 10,
    },
    Case {
        file: "record-cut-mid-packet.pcap",
        exit: 3,
        expect: &[
            "truncated dump file",
            "54 captured bytes",
            "record 11, at byte offset 1124",
        ],
        pkts: 10,
    },
    Case {
        file: "bad-magic.pcap",
        exit: 3,
        expect: &[
            "cannot open",
            "not a pcap or pcapng capture (bad magic number)",
        ],
        pkts: 0,
    },
    Case {
        file: "caplen-over-snaplen.pcap",
        exit: 0,
        // libpcap cuts the oversized records to the snaplen: read, flagged as truncated
        expect: &["13 packets", "capture_truncated=6"],
        pkts: 13,
    },
    Case {
        file: "caplen-over-snaplen-then-cut.pcap",
        exit: 3,
        // the offset counts the oversized records' full size on disk
        expect: &["truncated dump file", "record 13, at byte offset 1432"],
        pkts: 12,
    },
    Case {
        file: "absurd-caplen.pcap",
        exit: 3,
        expect: &[
            "invalid packet capture length 2147483647",
            "record 11, at byte offset 1124",
        ],
        pkts: 10,
    },
    Case {
        file: "zero-length-records.pcap",
        exit: 0,
        expect: &["12 packets", "link_truncated=2"],
        pkts: 10,
    },
    Case {
        file: "timestamps-backwards.pcap",
        exit: 0,
        expect: &["19 packets"],
        pkts: 19,
    },
    Case {
        file: "not-a-capture.txt",
        exit: 3,
        expect: &[
            "cannot open",
            "not a pcap or pcapng capture (bad magic number)",
        ],
        pkts: 0,
    },
    Case {
        file: "empty.pcap",
        exit: 3,
        expect: &["cannot open", "empty file (0 bytes)"],
        pkts: 0,
    },
    Case {
        file: "pcapng-corrupt-block-length.pcapng",
        exit: 3,
        expect: &[
            "pcapng block size 4294967280",
            "record 11, at byte offset 1328",
        ],
        pkts: 10,
    },
    Case {
        file: "pcapng-block-cut.pcapng",
        exit: 3,
        expect: &[
            "truncated pcapng dump file",
            "record 11, at byte offset 1328",
        ],
        pkts: 10,
    },
];

fn bad_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/bad")
}

/// Runs `deguchi replay FILE --flows OUT`: (exit code, stderr, flow records).
fn replay(file: &Path) -> (Option<i32>, String, Vec<Flow>) {
    let d = tempfile::tempdir().unwrap();
    let flows = d.path().join("flows.json");
    let o = Command::new(env!("CARGO_BIN_EXE_deguchi"))
        .arg("replay")
        .arg(file)
        .arg("--flows")
        .arg(&flows)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.code(), err, read_flows(&flows))
}

#[test]
fn every_bad_capture_is_documented_and_tested() {
    let readme = std::fs::read_to_string(bad_dir().join("README.md")).unwrap();
    let mut on_disk: Vec<String> = std::fs::read_dir(bad_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "README.md")
        .collect();
    on_disk.sort();
    let mut tested: Vec<String> = CASES.iter().map(|c| c.file.to_owned()).collect();
    tested.sort();
    assert_eq!(on_disk, tested, "pcaps/bad and CASES differ");
    for c in CASES {
        assert!(readme.contains(c.file), "{} missing from README.md", c.file);
    }
}

#[test]
fn bad_captures() {
    for c in CASES {
        let p = bad_dir().join(c.file);
        let (code, err, flows) = replay(&p);
        assert_eq!(code, Some(c.exit), "{}: exit code; stderr:\n{err}", c.file);
        assert!(!err.contains("panicked"), "{}: panic:\n{err}", c.file);
        if c.exit != 0 {
            let line = err
                .lines()
                .find(|l| l.starts_with("deguchi: error: "))
                .unwrap_or_else(|| panic!("{}: no error line:\n{err}", c.file));
            assert!(
                line.contains(c.file),
                "{}: error names the file: {line}",
                c.file
            );
        } else {
            assert!(
                !err.contains("error"),
                "{}: no error expected:\n{err}",
                c.file
            );
        }
        for e in c.expect {
            assert!(err.contains(e), "{}: expected {e:?} in:\n{err}", c.file);
        }
        assert_eq!(
            flow_pkts(&flows),
            c.pkts,
            "{}: packets in the flows written before the fault",
            c.file
        );
        if c.pkts >= 10 {
            // the complete session before every fault is one closed flow
            let s = flows
                .iter()
                .find(|f| f.src_port == Some(40000))
                .unwrap_or_else(|| panic!("{}: session flow missing: {flows:?}", c.file));
            assert_eq!(s.flow.pkts_toserver, 8, "{}", c.file);
            assert_eq!(s.flow.pkts_toclient, 2, "{}", c.file);
            assert_eq!(s.flow.state, "closed", "{}", c.file);
        }
    }
}

#[test]
fn timestamps_going_backwards_are_processed_in_file_order() {
    let (code, _, flows) = replay(&bad_dir().join("timestamps-backwards.pcap"));
    assert_eq!(code, Some(0));
    let by_port = |p: u16| {
        flows
            .iter()
            .find(|f| f.src_port == Some(p))
            .unwrap_or_else(|| panic!("flow from port {p}: {flows:?}"))
    };
    // each flow keeps its own packet times, even the one a minute in the past
    let late = by_port(40002);
    assert_eq!(late.flow.start, "2026-03-02T00:01:00.000000+0000");
    assert_eq!(late.flow.pkts_toserver, 6);
    let early = by_port(40000);
    assert_eq!(early.flow.start, "2026-03-02T00:00:00.000000+0000");
    assert_eq!(early.flow.end, "2026-03-02T00:00:00.009000+0000");
    assert_eq!(early.flow.state, "closed");
    assert_eq!(early.flow.pkts_toserver + early.flow.pkts_toclient, 10);
    assert_eq!(by_port(40001).flow.pkts_toserver, 1);
}

/// The intentionally broken captures of the shared real-capture folder
/// (README.md there): skipped when the folder is absent (CI).
#[test]
fn broken_real_captures() {
    let dir = &Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/pcaps/real");
    if !dir.join("SOURCES.tsv").exists() {
        eprintln!("skipped: {} not present", dir.display());
        return;
    }
    let cases: &[(&str, i32, &[&str])] = &[
        (
            "ndpi__fuzz-2021-10-13.pcap",
            3,
            &["truncated dump file", "record 2, at byte offset 237"],
        ),
        (
            "suricata-verify__http-mime-truncated_input.pcap",
            3,
            &["truncated dump file", "record 2697, at byte offset 2715459"],
        ),
        (
            "tcpdump__dsa.pcap",
            3,
            &["unsupported link type 284", "supported:"],
        ),
        ("zeek__empty.pcap", 0, &["0 packets"]),
        ("tcpdump__empty.pcapng", 0, &["0 packets"]),
        ("zeek__trunc_ip4-trunc.pcap", 0, &["1 packets"]),
        ("tcpdump__truncated-aack.pcap", 0, &["1 packets"]),
    ];
    for (file, exit, expect) in cases {
        let p = dir.join(file);
        if !p.exists() {
            eprintln!("skipped: {} not present", p.display());
            continue;
        }
        let (code, err, flows) = replay(&p);
        assert_eq!(code, Some(*exit), "{file}: {err}");
        assert!(!err.contains("panicked"), "{file}: {err}");
        if *exit != 0 {
            assert!(
                err.lines()
                    .any(|l| l.starts_with("deguchi: error: ") && l.contains(file)),
                "{file}: error line naming the file: {err}"
            );
        }
        for e in *expect {
            assert!(err.contains(e), "{file}: expected {e:?} in {err}");
        }
        if *file == "suricata-verify__http-mime-truncated_input.pcap" {
            // all 2696 complete records before the cut are in the flows
            assert_eq!(flow_pkts(&flows), 2696, "{file}");
        }
    }
}
