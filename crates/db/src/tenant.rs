use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::Result;
use mos_domain::{OrgId, UserId};

/// A transaction that has set `app.current_tenant_id` (and `app.current_user_id` when the actor
/// is known) before its first query. The settings are transaction-local, so when the
/// transaction ends, by commit, rollback or drop, the pooled connection forgets them and the
/// next request starts with no tenant at all.
///
/// Repository functions that touch tenant data take `&mut TenantTx`; the caller decides whether
/// the whole unit of work, including its audit records, commits.
pub struct TenantTx {
    tx: Transaction<'static, Postgres>,
    org: OrgId,
    actor: Option<UserId>,
}

/// A transaction scoped to one user's private rows (`app.current_user_id`), with no tenant.
pub struct UserTx {
    tx: Transaction<'static, Postgres>,
    user: UserId,
}

/// A transaction with no request context yet, for the moment before the user is known
/// (redeeming an emailed token). It can only run this crate's SECURITY DEFINER lookups, then
/// become a [`UserTx`] for the user the lookup named, so that the lookup and the change it
/// unlocks commit together or not at all.
pub struct LookupTx {
    tx: Transaction<'static, Postgres>,
}

/// `SET LOCAL` as its own statement, with the literal formatted from an already-parsed id:
/// unlike `set_config`, this form is what Citus forwards to its workers
/// (`citus.propagate_set_commands = local`). The `Display` of an id is a bare hyphenated UUID,
/// so nothing a client sent can reach this string.
async fn set_local(tx: &mut Transaction<'static, Postgres>, setting: &'static str, value: String) -> sqlx::Result<()> {
    let sql = format!("set local {setting} = '{value}'");
    // Not `raw_sql`: its future is not `Send` in sqlx 0.8. Not cached: the text differs per id.
    sqlx::query(&sql).persistent(false).execute(&mut **tx).await?;
    Ok(())
}

impl TenantTx {
    pub(crate) async fn begin(pool: &PgPool, org: OrgId, actor: Option<UserId>) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        set_local(&mut tx, "app.current_tenant_id", org.to_string()).await?;
        if let Some(user) = actor {
            set_local(&mut tx, "app.current_user_id", user.to_string()).await?;
        }
        Ok(Self { tx, org, actor })
    }

    pub fn org(&self) -> OrgId {
        self.org
    }

    pub fn actor(&self) -> Option<UserId> {
        self.actor
    }
}

impl LookupTx {
    pub(crate) async fn begin(pool: &PgPool) -> sqlx::Result<Self> {
        Ok(Self { tx: pool.begin().await? })
    }

    /// Names the user for the rest of the transaction.
    pub async fn into_user(mut self, user: UserId) -> Result<UserTx> {
        set_local(&mut self.tx, "app.current_user_id", user.to_string()).await?;
        Ok(UserTx { tx: self.tx, user })
    }

    /// Names the tenant (and the acting user) for the rest of the transaction.
    pub async fn into_tenant(mut self, org: OrgId, actor: UserId) -> Result<TenantTx> {
        set_local(&mut self.tx, "app.current_tenant_id", org.to_string()).await?;
        set_local(&mut self.tx, "app.current_user_id", actor.to_string()).await?;
        Ok(TenantTx { tx: self.tx, org, actor: Some(actor) })
    }
}

impl UserTx {
    pub(crate) async fn begin(pool: &PgPool, user: UserId) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        set_local(&mut tx, "app.current_user_id", user.to_string()).await?;
        Ok(Self { tx, user })
    }

    pub fn user(&self) -> UserId {
        self.user
    }
}

/// How each kind of context transaction ends, and its connection.
macro_rules! finishing {
    ($($kind:ident),*) => {$(
        impl $kind {
            pub async fn commit(self) -> Result<()> {
                Ok(self.tx.commit().await?)
            }

            pub async fn rollback(self) -> Result<()> {
                Ok(self.tx.rollback().await?)
            }

            /// The connection, for queries that belong in a repository of this crate (and for
            /// tests that try to break isolation). Whatever runs here runs in this transaction's
            /// context.
            pub fn conn(&mut self) -> &mut PgConnection {
                &mut self.tx
            }
        }
    )*};
}

finishing!(TenantTx, UserTx, LookupTx);
