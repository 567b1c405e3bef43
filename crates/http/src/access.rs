//! Authorization as a type: a handler that takes `Authorized<P>` runs only for a member of the
//! organization in the path whose role holds permission `P`, and within the tenant's
//! two-factor policy. Everything is checked here, against the one permission table.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::Method;
use mos_auth::TokenHash;
use mos_db::request::{Authorization, Hold};
use mos_db::sessions::Live;
use mos_db::{audit, TenantTx};
use mos_domain::events::{ACCESS_DENIED, ORGANIZATION};
use mos_domain::{AuditEvent, Outcome, Permission, RequestSource, Role, Slug};
use serde_json::json;

use crate::extract::{presented_hash, session_rules, Client};
use crate::{ApiError, AppState};

/// A permission named as a type, so that a handler's signature says what it needs.
pub trait Needs: Send + Sync + 'static {
    const PERMISSION: Permission;
    /// Whether the route changes memberships, and so must hold the ADMINs' rows from the start.
    const CHANGES_MEMBERSHIPS: bool = false;
    /// Whether a member whom the two-factor policy keeps out may still do it. Nothing passes the
    /// passkey (phishing-resistant) policy this way.
    const DESPITE_TWO_FACTOR_POLICY: bool = false;
}

macro_rules! needs {
    ($($name:ident),* $(,)?) => {$(
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$name;
        }
    )*};
}

needs!(
    ReadOrganization,
    ManageOrganization,
    ReadMembers,
    InviteMembers,
    ReadAuditLog,
    ReadContent,
    WriteContent,
    ReviewContent,
    PublishContent,
    ReadAudience,
    ConfigureAudience,
    ReadContacts,
    ManageContacts,
    ManageSegments,
    ExportContacts,
    EraseContacts,
    ReadSenders,
    ManageSenders,
    SendCampaigns,
    ManageWebhooks,
);

macro_rules! changes_memberships {
    ($($name:ident => $permission:ident),* $(,)?) => {$(
        pub struct $name;
        impl Needs for $name {
            const PERMISSION: Permission = Permission::$permission;
            const CHANGES_MEMBERSHIPS: bool = true;
        }
    )*};
}

changes_memberships!(ChangeRoles => ChangeRoles, RemoveMembers => RemoveMembers);

/// Leaving an organization. Possible also for a member whom its two-factor policy keeps out:
/// nobody can be held in an organization. Not past a passkey policy: there a password and a
/// relayed code would let a phisher take the member out (and their access with them); a member
/// without a passkey adds one through the mailed link, or an ADMIN removes them.
pub struct Leave;
impl Needs for Leave {
    const PERMISSION: Permission = Permission::ReadOrganization;
    const CHANGES_MEMBERSHIPS: bool = true;
    const DESPITE_TWO_FACTOR_POLICY: bool = true;
}

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
    ("get", "/v1/orgs/{slug}/audit-logs/chain", Permission::ReadAuditLog),
    ("post", "/v1/orgs/{slug}/content", Permission::WriteContent),
    ("get", "/v1/orgs/{slug}/content", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}", Permission::ReadContent),
    ("patch", "/v1/orgs/{slug}/content/{id}", Permission::WriteContent),
    ("get", "/v1/orgs/{slug}/content/{id}/versions", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}/versions/{number}", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}/diff", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}/history", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}/first-use", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/content/{id}/first-use/evidence", Permission::ReadContent),
    ("post", "/v1/orgs/{slug}/content/{id}/submit", Permission::WriteContent),
    ("post", "/v1/orgs/{slug}/content/{id}/withdraw", Permission::WriteContent),
    ("post", "/v1/orgs/{slug}/content/{id}/comments", Permission::ReviewContent),
    ("post", "/v1/orgs/{slug}/content/{id}/request-changes", Permission::ReviewContent),
    ("post", "/v1/orgs/{slug}/content/{id}/approve", Permission::ReviewContent),
    ("post", "/v1/orgs/{slug}/content/{id}/publish", Permission::PublishContent),
    ("post", "/v1/orgs/{slug}/content/{id}/archive", Permission::PublishContent),
    ("get", "/v1/orgs/{slug}/audience", Permission::ReadAudience),
    ("get", "/v1/orgs/{slug}/purposes", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/purposes", Permission::ConfigureAudience),
    ("get", "/v1/orgs/{slug}/purposes/{id}/notices", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/purposes/{id}/notices", Permission::ConfigureAudience),
    ("get", "/v1/orgs/{slug}/attributes", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/attributes", Permission::ConfigureAudience),
    ("get", "/v1/orgs/{slug}/contacts", Permission::ReadContacts),
    ("post", "/v1/orgs/{slug}/contacts", Permission::ManageContacts),
    ("get", "/v1/orgs/{slug}/contacts/{id}", Permission::ReadContacts),
    ("patch", "/v1/orgs/{slug}/contacts/{id}", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/contacts/{id}/consent", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/contacts/{id}/erase", Permission::EraseContacts),
    ("get", "/v1/orgs/{slug}/contacts/{id}/export", Permission::ExportContacts),
    ("get", "/v1/orgs/{slug}/contacts/{id}/consent-receipt", Permission::ExportContacts),
    ("get", "/v1/orgs/{slug}/suppressions", Permission::ReadContacts),
    ("post", "/v1/orgs/{slug}/suppressions", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/suppressions/check", Permission::ReadContacts),
    ("get", "/v1/orgs/{slug}/segments", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/segments", Permission::ManageSegments),
    ("post", "/v1/orgs/{slug}/segments/count", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/segments/preview", Permission::ReadContacts),
    ("get", "/v1/orgs/{slug}/segments/{id}", Permission::ReadAudience),
    ("post", "/v1/orgs/{slug}/segments/{id}/versions", Permission::ManageSegments),
    ("get", "/v1/orgs/{slug}/segments/{id}/versions/{number}", Permission::ReadAudience),
    ("get", "/v1/orgs/{slug}/imports", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/imports", Permission::ManageContacts),
    ("get", "/v1/orgs/{slug}/imports/{id}", Permission::ManageContacts),
    ("get", "/v1/orgs/{slug}/imports/{id}/preview", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/imports/{id}/start", Permission::ManageContacts),
    ("post", "/v1/orgs/{slug}/imports/{id}/cancel", Permission::ManageContacts),
    ("get", "/v1/orgs/{slug}/imports/{id}/problems", Permission::ManageContacts),
    ("get", "/v1/orgs/{slug}/senders", Permission::ReadSenders),
    ("post", "/v1/orgs/{slug}/senders", Permission::ManageSenders),
    ("get", "/v1/orgs/{slug}/senders/{id}", Permission::ReadSenders),
    ("patch", "/v1/orgs/{slug}/senders/{id}", Permission::ManageSenders),
    ("post", "/v1/orgs/{slug}/senders/{id}/keys", Permission::ManageSenders),
    ("post", "/v1/orgs/{slug}/senders/{id}/keys/{key}/retire", Permission::ManageSenders),
    ("get", "/v1/orgs/{slug}/campaigns", Permission::ReadContent),
    ("post", "/v1/orgs/{slug}/campaigns", Permission::WriteContent),
    ("get", "/v1/orgs/{slug}/campaigns/{id}", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/campaigns/{id}/report.csv", Permission::ReadContent),
    ("put", "/v1/orgs/{slug}/campaigns/{id}", Permission::WriteContent),
    ("post", "/v1/orgs/{slug}/campaigns/{id}/launch", Permission::SendCampaigns),
    ("post", "/v1/orgs/{slug}/campaigns/{id}/pause", Permission::SendCampaigns),
    ("post", "/v1/orgs/{slug}/campaigns/{id}/resume", Permission::SendCampaigns),
    ("post", "/v1/orgs/{slug}/campaigns/{id}/cancel", Permission::SendCampaigns),
    ("get", "/v1/orgs/{slug}/campaigns/{id}/messages", Permission::ReadContent),
    ("get", "/v1/orgs/{slug}/campaigns/{id}/preview", Permission::ReadContacts),
    ("get", "/v1/orgs/{slug}/sending-breaker", Permission::ReadOrganization),
    ("patch", "/v1/orgs/{slug}/sending-breaker", Permission::ManageOrganization),
    ("post", "/v1/orgs/{slug}/sending-breaker/resume", Permission::ManageOrganization),
    ("get", "/v1/orgs/{slug}/reports/sending.csv", Permission::ReadOrganization),
    ("get", "/v1/orgs/{slug}/webhooks", Permission::ManageWebhooks),
    ("post", "/v1/orgs/{slug}/webhooks", Permission::ManageWebhooks),
    ("get", "/v1/orgs/{slug}/webhooks/{id}", Permission::ManageWebhooks),
    ("post", "/v1/orgs/{slug}/webhooks/{id}/disable", Permission::ManageWebhooks),
    ("post", "/v1/orgs/{slug}/webhooks/{id}/enable", Permission::ManageWebhooks),
    ("post", "/v1/orgs/{slug}/webhooks/{id}/rotate-secret", Permission::ManageWebhooks),
];

/// The organization of the path, the member acting in it, proof that they may do `P`, and the
/// request's one transaction, scoped to the organization and the member. The check and the
/// handler's work run in that transaction: a role changed before the check is seen by it, and
/// a role changed after it cannot undo a change that the check allowed and that commits with it.
pub struct Authorized<P: Needs> {
    pub session: Live,
    /// The member's role, as of the check.
    pub role: Role,
    pub source: RequestSource,
    pub tx: TenantTx,
    hold: Hold,
    /// Whether the organization's two-factor policy keeps this member out (they came in with
    /// a permission that passes it).
    kept_out: bool,
    _needs: PhantomData<P>,
}

impl<P: Needs> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let hash = presented_hash(parts)?;
        let Ok(Client(source)) = Client::from_request_parts(parts, state).await;
        let Path(params) =
            Path::<HashMap<String, String>>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        let slug = params.get("slug").map(String::as_str).unwrap_or_default();
        let request = Request { method: &parts.method, path: parts.uri.path() };
        Self::check(state, &hash, slug, source, request).await
    }
}

/// What a refusal's audit record says of the request that was refused.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub path: &'a str,
}

impl<P: Needs> Authorized<P> {
    /// Checks that the session behind `hash` belongs to a member of the organization `slug`
    /// whose role holds `P`, within the organization's policies, and opens the request's one
    /// transaction. A refusal is audited. Every door (the API's extractor, the console's pages)
    /// comes through here.
    pub async fn check(
        state: &AppState,
        hash: &TokenHash,
        slug: &str,
        source: RequestSource,
        request: Request<'_>,
    ) -> Result<Self, ApiError> {
        let now = state.clock.now();
        let Ok(slug) = Slug::parse(slug) else {
            // A malformed slug names no organization: the same 404 as a stranger's, once the
            // session is known to be live.
            let (_, tx) =
                state.pool.authenticate(hash, now, session_rules(state)).await?.ok_or(ApiError::Unauthenticated)?;
            tx.commit().await?;
            return Err(ApiError::NotFound);
        };
        // A change holds the member's role until it commits; a read only needs its snapshot.
        let hold = match (request.method.is_safe(), P::CHANGES_MEMBERSHIPS) {
            (true, _) => Hold::Nothing,
            (false, false) => Hold::Member,
            (false, true) => Hold::Admins,
        };
        let authorized = state.pool.authorize(hash, &slug, now, session_rules(state), hold).await?;
        let (session, access, mut tx) = match authorized {
            None => return Err(ApiError::Unauthenticated),
            Some(Authorization::Stranger { .. }) => return Err(ApiError::NotFound),
            Some(Authorization::Member { session, access, tx }) => (session, access, tx),
        };

        // A passkey is two factors in one (possession and user verification).
        let two_factor = access.two_factor_enabled || session.phishing_resistant;
        let kept_out = access.require_two_factor && !two_factor;
        let refusal = if kept_out && !P::DESPITE_TWO_FACTOR_POLICY {
            Some((ApiError::TwoFactorRequired, "two_factor_required"))
        } else if access.require_phishing_resistant && !session.phishing_resistant {
            Some((ApiError::PhishingResistantRequired, "phishing_resistant_required"))
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
                .meta("method", json!(request.method.as_str()))
                .meta("path", json!(request.path));
            // Nothing else happened in this transaction: the refusal is all it commits.
            audit::record(&mut tx, &denied).await?;
            tx.commit().await?;
            return Err(error);
        }
        Ok(Self { session, role: access.role, source, tx, hold, kept_out, _needs: PhantomData })
    }

    /// The same member, transaction and check, for another permission that their role holds
    /// too: how a page that shows several things reads them in one transaction. Not for a
    /// permission that the two-factor policy keeps this member from, nor for one that changes
    /// memberships without the hold such a change takes. The transaction holds what the first
    /// check held: a grant checked for a read (a GET) holds no row, so it serves reads, as the
    /// API's GET routes do. No record is written: nothing was attempted, the page just shows
    /// less.
    pub fn also<Q: Needs>(self) -> Result<Authorized<Q>, Box<Self>> {
        if !self.may::<Q>() {
            return Err(Box::new(self));
        }
        let Self { session, role, source, tx, hold, kept_out, .. } = self;
        Ok(Authorized { session, role, source, tx, hold, kept_out, _needs: PhantomData })
    }

    /// Whether [`Authorized::also`] would give `Q`.
    pub fn may<Q: Needs>(&self) -> bool {
        self.role.can(Q::PERMISSION)
            && (!self.kept_out || Q::DESPITE_TWO_FACTOR_POLICY)
            && (!Q::CHANGES_MEMBERSHIPS || self.hold == Hold::Admins)
    }

    /// Ends the request's transaction.
    pub async fn commit(self) -> Result<(), ApiError> {
        Ok(self.tx.commit().await?)
    }

    /// Sensitive changes (roles) need a recent sign-in, as for the account's own security.
    pub fn require_recent(&self, state: &AppState) -> Result<(), ApiError> {
        crate::extract::require_recent(state, &self.session)
    }
}
