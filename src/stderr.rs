//! Diagnostics that never take the run down: stderr may be closed (`2>&-`),
//! full (`2>/dev/full`) or a pipe whose reader left. `eprintln!` panics on
//! such a write failure (exit 101); these writers drop the text instead.

use std::io::Write;

/// Writes `s` to stderr, ignoring failures.
pub fn say(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Writes `s` and a newline to stderr, ignoring failures.
pub fn say_line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.write_all(b"\n");
}

/// A stderr writer whose writes always succeed (the text is lost when
/// stderr cannot take it): the log writer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lossy;

impl Write for Lossy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Opens `/dev/null` in place of any of fds 0, 1, 2 the caller left closed,
/// so no file deguchi opens later (an output, the state) becomes fd 1 or 2
/// and receives alerts or log lines meant for stdout or stderr.
pub fn fill_closed_stdio() {
    use std::os::fd::IntoRawFd;
    for fd in 0..3 {
        if std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok()
            || !std::path::Path::new("/proc/self/fd").exists()
        {
            continue;
        }
        // open() takes the lowest free descriptor: this one, as the lower
        // ones are open by now
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            // kept open for the life of the process
            Ok(f) => {
                let _ = f.into_raw_fd();
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossy_always_reports_success() {
        let mut w = Lossy;
        assert_eq!(w.write(b"").unwrap(), 0);
        assert!(w.flush().is_ok());
    }
}
