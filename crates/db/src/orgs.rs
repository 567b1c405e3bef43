//! Organizations, memberships and invitations. Functions on tenant data work inside the
//! tenant's own [`TenantTx`] and filter on `organization_id` explicitly: RLS is the safety net,
//! the filter is what lets a distributed engine route the query to one shard.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::error::stored;
use crate::{Result, TenantTx, UserTx};
use mos_domain::{
    events, AuditEvent, Email, InvitationId, OrgId, OrgName, Permission, RequestSource, Role, Slug, TokenHash, UserId,
};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub slug: Slug,
    pub name: OrgName,
    pub require_two_factor: bool,
    /// Members must sign in with a passkey to reach its data.
    pub require_phishing_resistant: bool,
    /// Distinct approvals a content version needs before it may be published.
    pub required_approvals: i32,
    pub created_at: DateTime<Utc>,
}

/// What a user may reach of an organization, found by its slug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Access {
    #[sqlx(rename = "organization_id", try_from = "uuid::Uuid")]
    pub org: OrgId,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub require_two_factor: bool,
    #[sqlx(default)]
    pub require_phishing_resistant: bool,
    pub two_factor_enabled: bool,
}

/// One of the user's organizations.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Mine {
    #[sqlx(rename = "organization_id", try_from = "uuid::Uuid")]
    pub org: OrgId,
    #[sqlx(try_from = "String")]
    pub slug: Slug,
    #[sqlx(try_from = "String")]
    pub name: OrgName,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    #[sqlx(rename = "user_id", try_from = "uuid::Uuid")]
    pub user: UserId,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    pub two_factor_enabled: bool,
}

/// How a change to a membership ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipChange {
    /// Done; the role the member had before.
    Done {
        previous: Role,
    },
    NotMember,
    /// Refused: the organization would be left without an ADMIN.
    LastAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invitation {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: InvitationId,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub invited_by: Option<uuid::Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A pending invitation found by its token, before the invitee's tenant context exists.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingInvitation {
    #[sqlx(rename = "organization_id", try_from = "uuid::Uuid")]
    pub org: OrgId,
    #[sqlx(rename = "invitation_id", try_from = "uuid::Uuid")]
    pub id: InvitationId,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

pub(crate) fn role(text: &str) -> Result<Role> {
    text.parse().map_err(|_| stored("app.role"))
}

pub(crate) fn org_id(id: uuid::Uuid) -> Result<OrgId> {
    OrgId::from_uuid(id).map_err(|_| stored("organizations_id_v7"))
}

/// Creates the organization that `tx` is scoped to.
pub async fn insert(tx: &mut TenantTx, slug: &Slug, name: &OrgName) -> Result<Organization> {
    let created_at: DateTime<Utc> =
        sqlx::query_scalar("insert into app.organizations (id, slug, name) values ($1, $2, $3) returning created_at")
            .bind(tx.org().as_uuid())
            .bind(slug.as_str())
            .bind(name.as_str())
            .fetch_one(tx.conn())
            .await?;
    Ok(Organization {
        id: tx.org(),
        slug: slug.clone(),
        name: name.clone(),
        require_two_factor: false,
        require_phishing_resistant: false,
        required_approvals: 1,
        created_at,
    })
}

/// Creates the organization that `tx` is scoped to, with `creator` as its ADMIN, and audits
/// both in the same transaction: the one way an organization comes to be, for the API and the
/// operator commands alike. A taken slug is [`crate::DbError::Conflict`].
pub async fn create(
    tx: &mut TenantTx,
    slug: &Slug,
    name: &OrgName,
    creator: UserId,
    source: &RequestSource,
) -> Result<Organization> {
    let org = insert(tx, slug, name).await?;
    add_member(tx, creator, Role::Admin).await?;
    let created = AuditEvent::new(events::ORG_CREATED, events::ORGANIZATION)
        .actor(creator)
        .source(source.clone())
        .resource_id(org.id)
        .change("slug", json!(null), json!(slug.as_str()))
        .change("name", json!(null), json!(name.as_str()));
    crate::audit::record(tx, &created).await?;
    let added = AuditEvent::new(events::MEMBER_ADDED, events::MEMBERSHIP)
        .actor(creator)
        .source(source.clone())
        .resource_id(creator)
        .change("role", json!(null), json!(Role::Admin.as_str()));
    crate::audit::record(tx, &added).await?;
    Ok(org)
}

/// The statements of the hot paths, public so that `mos bench` can replay exactly them.
pub const GET: &str =
    "select slug, name, require_two_factor, require_phishing_resistant, required_approvals, created_at
   from app.organizations where id = $1";
pub const UPDATE: &str = "update app.organizations
    set name = coalesce($2, name), require_two_factor = coalesce($3, require_two_factor),
        required_approvals = coalesce($5, required_approvals),
        require_phishing_resistant = coalesce($6, require_phishing_resistant), updated_at = $4
  where id = $1";
pub const MEMBERS: &str =
    "select user_id, email, role::text, joined_at, two_factor_enabled from app.member_directory()";

/// The organization `tx` is scoped to, if it exists.
pub async fn get(tx: &mut TenantTx) -> Result<Option<Organization>> {
    let row = sqlx::query(GET).bind(tx.org().as_uuid()).fetch_optional(tx.conn()).await?;
    row.map(|row| {
        let slug: String = row.try_get("slug")?;
        let name: String = row.try_get("name")?;
        Ok(Organization {
            id: tx.org(),
            slug: Slug::parse(&slug).map_err(|_| stored("organizations_slug_format"))?,
            name: OrgName::parse(&name).map_err(|_| stored("organizations_name_format"))?,
            require_two_factor: row.try_get("require_two_factor")?,
            require_phishing_resistant: row.try_get("require_phishing_resistant")?,
            required_approvals: row.try_get("required_approvals")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

/// What an ADMIN may change of an organization; `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Changes<'a> {
    pub name: Option<&'a OrgName>,
    pub require_two_factor: Option<bool>,
    pub required_approvals: Option<i32>,
    pub require_phishing_resistant: Option<bool>,
}

/// Renames the organization and/or sets its policies, and audits what changed, in `tx`: the
/// organization as it is now, or `None` if it is gone.
pub async fn change(
    tx: &mut TenantTx,
    changes: Changes<'_>,
    now: DateTime<Utc>,
    actor: UserId,
    source: &RequestSource,
) -> Result<Option<Organization>> {
    let Some(before) = get(tx).await? else {
        return Ok(None);
    };
    sqlx::query(UPDATE)
        .bind(tx.org().as_uuid())
        .bind(changes.name.map(OrgName::as_str))
        .bind(changes.require_two_factor)
        .bind(now)
        .bind(changes.required_approvals)
        .bind(changes.require_phishing_resistant)
        .execute(tx.conn())
        .await?;
    let after = Organization {
        name: changes.name.cloned().unwrap_or_else(|| before.name.clone()),
        require_two_factor: changes.require_two_factor.unwrap_or(before.require_two_factor),
        required_approvals: changes.required_approvals.unwrap_or(before.required_approvals),
        require_phishing_resistant: changes.require_phishing_resistant.unwrap_or(before.require_phishing_resistant),
        ..before.clone()
    };
    let mut updated = AuditEvent::new(events::ORG_UPDATED, events::ORGANIZATION)
        .actor(actor)
        .source(source.clone())
        .resource_id(after.id);
    if before.name != after.name {
        updated = updated.change("name", json!(before.name.as_str()), json!(after.name.as_str()));
    }
    if before.require_phishing_resistant != after.require_phishing_resistant {
        updated = updated.change(
            "require_phishing_resistant",
            json!(before.require_phishing_resistant),
            json!(after.require_phishing_resistant),
        );
    }
    if before.required_approvals != after.required_approvals {
        updated =
            updated.change("required_approvals", json!(before.required_approvals), json!(after.required_approvals));
    }
    if before.require_two_factor != after.require_two_factor {
        updated =
            updated.change("require_two_factor", json!(before.require_two_factor), json!(after.require_two_factor));
    }
    crate::audit::record(tx, &updated).await?;
    Ok(Some(after))
}

/// The organization behind `slug` as the user of `tx` may reach it; `None` both for an
/// unknown slug and for an organization the user does not belong to.
pub async fn access(tx: &mut UserTx, slug: &Slug) -> Result<Option<Access>> {
    Ok(sqlx::query_as(
        "select organization_id, role::text as role, require_two_factor, two_factor_enabled from app.org_access($1)",
    )
    .bind(slug.as_str())
    .fetch_optional(tx.conn())
    .await?)
}

/// The organizations of the user of `tx`, by slug.
pub async fn mine(tx: &mut UserTx, after: Option<&Slug>, limit: i64) -> Result<Vec<Mine>> {
    Ok(sqlx::query_as(
        "select organization_id, slug, name, role::text as role, joined_at from app.my_organizations_page($1, $2)",
    )
    .bind(after.map(Slug::as_str))
    .bind(i32::try_from(limit).unwrap_or(i32::MAX))
    .fetch_all(tx.conn())
    .await?)
}

/// Adds `user` to the organization with `role`.
pub async fn add_member(tx: &mut TenantTx, user: UserId, role: Role) -> Result<()> {
    sqlx::query("insert into app.user_organizations (organization_id, user_id, role) values ($1, $2, $3::app.role)")
        .bind(tx.org().as_uuid())
        .bind(user.as_uuid())
        .bind(role.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Every member with address and role, oldest membership first.
pub async fn members(tx: &mut TenantTx) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(MEMBERS).fetch_all(tx.conn()).await?)
}

/// Where a page of members starts: after the member who joined at `.0` with id `.1`.
pub type MemberCursor = (DateTime<Utc>, UserId);

/// A page of at most `limit` members, oldest membership first, after `after`.
pub async fn members_page(tx: &mut TenantTx, after: Option<MemberCursor>, limit: i64) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "select user_id, email, role::text, joined_at, two_factor_enabled from app.member_directory()
          where $1::timestamptz is null or (joined_at, user_id) > ($1, $2)
          order by joined_at, user_id limit $3",
    )
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1.as_uuid()))
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// The addresses of those of `users` who are members, by id: how a page names the people it
/// shows without reading every member. Someone who left is not among them.
pub async fn addresses(tx: &mut TenantTx, users: &[UserId]) -> Result<Vec<(UserId, String)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<uuid::Uuid> = users.iter().map(|u| u.as_uuid()).collect();
    let rows: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("select user_id, email from app.member_directory() where user_id = any($1)")
            .bind(&ids)
            .fetch_all(tx.conn())
            .await?;
    rows.into_iter().map(|(id, email)| Ok((UserId::from_uuid(id).map_err(|_| stored("users_id"))?, email))).collect()
}

/// Locks the ADMIN memberships until the end of the transaction and says whether removing
/// `user`'s ADMIN role would leave none. Two concurrent changes queue here, and the second sees
/// what the first committed.
async fn role_of_and_last_admin(tx: &mut TenantTx, user: UserId) -> Result<Option<(Role, bool)>> {
    let admins: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select user_id from app.user_organizations where organization_id = $1 and role = 'ADMIN' for update",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let current: Option<String> =
        sqlx::query_scalar("select role::text from app.user_organizations where organization_id = $1 and user_id = $2")
            .bind(tx.org().as_uuid())
            .bind(user.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    current.map(|r| Ok((role(&r)?, admins == [user.as_uuid()]))).transpose()
}

/// Gives `user` a new role, unless that leaves the organization without an ADMIN.
pub async fn change_role(tx: &mut TenantTx, user: UserId, new: Role, now: DateTime<Utc>) -> Result<MembershipChange> {
    let Some((previous, last_admin)) = role_of_and_last_admin(tx, user).await? else {
        return Ok(MembershipChange::NotMember);
    };
    if last_admin && new != Role::Admin {
        return Ok(MembershipChange::LastAdmin);
    }
    // The role they already have: nothing changes, not even `updated_at`.
    if previous == new {
        return Ok(MembershipChange::Done { previous });
    }
    sqlx::query("update app.user_organizations set role = $3::app.role, updated_at = $4 where organization_id = $1 and user_id = $2")
        .bind(tx.org().as_uuid())
        .bind(user.as_uuid())
        .bind(new.as_str())
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(MembershipChange::Done { previous })
}

/// Removes `user` from the organization, unless that leaves it without an ADMIN.
pub async fn remove_member(tx: &mut TenantTx, user: UserId) -> Result<MembershipChange> {
    let Some((previous, last_admin)) = role_of_and_last_admin(tx, user).await? else {
        return Ok(MembershipChange::NotMember);
    };
    if last_admin {
        return Ok(MembershipChange::LastAdmin);
    }
    sqlx::query("delete from app.user_organizations where organization_id = $1 and user_id = $2")
        .bind(tx.org().as_uuid())
        .bind(user.as_uuid())
        .execute(tx.conn())
        .await?;
    Ok(MembershipChange::Done { previous })
}

/// Invites `email` with `role`; an earlier pending invitation of the same address is revoked.
pub async fn invite(
    tx: &mut TenantTx,
    email: &Email,
    role: Role,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Invitation> {
    let org = tx.org().as_uuid();
    sqlx::query(
        "update app.invitations set revoked_at = $3
          where organization_id = $1 and email = $2 and accepted_at is null and revoked_at is null",
    )
    .bind(org)
    .bind(email.as_str())
    .bind(now)
    .execute(tx.conn())
    .await?;
    let id = InvitationId::new();
    let invited_by = tx.actor().map(|u| u.as_uuid());
    sqlx::query(
        "insert into app.invitations (organization_id, id, email, role, token_hash, invited_by, created_at, expires_at)
         values ($1, $2, $3, $4::app.role, $5, $6, $7, $8)",
    )
    .bind(org)
    .bind(id.as_uuid())
    .bind(email.as_str())
    .bind(role.as_str())
    .bind(token_hash.as_bytes())
    .bind(invited_by)
    .bind(now)
    .bind(expires_at)
    .execute(tx.conn())
    .await?;
    Ok(Invitation { id, email: email.as_str().to_owned(), role, invited_by, created_at: now, expires_at })
}

/// Invitations neither accepted, revoked nor expired, newest first.
pub async fn pending_invitations(tx: &mut TenantTx, now: DateTime<Utc>) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(
        "select id, email, role::text as role, invited_by, created_at, expires_at from app.invitations
          where organization_id = $1 and accepted_at is null and revoked_at is null and expires_at > $2
          order by created_at desc, id desc",
    )
    .bind(tx.org().as_uuid())
    .bind(now)
    .fetch_all(tx.conn())
    .await?)
}

/// Revokes a pending invitation; false when there is none with that id.
pub async fn revoke_invitation(tx: &mut TenantTx, id: InvitationId, now: DateTime<Utc>) -> Result<bool> {
    let done = sqlx::query(
        "update app.invitations set revoked_at = $3
          where organization_id = $1 and id = $2 and accepted_at is null and revoked_at is null",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The pending, unexpired invitation behind a token.
pub async fn invitation_for_token(
    tx: &mut UserTx,
    token_hash: &TokenHash,
    now: DateTime<Utc>,
) -> Result<Option<PendingInvitation>> {
    Ok(sqlx::query_as(
        "select organization_id, invitation_id, email, role::text as role from app.invitation_for_token($1, $2)",
    )
    .bind(token_hash.as_bytes())
    .bind(now)
    .fetch_optional(tx.conn())
    .await?)
}

/// How accepting an invitation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    /// Accepted, revoked or expired meanwhile: an invitation is spent once.
    Settled,
    /// The person who sent it may no longer invite members (removed or demoted since): an
    /// invitation carries its inviter's authority, and that authority is gone.
    InviterLacksAuthority,
}

/// Marks an invitation accepted by `user`, if it is still pending and its inviter still holds
/// the role that may invite. The inviter's membership stays locked until the transaction ends,
/// so a demotion racing with the acceptance waits for it (or wins before it and is seen).
pub async fn accept_invitation(
    tx: &mut TenantTx,
    id: InvitationId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<Acceptance> {
    let inviter: Option<Option<uuid::Uuid>> =
        sqlx::query_scalar("select invited_by from app.invitations where organization_id = $1 and id = $2")
            .bind(tx.org().as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    let Some(inviter) = inviter else { return Ok(Acceptance::Settled) };
    let inviter_role: Option<String> =
        match inviter {
            Some(inviter) => sqlx::query_scalar(
                "select role::text from app.user_organizations where organization_id = $1 and user_id = $2 for share",
            )
            .bind(tx.org().as_uuid())
            .bind(inviter)
            .fetch_optional(tx.conn())
            .await?,
            None => None,
        };
    let authorized = inviter_role.map(|r| role(&r)).transpose()?.is_some_and(|r| r.can(Permission::InviteMembers));
    if !authorized {
        return Ok(Acceptance::InviterLacksAuthority);
    }
    let done = sqlx::query(
        "update app.invitations set accepted_at = $4, accepted_by = $3
          where organization_id = $1 and id = $2 and accepted_at is null and revoked_at is null and expires_at > $4",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(user.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(if done.rows_affected() == 1 { Acceptance::Accepted } else { Acceptance::Settled })
}
