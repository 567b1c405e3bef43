use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Every error a handler can return, mapped to an RFC 9457 problem response in this one place.
/// Server-side causes go to the log; the client gets a stable `type` and a generic text.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the database is not reachable")]
    Unavailable(#[source] mos_db::DbError),
}

#[derive(Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = match &self {
            ApiError::Unavailable(cause) => {
                tracing::error!(error = %cause, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:mos:problem:unavailable",
                    "Service unavailable",
                )
            }
        };
        let body = Problem {
            kind,
            title,
            status: status.as_u16(),
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            axum::Json(body),
        )
            .into_response()
    }
}
