//! Writer stage: JSON lines for alerts (stdout or a file) and flow records.
//!
//! One object per line, then `\n`; strings from the wire (SNI, Host, DNS
//! names) are JSON-escaped by serde_json, so control characters cannot forge a
//! second line. Output is flushed whenever the input channel runs dry, so a
//! live alert never waits in a buffer. A write error (full disk, closed
//! stdout) is returned as an error naming the output; it never panics.

use crate::alert::Alert;
use crate::flow::record::FlowRecord;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What the writer receives.
#[derive(Debug)]
pub enum Out {
    Flow(Box<FlowRecord>),
    Alert(Box<Alert>),
    /// A detector-state snapshot to write atomically (see `state`).
    State(Vec<u8>),
}

/// A named JSON-lines output.
pub struct JsonLines {
    name: String,
    w: BufWriter<Box<dyn Write + Send>>,
    pub lines: u64,
    /// The file behind it (`None`: stdout), for reopening on SIGHUP.
    path: Option<PathBuf>,
}

/// An output failure, naming the output.
/// (The I/O error is part of the message, not a separate `source`, so an
/// error chain prints it once.)
#[derive(Debug, thiserror::Error)]
#[error("{name}: {what}: {err}")]
pub struct SinkError {
    pub name: String,
    pub what: &'static str,
    pub err: io::Error,
}

impl JsonLines {
    /// Standard output.
    #[must_use]
    pub fn stdout() -> Self {
        Self {
            name: "stdout".to_owned(),
            w: BufWriter::with_capacity(1 << 16, Box::new(io::stdout())),
            lines: 0,
            path: None,
        }
    }

    /// Creates (truncates) a file.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        let f = File::create(path).map_err(|err| SinkError {
            name: path.display().to_string(),
            what: "cannot create",
            err,
        })?;
        Ok(Self {
            name: path.display().to_string(),
            w: BufWriter::with_capacity(1 << 16, Box::new(f)),
            lines: 0,
            path: Some(path.to_owned()),
        })
    }

    /// Flushes, then opens the path again (appending; created if logrotate
    /// moved it away). Stdout stays as it is.
    ///
    /// # Errors
    /// The flush or the open fails; the old handle is kept then.
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        let Some(p) = self.path.clone() else {
            return Ok(());
        };
        self.w.flush().map_err(|e| self.err(e))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| self.err(e))?;
        self.w = BufWriter::with_capacity(1 << 16, Box::new(f));
        Ok(())
    }

    fn err(&self, err: io::Error) -> SinkError {
        SinkError {
            name: self.name.clone(),
            what: "write failed",
            err,
        }
    }

    /// Writes one flow record line.
    ///
    /// # Errors
    /// The I/O error of the output.
    pub fn flow(&mut self, r: &FlowRecord) -> Result<(), SinkError> {
        serde_json::to_writer(&mut self.w, &r.to_eve())
            .map_err(io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| self.err(e))?;
        self.lines += 1;
        Ok(())
    }

    /// Writes one alert line.
    ///
    /// # Errors
    /// The I/O error of the output.
    pub fn alert(&mut self, a: &Alert) -> Result<(), SinkError> {
        a.write_json(&mut self.w)
            .map_err(io::Error::from)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| self.err(e))?;
        self.lines += 1;
        Ok(())
    }

    /// Flushes buffered lines to the OS.
    ///
    /// # Errors
    /// The I/O error of the output.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.w.flush().map_err(|e| self.err(e))
    }
}

/// The writer's outputs.
pub struct Sinks {
    pub alerts: JsonLines,
    pub flows: Option<JsonLines>,
    pub state: Option<PathBuf>,
    /// Snapshots that could not be written (logged each time).
    pub state_errors: u64,
    /// Flow records go to the alert stream (both on stdout: one writer, so
    /// lines never interleave).
    flows_with_alerts: bool,
}

impl Sinks {
    /// Opens the configured outputs.
    ///
    /// # Errors
    /// An output file cannot be created.
    pub fn open(alerts: Option<&PathBuf>, flows: Option<&PathBuf>) -> Result<Self, SinkError> {
        let alerts_to_stdout = alerts.is_none();
        let alerts = match alerts {
            Some(p) => JsonLines::create(p)?,
            None => JsonLines::stdout(),
        };
        let mut flows_with_alerts = false;
        let flows = match flows {
            Some(p) if p.as_os_str() == "-" && alerts_to_stdout => {
                flows_with_alerts = true;
                None
            }
            Some(p) if p.as_os_str() == "-" => Some(JsonLines::stdout()),
            Some(p) => Some(JsonLines::create(p)?),
            None => None,
        };
        Ok(Self {
            alerts,
            flows,
            state: None,
            state_errors: 0,
            flows_with_alerts,
        })
    }

    /// Writes one item.
    ///
    /// # Errors
    /// The I/O error of the output it went to.
    pub fn write(&mut self, o: &Out) -> Result<(), SinkError> {
        match o {
            Out::Flow(r) => match self.flows.as_mut() {
                Some(f) => f.flow(r),
                None if self.flows_with_alerts => self.alerts.flow(r),
                None => Ok(()),
            },
            Out::Alert(a) => self.alerts.alert(a),
            Out::State(bytes) => {
                if let Some(p) = &self.state {
                    match crate::state::write_atomic(p, bytes) {
                        Ok(()) => tracing::debug!(
                            "state saved to {} ({} bytes)",
                            p.display(),
                            bytes.len()
                        ),
                        Err(e) => {
                            // the previous snapshot stays in place; keep running
                            self.state_errors += 1;
                            tracing::error!("cannot save state: {e}");
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// Reopens the file outputs (SIGHUP, logrotate's convention).
    ///
    /// # Errors
    /// The first output that cannot be reopened.
    pub fn reopen(&mut self) -> Result<(), SinkError> {
        self.alerts.reopen()?;
        if let Some(f) = self.flows.as_mut() {
            f.reopen()?;
        }
        Ok(())
    }

    /// Whether flow records are written anywhere.
    #[must_use]
    pub fn writes_flows(&self) -> bool {
        self.flows.is_some() || self.flows_with_alerts
    }

    /// Flushes every output.
    ///
    /// # Errors
    /// The first output that fails.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.alerts.flush()?;
        if let Some(f) = self.flows.as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}
