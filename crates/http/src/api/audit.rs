//! The tenant's audit trail for its ADMINs: filtered, keyset-paginated reads, and exports as
//! NDJSON or CSV that stream from a database cursor to the client without holding the log in
//! memory.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::audit::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ReadAuditLog};
use crate::app::audit::csv_field;
use crate::extract::ApiQuery;
use crate::{app, ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(export)).routes(routes!(chain))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Search {
    /// Only records whose actor is this user.
    actor: Option<uuid::Uuid>,
    /// Only this action, e.g. `member.role_changed`.
    action: Option<String>,
    /// Only this kind of resource, e.g. `membership`.
    resource_type: Option<String>,
    resource_id: Option<String>,
    /// From this time on (inclusive), RFC 3339.
    from: Option<DateTime<Utc>>,
    /// Before this time (exclusive), RFC 3339.
    to: Option<DateTime<Utc>>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50); not for the export.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// For the export only: `ndjson` (default) or `csv`.
    #[param(inline)]
    format: Option<Format>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ndjson,
    Csv,
}

#[derive(Serialize, ToSchema)]
pub struct Record {
    id: uuid::Uuid,
    actor: Option<uuid::Uuid>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    #[schema(example = "success")]
    outcome: String,
    #[schema(value_type = Option<String>)]
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
    request_id: Option<String>,
    changes: serde_json::Value,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
}

impl From<AuditRecord> for Record {
    fn from(r: AuditRecord) -> Self {
        Self {
            id: r.id,
            actor: r.actor,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            outcome: r.outcome,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            changes: r.changes,
            metadata: r.metadata,
            created_at: r.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Page {
    items: Vec<Record>,
    /// Pass as `cursor` for the next, older page; absent on the last page.
    next_cursor: Option<String>,
}

impl Search {
    /// What the route searches for, as the operation takes it.
    fn search(&self) -> app::audit::Search {
        app::audit::Search {
            actor: self.actor,
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            from: self.from,
            to: self.to,
        }
    }
}

/// The organization's audit records, newest first, filtered and paginated by cursor.
#[utoipa::path(get, path = "/v1/orgs/{slug}/audit-logs", tag = "audit",
    params(("slug" = String, Path), Search),
    responses(
        (status = 200, body = Page),
        (status = 422, description = "A filter is malformed"),
    ))]
async fn list(mut auth: Authorized<ReadAuditLog>, ApiQuery(search): ApiQuery<Search>) -> Result<Json<Page>, ApiError> {
    if search.format.is_some() {
        return Err(ApiError::Invalid { field: "format", message: "format applies to the export only".into() });
    }
    let (records, next_cursor) =
        app::audit::page(&mut auth, &search.search(), search.cursor.as_deref(), search.limit).await?;
    auth.commit().await?;
    Ok(Json(Page { items: records.into_iter().map(Record::from).collect(), next_cursor }))
}

const CSV_HEADER: &str =
    "id,created_at,actor,action,resource_type,resource_id,outcome,ip,user_agent,request_id,changes,metadata\r\n";

fn csv_line(r: &Record) -> String {
    let fields = [
        r.id.to_string(),
        r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        r.actor.map(|a| a.to_string()).unwrap_or_default(),
        r.action.clone(),
        r.resource_type.clone(),
        r.resource_id.clone().unwrap_or_default(),
        r.outcome.clone(),
        r.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        r.user_agent.clone().unwrap_or_default(),
        r.request_id.clone().unwrap_or_default(),
        r.changes.to_string(),
        r.metadata.to_string(),
    ];
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Every matching record (same filters as the list, no pagination), streamed as NDJSON or CSV.
#[utoipa::path(get, path = "/v1/orgs/{slug}/audit-logs/export", tag = "audit",
    params(("slug" = String, Path), Search),
    responses(
        (status = 200, description = "application/x-ndjson or text/csv, streamed", content_type = "application/x-ndjson"),
        (status = 422, description = "Unknown format or malformed filter"),
    ))]
async fn export(auth: Authorized<ReadAuditLog>, ApiQuery(search): ApiQuery<Search>) -> Result<Response, ApiError> {
    if search.limit.is_some() || search.cursor.is_some() {
        return Err(ApiError::Invalid {
            field: "limit",
            message: "the export has every matching record: no limit or cursor".into(),
        });
    }
    let csv = search.format == Some(Format::Csv);
    let search = search.search();
    // A malformed filter is refused before the answer starts.
    search.filter(None)?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        if csv && sender.send(Ok(Bytes::from_static(CSV_HEADER.as_bytes()))).await.is_err() {
            return;
        }
        let streamed = app::audit::export(auth, &search, |record| {
            let record = Record::from(record);
            let line = if csv {
                csv_line(&record)
            } else {
                let mut line = serde_json::to_string(&record).unwrap_or_default();
                line.push('\n');
                line
            };
            let sender = sender.clone();
            async move { sender.send(Ok(Bytes::from(line))).await.is_ok() }
        })
        .await;
        if let Err(e) = streamed {
            tracing::error!(error = ?e, "audit export failed");
            // Cut the body short, so that the client sees a broken transfer, not a short log.
            let _ = sender.send(Err(std::io::Error::other("export failed"))).await;
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let content_type = if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    let filename = if csv { "audit-log.csv" } else { "audit-log.ndjson" };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        use crate::app::audit::parse_cursor;
        use data_encoding::BASE64URL_NOPAD;
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = uuid::Uuid::now_v7();
        let text = BASE64URL_NOPAD.encode(format!("{}|{id}", at.timestamp_micros()).as_bytes());
        assert_eq!(parse_cursor(&text), Some((at, id)));
        assert_eq!(parse_cursor("not-a-cursor"), None);
    }
}

/// The first broken link of the chain.
#[derive(Serialize, ToSchema)]
pub struct BrokenLink {
    seq: i64,
    /// `changed`, `deleted`, `inserted` or `reordered`.
    reason: String,
    detail: String,
}

/// The state of the organization's hash chain, as `mos audit verify` reports it.
#[derive(Serialize, ToSchema)]
pub struct ChainState {
    /// True when every sealed link holds.
    intact: bool,
    /// Links checked.
    records: i64,
    /// The last good link: its sequence number and hash (hex).
    head_seq: i64,
    head_hash: String,
    /// Records written but not sealed into the chain yet (sealing runs every second).
    pending: i64,
    oldest_pending: Option<DateTime<Utc>>,
    broken: Option<BrokenLink>,
}

/// Verify the organization's audit chain now: every sealed record is recomputed and linked,
/// like `mos audit verify` does for one organization. Costs a pass over the whole trail.
#[utoipa::path(get, path = "/v1/orgs/{slug}/audit-logs/chain", tag = "audit",
    params(("slug" = String, Path)),
    responses((status = 200, body = ChainState)))]
async fn chain(
    State(state): State<AppState>,
    mut auth: Authorized<ReadAuditLog>,
) -> Result<Json<ChainState>, ApiError> {
    let report = app::audit::verify_chain(&state, &mut auth).await?;
    auth.commit().await?;
    Ok(Json(ChainState {
        intact: report.broken.is_none(),
        records: report.records,
        head_seq: report.head.0,
        head_hash: hex::encode(report.head.1),
        pending: report.pending.0,
        oldest_pending: report.pending.1,
        broken: report.broken.map(|b| BrokenLink { seq: b.seq, reason: b.reason.to_string(), detail: b.detail }),
    }))
}
