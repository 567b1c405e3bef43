//! Authorization as a type: a handler that takes `Authorized<P>` runs only for a member of the
//! organization in the path whose role holds permission `P`, and within the tenant's
//! two-factor policy. Everything is checked here, against the one permission table.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use mos_db::orgs;
use mos_db::sessions::Live;
use mos_domain::{AuditAction, AuditEvent, OrgId, Outcome, Permission, RequestSource, ResourceType, Slug};
use serde_json::json;

use crate::extract::{Authenticated, Client};
use crate::{ApiError, AppState};

/// A permission named as a type, so that a handler's signature says what it needs.
pub trait Needs: Send + Sync + 'static {
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($name:ident),* $(,)?) => {$(
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}

needs!(ReadOrganization, ManageOrganization, ReadMembers, InviteMembers, ChangeRoles, RemoveMembers, ReadAuditLog);

/// Which permission each tenant route needs, for the OpenAPI descriptions. The role × route
/// tests hold every entry against what the route actually allows.
pub const ROUTES: &[(&str, &str, Permission)] = &[
    ("get", "/v1/orgs/{slug}", Permission::ReadOrganization),
    ("patch", "/v1/orgs/{slug}", Permission::ManageOrganization),
    ("get", "/v1/orgs/{slug}/members", Permission::ReadMembers),
    ("patch", "/v1/orgs/{slug}/members/{user_id}", Permission::ChangeRoles),
    ("delete", "/v1/orgs/{slug}/members/{user_id}", Permission::RemoveMembers),
    ("post", "/v1/orgs/{slug}/leave", Permission::ReadOrganization),
    ("post", "/v1/orgs/{slug}/invitations", Permission::InviteMembers),
    ("get", "/v1/orgs/{slug}/invitations", Permission::InviteMembers),
    ("delete", "/v1/orgs/{slug}/invitations/{id}", Permission::InviteMembers),
    ("get", "/v1/orgs/{slug}/audit-logs", Permission::ReadAuditLog),
    ("get", "/v1/orgs/{slug}/audit-logs/export", Permission::ReadAuditLog),
];

const ACCESS_DENIED: AuditAction = AuditAction::known("access.denied");
const ORGANIZATION: ResourceType = ResourceType::known("organization");

/// The organization of the path, the member acting in it, and proof that they may do `P`.
pub struct Authorized<P: Needs> {
    pub org: OrgId,
    pub session: Live,
    /// Whether the acting member has two-factor on.
    pub two_factor_enabled: bool,
    pub source: RequestSource,
    _needs: PhantomData<P>,
}

impl<P: Needs> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(session) = Authenticated::from_request_parts(parts, state).await?;
        let Ok(Client(source)) = Client::from_request_parts(parts, state).await;
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        // A malformed slug names no organization: the same 404 as a stranger's.
        let slug = params.get("slug").and_then(|s| Slug::parse(s).ok()).ok_or(ApiError::NotFound)?;
        let mut tx = state.pool.begin_user(session.user).await?;
        let access = orgs::access(&mut tx, &slug).await?;
        tx.commit().await?;
        let access = access.ok_or(ApiError::NotFound)?;

        let refusal = if access.require_two_factor && !access.two_factor_enabled {
            Some((ApiError::TwoFactorRequired, "two_factor_required"))
        } else if !access.role.can(P::PERMISSION) {
            Some((ApiError::Forbidden(P::PERMISSION), "permission"))
        } else {
            None
        };
        if let Some((error, reason)) = refusal {
            let denied = AuditEvent::new(ACCESS_DENIED, ORGANIZATION)
                .actor(session.user)
                .resource_id(access.org)
                .outcome(Outcome::Denied)
                .source(source)
                .meta("permission", json!(P::PERMISSION.as_str()))
                .meta("role", json!(access.role.as_str()))
                .meta("reason", json!(reason))
                .meta("method", json!(parts.method.as_str()))
                .meta("path", json!(parts.uri.path()));
            mos_db::audit::record_outcome(&state.pool, access.org, Some(session.user), &denied).await?;
            return Err(error);
        }
        Ok(Self {
            org: access.org,
            session,
            two_factor_enabled: access.two_factor_enabled,
            source,
            _needs: PhantomData,
        })
    }
}

impl<P: Needs> Authorized<P> {
    /// A transaction in this organization, acting as this member.
    pub async fn begin(&self, state: &AppState) -> Result<mos_db::TenantTx, ApiError> {
        Ok(state.pool.begin_tenant(self.org, Some(self.session.user)).await?)
    }

    /// Sensitive changes (roles) need a recent sign-in, as for the account's own security.
    pub fn require_recent(&self, state: &AppState) -> Result<(), ApiError> {
        crate::extract::require_recent(state, &self.session)
    }
}
