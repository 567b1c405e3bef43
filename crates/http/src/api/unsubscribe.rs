//! RFC 8058's one-click unsubscribe: the `POST` that a mail client sends to a message's
//! `List-Unsubscribe` address when the person presses its unsubscribe button. No session, no
//! cookie, no form token (the client has none of ours); the signed token in the address is the
//! authority, and the body must be exactly what RFC 8058 prescribes. Opening the same address in
//! a browser shows the preference centre (`console::unsubscribe`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use secrecy::SecretString;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::unsubscribe;
use crate::extract::Client;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(one_click))
}

/// The one field of a one-click unsubscribe, form-encoded (or as a multipart form).
#[derive(ToSchema)]
#[allow(dead_code)] // Documents the body, which the handler reads as bytes.
pub struct OneClick {
    #[schema(rename = "List-Unsubscribe", pattern = "^One-Click$", example = "One-Click")]
    list_unsubscribe: String,
}

#[derive(Serialize, ToSchema)]
pub struct Unsubscribed {
    #[schema(example = "unsubscribed")]
    status: &'static str,
}

/// One-click unsubscribe (RFC 8058) from a message's `List-Unsubscribe` link.
///
/// Revokes the contact's consent for the message's purpose and suppresses its address, in the
/// transaction that answers: the next message to it is refused. A repeat answers the same and
/// records nothing; so does the link of an erased contact. A link that is forged, altered, cut
/// short or another server's is not found, whatever it names.
#[utoipa::path(post, path = "/u/{token}", tag = "unsubscribe",
    request_body(content = OneClick, content_type = "application/x-www-form-urlencoded",
                 description = "`List-Unsubscribe=One-Click`; `multipart/form-data` with the same field is accepted too"),
    params(("token" = String, Path, description = "The token of the message's link")),
    responses(
        (status = 200, body = Unsubscribed),
        (status = 404, description = "Not a link this server made"),
        (status = 422, description = "The body is not `List-Unsubscribe=One-Click`; nothing was changed"),
    ))]
async fn one_click(
    State(state): State<AppState>,
    Client(source): Client,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Unsubscribed>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !unsubscribe::is_one_click(content_type, &body) {
        return Err(ApiError::Invalid {
            field: "List-Unsubscribe",
            message:
                "send List-Unsubscribe=One-Click, form-encoded, as RFC 8058 says; to choose, open the link in a browser"
                    .to_owned(),
        });
    }
    unsubscribe::one_click(&state, &source, &SecretString::from(token)).await?;
    Ok(Json(Unsubscribed { status: "unsubscribed" }))
}
