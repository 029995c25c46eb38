//! `deguchi replay ... | head -1`: a reader that closes stdout ends the run
//! quietly with exit 0 (as `grep | head` does), not with a write error.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn sample() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/sample.pcap"))
}

/// stdout's reader is gone before the first line: every write is EPIPE.
#[test]
fn closed_stdout_ends_the_run_quietly_with_exit_0() {
    for extra in [&[][..], &["--flows", "-"][..]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_deguchi"))
            .arg("replay")
            .arg(sample())
            .args(extra)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{extra:?}: {err}");
        assert!(
            !err.contains("error") && !err.contains("Broken pipe") && !err.contains("panick"),
            "{extra:?}: {err}"
        );
    }
}

/// The shell pipeline itself, as a user types it.
#[test]
fn replay_into_head_exits_0_without_a_message() {
    let bin = env!("CARGO_BIN_EXE_deguchi");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{bin}' replay '{}' --flows - | head -1",
            sample().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("error") && !err.contains("Broken pipe"),
        "{err}"
    );
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert!(v["event_type"].is_string());
}
