//! Opens the configured database: the embedded cluster (started, or reused if running) or an
//! external server, and closes it again, stopping the cluster only if this process started it.

use std::str::FromStr;

use anyhow::Context;
use mos_db::ops::embedded::{self, Claim, Cluster, PgBinaries, Tuning};
use mos_db::ops::migrate;
use mos_db::{AppPool, AppPoolOptions, PgConnectOptions, APP_ROLE};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{ConnectOptions, PgConnection};

use crate::config::{DatabaseConfig, Settings};

pub struct Database {
    kind: Kind,
    pool_size: u32,
}

enum Kind {
    Embedded {
        cluster: Cluster,
        /// Held when this process looks after the cluster (it started it, or adopted it from a
        /// `mos` that died): it stops the cluster when it exits.
        owned: Option<Claim>,
    },
    External {
        admin: Box<PgConnectOptions>,
        app: Option<Box<PgConnectOptions>>,
        urls: (SecretString, Option<SecretString>),
    },
}

/// `url` with its path naming `database` instead.
fn on_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn parse_url(url: &str, name: &str) -> anyhow::Result<PgConnectOptions> {
    // The URL may hold a password: name the variable, never echo the value.
    PgConnectOptions::from_str(url).map_err(|e| anyhow::anyhow!("{name} is not a valid PostgreSQL URL: {e}"))
}

impl Database {
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let kind = match &settings.database {
            DatabaseConfig::Embedded { data_dir, pg_bin } => {
                let bin = PgBinaries::locate(pg_bin.as_deref())?;
                let cluster = Cluster::init(bin, data_dir, Tuning::Durable).await?;
                // Claimed before starting, so that of two processes starting at once one owns it.
                let claim = cluster.claim()?;
                let started_here = cluster.start().await?;
                let owned = match claim {
                    Some(mut claim) if started_here || claim.orphaned_by().is_some() => {
                        if let (false, Some(pid)) = (started_here, claim.orphaned_by()) {
                            tracing::warn!(
                                previous_owner = pid,
                                "adopting the embedded PostgreSQL that a mos process left running when it ended \
                                 without stopping it; it stops when this process exits"
                            );
                        }
                        claim.own()?;
                        Some(claim)
                    }
                    // Started by hand, or looked after by another live mos process.
                    _ => None,
                };
                let ready = cluster.ensure_database(embedded::DATABASE).await;
                let kind = Kind::Embedded { cluster, owned };
                if let Err(e) = ready {
                    Self::close_kind(kind).await;
                    return Err(e.into());
                }
                kind
            }
            DatabaseConfig::External { admin, app } => Kind::External {
                admin: Box::new(parse_url(admin.expose_secret(), "DATABASE_URL")?),
                app: app
                    .as_ref()
                    .map(|u| parse_url(u.expose_secret(), "MOS_APP_DATABASE_URL").map(Box::new))
                    .transpose()?,
                urls: (admin.clone(), app.clone()),
            },
        };
        Ok(Self { kind, pool_size: settings.pool_size })
    }

    pub fn is_embedded(&self) -> bool {
        matches!(self.kind, Kind::Embedded { .. })
    }

    /// How to connect with the rights to migrate and inspect the catalog.
    pub fn admin_options(&self) -> PgConnectOptions {
        match &self.kind {
            Kind::Embedded { cluster, .. } => cluster.connect_options(embedded::SUPERUSER, embedded::DATABASE),
            Kind::External { admin, .. } => PgConnectOptions::clone(admin),
        }
    }

    /// A connection with the rights to migrate and inspect the catalog.
    pub async fn admin(&self) -> anyhow::Result<PgConnection> {
        self.admin_options().connect().await.context("connecting to the database for administration")
    }

    /// Brings the schema up to date on the embedded default; refuses an external database whose
    /// schema is behind, since its migrations are someone's deliberate step.
    pub async fn prepare_schema(&self) -> anyhow::Result<()> {
        let mut conn = self.admin().await?;
        if self.is_embedded() {
            migrate::run(&mut conn).await?;
        } else {
            migrate::ensure_current(&mut conn).await?;
        }
        Ok(())
    }

    /// The pool requests run on, as `app_user`.
    pub async fn app_pool(&self) -> anyhow::Result<AppPool> {
        self.app_pool_on(None, self.pool_size).await
    }

    /// The application pool on another database of the same server (a scratch one).
    pub async fn app_pool_on(&self, database: Option<&str>, max_connections: u32) -> anyhow::Result<AppPool> {
        let (connect, set_role) = match &self.kind {
            Kind::Embedded { cluster, .. } => (cluster.connect_options(APP_ROLE, embedded::DATABASE), false),
            Kind::External { app: Some(app), .. } => (PgConnectOptions::clone(app), false),
            Kind::External { admin, app: None, .. } => {
                tracing::warn!("MOS_APP_DATABASE_URL is not set: logging in with DATABASE_URL and switching to app_user; a login as app_user itself is safer");
                (PgConnectOptions::clone(admin), true)
            }
        };
        let connect = match database {
            Some(name) => connect.database(name),
            None => connect,
        };
        let options = AppPoolOptions { connect, set_role, max_connections };
        AppPool::connect(options).await.context("connecting the application pool")
    }

    /// URLs of another database of the same server, for a process that `mos bench` starts: the
    /// administrator's, and `app_user`'s when it logs in itself.
    pub fn urls_on(&self, database: &str) -> (SecretString, Option<SecretString>) {
        match &self.kind {
            Kind::Embedded { cluster, .. } => {
                let options = cluster.connect_options(embedded::SUPERUSER, database);
                let socket = options
                    .get_socket()
                    .map(|s| mos_domain::url_component(&s.display().to_string()))
                    .unwrap_or_default();
                let url = |user: &str| {
                    SecretString::from(format!(
                        "postgres://{user}@localhost/{database}?host={socket}&port={}",
                        options.get_port()
                    ))
                };
                (url(embedded::SUPERUSER), Some(url(APP_ROLE)))
            }
            Kind::External { urls: (admin, app), .. } => (
                SecretString::from(on_database(admin.expose_secret(), database)),
                app.as_ref().map(|u| SecretString::from(on_database(u.expose_secret(), database))),
            ),
        }
    }

    pub async fn close(self) {
        Self::close_kind(self.kind).await;
    }

    /// The embedded cluster, whoever looks after it.
    pub fn cluster(&self) -> Option<&Cluster> {
        match &self.kind {
            Kind::Embedded { cluster, .. } => Some(cluster),
            Kind::External { .. } => None,
        }
    }

    /// The embedded cluster, when this process looks after it.
    pub fn owned_cluster(&self) -> Option<&Cluster> {
        match &self.kind {
            Kind::Embedded { cluster, owned: Some(_) } => Some(cluster),
            _ => None,
        }
    }

    async fn close_kind(kind: Kind) {
        if let Kind::Embedded { cluster, owned: Some(claim) } = kind {
            match cluster.stop().await {
                Ok(()) => {
                    if let Err(e) = claim.release() {
                        tracing::warn!(error = %e, "the embedded PostgreSQL stopped, but its owner file was not cleared");
                    }
                }
                Err(e) => tracing::error!(error = %e, "stopping the embedded PostgreSQL failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::on_database;

    #[test]
    fn a_url_is_pointed_at_another_database() {
        assert_eq!(
            on_database("postgres://u:p@h:5432/mos?sslmode=require", "x"),
            "postgres://u:p@h:5432/x?sslmode=require"
        );
        assert_eq!(on_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(on_database("postgresql://h/db", "x"), "postgresql://h/x");
    }
}
