//! Configuration in layers: built-in defaults, then an optional TOML file (`--config` or
//! `MOS_CONFIG`), then environment variables, then command-line flags. Unknown keys in the
//! file are an error and unknown `MOS_*` variables a warning, so a typo never silently falls
//! back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

/// One layer of settings: the file, or the flags and environment (clap merges those two). The
/// one list of settings: each is a global flag with its environment variable, and a key of the
/// file.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Address to listen on (a flag of `serve` only; see there).
    #[arg(skip)]
    pub listen: Option<SocketAddr>,
    /// Data directory of the embedded database.
    #[arg(long, global = true, env = "MOS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL server to use instead of the embedded one; a role that may create roles and
    /// schemas (it migrates and checks).
    #[arg(long, global = true, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Login as app_user for serving requests, with DATABASE_URL (otherwise the server logs in
    /// with DATABASE_URL and switches to app_user).
    #[arg(long, global = true, env = "MOS_APP_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub app_database_url: Option<String>,
    /// Directory of initdb, pg_ctl and postgres for the embedded database.
    #[arg(long, global = true, env = "PG_BIN", value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// Connections in the application pool.
    #[arg(long, global = true, env = "MOS_POOL_SIZE", value_name = "N")]
    pub pool_size: Option<u32>,
    /// Base URL of the service, for links in emails (default: http:// and the listen address).
    #[arg(long, global = true, env = "MOS_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// SMTP server for outgoing mail, e.g. smtps://user:pass@mail.example.com; without it, mail
    /// goes to <data dir>/outbox as .eml files.
    #[arg(long, global = true, env = "SMTP_URL", value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of outgoing mail, e.g. "Marketing OS <no-reply@example.com>".
    #[arg(long, global = true, env = "MOS_MAIL_FROM", value_name = "MAILBOX")]
    pub mail_from: Option<String>,
    /// Base64 of the 32-byte key that seals TOTP secrets (required with DATABASE_URL; generated
    /// into the data directory otherwise).
    #[arg(long, global = true, env = "MOS_TOTP_KEY", value_name = "BASE64", hide_env_values = true)]
    pub totp_key: Option<String>,
    /// Seconds of inactivity after which a session ends (noted at most once a minute).
    #[arg(long, global = true, env = "MOS_SESSION_IDLE_SECS", value_name = "SECS")]
    pub session_idle_secs: Option<u32>,
    /// Seconds after sign-in after which a session ends however active.
    #[arg(long, global = true, env = "MOS_SESSION_ABSOLUTE_SECS", value_name = "SECS")]
    pub session_absolute_secs: Option<u32>,
    /// Password hashes computed at once (each takes 19 MiB and a core).
    #[arg(long, global = true, env = "MOS_HASH_CONCURRENCY", value_name = "N")]
    pub hash_concurrency: Option<usize>,
    /// Reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client.
    #[arg(long, global = true, env = "MOS_TRUSTED_PROXIES", value_name = "CIDRS", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// Open HTTP connections at most (default 1024); at the cap a new one replaces the oldest
    /// that serves no request, and is closed at once only when every one is serving.
    #[arg(long, global = true, env = "MOS_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Open HTTP connections from one client address at most; more are closed at once
    /// (default 128). A trusted proxy's connections are not counted.
    #[arg(long, global = true, env = "MOS_MAX_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub max_connections_per_client: Option<usize>,
    /// Seconds a client has to send a request's headers, and an idle keep-alive connection to
    /// start its next request (default 10).
    #[arg(long, global = true, env = "MOS_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request has until its answer starts; then 503 and nothing of it is kept
    /// (default 30). A CSV upload has them between two chunks of its body instead.
    #[arg(long, global = true, env = "MOS_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Seconds between the database checks that `serve` runs for /readyz (default 60).
    #[arg(long, global = true, env = "MOS_CHECK_INTERVAL_SECS", value_name = "SECS")]
    pub check_interval_secs: Option<u64>,
    /// Directory for the backups `serve` takes on a schedule; unset, it takes none.
    #[arg(long, global = true, env = "MOS_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Seconds between scheduled backups (default 86400, a day).
    #[arg(long, global = true, env = "MOS_BACKUP_INTERVAL_SECS", value_name = "SECS")]
    pub backup_interval_secs: Option<u64>,
    /// Scheduled backups to keep; older ones are removed after each new one (default 7).
    #[arg(long, global = true, env = "MOS_BACKUP_KEEP", value_name = "N")]
    pub backup_keep: Option<usize>,
    /// Background jobs (imports) that `serve` runs at once (default 2).
    #[arg(long, global = true, env = "MOS_JOB_WORKERS", value_name = "N")]
    pub job_workers: Option<usize>,
    /// Seconds a job's claim, and a campaign message's claim, last without a heartbeat: how
    /// long after a crash another server takes the work over (default 60, from 6 to 86400).
    #[arg(long, global = true, env = "MOS_JOB_LEASE_SECS", value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(JOB_LEASE_SECS_MIN..=JOB_LEASE_SECS_MAX))]
    #[serde(default, deserialize_with = "job_lease_secs")]
    pub job_lease_secs: Option<u64>,
    /// Campaign messages claimed, rendered, signed, handed over and recorded together (default
    /// 500, from 1 to 10000): larger batches cost fewer claims; what a crash can send twice is
    /// at most one batch's messages in flight.
    #[arg(long, global = true, env = "MOS_SEND_BATCH", value_name = "N",
          value_parser = clap::value_parser!(u64).range(SEND_BATCH_MIN..=SEND_BATCH_MAX))]
    #[serde(default, deserialize_with = "send_batch")]
    pub send_batch: Option<u64>,
    /// Bytes a CSV file uploaded for a contact import may have at most (default 104857600,
    /// 100 MiB); a larger upload is refused with 413.
    #[arg(long, global = true, env = "MOS_IMPORT_MAX_BYTES", value_name = "BYTES")]
    pub import_max_bytes: Option<u64>,
    /// The Amazon SNS topics (ARNs, comma-separated) whose SES notifications
    /// `POST /v1/feedback/ses` takes; a message of any other topic is refused. None by default.
    #[arg(long, global = true, env = "MOS_FEEDBACK_SES_TOPICS", value_name = "ARNS", value_delimiter = ',')]
    pub feedback_ses_topics: Option<Vec<String>>,
    /// A directory of SNS signing certificates (PEM files, named as the last part of their
    /// SigningCertURL), used instead of fetching them from SNS: for a server without outbound
    /// HTTPS. A certificate not found there is fetched.
    #[arg(long, global = true, env = "MOS_FEEDBACK_SNS_CERTIFICATES", value_name = "DIR")]
    pub feedback_sns_certificates: Option<PathBuf>,
    /// Let webhook endpoints be, or resolve to, loopback, private or link-local addresses
    /// (default false): only where every organization is trusted not to aim the server at its
    /// own network, as on a test machine.
    #[arg(long, global = true, env = "MOS_WEBHOOK_ALLOW_PRIVATE", value_name = "BOOL")]
    pub webhook_allow_private: Option<bool>,
    /// Let webhook endpoints on loopback use plain http (default false); needs
    /// `MOS_WEBHOOK_ALLOW_PRIVATE`. Every other endpoint must be https.
    #[arg(long, global = true, env = "MOS_WEBHOOK_ALLOW_HTTP_LOOPBACK", value_name = "BOOL")]
    pub webhook_allow_http_loopback: Option<bool>,
    /// Days a webhook event delivered or given up stays in the outbox and on its endpoint's
    /// page (default 30, 1 to 3650).
    #[arg(long, global = true, env = "MOS_WEBHOOK_KEEP_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub webhook_keep_days: Option<u32>,
}

/// A job lease shorter than this leaves no room for its three heartbeats and a slow one.
const JOB_LEASE_SECS_MIN: u64 = 6;
/// A lease longer than a day would hold a dead server's work for longer than anyone waits.
const JOB_LEASE_SECS_MAX: u64 = 86_400;

const SEND_BATCH_MIN: u64 = 1;
/// A batch is held in memory while it is rendered and handed over.
const SEND_BATCH_MAX: u64 = 10_000;

/// A number setting `name` from the file, refused outside `min..=max` as its flag refuses it;
/// `unit` follows the bounds in the message.
fn within<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    name: &str,
    (min, max): (u64, u64),
    unit: &str,
) -> Result<Option<u64>, D::Error> {
    let value = Option::<u64>::deserialize(deserializer)?;
    match value {
        Some(v) if !(min..=max).contains(&v) => {
            Err(serde::de::Error::custom(format!("{name} is {v}: it must be from {min} to {max}{unit}")))
        }
        _ => Ok(value),
    }
}

fn job_lease_secs<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    within(deserializer, "job_lease_secs", (JOB_LEASE_SECS_MIN, JOB_LEASE_SECS_MAX), " seconds")
}

fn send_batch<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    within(deserializer, "send_batch", (SEND_BATCH_MIN, SEND_BATCH_MAX), "")
}

/// `over`: each setting of the upper layer, or the lower layer's where the upper has none.
macro_rules! layered {
    ($($field:ident),* $(,)?) => {
        impl Layer {
            /// This layer's settings, and `lower`'s where this one has none.
            pub fn over(self, lower: Layer) -> Layer {
                Layer { $($field: self.$field.or(lower.$field)),* }
            }
        }
    };
}

layered!(
    listen,
    data_dir,
    database_url,
    app_database_url,
    pg_bin,
    pool_size,
    public_url,
    smtp_url,
    mail_from,
    totp_key,
    session_idle_secs,
    session_absolute_secs,
    hash_concurrency,
    trusted_proxies,
    max_connections,
    max_connections_per_client,
    header_timeout_secs,
    request_timeout_secs,
    check_interval_secs,
    backup_dir,
    backup_interval_secs,
    backup_keep,
    job_workers,
    job_lease_secs,
    send_batch,
    import_max_bytes,
    feedback_ses_topics,
    feedback_sns_certificates,
    webhook_allow_private,
    webhook_allow_http_loopback,
    webhook_keep_days,
);

/// The environment variables `mos` reads besides those of its flags; any other `MOS_*` is
/// reported.
const OTHER_ENV: &[&str] = &["MOS_LOG", "MOS_AUDIT_SIGNING_KEY"];

/// The `MOS_*` variables set that neither a flag of `command` nor anything else reads.
pub fn unknown_env_vars(command: &clap::Command) -> Vec<String> {
    let mut known: Vec<String> = OTHER_ENV.iter().map(|s| s.to_string()).collect();
    let mut commands = vec![command];
    while let Some(command) = commands.pop() {
        known.extend(command.get_arguments().filter_map(|a| a.get_env()?.to_str().map(str::to_owned)));
        commands.extend(command.get_subcommands());
    }
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("MOS_") && !known.contains(k))
        .collect()
}

pub fn load_file(path: Option<&Path>) -> anyhow::Result<Layer> {
    let Some(path) = path else {
        return Ok(Layer::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in configuration file {}", path.display()))
}

/// Where the data lives.
pub enum DatabaseConfig {
    /// The private cluster under the data directory.
    Embedded { data_dir: PathBuf, pg_bin: Option<PathBuf> },
    /// A server someone else runs: `admin` migrates and checks, `app` (when given) serves.
    External { admin: SecretString, app: Option<SecretString> },
}

pub struct Settings {
    pub database: DatabaseConfig,
    pub pool_size: u32,
    pub listen: SocketAddr,
    /// Where state other than the database lives: the dev outbox, the generated TOTP key.
    pub data_dir: PathBuf,
    pub identity: Identity,
    pub http: mos_http::Limits,
    /// How often `serve` re-runs the database check.
    pub check_interval: std::time::Duration,
    /// How `serve` runs background jobs.
    pub jobs: mos_db::jobs::runner::RunnerConfig,
    /// The largest CSV file an import takes.
    pub import_max_bytes: Option<u64>,
    /// Campaign messages per batch, when set (`mos_http::sending::Outbox::batch`).
    pub send_batch: Option<u64>,
    /// Where SES notifications may come from, and pinned SNS certificates.
    pub feedback_ses_topics: Vec<String>,
    pub feedback_sns_certificates: Option<PathBuf>,
    /// Webhook endpoints on non-public addresses, and plain http to loopback, allowed.
    pub webhook_allow_private: bool,
    pub webhook_allow_http_loopback: bool,
    /// How long a finished webhook event is kept.
    pub webhook_keep: std::time::Duration,
    backup_dir: Option<PathBuf>,
    backup_interval: std::time::Duration,
    backup_keep: usize,
}

/// How sign-in behaves and where its mail goes.
pub struct Identity {
    pub public_url: Option<String>,
    pub smtp_url: Option<SecretString>,
    pub mail_from: Option<String>,
    pub totp_key: Option<SecretString>,
    pub session_idle_secs: u32,
    pub session_absolute_secs: u32,
    pub hash_concurrency: usize,
    pub trusted_proxies: Vec<String>,
}

impl Settings {
    /// The directory of the PostgreSQL binaries that was asked for, if any.
    pub fn pg_bin(&self) -> Option<&Path> {
        match &self.database {
            DatabaseConfig::Embedded { pg_bin, .. } => pg_bin.as_deref(),
            DatabaseConfig::External { .. } => None,
        }
    }

    /// When `serve` takes backups, if it does.
    pub fn backups(&self) -> Option<crate::backup::Schedule> {
        Some(crate::backup::Schedule {
            dir: self.backup_dir.clone()?,
            interval: self.backup_interval,
            keep: self.backup_keep,
        })
    }

    /// The defaults under the merged layers.
    pub fn resolve(layer: Layer) -> Self {
        let data_dir = layer.data_dir.unwrap_or_else(|| PathBuf::from(".mos"));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let identity = Identity {
            public_url: layer.public_url,
            smtp_url: layer.smtp_url.map(SecretString::from),
            mail_from: layer.mail_from,
            totp_key: layer.totp_key.map(SecretString::from),
            session_idle_secs: layer.session_idle_secs.unwrap_or(15 * 60),
            session_absolute_secs: layer.session_absolute_secs.unwrap_or(12 * 3600),
            hash_concurrency: layer.hash_concurrency.unwrap_or(cpus),
            trusted_proxies: layer.trusted_proxies.unwrap_or_default(),
        };
        let database = match layer.database_url {
            Some(url) => DatabaseConfig::External {
                admin: SecretString::from(url),
                app: layer.app_database_url.map(SecretString::from),
            },
            None => DatabaseConfig::Embedded { data_dir: data_dir.clone(), pg_bin: layer.pg_bin },
        };
        Self {
            database,
            pool_size: layer.pool_size.unwrap_or(10),
            listen: layer.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            identity,
            check_interval: std::time::Duration::from_secs(layer.check_interval_secs.unwrap_or(60).max(1)),
            import_max_bytes: layer.import_max_bytes,
            send_batch: layer.send_batch,
            feedback_ses_topics: layer.feedback_ses_topics.unwrap_or_default(),
            feedback_sns_certificates: layer.feedback_sns_certificates,
            webhook_allow_private: layer.webhook_allow_private.unwrap_or(false),
            webhook_allow_http_loopback: layer.webhook_allow_http_loopback.unwrap_or(false),
            webhook_keep: std::time::Duration::from_secs(u64::from(layer.webhook_keep_days.unwrap_or(30)) * 86_400),
            backup_dir: layer.backup_dir,
            backup_interval: std::time::Duration::from_secs(layer.backup_interval_secs.unwrap_or(86_400).max(1)),
            backup_keep: layer.backup_keep.unwrap_or(7).max(1),
            jobs: {
                let default = mos_db::jobs::runner::RunnerConfig::default();
                mos_db::jobs::runner::RunnerConfig {
                    workers: layer.job_workers.unwrap_or(default.workers).max(1),
                    lease: layer.job_lease_secs.map_or(default.lease, std::time::Duration::from_secs),
                    ..default
                }
            },
            http: {
                let default = mos_http::Limits::default();
                mos_http::Limits {
                    max_connections: layer.max_connections.unwrap_or(default.max_connections).max(1),
                    max_connections_per_client: layer
                        .max_connections_per_client
                        .unwrap_or(default.max_connections_per_client)
                        .max(1),
                    header_timeout: layer
                        .header_timeout_secs
                        .map_or(default.header_timeout, |s| std::time::Duration::from_secs(s.max(1))),
                    request_timeout: layer
                        .request_timeout_secs
                        .map_or(default.request_timeout, |s| std::time::Duration::from_secs(s.max(1))),
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        let err = toml::from_str::<Layer>("listen = \"127.0.0.1:9000\"\nlisten_port = 9000\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `listen_port`"), "{err}");
    }

    #[test]
    fn flags_and_environment_win_over_the_file_and_the_file_over_defaults() {
        let file: Layer = toml::from_str("data_dir = \"/srv/mos\"\npool_size = 20\n").unwrap();
        let s = Settings::resolve(Layer { pool_size: Some(5), ..Layer::default() }.over(file));
        assert_eq!(s.pool_size, 5);
        assert!(
            matches!(s.database, DatabaseConfig::Embedded { ref data_dir, .. } if data_dir == Path::new("/srv/mos"))
        );

        let s = Settings::resolve(Layer::default());
        assert_eq!((s.pool_size, s.listen.to_string().as_str()), (10, "127.0.0.1:8080"));
        assert_eq!(s.identity.session_idle_secs, 900);
        assert_eq!((s.jobs.workers, s.jobs.lease.as_secs()), (2, 60));
        assert!(matches!(s.database, DatabaseConfig::Embedded { ref data_dir, .. } if data_dir == Path::new(".mos")));
    }

    /// `setting` in the file and `--flag` on the command line: taken at each value of `cases`
    /// marked true, refused at the others, the file's refusal saying `says`.
    fn ranged(setting: &str, flag: &str, cases: [(u64, bool); 4], says: &str) {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            layer: Layer,
        }
        for (value, ok) in cases {
            let file = toml::from_str::<Layer>(&format!("{setting} = {value}\n"));
            assert_eq!(file.is_ok(), ok, "{setting} = {value}: {file:?}");
            if let Err(e) = file {
                assert!(e.to_string().contains(says), "{e}");
            }
            let flags = <Flags as clap::Parser>::try_parse_from(["mos", flag, &value.to_string()]);
            assert_eq!(flags.is_ok(), ok, "{flag} {value}");
        }
    }

    #[test]
    fn a_job_lease_or_a_send_batch_outside_its_range_is_an_error_in_the_file_and_as_a_flag() {
        let lease = [(5, false), (6, true), (86_400, true), (86_401, false)];
        ranged("job_lease_secs", "--job-lease-secs", lease, "must be from 6 to 86400 seconds");
        let batch = [(0, false), (1, true), (10_000, true), (10_001, false)];
        ranged("send_batch", "--send-batch", batch, "it must be from 1 to 10000");
    }

    #[test]
    fn a_database_url_selects_the_external_server() {
        let s = Settings::resolve(Layer { database_url: Some("postgres://db/mos".into()), ..Layer::default() });
        assert!(matches!(s.database, DatabaseConfig::External { app: None, .. }));
    }
}
