//! Forward-only SQL migrations, embedded in the binary and recorded with their checksums.
//!
//! Roles are cluster-wide, so they are made by an idempotent bootstrap rather than by a
//! migration; every migration then runs as the NOLOGIN owner role in its own transaction,
//! under an advisory lock so that two migrators never interleave.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};

use crate::ops::{catalog, OpsError, Result};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn checksum(&self) -> Vec<u8> {
        Sha256::digest(self.sql.as_bytes()).to_vec()
    }
}

/// Every migration this build knows, in order. Never edit one that has shipped: add another.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "foundation", sql: include_str!("../../migrations/0001_foundation.sql") },
    Migration { version: 2, name: "identity", sql: include_str!("../../migrations/0002_identity.sql") },
    Migration { version: 3, name: "organizations", sql: include_str!("../../migrations/0003_organizations.sql") },
    Migration { version: 4, name: "audit_chain", sql: include_str!("../../migrations/0004_audit_chain.sql") },
    Migration { version: 5, name: "citus_plannable", sql: include_str!("../../migrations/0005_citus_plannable.sql") },
    Migration { version: 6, name: "request_context", sql: include_str!("../../migrations/0006_request_context.sql") },
    Migration { version: 7, name: "hardening", sql: include_str!("../../migrations/0007_hardening.sql") },
    Migration { version: 8, name: "content", sql: include_str!("../../migrations/0008_content.sql") },
    Migration { version: 9, name: "passkeys", sql: include_str!("../../migrations/0009_passkeys.sql") },
    Migration {
        version: 10,
        name: "passkey_enrollment",
        sql: include_str!("../../migrations/0010_passkey_enrollment.sql"),
    },
    Migration {
        version: 11,
        name: "member_directory_paging",
        sql: include_str!("../../migrations/0011_member_directory_paging.sql"),
    },
    Migration { version: 12, name: "audiences", sql: include_str!("../../migrations/0012_audiences.sql") },
    Migration { version: 13, name: "jobs", sql: include_str!("../../migrations/0013_jobs.sql") },
    Migration { version: 14, name: "contact_imports", sql: include_str!("../../migrations/0014_contact_imports.sql") },
    Migration { version: 15, name: "segments", sql: include_str!("../../migrations/0015_segments.sql") },
    Migration { version: 16, name: "signup", sql: include_str!("../../migrations/0016_signup.sql") },
    Migration {
        version: 17,
        name: "suppression_lifts",
        sql: include_str!("../../migrations/0017_suppression_lifts.sql"),
    },
    Migration { version: 18, name: "erasure", sql: include_str!("../../migrations/0018_erasure.sql") },
    Migration { version: 19, name: "segment_speed", sql: include_str!("../../migrations/0019_segment_speed.sql") },
    Migration { version: 20, name: "import_proofs", sql: include_str!("../../migrations/0020_import_proofs.sql") },
    Migration { version: 21, name: "import_rows", sql: include_str!("../../migrations/0021_import_rows.sql") },
    Migration { version: 22, name: "receipt_lookups", sql: include_str!("../../migrations/0022_receipt_lookups.sql") },
    Migration { version: 23, name: "senders", sql: include_str!("../../migrations/0023_senders.sql") },
    Migration { version: 24, name: "campaigns", sql: include_str!("../../migrations/0024_campaigns.sql") },
    Migration { version: 25, name: "consent_state", sql: include_str!("../../migrations/0025_consent_state.sql") },
    Migration { version: 26, name: "unsubscribe", sql: include_str!("../../migrations/0026_unsubscribe.sql") },
    Migration {
        version: 27,
        name: "campaign_tallies",
        sql: include_str!("../../migrations/0027_campaign_tallies.sql"),
    },
    Migration {
        version: 28,
        name: "delivery_feedback",
        sql: include_str!("../../migrations/0028_delivery_feedback.sql"),
    },
    Migration {
        version: 29,
        name: "complaint_source",
        sql: include_str!("../../migrations/0029_complaint_source.sql"),
    },
    Migration { version: 30, name: "first_use", sql: include_str!("../../migrations/0030_first_use.sql") },
    Migration { version: 31, name: "clicks", sql: include_str!("../../migrations/0031_clicks.sql") },
    Migration { version: 32, name: "sending_breaker", sql: include_str!("../../migrations/0032_sending_breaker.sql") },
    Migration {
        version: 33,
        name: "feedback_credentials",
        sql: include_str!("../../migrations/0033_feedback_credentials.sql"),
    },
    Migration { version: 34, name: "webhooks", sql: include_str!("../../migrations/0034_webhooks.sql") },
    Migration {
        version: 35,
        name: "campaign_activity",
        sql: include_str!("../../migrations/0035_campaign_activity.sql"),
    },
    Migration {
        version: 36,
        name: "webhook_retention",
        sql: include_str!("../../migrations/0036_webhook_retention.sql"),
    },
    Migration {
        version: 37,
        name: "clicks_per_statement",
        sql: include_str!("../../migrations/0037_clicks_per_statement.sql"),
    },
];

/// Any fixed number works; it only has to be the same for every migrator.
const LOCK_KEY: i64 = 0x6d6f_735f_6d69_6772;

/// Cluster-wide roles, committed on their own before anything runs as them: Citus propagates
/// `CREATE ROLE` to its workers, and a worker cannot see a role whose creation has not committed.
const BOOTSTRAP_ROLES: &str = r#"
do $bootstrap$
begin
    if not exists (select from pg_roles where rolname = 'mos_owner') then
        create role mos_owner nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'mos_definer') then
        create role mos_definer nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'app_user') then
        create role app_user login noinherit nosuperuser nobypassrls nocreatedb nocreaterole;
    end if;
    grant mos_definer to mos_owner;
    execute format('grant connect, create on database %I to mos_owner', current_database());
    execute format('grant connect on database %I to app_user', current_database());
    -- A migrator that is not a superuser needs membership to switch to these roles.
    if not (select rolsuper from pg_roles where rolname = current_user) then
        execute format('grant mos_owner, app_user to %I', current_user);
    end if;
end
$bootstrap$
"#;

/// On a Citus coordinator: Citus reaches the workers as the current role, and inside a
/// SECURITY DEFINER function as the function's owner, so the owner and definer roles must be
/// able to log in there. Each gets a random password that only the coordinator's
/// superuser-only `pg_dist_authinfo` holds; it is made inside the server and never leaves it,
/// so it is in no statement text, log or file. Nobody in the application's path learns it.
const BOOTSTRAP_CITUS: &str = r#"
do $citus$
declare
    v_role text;
    v_secret text;
begin
    foreach v_role in array array['mos_owner', 'mos_definer'] loop
        if exists (select from pg_catalog.pg_dist_authinfo a where a.rolename = v_role and a.nodeid = 0) then
            continue;
        end if;
        if (select r.rolcanlogin from pg_roles r where r.rolname = v_role) then
            raise exception 'role % can already log in, but this database holds no credentials for it', v_role
                using hint = 'another database on this cluster set its password: copy that database''s '
                             'pg_dist_authinfo row for the role into this one';
        end if;
        -- gen_random_uuid() draws from the server's strong random source: 244 random bits.
        v_secret := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
        execute format('alter role %I login password %L', v_role, v_secret);
        insert into pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo)
        values (0, v_role, 'password=' || v_secret);
    end loop;
    -- Rights on a database are not propagated unless Citus created it: grant them on the
    -- workers' copy of this database too.
    perform run_command_on_workers(format('grant connect, create on database %I to mos_owner', current_database()));
    perform run_command_on_workers(format('grant connect on database %I to app_user, mos_definer', current_database()));
end
$citus$
"#;

const BOOTSTRAP_SCHEMA: &str = r#"
set role mos_owner;
create schema if not exists mos_migrations;
create table if not exists mos_migrations.applied (
    version     bigint primary key,
    name        text not null,
    checksum    bytea not null,
    applied_at  timestamptz not null default now(),
    duration_ms bigint not null
);
reset role;
"#;

/// Where a database stands against this build's migrations.
#[derive(Debug)]
pub struct Status {
    pub applied: Vec<i64>,
    pub pending: Vec<&'static Migration>,
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}_{}", self.version, self.name)
    }
}

/// Compares the database with this build; fails on a changed or unknown migration.
pub async fn status(conn: &mut PgConnection) -> Result<Status> {
    let exists: bool =
        sqlx::query_scalar("select to_regclass('mos_migrations.applied') is not null").fetch_one(&mut *conn).await?;
    let rows = if exists {
        sqlx::query("select version, name, checksum from mos_migrations.applied order by version")
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    let mut applied = Vec::new();
    for row in rows {
        let version: i64 = row.try_get("version")?;
        let name: String = row.try_get("name")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(OpsError::UnknownMigration { version, name });
        };
        if known.checksum() != checksum {
            return Err(OpsError::ChecksumMismatch {
                version,
                name,
                applied: hex::encode(checksum),
                embedded: hex::encode(known.checksum()),
            });
        }
        applied.push(version);
    }
    let pending = MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)).collect();
    Ok(Status { applied, pending })
}

/// Fails with [`OpsError::Pending`] unless the schema is exactly what this build expects.
pub async fn ensure_current(conn: &mut PgConnection) -> Result<()> {
    let status = status(conn).await?;
    if status.pending.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Pending {
            count: status.pending.len(),
            names: status.pending.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", "),
        })
    }
}

/// Applies every pending migration; returns the ones it applied (none when already current).
/// `conn` must be a role that may create roles, or whose roles were made beforehand.
pub async fn run(conn: &mut PgConnection) -> Result<Vec<&'static Migration>> {
    sqlx::query("select pg_advisory_lock($1)").bind(LOCK_KEY).execute(&mut *conn).await?;
    let result = apply_pending(conn).await;
    sqlx::query("select pg_advisory_unlock($1)").bind(LOCK_KEY).execute(&mut *conn).await?;
    result
}

/// Makes the roles (and on Citus their worker logins) and the migrations table; idempotent.
pub async fn bootstrap(conn: &mut PgConnection) -> Result<()> {
    sqlx::raw_sql(BOOTSTRAP_ROLES).execute(&mut *conn).await?;
    if catalog::is_coordinator(conn).await? {
        sqlx::raw_sql(BOOTSTRAP_CITUS).execute(&mut *conn).await?;
    }
    sqlx::raw_sql(BOOTSTRAP_SCHEMA).execute(&mut *conn).await?;
    Ok(())
}

async fn apply_pending(conn: &mut PgConnection) -> Result<Vec<&'static Migration>> {
    bootstrap(conn).await?;
    let pending = status(conn).await?.pending;
    for migration in &pending {
        let started = std::time::Instant::now();
        let mut tx = conn.begin().await?;
        sqlx::raw_sql("set local role mos_owner").execute(&mut *tx).await?;
        sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
        sqlx::query(
            "insert into mos_migrations.applied (version, name, checksum, duration_ms) values ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(migration.checksum())
        .bind(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    Ok(pending)
}
