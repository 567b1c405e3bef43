//! The API described by itself: `/openapi.json` (OpenAPI 3.1, generated from the handlers'
//! annotations) and `/docs`, a page rendered from that same document with no scripts.

mod page;

use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::OpenApi as _;

use crate::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Marketing OS",
        description = "Multi-tenant backend for healthcare marketing. JSON in and out; errors are RFC 9457 \
                       problem documents (`application/problem+json`) whose `type` is stable per kind of error. \
                       Every response carries an `x-request-id` header, which audit records keep too.",
    ),
    tags(
        (name = "auth", description = "Registration, email verification, sign-in, password reset"),
        (name = "account", description = "The signed-in user's profile, sessions, password and two-factor"),
        (name = "organizations", description = "Organizations (tenants), members and invitations"),
        (name = "audit", description = "An organization's audit trail"),
        (name = "content", description = "Marketing content and its compliance review"),
        (name = "segments", description = "Segments of an organization's contacts: count, preview, saved versions"),
        (name = "senders", description = "Who an organization's messages come from: from and postal addresses, DKIM keys and their DNS records"),
        (name = "webhooks", description = "Signed outgoing webhooks: endpoints subscribed to an organization's events, their secrets and deliveries"),
        (name = "campaigns", description = "Campaigns: an approved piece in an approved template to a segment, launched into a send ledger; their review is the content review's"),
        (name = "signup", description = "An organization's public double opt-in sign-up, for people without an account"),
        (name = "unsubscribe", description = "One-click unsubscribe (RFC 8058) from a message's link, for people without an account"),
        (name = "feedback", description = "Delivery feedback from relays and mail providers: bounces, complaints, deliveries"),
        (name = "operations", description = "Liveness and readiness for orchestrators"),
    ),
    components(schemas(crate::error::Problem, crate::error::PartProblem)),
)]
struct ApiDoc;

/// A string schema whose values are a domain type's labels, so that the document lists exactly
/// what the code accepts.
macro_rules! label_schema {
    ($(#[$doc:meta])* $name:ident, $values:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($values))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use label_schema;

/// The document the routes add their paths to.
pub fn base() -> OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::extract::SESSION_COOKIE,
            "The session as the console's browser holds it. A request with any method but GET, HEAD, OPTIONS \
             or TRACE that only this cookie authorizes must carry the public URL's `Origin`, else 403 \
             `cross_origin`: other clients send the session token as `Authorization: Bearer`.",
        ))),
    );
    components
        .add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    let credential = "A feedback credential's token (`mos feedback credential create`)";
    components.add_security_scheme(
        "feedback_credential",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(format!("{credential}, as a bearer token")))
                .build(),
        ),
    );
    components.add_security_scheme(
        "feedback_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(format!(
                    "{credential}, as the password (any user name), for providers that send only that"
                )))
                .build(),
        ),
    );
    doc
}

/// The refusals an operation can meet whatever its handler does, by what it takes: a body, query
/// parameters, a session, an organization in its path, the database. Generated here, so that
/// no annotation can forget one; a handler's own, more specific description of a status wins.
fn common_problems(path: &str, method: &str, op: &Operation) -> Vec<(&'static str, &'static str)> {
    let mut problems = Vec::new();
    let feedback = path.starts_with("/v1/feedback/");
    if feedback {
        problems.push(("413", "The body is larger than 2 MiB"));
    } else if op.request_body.is_some() {
        problems.extend([
            ("400", "Malformed JSON, or a body of the wrong shape"),
            (
                "413",
                if path.contains("/content") {
                    "The body is larger than 512 KiB"
                } else {
                    "The body is larger than 16 KiB"
                },
            ),
            ("415", "The body is not sent as `application/json`"),
            ("422", "A field is invalid; `field` names it"),
        ]);
    }
    let query = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    if query {
        problems.push(("422", "A query parameter is invalid; `field` names it"));
    }
    if op.security.is_some() {
        problems.push(("401", if feedback { "No live feedback credential was presented" } else { "No live session" }));
    }
    if path.contains("{slug}") && !is_public(path) {
        problems.extend([
            ("403", "Your role does not allow this, or the organization requires two-factor authentication"),
            ("404", "No such organization of yours"),
        ]);
    }
    if path.starts_with("/v1/") {
        if method != "get" {
            problems.push(("409", "A concurrent change to the same data won; nothing was changed, try again"));
        }
        problems.push(("503", "The database is unavailable; try again after `Retry-After` seconds"));
    }
    problems
}

fn problem_response(description: &str) -> RefOr<Response> {
    RefOr::T(ResponseBuilder::new().description(description).content(PROBLEM_TYPE, problem_content()).build())
}

/// Every refusal is an RFC 9457 problem document, whatever the route (`ApiError` makes them
/// all): annotations name a refusal's status and description only, and this is its body.
const PROBLEM_TYPE: &str = "application/problem+json";

fn problem_content() -> Content {
    Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem"))))
}

/// Whether an operation takes a session, as the cookie or as `Authorization: Bearer`: every
/// one under `/v1/` does, except those that sign up or in, which start one (signing out ends
/// one, so it takes it). Declared here rather than on each annotation; a test calls every
/// operation without a session and holds the document to this.
fn needs_session(path: &str) -> bool {
    path.starts_with("/v1/")
        && (!path.starts_with("/v1/auth/") || path == "/v1/auth/logout")
        && !is_public(path)
        && !path.starts_with("/v1/feedback/")
}

/// The routes for people without an account (an organization's public sign-up).
fn is_public(path: &str) -> bool {
    path.starts_with("/v1/public/")
}

fn session_security() -> Vec<SecurityRequirement> {
    let no_scopes: [&str; 0] = [];
    vec![SecurityRequirement::new("session", no_scopes), SecurityRequirement::new("bearer", no_scopes)]
}

/// A feedback credential, as a bearer token or as a Basic password (`api::feedback`).
fn feedback_security() -> Vec<SecurityRequirement> {
    let no_scopes: [&str; 0] = [];
    vec![
        SecurityRequirement::new("feedback_credential", no_scopes),
        SecurityRequirement::new("feedback_basic", no_scopes),
    ]
}

/// A 4xx or 5xx status.
fn is_refusal(status: &str) -> bool {
    status.parse::<u16>().is_ok_and(|code| code >= 400)
}

/// How an annotation's request body description begins when the body may be left out.
pub const OPTIONAL_BODY: &str = "Optional:";

/// Adds each operation's security, its refusals' problem bodies and its common refusals, and
/// to each tenant route's description the permission it needs and the roles that hold it,
/// from the one permission table.
pub fn annotate(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, op) in operations {
            let Some(op) = op else { continue };
            // A body that may be left out is not required, and not nullable: `Option<T>` in an
            // annotation would say that `null` is accepted, which the server refuses.
            if let Some(body) = op.request_body.as_mut() {
                if body.description.as_deref().is_some_and(|d| d.starts_with(OPTIONAL_BODY)) {
                    body.required = Some(utoipa::openapi::Required::False);
                }
            }
            if needs_session(path) {
                op.security = Some(session_security());
            } else if path.starts_with("/v1/feedback/") {
                op.security = Some(feedback_security());
            }
            for response in op.responses.responses.iter_mut().filter(|(status, _)| is_refusal(status)) {
                if let (_, RefOr::T(response)) = response {
                    if response.content.is_empty() {
                        response.content.insert(PROBLEM_TYPE.to_owned(), problem_content());
                    }
                }
            }
            for (status, description) in common_problems(path, method, op) {
                op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
            }
        }
    }
    for (method, path, permission) in crate::access::ROUTES {
        let Some(item) = doc.paths.paths.get_mut(*path) else { continue };
        let operation = match *method {
            "get" => item.get.as_mut(),
            "post" => item.post.as_mut(),
            "put" => item.put.as_mut(),
            "patch" => item.patch.as_mut(),
            "delete" => item.delete.as_mut(),
            _ => None,
        };
        if let Some(op) = operation {
            let text = op.description.take().unwrap_or_default();
            op.description = Some(format!("{text}\n\n{}", permission.requirement()).trim().to_owned());
        }
    }
}

/// The page's style, a file of its own so that the page's Content-Security-Policy needs no
/// inline style.
const STYLE: &str =
    "body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#222}\
code{background:#f3f3f3;padding:0 .25rem;overflow-wrap:anywhere}h2{margin-top:2.5rem;font-size:1.15rem}\
h3{margin-top:1.5rem;font-size:1rem}h4{margin:1rem 0 .25rem;font-size:.95rem}\
.m{display:inline-block;min-width:4.5rem;font-weight:600}.summary{font-weight:600}\
table{border-collapse:collapse;width:100%}th{text-align:left;font-weight:600}\
td,th{padding:.15rem .8rem .15rem 0;vertical-align:top;border-bottom:1px solid #eee}td p{margin:0}\
a{color:#0645ad}a:focus{outline:2px solid #0645ad}";

pub fn router(doc: OpenApi) -> Router<AppState> {
    let page = Html(page::render(&serde_json::to_value(&doc).unwrap_or_default()));
    Router::new()
        .route("/openapi.json", get(move || std::future::ready(Json(doc.clone()))))
        .route("/docs", get(move || std::future::ready(page.clone())))
        .route("/docs.css", get(|| std::future::ready(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE))))
}
