use sqlx::{Executor, PgConnection, Postgres, Transaction};

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

/// Sets the request context with `SET LOCAL`, one statement per setting, sent together in one
/// simple-query message with nothing else in it: one round trip, and each `SET LOCAL` stays its
/// own statement, which is the form Citus forwards to its workers
/// (`citus.propagate_set_commands = local`; `set_config` is not forwarded). The literals are
/// the `Display` of already-parsed ids, bare hyphenated UUIDs, so nothing a client sent can
/// reach this text.
async fn set_context(
    tx: &mut Transaction<'static, Postgres>,
    tenant: Option<OrgId>,
    user: Option<UserId>,
) -> sqlx::Result<()> {
    let tenant = tenant.map(|org| format!("set local app.current_tenant_id = '{org}';"));
    let user = user.map(|user| format!("set local app.current_user_id = '{user}';"));
    let sql: String = tenant.into_iter().chain(user).collect();
    if !sql.is_empty() {
        // A string without arguments goes out as a simple query.
        (&mut **tx).execute(sql.as_str()).await?;
    }
    Ok(())
}

impl TenantTx {
    /// Scopes a transaction that has not touched tenant data yet to `org`.
    pub(crate) async fn scope(
        mut tx: Transaction<'static, Postgres>,
        org: OrgId,
        actor: Option<UserId>,
    ) -> sqlx::Result<Self> {
        set_context(&mut tx, Some(org), actor).await?;
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
    pub(crate) fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self { tx }
    }

    /// Names the user for the rest of the transaction.
    pub async fn into_user(self, user: UserId) -> Result<UserTx> {
        Ok(UserTx::scope(self.tx, user).await?)
    }
}

impl UserTx {
    pub(crate) async fn scope(mut tx: Transaction<'static, Postgres>, user: UserId) -> sqlx::Result<Self> {
        set_context(&mut tx, None, Some(user)).await?;
        Ok(Self { tx, user })
    }

    pub fn user(&self) -> UserId {
        self.user
    }

    /// Names a tenant too, for the rest of the transaction, with this user acting in it.
    pub async fn into_tenant(mut self, org: OrgId) -> Result<TenantTx> {
        set_context(&mut self.tx, Some(org), None).await?;
        Ok(TenantTx { tx: self.tx, org, actor: Some(self.user) })
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
