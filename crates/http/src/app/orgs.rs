//! Organizations, their members and invitations. Every operation on one organization takes the
//! member's [`Authorized`] for the permission it needs; every change is audited in the
//! tenant's log, in the transaction of the change, and commits here.

use chrono::{DateTime, Duration, Utc};
use data_encoding::BASE64URL_NOPAD;
use mos_auth::OneTimeToken;
use mos_db::orgs::{self, Invitation, Member, MemberCursor, MembershipChange, Mine, Organization};
use mos_db::{audit, users, DbError, TenantTx};
use mos_domain::events::{self, INVITATION, MEMBERSHIP};
use mos_domain::{AuditAction, AuditEvent, OrgId, OrgName, RequestSource, ResourceType, Role, Slug, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::access::{
    Authorized, ChangeRoles, InviteMembers, Leave, ManageOrganization, ReadMembers, ReadOrganization, RemoveMembers,
};
use crate::app::signin::parse_email;
use crate::extract::Authenticated;
use crate::{mail, paging, ApiError, AppState};

pub const INVITATION_VALIDITY: Duration = Duration::days(7);

fn event(action: AuditAction, resource: ResourceType, actor: UserId, source: &RequestSource) -> AuditEvent {
    AuditEvent::new(action, resource).actor(actor).source(source.clone())
}

fn parse_user(id: &str) -> Result<UserId, ApiError> {
    UserId::parse(id).map_err(|_| ApiError::NotFound)
}

async fn current(tx: &mut TenantTx) -> Result<Organization, ApiError> {
    orgs::get(tx).await?.ok_or(ApiError::NotFound)
}

/// Creates an organization whose ADMIN is the signed-in user.
pub async fn create(
    auth: Authenticated,
    source: &RequestSource,
    slug: &str,
    name: &str,
) -> Result<Organization, ApiError> {
    let slug = Slug::parse(slug).map_err(|e| ApiError::Invalid { field: "slug", message: e.to_string() })?;
    let name = OrgName::parse(name).map_err(|e| ApiError::Invalid { field: "name", message: e.to_string() })?;
    let Authenticated { session, tx } = auth;
    let mut tx = tx.into_tenant(OrgId::new()).await?;
    let org = match orgs::create(&mut tx, &slug, &name, session.user, source).await {
        Err(DbError::Conflict { .. }) => return Err(ApiError::Conflict("that slug is taken; choose another")),
        other => other?,
    };
    tx.commit().await?;
    Ok(org)
}

/// A page of the organizations of the signed-in user, by slug, and the cursor of the next.
pub async fn mine(
    auth: &mut Authenticated,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Mine>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let after = cursor
        .map(|c| {
            let slug = BASE64URL_NOPAD.decode(c.as_bytes()).ok().and_then(|raw| String::from_utf8(raw).ok());
            slug.and_then(|s| Slug::parse(&s).ok()).ok_or_else(paging::bad_cursor)
        })
        .transpose()?;
    let rows = orgs::mine(&mut auth.tx, after.as_ref(), limit + 1).await?;
    Ok(paging::split(rows, limit, |o: &Mine| BASE64URL_NOPAD.encode(o.slug.as_str().as_bytes())))
}

/// The organization.
pub async fn get(auth: &mut Authorized<ReadOrganization>) -> Result<Organization, ApiError> {
    current(&mut auth.tx).await
}

/// What an ADMIN asks to change of an organization; `None` leaves a field as it is.
#[derive(Default)]
pub struct Change {
    pub name: Option<String>,
    pub require_two_factor: Option<bool>,
    pub required_approvals: Option<i32>,
    pub require_phishing_resistant: Option<bool>,
}

/// Renames the organization or sets its policies. A policy needs a recent sign-in, and one
/// that would lock out the ADMIN who sets it is refused.
pub async fn update(
    state: &AppState,
    auth: Authorized<ManageOrganization>,
    change: Change,
) -> Result<Organization, ApiError> {
    let name = change
        .name
        .as_deref()
        .map(OrgName::parse)
        .transpose()
        .map_err(|e| ApiError::Invalid { field: "name", message: e.to_string() })?;
    if change.required_approvals.is_some_and(|n| !(1..=5).contains(&n)) {
        return Err(ApiError::Invalid {
            field: "required_approvals",
            message: "required_approvals must be 1 to 5".into(),
        });
    }
    // A rename changes nobody's access; a policy does.
    if change.require_two_factor.is_some()
        || change.required_approvals.is_some()
        || change.require_phishing_resistant.is_some()
    {
        auth.require_recent(state)?;
    }
    if change.require_two_factor == Some(true) && !auth.session.two_factor_enabled {
        return Err(ApiError::Conflict(
            "turn on two-factor for your own account first, or this policy would lock you out",
        ));
    }
    if change.require_phishing_resistant == Some(true) && !auth.session.phishing_resistant {
        return Err(ApiError::Conflict(
            "sign in with a passkey of your own first (or confirm it is you with one), or this policy would lock you out",
        ));
    }
    let mut tx = auth.tx;
    let changes = orgs::Changes {
        name: name.as_ref(),
        require_two_factor: change.require_two_factor,
        required_approvals: change.required_approvals,
        require_phishing_resistant: change.require_phishing_resistant,
    };
    let after = orgs::change(&mut tx, changes, state.clock.now(), auth.session.user, &auth.source)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(after)
}

/// Every member, with address and role, oldest membership first.
pub async fn members(auth: &mut Authorized<ReadMembers>) -> Result<Vec<Member>, ApiError> {
    Ok(orgs::members(&mut auth.tx).await?)
}

/// A page of members, oldest membership first, and the cursor of the next page.
pub async fn members_page(
    auth: &mut Authorized<ReadMembers>,
    cursor: Option<&str>,
    limit: i64,
) -> Result<(Vec<Member>, Option<String>), ApiError> {
    let after = cursor.map(|c| parse_member_cursor(c).ok_or_else(paging::bad_cursor)).transpose()?;
    let rows = orgs::members_page(&mut auth.tx, after, limit + 1).await?;
    Ok(paging::split(rows, limit, |m: &Member| {
        BASE64URL_NOPAD.encode(format!("{}|{}", m.joined_at.timestamp_micros(), m.user).as_bytes())
    }))
}

fn parse_member_cursor(text: &str) -> Option<MemberCursor> {
    let raw = String::from_utf8(BASE64URL_NOPAD.decode(text.as_bytes()).ok()?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    Some((DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?, UserId::parse(id).ok()?))
}

fn settled(change: MembershipChange) -> Result<Role, ApiError> {
    match change {
        MembershipChange::Done { previous } => Ok(previous),
        MembershipChange::NotMember => Err(ApiError::NotFound),
        MembershipChange::LastAdmin => Err(ApiError::LastAdmin),
    }
}

/// Gives a member another role. Needs a recent sign-in; the last ADMIN stays one. The role
/// they already have changes and records nothing.
pub async fn change_role(
    state: &AppState,
    auth: Authorized<ChangeRoles>,
    user: &str,
    role: Role,
) -> Result<(), ApiError> {
    auth.require_recent(state)?;
    let user = parse_user(user)?;
    let mut tx = auth.tx;
    let previous = settled(orgs::change_role(&mut tx, user, role, state.clock.now()).await?)?;
    // The role they already have changes nothing, so there is nothing to record either.
    if previous != role {
        let changed = event(events::MEMBER_ROLE_CHANGED, MEMBERSHIP, auth.session.user, &auth.source)
            .resource_id(user)
            .change("role", json!(previous.as_str()), json!(role.as_str()));
        audit::record(&mut tx, &changed).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Removes a member. Needs a recent sign-in; the last ADMIN stays.
pub async fn remove_member(state: &AppState, auth: Authorized<RemoveMembers>, user: &str) -> Result<(), ApiError> {
    auth.require_recent(state)?;
    let user = parse_user(user)?;
    let mut tx = auth.tx;
    let previous = settled(orgs::remove_member(&mut tx, user).await?)?;
    let removed = event(events::MEMBER_REMOVED, MEMBERSHIP, auth.session.user, &auth.source).resource_id(user).change(
        "role",
        json!(previous.as_str()),
        json!(null),
    );
    audit::record(&mut tx, &removed).await?;
    tx.commit().await?;
    Ok(())
}

/// The member leaves; the last ADMIN cannot.
pub async fn leave(auth: Authorized<Leave>) -> Result<(), ApiError> {
    let me = auth.session.user;
    let mut tx = auth.tx;
    let previous = settled(orgs::remove_member(&mut tx, me).await?)?;
    let left = event(events::MEMBER_LEFT, MEMBERSHIP, me, &auth.source).resource_id(me).change(
        "role",
        json!(previous.as_str()),
        json!(null),
    );
    audit::record(&mut tx, &left).await?;
    tx.commit().await?;
    Ok(())
}

/// Invites someone by email with a role, and mails them the link. Needs a recent sign-in.
pub async fn invite(
    state: &AppState,
    auth: Authorized<InviteMembers>,
    email: &str,
    role: Role,
) -> Result<Invitation, ApiError> {
    auth.require_recent(state)?;
    let email = parse_email(email)?;
    let now = state.clock.now();
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut tx = auth.tx;
    let org = current(&mut tx).await?;
    let invitation = orgs::invite(&mut tx, &email, role, &token.hash, now, now + INVITATION_VALIDITY).await?;
    let created = event(events::INVITATION_CREATED, INVITATION, auth.session.user, &auth.source)
        .resource_id(invitation.id)
        .change("email", json!(null), json!(email.as_str()))
        .change("role", json!(null), json!(role.as_str()));
    audit::record(&mut tx, &created).await?;
    tx.commit().await?;
    let link = format!("{}/accept-invitation?token={}", state.settings.public_url, token.secret.expose_secret());
    let text = format!(
        "You are invited to join {} on Marketing OS as {}.\n\nAccept within seven days (register first if you have no account yet):\n\n{link}\n",
        org.name, role
    );
    mail::send_later(
        &state.mailer,
        mail::letter(&state.settings.mail_from, email.as_str(), &format!("Join {} on Marketing OS", org.name), text),
    );
    Ok(invitation)
}

/// The pending invitations.
pub async fn invitations(state: &AppState, auth: &mut Authorized<InviteMembers>) -> Result<Vec<Invitation>, ApiError> {
    Ok(orgs::pending_invitations(&mut auth.tx, state.clock.now()).await?)
}

/// Revokes a pending invitation. Needs a recent sign-in.
pub async fn revoke_invitation(state: &AppState, auth: Authorized<InviteMembers>, id: &str) -> Result<(), ApiError> {
    auth.require_recent(state)?;
    let id = mos_domain::InvitationId::parse(id).map_err(|_| ApiError::NotFound)?;
    let mut tx = auth.tx;
    if !orgs::revoke_invitation(&mut tx, id, state.clock.now()).await? {
        return Err(ApiError::NotFound);
    }
    audit::record(
        &mut tx,
        &event(events::INVITATION_REVOKED, INVITATION, auth.session.user, &auth.source).resource_id(id),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// An organization joined: what it is, and the role in it.
pub struct Joined {
    pub org: Organization,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// Accepts an invitation with the token of its email, as the signed-in user with the invited
/// address.
pub async fn accept_invitation(
    state: &AppState,
    auth: Authenticated,
    source: &RequestSource,
    token: &SecretString,
) -> Result<Joined, ApiError> {
    let Authenticated { session: live, mut tx } = auth;
    let now = state.clock.now();
    let email = users::profile(&mut tx).await?.ok_or(ApiError::Unauthenticated)?.email;
    let hash = mos_auth::token::hash_presented(token).ok_or(ApiError::InvalidToken)?;
    let pending = orgs::invitation_for_token(&mut tx, &hash, now).await?.ok_or(ApiError::InvalidToken)?;
    if pending.email != email {
        return Err(ApiError::InvitationForAnotherAddress);
    }
    let mut tx = tx.into_tenant(pending.org).await?;
    match orgs::accept_invitation(&mut tx, pending.id, live.user, now).await? {
        orgs::Acceptance::Accepted => {}
        orgs::Acceptance::Settled => return Err(ApiError::InvalidToken),
        orgs::Acceptance::InviterLacksAuthority => return Err(ApiError::InviterLacksAuthority),
    }
    match orgs::add_member(&mut tx, live.user, pending.role).await {
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::Conflict("you are already a member of this organization"))
        }
        other => other?,
    }
    audit::record(&mut tx, &event(events::INVITATION_ACCEPTED, INVITATION, live.user, source).resource_id(pending.id))
        .await?;
    let added = event(events::MEMBER_ADDED, MEMBERSHIP, live.user, source)
        .resource_id(live.user)
        .change("role", json!(null), json!(pending.role.as_str()))
        .meta("invitation_id", json!(pending.id));
    audit::record(&mut tx, &added).await?;
    let org = current(&mut tx).await?;
    tx.commit().await?;
    Ok(Joined { org, role: pending.role, joined_at: now })
}

/// The addresses of those of `users` who are members, by id: how a page names the people it
/// shows with one query of just them. Someone who left is not among them.
pub async fn addresses(
    auth: &mut Authorized<ReadMembers>,
    users: &[UserId],
) -> Result<std::collections::HashMap<UserId, String>, ApiError> {
    Ok(orgs::addresses(&mut auth.tx, users).await?.into_iter().collect())
}
