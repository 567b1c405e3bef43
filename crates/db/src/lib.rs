//! The PostgreSQL foundation of Marketing OS.
//!
//! Tenant data is reachable only through [`TenantTx`], a transaction that has set
//! `app.current_tenant_id` before its first query; user-private data only through [`UserTx`].
//! Row-Level Security in the schema enforces the same rule again, so a bug on either side alone
//! cannot leak one tenant's rows to another.
//!
//! The request path (the pool, the scoped transactions and the repositories beside them) fails
//! with [`DbError`]; the operator tooling under [`ops`] (migrations, the catalog check, Citus
//! placement, the embedded cluster) with errors of its own, and the request path never calls it.

pub mod audiences;
pub mod audit;
pub mod breaker;
pub mod campaigns;
pub mod chain;
pub mod clicks;
pub mod content;
pub(crate) mod error;
pub mod feedback;
pub mod first_use;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod jobs;
pub mod ops;
pub mod orgs;
pub mod passkeys;
mod pool;
pub mod request;
pub mod senders;
pub mod sessions;
mod tenant;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod users;
pub mod webhooks;

pub use error::DbError;
pub use pool::{AppPool, AppPoolOptions, PROBE_NAME};
pub use sqlx::postgres::{PgConnectOptions, PgPool};
pub use tenant::{LookupTx, TenantTx, UserTx};

/// The role the application runs as: no superuser, no BYPASSRLS, owner of nothing.
pub const APP_ROLE: &str = "app_user";
/// The NOLOGIN role that owns every object, so nobody logs in with the power to lift FORCE RLS.
pub const OWNER_ROLE: &str = "mos_owner";
/// The NOLOGIN role that the few SECURITY DEFINER lookups run as.
pub const DEFINER_ROLE: &str = "mos_definer";

pub type Result<T, E = DbError> = std::result::Result<T, E>;
