//! The message bus (NATS JetStream): many sensors, host-partitioned
//! analysis workers.
//!
//! - [`sensor`]: `replay|live --publish URL` captures, decodes and tracks
//!   flows as usual, then publishes the flow events, batched per analysis
//!   partition, instead of analysing them.
//! - [`worker`]: `deguchi analyze --bus URL` takes a share of the
//!   partitions (leases in a KV bucket, rendezvous hashing), merges each
//!   partition's events from every sensor in packet-time order by the
//!   sensors' watermarks, runs the detectors, and writes alerts to its
//!   output and to the alert stream (de-duplicated by alert id).
//!
//! Subjects (prefix `bus.prefix`, default `deguchi`):
//! `deguchi.ev.<partition>` flow-event batches (stream `bus.events_stream`),
//! `deguchi.alerts` alerts (stream `bus.alerts_stream`),
//! `deguchi.sight` first sightings of (host, destination) for the site-wide
//! baseline (stream `bus.sightings_stream`). KV bucket `<prefix>_workers`
//! holds worker leases; object store `<prefix>_state` the partition snapshots.
//!
//! The wire format of a batch is [`wire::Batch`] in postcard, versioned.

pub mod sensor;
pub mod wire;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

/// `[bus]` settings.
#[derive(Clone, Debug)]
pub struct BusConfig {
    /// Server URLs (`nats://HOST:PORT`); empty: no bus.
    pub servers: Vec<String>,
    /// Sensor mode (`--publish`): flow events go to the bus, not to local
    /// detectors.
    pub publish: bool,
    /// Subject prefix, also the prefix of the KV and object store buckets.
    pub prefix: String,
    pub events_stream: String,
    pub alerts_stream: String,
    pub sightings_stream: String,
    /// Stream replicas (1 on a single server, 3 on a three-node cluster).
    pub replicas: usize,
    /// How long streams keep messages.
    pub max_age_s: u64,
    /// JetStream de-duplication window (batches and alerts).
    pub dedup_window_s: u64,
    /// A worker's lease lapses after this long without renewal.
    pub lease_s: u64,
    /// Partition snapshots every this many seconds of wall time.
    pub snapshot_s: u64,
    /// Events per published batch at most.
    pub batch_events: usize,
    /// This sensor's name (`--sensor`; default the host name).
    pub sensor: Option<String>,
    /// NATS credentials file (`.creds`).
    pub credentials: Option<PathBuf>,
    /// TLS: CA certificate file; client certificate and key.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_required: bool,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            publish: false,
            prefix: "deguchi".into(),
            events_stream: "DEGUCHI_EVENTS".into(),
            alerts_stream: "DEGUCHI_ALERTS".into(),
            sightings_stream: "DEGUCHI_SIGHTINGS".into(),
            replicas: 1,
            max_age_s: 7 * 86_400,
            dedup_window_s: 3_600,
            lease_s: 6,
            snapshot_s: 10,
            batch_events: 2_048,
            sensor: None,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            tls_required: false,
        }
    }
}

impl BusConfig {
    /// The sensor name: `bus.sensor`, else the host name.
    #[must_use]
    pub fn sensor_name(&self) -> String {
        self.sensor.clone().unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "sensor".into())
        })
    }

    fn events_subject(&self, partition: u32) -> String {
        format!("{}.ev.{partition}", self.prefix)
    }
    fn alerts_subject(&self) -> String {
        format!("{}.alerts", self.prefix)
    }
    fn sightings_subject(&self) -> String {
        format!("{}.sight", self.prefix)
    }
}

/// How long one attempt at creating a stream or bucket may take.
pub const ATTEMPT: Duration = Duration::from_secs(2);

/// A bus failure, with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("bus: {what}: {err}")]
pub struct BusError {
    pub what: String,
    pub err: String,
}

fn err(what: impl Into<String>) -> impl FnOnce(String) -> BusError {
    let what = what.into();
    move |err| BusError { what, err }
}

/// Makes sure stream `conf` exists (one attempt: callers retry). Most
/// starts find it there, with no create request racing another process's;
/// a create that races one can hang until the request times out (seen with
/// nats-server 2.9), so it gets [`ATTEMPT`] and the caller looks again.
async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    conf: async_nats::jetstream::stream::Config,
) -> Result<(), String> {
    if js.get_stream(&conf.name).await.is_ok() {
        return Ok(());
    }
    tokio::time::timeout(ATTEMPT, js.get_or_create_stream(conf))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The client options of `cfg`: name, reconnection for ever, credentials
/// and TLS.
async fn connect_options(
    cfg: &BusConfig,
    name: &str,
) -> Result<async_nats::ConnectOptions, BusError> {
    let mut opts = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(None);
    if let Some(c) = &cfg.credentials {
        opts = opts
            .credentials_file(c)
            .await
            .map_err(|e| err(format!("credentials {}", c.display()))(e.to_string()))?;
    }
    if let Some(ca) = &cfg.tls_ca {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(c), Some(k)) = (&cfg.tls_cert, &cfg.tls_key) {
        opts = opts.add_client_certificate(c.clone(), k.clone());
    }
    if cfg.tls_required {
        opts = opts.require_tls(true);
    }
    Ok(opts)
}

/// A connection to the bus: a small Tokio runtime of its own (one worker
/// thread, so the client's pings and acks go on while the caller's thread
/// analyses) and the JetStream context. The sensor and the worker call it
/// from ordinary threads.
pub struct Bus {
    pub rt: tokio::runtime::Runtime,
    pub client: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub cfg: BusConfig,
    /// The streams are known to exist.
    pub streams_ready: bool,
}

impl Bus {
    /// Connects (retrying until `patience` is over) and makes sure the
    /// streams and buckets exist.
    ///
    /// # Errors
    /// No server reachable in time, or a stream could not be created.
    pub fn connect(cfg: &BusConfig, name: &str, patience: Duration) -> Result<Self, BusError> {
        let mut bus = Self::open(cfg, name, patience)?;
        bus.ensure_streams(patience)?;
        bus.streams_ready = true;
        Ok(bus)
    }

    /// Connects in the background (a live sensor: capture must not wait):
    /// the streams are made if the bus answers within a moment, else the
    /// first publishes fail and are shed until it does.
    ///
    /// # Errors
    /// A server address that does not parse, or no runtime.
    pub fn connect_lazy(cfg: &BusConfig, name: &str) -> Result<Self, BusError> {
        let mut bus = Self::open(cfg, name, Duration::from_secs(3))?;
        match bus.ensure_streams(Duration::from_secs(3)) {
            Ok(()) => bus.streams_ready = true,
            Err(e) => tracing::warn!(
                "{e}; capturing anyway, event batches are shed until the bus answers"
            ),
        }
        Ok(bus)
    }

    /// The runtime, the client (connecting in the background: see
    /// [`connect_options`]) and the JetStream context; no stream yet.
    fn open(cfg: &BusConfig, name: &str, patience: Duration) -> Result<Self, BusError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bus")
            .enable_all()
            .build()
            .map_err(|e| err("starting the bus runtime")(e.to_string()))?;
        let addrs: Vec<async_nats::ServerAddr> = cfg
            .servers
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: std::io::Error| err("server address")(e.to_string()))?;
        let (client, js) = rt.block_on(async {
            let opts = connect_options(cfg, name).await?;
            let client = tokio::time::timeout(patience, opts.connect(addrs))
                .await
                .map_err(|_| err("connecting")(format!("no server answered in {patience:?}")))?
                .map_err(|e| err("connecting")(e.to_string()))?;
            // (built inside the runtime: the context starts a task of its own)
            let js = async_nats::jetstream::ContextBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(client.clone());
            Ok::<_, BusError>((client, js))
        })?;
        Ok(Self {
            rt,
            client,
            js,
            cfg: cfg.clone(),
            streams_ready: false,
        })
    }

    /// Creates the streams if they do not exist (retrying while a cluster
    /// elects its meta leader).
    pub fn ensure_streams(&self, patience: Duration) -> Result<(), BusError> {
        use async_nats::jetstream::stream;
        let c = &self.cfg;
        let specs = [
            (c.events_stream.clone(), format!("{}.ev.*", c.prefix)),
            (c.alerts_stream.clone(), c.alerts_subject()),
            (c.sightings_stream.clone(), c.sightings_subject()),
        ];
        let until = std::time::Instant::now() + patience;
        for (name, subject) in specs {
            let conf = stream::Config {
                name: name.clone(),
                subjects: vec![subject],
                max_age: Duration::from_secs(c.max_age_s),
                duplicate_window: Duration::from_secs(c.dedup_window_s),
                num_replicas: c.replicas,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            self.retry(until, &format!("creating stream {name}"), || {
                let js = self.js.clone();
                let conf = conf.clone();
                async move { ensure_stream(&js, conf).await }
            })?;
        }
        Ok(())
    }

    /// Runs `f` until it succeeds or `until` passes (then its last error).
    ///
    /// # Errors
    /// `f`'s last error once time is up.
    pub fn retry<F, Fut, T>(
        &self,
        until: std::time::Instant,
        what: &str,
        mut f: F,
    ) -> Result<T, BusError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let mut wait = Duration::from_millis(100);
        loop {
            match self.rt.block_on(f()) {
                Ok(v) => return Ok(v),
                Err(e) if std::time::Instant::now() >= until => {
                    return Err(BusError {
                        what: what.to_owned(),
                        err: e,
                    });
                }
                Err(e) => {
                    tracing::debug!("bus: {what}: {e}; retrying");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

impl BusConfig {
    /// Reads the `[bus]` section.
    pub fn parse(c: &mut crate::settings::Check<'_>, root: &toml::Table) -> Self {
        let d = Self::default();
        let s = c.section(
            root,
            "bus",
            &[
                "servers",
                "prefix",
                "events_stream",
                "alerts_stream",
                "sightings_stream",
                "replicas",
                "max_age_s",
                "dedup_window_s",
                "lease_s",
                "snapshot_s",
                "batch_events",
                "sensor",
                "credentials",
                "tls_ca",
                "tls_cert",
                "tls_key",
                "tls_required",
            ],
        );
        let name = |c: &mut crate::settings::Check<'_>, key: &str, default: &str| {
            let v = c
                .string(s, "bus", key)
                .unwrap_or_else(|| default.to_owned());
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                c.errors.push(format!(
                    "bus.{key}: {v:?}: letters, digits, '_' and '-' only"
                ));
            }
            v
        };
        let path = |c: &mut crate::settings::Check<'_>, key: &str| {
            c.string(s, "bus", key)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let servers = c.strings(s, "bus", "servers").unwrap_or_default();
        for u in &servers {
            if u.parse::<async_nats::ServerAddr>().is_err() {
                c.errors.push(format!(
                    "bus.servers: {u:?} is not a server URL (nats://HOST:PORT)"
                ));
            }
        }
        Self {
            servers,
            publish: false,
            prefix: name(c, "prefix", &d.prefix),
            events_stream: name(c, "events_stream", &d.events_stream),
            alerts_stream: name(c, "alerts_stream", &d.alerts_stream),
            sightings_stream: name(c, "sightings_stream", &d.sightings_stream),
            replicas: usize::try_from(c.int(s, "bus", "replicas", d.replicas as u64, 1, 5))
                .unwrap_or(d.replicas),
            max_age_s: c.int(s, "bus", "max_age_s", d.max_age_s, 60, 365 * 86_400),
            dedup_window_s: c.int(s, "bus", "dedup_window_s", d.dedup_window_s, 1, 7 * 86_400),
            lease_s: c.int(s, "bus", "lease_s", d.lease_s, 2, 3_600),
            snapshot_s: c.int(s, "bus", "snapshot_s", d.snapshot_s, 1, 86_400),
            batch_events: usize::try_from(c.int(
                s,
                "bus",
                "batch_events",
                d.batch_events as u64,
                1,
                1 << 20,
            ))
            .unwrap_or(d.batch_events),
            sensor: c.string(s, "bus", "sensor").filter(|v| !v.is_empty()),
            credentials: path(c, "credentials"),
            tls_ca: path(c, "tls_ca"),
            tls_cert: path(c, "tls_cert"),
            tls_key: path(c, "tls_key"),
            tls_required: c.boolean(s, "bus", "tls_required", d.tls_required),
        }
    }

    /// Parses `--publish`/`--bus` URLs (comma-separated, repeatable) into
    /// `servers`.
    ///
    /// # Errors
    /// A URL that is not a server address.
    pub fn set_servers(&mut self, urls: &[String]) -> Result<(), String> {
        let mut v = Vec::new();
        for u in urls.iter().flat_map(|u| u.split(',')).map(str::trim) {
            if u.is_empty() {
                continue;
            }
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("{u:?}: {e}"))?;
            v.push(u.to_owned());
        }
        if v.is_empty() {
            return Err("no server given".into());
        }
        self.servers = v;
        Ok(())
    }
}
