//! The start of an authenticated request. One statement (`app.request_context`, a SECURITY
//! DEFINER function, since no context exists yet) finds the live session behind a token and,
//! for a tenant route, the user's membership in the organization of the path; the same
//! transaction is then scoped to the user, or to the tenant, and handed to the handler. The
//! permission check and the work it allows therefore see one snapshot and commit together.

use chrono::{DateTime, Duration, Utc};

use crate::error::stored;
use crate::orgs::{self, org_id, Access};
use crate::sessions::{interval, Live};
use crate::{AppPool, Result, TenantTx, UserTx};
use mos_domain::{SessionId, Slug, TokenHash, UserId};

/// How sessions age.
#[derive(Debug, Clone, Copy)]
pub struct SessionRules {
    /// A session unused for this long has ended.
    pub idle: Duration,
    /// Activity is written down when the last note is older than this, not on every request:
    /// reads stay reads, and the idle timeout has this precision.
    pub touch_every: Duration,
}

/// What a request holds of its organization's memberships until it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Nothing: a read sees one snapshot, and a lock would be a write.
    Nothing,
    /// The member's own row, `FOR SHARE`: a change of its role waits until this request
    /// commits, and one committed first is what the check sees.
    Member,
    /// The member's row and every ADMIN's, `FOR UPDATE`, in one order, for a request that
    /// changes memberships: two such requests queue instead of each holding the row the
    /// other needs (two ADMINs demoting each other would deadlock).
    Admins,
}

/// The session and what it may reach of one organization.
pub enum Authorization {
    /// A member: `tx` is scoped to the organization and the user.
    Member { session: Live, access: Access, tx: TenantTx },
    /// The session is live, but no organization by that slug has this user as a member (or
    /// there is no such organization: the two are not told apart).
    Stranger { session: Live },
}

#[derive(sqlx::FromRow)]
struct ContextRow {
    session_id: uuid::Uuid,
    user_id: uuid::Uuid,
    authenticated_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    two_factor_enabled: bool,
    phishing_resistant: bool,
    organization_id: Option<uuid::Uuid>,
    role: Option<String>,
    require_two_factor: Option<bool>,
    require_phishing_resistant: Option<bool>,
}

/// The request's first statement, public so that `mos bench` can replay exactly it.
pub const CONTEXT: &str = "select session_id, user_id, authenticated_at, expires_at, two_factor_enabled,
        phishing_resistant, organization_id, role::text as role, require_two_factor, require_phishing_resistant
   from app.request_context($1, $2, $3, $4, $5)";

/// The lock a change takes on its member's row.
pub const HOLD: &str = "select user_id, role::text as role from app.user_organizations
  where organization_id = $1 and user_id = $2
    for share";

/// A membership locked for the request, with its role as of the lock.
#[derive(sqlx::FromRow)]
struct Held {
    #[sqlx(try_from = "uuid::Uuid")]
    user_id: UserId,
    #[sqlx(try_from = "String")]
    role: mos_domain::Role,
}

/// The locks a change of memberships takes: its member's row and every ADMIN's, in one order.
const HOLD_ADMINS: &str = "select user_id, role::text as role from app.user_organizations
  where organization_id = $1 and (user_id = $2 or role = 'ADMIN')
  order by user_id
    for update";

impl AppPool {
    /// Begins the request of the session behind `token_hash`, scoped to its user; `None` when
    /// the token names no live session.
    pub async fn authenticate(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
        rules: SessionRules,
    ) -> Result<Option<(Live, UserTx)>> {
        let mut tx = self.bare().await?;
        let Some(row) = context(&mut tx, token_hash, None, now, rules).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let session = live(&row)?;
        Ok(Some((session, UserTx::scope(tx, session.user).await?)))
    }

    /// Begins the request of the session behind `token_hash` in the organization `slug`;
    /// `None` when the token names no live session.
    ///
    /// With a [`Hold`], the member's row is then locked as `app_user` and the role re-read with
    /// the lock.
    pub async fn authorize(
        &self,
        token_hash: &TokenHash,
        slug: &Slug,
        now: DateTime<Utc>,
        rules: SessionRules,
        hold: Hold,
    ) -> Result<Option<Authorization>> {
        let mut tx = self.bare().await?;
        let Some(row) = context(&mut tx, token_hash, Some(slug), now, rules).await? else {
            tx.commit().await?;
            return Ok(None);
        };
        let session = live(&row)?;
        let (Some(org), Some(role)) = (row.organization_id, row.role) else {
            // Commits the activity note, if this request made one.
            tx.commit().await?;
            return Ok(Some(Authorization::Stranger { session }));
        };
        let mut access = Access {
            org: org_id(org)?,
            role: orgs::role(&role)?,
            require_two_factor: row.require_two_factor.unwrap_or(false),
            require_phishing_resistant: row.require_phishing_resistant.unwrap_or(false),
            two_factor_enabled: row.two_factor_enabled,
        };
        let mut tx = TenantTx::scope(tx, access.org, Some(session.user)).await?;
        let statement = match hold {
            Hold::Nothing => None,
            Hold::Member => Some(HOLD),
            Hold::Admins => Some(HOLD_ADMINS),
        };
        if let Some(statement) = statement {
            let rows: Vec<Held> = sqlx::query_as(statement)
                .bind(access.org.as_uuid())
                .bind(session.user.as_uuid())
                .fetch_all(tx.conn())
                .await?;
            let held = rows.into_iter().find(|h| h.user_id == session.user).map(|h| h.role);
            match held {
                Some(role) => access.role = role,
                // Removed in the moment between the lookup and the lock.
                None => {
                    tx.commit().await?;
                    return Ok(Some(Authorization::Stranger { session }));
                }
            }
        }
        Ok(Some(Authorization::Member { session, access, tx }))
    }
}

async fn context(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    token_hash: &TokenHash,
    slug: Option<&Slug>,
    now: DateTime<Utc>,
    rules: SessionRules,
) -> Result<Option<ContextRow>> {
    Ok(sqlx::query_as(CONTEXT)
        .bind(token_hash.as_bytes())
        .bind(slug.map(Slug::as_str))
        .bind(now)
        .bind(interval(rules.idle)?)
        .bind(interval(rules.touch_every)?)
        .fetch_optional(&mut **tx)
        .await?)
}

fn live(row: &ContextRow) -> Result<Live> {
    Ok(Live {
        id: SessionId::from_uuid(row.session_id).map_err(|_| stored("sessions_id_v7"))?,
        user: UserId::from_uuid(row.user_id).map_err(|_| stored("users_id_v7"))?,
        authenticated_at: row.authenticated_at,
        expires_at: row.expires_at,
        two_factor_enabled: row.two_factor_enabled,
        phishing_resistant: row.phishing_resistant,
    })
}
