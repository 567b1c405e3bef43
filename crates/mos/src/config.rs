//! Configuration in layers: built-in defaults, then an optional TOML file (`--config` or
//! `MOS_CONFIG`), then environment variables, then command-line flags. Unknown keys in the
//! file are an error and unknown `MOS_*` variables a warning, so a typo never silently falls
//! back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

/// One layer of settings: the file, or the flags and environment (clap merges those two).
/// Every setting may appear in the file; each also has an environment variable.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub app_database_url: Option<String>,
    pub pg_bin: Option<PathBuf>,
    pub pool_size: Option<u32>,
    pub public_url: Option<String>,
    pub smtp_url: Option<String>,
    pub mail_from: Option<String>,
    pub totp_key: Option<String>,
    pub session_idle_secs: Option<u32>,
    pub session_absolute_secs: Option<u32>,
    pub hash_concurrency: Option<usize>,
    pub trusted_proxies: Option<Vec<String>>,
}

impl Layer {
    /// This layer's settings, and `lower`'s where this one has none.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            app_database_url: self.app_database_url.or(lower.app_database_url),
            pg_bin: self.pg_bin.or(lower.pg_bin),
            pool_size: self.pool_size.or(lower.pool_size),
            public_url: self.public_url.or(lower.public_url),
            smtp_url: self.smtp_url.or(lower.smtp_url),
            mail_from: self.mail_from.or(lower.mail_from),
            totp_key: self.totp_key.or(lower.totp_key),
            session_idle_secs: self.session_idle_secs.or(lower.session_idle_secs),
            session_absolute_secs: self.session_absolute_secs.or(lower.session_absolute_secs),
            hash_concurrency: self.hash_concurrency.or(lower.hash_concurrency),
            trusted_proxies: self.trusted_proxies.or(lower.trusted_proxies),
        }
    }
}

/// The environment variables `mos` reads; any other `MOS_*` is reported.
pub const KNOWN_ENV: &[&str] = &[
    "MOS_CONFIG",
    "MOS_LISTEN",
    "MOS_DATA_DIR",
    "MOS_APP_DATABASE_URL",
    "MOS_POOL_SIZE",
    "MOS_LOG",
    "MOS_LOG_FORMAT",
    "MOS_PUBLIC_URL",
    "MOS_MAIL_FROM",
    "MOS_TOTP_KEY",
    "MOS_SESSION_IDLE_SECS",
    "MOS_SESSION_ABSOLUTE_SECS",
    "MOS_HASH_CONCURRENCY",
    "MOS_AUDIT_SIGNING_KEY",
    "MOS_TRUSTED_PROXIES",
];

pub fn unknown_env_vars() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("MOS_") && !KNOWN_ENV.contains(&k.as_str()))
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
        assert!(matches!(s.database, DatabaseConfig::Embedded { ref data_dir, .. } if data_dir == Path::new(".mos")));
    }

    #[test]
    fn a_database_url_selects_the_external_server() {
        let s = Settings::resolve(Layer { database_url: Some("postgres://db/mos".into()), ..Layer::default() });
        assert!(matches!(s.database, DatabaseConfig::External { app: None, .. }));
    }
}
