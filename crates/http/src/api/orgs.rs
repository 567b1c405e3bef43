//! Organizations, their members and invitations. Routes under `/v1/orgs/{slug}` take an
//! [`Authorized`] that names the permission they need; a non-member gets 404, so the slugs of
//! other tenants cannot be probed. Every change is audited in the tenant's log, in the
//! transaction of the change.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::orgs;
use mos_domain::Role;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{
    Authorized, ChangeRoles, InviteMembers, Leave, ManageOrganization, ReadMembers, ReadOrganization, RemoveMembers,
};
use crate::extract::{ApiJson, ApiQuery, Authenticated, Client};
use crate::{app, ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_org, list_mine))
        .routes(routes!(get_org, update_org))
        .routes(routes!(list_members))
        .routes(routes!(change_role, remove_member))
        .routes(routes!(leave))
        .routes(routes!(invite, list_invitations))
        .routes(routes!(revoke_invitation))
        .routes(routes!(accept_invitation))
}

crate::api::docs::label_schema!(
    /// A role, as the API spells it: the schema of `Role`, from its one list.
    RoleName,
    Role::ALL.iter().map(|r| r.as_str())
);

#[derive(Serialize, ToSchema)]
pub struct Org {
    id: uuid::Uuid,
    slug: String,
    name: String,
    /// Members without two-factor authentication cannot reach the organization's data.
    require_two_factor: bool,
    /// Members whose session no passkey established cannot reach the organization's data.
    require_phishing_resistant: bool,
    /// Distinct approvals, by members other than its author, that a content version needs.
    required_approvals: i32,
    created_at: DateTime<Utc>,
}

impl From<orgs::Organization> for Org {
    fn from(o: orgs::Organization) -> Self {
        Self {
            id: o.id.as_uuid(),
            slug: o.slug.to_string(),
            name: o.name.to_string(),
            require_two_factor: o.require_two_factor,
            require_phishing_resistant: o.require_phishing_resistant,
            required_approvals: o.required_approvals,
            created_at: o.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MyOrg {
    id: uuid::Uuid,
    slug: String,
    name: String,
    #[schema(value_type = RoleName, example = "ADMIN")]
    role: Role,
    joined_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    user_id: uuid::Uuid,
    email: String,
    #[schema(value_type = RoleName, example = "VIEWER")]
    role: Role,
    joined_at: DateTime<Utc>,
    two_factor_enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct InvitationView {
    id: uuid::Uuid,
    email: String,
    #[schema(value_type = RoleName, example = "CREATOR")]
    role: Role,
    invited_by: Option<uuid::Uuid>,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl From<orgs::Invitation> for InvitationView {
    fn from(i: orgs::Invitation) -> Self {
        Self {
            id: i.id.as_uuid(),
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// 3 to 63 lowercase letters, digits and single hyphens.
    #[schema(example = "acme-health", min_length = 3, max_length = 63, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    slug: String,
    /// 1 to 200 characters, no control characters; trimmed.
    #[schema(
        example = "Acme Health",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgChange {
    /// 1 to 200 characters, no control characters; trimmed.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    name: Option<String>,
    require_two_factor: Option<bool>,
    /// Distinct approvals a content version needs, 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    required_approvals: Option<i32>,
    /// Require sign-in with a passkey (phishing-resistant) of every member.
    require_phishing_resistant: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    #[schema(value_type = RoleName, example = "REVIEWER")]
    role: Role,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    #[schema(example = "grace@example.com", format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = RoleName, example = "CREATOR")]
    role: Role,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationToken {
    #[schema(value_type = String)]
    token: SecretString,
}

/// Create an organization; its creator becomes its ADMIN.
#[utoipa::path(post, path = "/v1/orgs", tag = "organizations", request_body = NewOrg,
    responses(
        (status = 201, body = Org),
        (status = 409, description = "The slug is taken"),
        (status = 422, description = "Invalid slug or name"),
    ))]
async fn create_org(
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<NewOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    let org = app::orgs::create(auth, &source, &body.slug, &body.name).await?;
    Ok((StatusCode::CREATED, Json(org.into())))
}

/// A page of the organizations you belong to.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MinePage {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct MyOrgs {
    /// By slug.
    items: Vec<MyOrg>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// The organizations you belong to, with your role in each, by slug, a page at a time.
#[utoipa::path(get, path = "/v1/orgs", tag = "organizations",
    params(MinePage),
    responses(
        (status = 200, body = MyOrgs),
        (status = 422, description = "Malformed cursor or limit"),
    ))]
async fn list_mine(mut auth: Authenticated, ApiQuery(page): ApiQuery<MinePage>) -> Result<Json<MyOrgs>, ApiError> {
    let (mine, next_cursor) = app::orgs::mine(&mut auth, page.cursor.as_deref(), page.limit).await?;
    auth.tx.commit().await?;
    let items = mine
        .into_iter()
        .map(|m| MyOrg {
            id: m.org.as_uuid(),
            slug: m.slug.to_string(),
            name: m.name.to_string(),
            role: m.role,
            joined_at: m.joined_at,
        })
        .collect();
    Ok(Json(MyOrgs { items, next_cursor }))
}

/// The organization.
#[utoipa::path(get, path = "/v1/orgs/{slug}", tag = "organizations",
    params(("slug" = String, Path)),
    responses((status = 200, body = Org)))]
async fn get_org(mut auth: Authorized<ReadOrganization>) -> Result<Json<Org>, ApiError> {
    let org = app::orgs::get(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(org.into()))
}

/// Rename the organization or set its policies: two-factor, sign-in with a passkey
/// (phishing-resistant; the ADMIN's own session must be one), and how many distinct approvals a
/// content version needs. Setting a policy needs a recent sign-in; requiring two-factor takes
/// an ADMIN who has it on; members without it then cannot reach the organization until they
/// enroll. A new approval count applies to approvals given from then on.
#[utoipa::path(patch, path = "/v1/orgs/{slug}", tag = "organizations", request_body = OrgChange,
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = Org),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 409, description = "Requiring two-factor without having it on, or requiring passkeys from a session that no passkey signed in or confirmed (`POST /v1/me/reauthenticate/passkey`)"),
        (status = 422, description = "Invalid name"),
    ))]
async fn update_org(
    State(state): State<AppState>,
    auth: Authorized<ManageOrganization>,
    ApiJson(body): ApiJson<OrgChange>,
) -> Result<Json<Org>, ApiError> {
    let change = app::orgs::Change {
        name: body.name,
        require_two_factor: body.require_two_factor,
        required_approvals: body.required_approvals,
        require_phishing_resistant: body.require_phishing_resistant,
    };
    Ok(Json(app::orgs::update(&state, auth, change).await?.into()))
}

/// The members, with their roles.
#[utoipa::path(get, path = "/v1/orgs/{slug}/members", tag = "organizations",
    params(("slug" = String, Path)),
    responses((status = 200, body = Vec<MemberView>)))]
async fn list_members(mut auth: Authorized<ReadMembers>) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = app::orgs::members(&mut auth).await?;
    auth.commit().await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                user_id: m.user.as_uuid(),
                email: m.email,
                role: m.role,
                joined_at: m.joined_at,
                two_factor_enabled: m.two_factor_enabled,
            })
            .collect(),
    ))
}

/// Change a member's role. Needs a recent sign-in; the last ADMIN cannot be demoted. Setting
/// the role a member already has answers 204 too, and changes and records nothing.
#[utoipa::path(patch, path = "/v1/orgs/{slug}/members/{user_id}", tag = "organizations", request_body = RoleChange,
    params(("slug" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Changed, or already that role (nothing recorded then)"),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 404, description = "No such organization or member"),
        (status = 409, description = "It would leave no ADMIN"),
    ))]
async fn change_role(
    State(state): State<AppState>,
    auth: Authorized<ChangeRoles>,
    Path((_, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleChange>,
) -> Result<StatusCode, ApiError> {
    app::orgs::change_role(&state, auth, &user, body.role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member. Needs a recent sign-in; the last ADMIN cannot be removed.
#[utoipa::path(delete, path = "/v1/orgs/{slug}/members/{user_id}", tag = "organizations",
    params(("slug" = String, Path), ("user_id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 404, description = "No such organization or member"),
        (status = 409, description = "It would leave no ADMIN"),
    ))]
async fn remove_member(
    State(state): State<AppState>,
    auth: Authorized<RemoveMembers>,
    Path((_, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app::orgs::remove_member(&state, auth, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave the organization; its last ADMIN cannot. Where the organization requires passkeys, it
/// needs a session that a passkey signed in or confirmed, like every other route there.
#[utoipa::path(post, path = "/v1/orgs/{slug}/leave", tag = "organizations",
    params(("slug" = String, Path)),
    responses(
        (status = 204, description = "Left"),
        (status = 403, description = "The organization requires a passkey session"),
        (status = 409, description = "You are its last ADMIN"),
    ))]
async fn leave(auth: Authorized<Leave>) -> Result<StatusCode, ApiError> {
    app::orgs::leave(auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invite someone by email with a role; they may have to register first. The link is good for
/// seven days and once; inviting the same address again replaces the earlier invitation. Needs
/// a recent sign-in.
#[utoipa::path(post, path = "/v1/orgs/{slug}/invitations", tag = "organizations", request_body = NewInvitation,
    params(("slug" = String, Path)),
    responses(
        (status = 201, body = InvitationView),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 422, description = "Invalid email"),
    ))]
async fn invite(
    State(state): State<AppState>,
    auth: Authorized<InviteMembers>,
    ApiJson(body): ApiJson<NewInvitation>,
) -> Result<(StatusCode, Json<InvitationView>), ApiError> {
    let invitation = app::orgs::invite(&state, auth, &body.email, body.role).await?;
    Ok((StatusCode::CREATED, Json(invitation.into())))
}

/// Pending invitations.
#[utoipa::path(get, path = "/v1/orgs/{slug}/invitations", tag = "organizations",
    params(("slug" = String, Path)),
    responses((status = 200, body = Vec<InvitationView>)))]
async fn list_invitations(
    State(state): State<AppState>,
    mut auth: Authorized<InviteMembers>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    let pending = app::orgs::invitations(&state, &mut auth).await?;
    auth.commit().await?;
    Ok(Json(pending.into_iter().map(Into::into).collect()))
}

/// Revoke a pending invitation. Needs a recent sign-in.
#[utoipa::path(delete, path = "/v1/orgs/{slug}/invitations/{id}", tag = "organizations",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 404, description = "No such pending invitation"),
    ))]
async fn revoke_invitation(
    State(state): State<AppState>,
    auth: Authorized<InviteMembers>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app::orgs::revoke_invitation(&state, auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invitation with the token from its email, signed in with the invited address.
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "organizations", request_body = InvitationToken,
    responses(
        (status = 200, body = MyOrg, description = "You are a member now"),
        (status = 400, description = "Invalid, expired, revoked or used invitation"),
        (status = 403, description = "The invitation is for another address, or its sender may no longer invite members"),
        (status = 409, description = "Already a member"),
    ))]
async fn accept_invitation(
    State(state): State<AppState>,
    Client(source): Client,
    auth: Authenticated,
    ApiJson(body): ApiJson<InvitationToken>,
) -> Result<Json<MyOrg>, ApiError> {
    let joined = app::orgs::accept_invitation(&state, auth, &source, &body.token).await?;
    Ok(Json(MyOrg {
        id: joined.org.id.as_uuid(),
        slug: joined.org.slug.to_string(),
        name: joined.org.name.to_string(),
        role: joined.role,
        joined_at: joined.joined_at,
    }))
}
