use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error a handler can return, mapped to an RFC 9457 problem response in this one place.
/// Each kind has a stable `type` URI; server-side causes go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON for this endpoint: {0}")]
    MalformedBody(String),
    #[error("the request body is larger than {} KiB, the limit of this route", limit / 1024)]
    BodyTooLarge { limit: usize },
    #[error("the request body must be JSON, sent with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    /// A query parameter at fault, named as the client sent it.
    #[error("{message}")]
    InvalidParameter { name: String, message: String },
    /// A structured request field (a segment's definition) with one or more parts at fault,
    /// each named by a JSON Pointer into the request body.
    #[error("{field} is invalid: {}", .errors.iter().map(|e| format!("{}: {}", e.pointer, e.detail)).collect::<Vec<_>>().join("; "))]
    InvalidParts { field: &'static str, errors: Vec<PartProblem> },
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("verify your email address first; the link is in the email we sent")]
    EmailNotVerified,
    #[error("the link or token is invalid, expired or already used")]
    InvalidToken,
    #[error("the sign-in challenge is invalid, expired or out of attempts; sign in again")]
    InvalidChallenge,
    #[error("the code is not valid")]
    InvalidCode,
    #[error("this code was already used; wait for the next one (a new code every 30 seconds)")]
    CodeReused,
    #[error("sign in first")]
    Unauthenticated,
    #[error("present a live feedback credential (mos feedback credential create): as a bearer token, or as the password of HTTP Basic authentication")]
    FeedbackCredential,
    #[error("{0}")]
    FeedbackRefused(String),
    #[error(
        "the message is still being handed over, and its hand-over is not recorded yet: send the report again later"
    )]
    FeedbackEarly,
    #[error("a change authorized by the session cookie must come from this site's own pages; other clients send the session token as a bearer token")]
    CrossOrigin,
    #[error("confirm your password (and code) again to make this change")]
    ReauthenticationRequired,
    #[error("too many attempts; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error("not found")]
    NotFound,
    #[error("this method is not allowed here; the Allow header lists the ones that are")]
    MethodNotAllowed,
    #[error("your role in this organization does not allow `{0}`")]
    Forbidden(mos_domain::Permission),
    #[error("this organization requires two-factor authentication; turn it on for your account first")]
    TwoFactorRequired,
    #[error("this organization requires sign-in with a passkey; add a passkey to your account, then sign in with it (or confirm it is you with it)")]
    PhishingResistantRequired,
    #[error("this account has a passkey, so adding or removing one needs a session that a passkey signed in or confirmed (POST /v1/me/reauthenticate/passkey); a password and code are not enough")]
    PasskeySessionRequired,
    #[error("you belong to an organization that requires passkeys, so your first passkey is added through a link mailed to your address: ask for one (POST /v1/me/passkeys/enrollment) and open it")]
    PasskeyEnrollmentLinkRequired,
    #[error("the passkey ceremony is invalid, expired or already used; start again")]
    InvalidCeremony,
    #[error("the passkey's answer could not be verified")]
    PasskeyFailed,
    #[error("this passkey's signature counter went backwards, so a copy of it may exist; it was refused, and the attempt is on your account's record")]
    PasskeyCloned,
    #[error("the organization would be left without an ADMIN; make someone else ADMIN first")]
    LastAdmin,
    #[error("this invitation was sent to another email address; sign in with that address to accept it")]
    InvitationForAnotherAddress,
    #[error("the person who sent this invitation may no longer invite members; ask an ADMIN of the organization for a new one")]
    InviterLacksAuthority,
    #[error("{0}")]
    Conflict(&'static str),
    /// A conflict that one request field causes (an address the organization already has, a
    /// name in use, an address that is suppressed), named as the client wrote it.
    #[error("{message}")]
    ConflictOn { field: &'static str, message: String },
    #[error("{0}")]
    Review(#[from] mos_domain::content::Refusal),
    #[error(
        "the item changed since you read it (it is at revision {revision} now); load it again and redo your change"
    )]
    PreconditionFailed { revision: i32 },
    #[error("send If-Match with the ETag of the item as you last read it, so that nobody's change is overwritten")]
    PreconditionRequired,
    #[error("If-Match: * matches whatever revision is current, so it would overwrite a change made since you read the item; send its ETag instead")]
    PreconditionAny,
    #[error("the latest version is {number}, not the one you named; review that one")]
    VersionChanged { number: i32 },
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] Cause),
    #[error("the server is busy with other long computations; try again after Retry-After seconds")]
    Busy,
    #[error("the request took too long and was stopped; nothing of it was kept, try again")]
    RequestTimeout,
    #[error("the database check, or a failed request, found a problem; the server log names it")]
    NotReady,
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// Seconds a client should wait before trying again while the database is away.
const UNAVAILABLE_RETRY_AFTER: u64 = 2;

/// What made a request fail on our side, kept whole for the log; the client sees only the
/// generic title.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// An error and every error under it, for one log line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Whether the database server's own files failed `error` or anything under it.
fn server_broken(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(cause) = next {
        if cause.downcast_ref::<mos_db::DbError>().is_some_and(mos_db::DbError::is_server_broken) {
            return true;
        }
        next = cause.source();
    }
    false
}

/// One part of a request field at fault: where (an RFC 6901 JSON Pointer into the request
/// body, such as `/definition/all/2/value`) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PartProblem {
    #[schema(example = "/definition/all/2/value")]
    pub pointer: String,
    pub detail: String,
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, `urn:mos:problem:<kind>`.
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
    /// The request field or query parameter at fault, for `invalid_field` and for a conflict
    /// that one field causes.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// For a field with parts (a segment's definition): every part at fault, as RFC 9457's
    /// example extension `errors` names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<PartProblem>>,
}

impl ApiError {
    fn describe(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            MalformedBody(_) => (StatusCode::BAD_REQUEST, "malformed_body", "Malformed request body"),
            BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "Request body too large"),
            UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type")
            }
            Invalid { .. } | InvalidParameter { .. } | InvalidParts { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "Invalid field")
            }
            InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", "Invalid credentials"),
            EmailNotVerified => (StatusCode::FORBIDDEN, "email_not_verified", "Email not verified"),
            InvalidToken => (StatusCode::BAD_REQUEST, "invalid_token", "Invalid token"),
            InvalidChallenge => (StatusCode::UNAUTHORIZED, "invalid_challenge", "Invalid sign-in challenge"),
            InvalidCode => (StatusCode::UNAUTHORIZED, "invalid_code", "Invalid code"),
            CodeReused => (StatusCode::UNAUTHORIZED, "code_reused", "Code already used"),
            Unauthenticated | FeedbackCredential => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "Authentication required")
            }
            FeedbackRefused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "feedback_refused", "Feedback refused"),
            FeedbackEarly => (StatusCode::SERVICE_UNAVAILABLE, "feedback_early", "Feedback too early"),
            CrossOrigin => (StatusCode::FORBIDDEN, "cross_origin", "Cross-origin request"),
            ReauthenticationRequired => {
                (StatusCode::FORBIDDEN, "reauthentication_required", "Recent authentication required")
            }
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many attempts"),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed"),
            Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            TwoFactorRequired => (StatusCode::FORBIDDEN, "two_factor_required", "Two-factor authentication required"),
            PhishingResistantRequired => {
                (StatusCode::FORBIDDEN, "phishing_resistant_required", "Phishing-resistant sign-in required")
            }
            PasskeySessionRequired => (StatusCode::FORBIDDEN, "passkey_session_required", "Passkey session required"),
            PasskeyEnrollmentLinkRequired => {
                (StatusCode::FORBIDDEN, "passkey_enrollment_link_required", "Mailed enrollment link required")
            }
            InvalidCeremony => (StatusCode::UNAUTHORIZED, "invalid_ceremony", "Invalid passkey ceremony"),
            PasskeyFailed => (StatusCode::UNAUTHORIZED, "passkey_failed", "Passkey not verified"),
            PasskeyCloned => (StatusCode::UNAUTHORIZED, "passkey_cloned", "Possibly cloned passkey"),
            LastAdmin => (StatusCode::CONFLICT, "last_admin", "Last ADMIN"),
            InvitationForAnotherAddress => {
                (StatusCode::FORBIDDEN, "invitation_for_another_address", "Invitation for another address")
            }
            InviterLacksAuthority => {
                (StatusCode::FORBIDDEN, "inviter_lacks_authority", "Invitation no longer backed by its sender")
            }
            Conflict(_) | ConflictOn { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Review(refusal) => {
                use mos_domain::content::Refusal;
                match refusal {
                    Refusal::Role(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
                    Refusal::NotOwner(_) => (StatusCode::FORBIDDEN, "not_owner", "Not your item"),
                    Refusal::OwnVersion => (StatusCode::FORBIDDEN, "separation_of_duties", "Separation of duties"),
                    Refusal::KindFixed => (StatusCode::CONFLICT, "kind_fixed", "A campaign stays a campaign"),
                    Refusal::AlreadyApproved => (StatusCode::CONFLICT, "already_approved", "Already approved"),
                    Refusal::WrongState { .. } => (StatusCode::CONFLICT, "invalid_transition", "Invalid transition"),
                    Refusal::ApprovalsLapsed { .. } => (StatusCode::CONFLICT, "approvals_lapsed", "Approvals lapsed"),
                }
            }
            PreconditionFailed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed", "Precondition failed")
            }
            PreconditionRequired | PreconditionAny => {
                (StatusCode::PRECONDITION_REQUIRED, "precondition_required", "Precondition required")
            }
            VersionChanged { .. } => (StatusCode::CONFLICT, "version_changed", "Version changed"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", "Server busy"),
            RequestTimeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout", "Request timed out"),
            NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }
}

impl ApiError {
    /// The status of the answer, whichever door (API or console) gives it.
    pub fn status(&self) -> StatusCode {
        self.describe().0
    }

    /// What a page says of this error: the problem's `detail`. A cause on our side goes to the
    /// log, as for the JSON answer; a database server that cannot use its own files is
    /// reported to the readiness check.
    pub fn shown(&self, readiness: &crate::Readiness) -> String {
        if let ApiError::Unavailable(cause) | ApiError::Internal(cause) = self {
            tracing::error!(kind = self.describe().1, cause = %chain(cause.as_ref()), "page failed");
            if matches!(self, ApiError::Internal(_)) && server_broken(cause.as_ref()) {
                readiness.server_broken();
            }
        }
        self.to_string()
    }
}

impl From<mos_db::DbError> for ApiError {
    fn from(e: mos_db::DbError) -> Self {
        if matches!(e, mos_db::DbError::Contention) {
            ApiError::Conflict("a concurrent change to the same data won; nothing was changed, try again")
        } else if matches!(e, mos_db::DbError::Cancelled) {
            ApiError::RequestTimeout
        } else if e.is_unavailable() {
            ApiError::Unavailable(Box::new(e))
        } else {
            ApiError::Internal(Box::new(e))
        }
    }
}

impl From<crate::clicks::ClickError> for ApiError {
    fn from(error: crate::clicks::ClickError) -> Self {
        use crate::clicks::ClickError;
        match error {
            ClickError::NotFound => ApiError::NotFound,
            ClickError::Db(e) => e.into(),
            broken @ (ClickError::Template(_) | ClickError::Content(_) | ClickError::Lost(_)) => {
                ApiError::Internal(Box::new(broken))
            }
        }
    }
}

impl From<mos_auth::PasswordError> for ApiError {
    fn from(e: mos_auth::PasswordError) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

impl From<mos_auth::SealError> for ApiError {
    fn from(e: mos_auth::SealError) -> Self {
        ApiError::Internal(Box::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.describe();
        let detail = match &self {
            ApiError::Unavailable(cause) | ApiError::Internal(cause) => {
                tracing::error!(kind, cause = %chain(cause.as_ref()), "request failed");
                self.to_string()
            }
            other => other.to_string(),
        };
        let field = match &self {
            ApiError::Invalid { field, .. }
            | ApiError::ConflictOn { field, .. }
            | ApiError::InvalidParts { field, .. } => Some((*field).to_owned()),
            ApiError::InvalidParameter { name, .. } => Some(name.clone()),
            _ => None,
        };
        let errors = match &self {
            ApiError::InvalidParts { errors, .. } => Some(errors.clone()),
            _ => None,
        };
        let body =
            Problem { kind: format!("urn:mos:problem:{kind}"), title, status: status.as_u16(), detail, field, errors };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self {
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unavailable(_)
            | ApiError::Busy
            | ApiError::RequestTimeout
            | ApiError::NotReady
            | ApiError::FeedbackEarly => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER));
            }
            ApiError::Unauthenticated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // Amazon SNS sends the user and password of a subscription's address only after a
            // Basic challenge.
            ApiError::FeedbackCredential => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"feedback\", Bearer"));
            }
            _ => {}
        }
        if let ApiError::Internal(cause) = &self {
            if server_broken(cause.as_ref()) {
                response.extensions_mut().insert(crate::api::health::ServerBroken);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::{chain, ApiError};

    #[derive(Debug, thiserror::Error)]
    #[error("sealing the record failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_log_gets_the_whole_cause_and_the_client_a_generic_word() {
        let error = ApiError::Internal(Box::new(Outer(std::io::Error::other("disk full"))));
        assert_eq!(error.to_string(), "internal error");
        let ApiError::Internal(cause) = &error else { unreachable!() };
        assert_eq!(chain(cause.as_ref()), "sealing the record failed: disk full");
    }
}
