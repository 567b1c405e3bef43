//! Contact imports under `/v1/orgs/{slug}/imports`: upload a CSV file as the request body
//! (streamed to the database, never held whole), read its first rows and a suggested mapping,
//! start it, watch it, cancel it, and download the problems of its rows as CSV. Adapters over
//! `app::imports`; every route needs `contacts.manage`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::audiences::import::{Provenance, Target};
use mos_db::audiences::import_views::Status;
use mos_domain::{ImportId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ManageContacts};
use crate::api::docs::label_schema;
use crate::app::imports::{self as app, Mappable, ProvenanceInput};
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_imports, upload_import))
        .routes(routes!(get_import))
        .routes(routes!(preview_import))
        .routes(routes!(start_import))
        .routes(routes!(cancel_import))
        .routes(routes!(import_problems))
}

label_schema!(
    /// Where an import is: `uploaded` (not started), then its job's state.
    ImportStateName,
    ["uploaded", "queued", "running", "succeeded", "failed", "cancelled"].into_iter()
);
label_schema!(
    /// What a column fills.
    FieldName,
    ["address", "name", "locale", "time_zone", "tags", "attribute"].into_iter()
);
label_schema!(
    /// The lawful basis an import records: consent, or a documented exemption.
    ImportBasisName,
    ["consent", "exemption"].into_iter()
);

/// What one column of the file fills.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnTarget {
    #[schema(value_type = FieldName)]
    field: String,
    /// The attribute's name, for `attribute` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl From<Target> for ColumnTarget {
    fn from(t: Target) -> Self {
        let field = |f: &str| Self { field: f.to_owned(), name: None };
        match t {
            Target::Address => field("address"),
            Target::Name => field("name"),
            Target::Locale => field("locale"),
            Target::TimeZone => field("time_zone"),
            Target::Tags => field("tags"),
            Target::Attribute(name) => Self { field: "attribute".into(), name: Some(name) },
        }
    }
}

/// The provenance an import's consent records.
#[derive(Serialize, ToSchema)]
pub struct ProvenanceView {
    purpose: uuid::Uuid,
    #[schema(value_type = ImportBasisName)]
    lawful_basis: String,
    exemption: Option<String>,
    notice_sha256: String,
    description: String,
}

/// An import and its progress.
#[derive(Serialize, ToSchema)]
pub struct ImportView {
    #[schema(value_type = uuid::Uuid)]
    id: ImportId,
    file_name: String,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    created_at: DateTime<Utc>,
    /// SHA-256 of the file, in hex.
    file_sha256: Option<String>,
    size_bytes: Option<i64>,
    #[schema(value_type = ImportStateName)]
    state: String,
    /// Data rows read so far (each row once, whatever became of it).
    rows_done: i64,
    /// Data rows in the file, once known; the file is not counted ahead of the import.
    rows_total: Option<i64>,
    /// Rows read per second of running time.
    rows_per_second: Option<f64>,
    /// Contacts added.
    imported: i64,
    /// Rows whose address the organization already had: left unchanged.
    existing: i64,
    /// Rows whose address is suppressed: added without consent.
    suppressed: i64,
    /// Rows refused for an invalid field.
    invalid: i64,
    /// Rows refused so far, as the job counts them; the problems CSV also lists the rows
    /// left unchanged (an address already there or earlier in the file) and suppressed ones.
    errors: i64,
    cancel_requested: bool,
    /// Why the last attempt failed, if it did.
    last_error: Option<String>,
    finished_at: Option<DateTime<Utc>>,
    /// Per column of the header, what it fills (`null`: left out); none before the start.
    mapping: Option<Vec<Option<ColumnTarget>>>,
    /// Where the list came from; none: imported without consent.
    provenance: Option<ProvenanceView>,
}

impl From<Status> for ImportView {
    fn from(s: Status) -> Self {
        let rows_per_second = s.rows_per_second();
        let i = s.import;
        let state = s.job_state.unwrap_or_else(|| "uploaded".to_owned());
        let mapping = i
            .mapping
            .and_then(|m| serde_json::from_value::<Vec<Option<Target>>>(m).ok())
            .map(|m| m.into_iter().map(|t| t.map(ColumnTarget::from)).collect());
        let provenance =
            i.provenance.and_then(|p| serde_json::from_value::<Provenance>(p).ok()).map(|p| ProvenanceView {
                purpose: p.purpose.as_uuid(),
                lawful_basis: if p.exemption.is_some() { "exemption" } else { "consent" }.to_owned(),
                exemption: p.exemption,
                notice_sha256: p.notice_sha256,
                description: p.description,
            });
        Self {
            id: i.id,
            file_name: i.file_name,
            created_by: i.created_by,
            created_at: i.created_at,
            file_sha256: i.file_sha256.map(hex::encode),
            size_bytes: i.size_bytes,
            state,
            rows_done: s.job_done.unwrap_or(0),
            rows_total: s.job_total,
            rows_per_second,
            errors: i.invalid,
            imported: i.imported,
            existing: i.existing,
            suppressed: i.suppressed,
            invalid: i.invalid,
            cancel_requested: s.job_cancel_requested_at.is_some(),
            last_error: s.job_last_error,
            finished_at: i.finished_at,
            mapping,
            provenance,
        }
    }
}

/// An uploaded file's first rows and the mapping suggested from its header.
#[derive(Serialize, ToSchema)]
pub struct MappingPreview {
    import: ImportView,
    /// `,` or `;`, detected from the header line.
    delimiter: String,
    header: Vec<String>,
    /// The first data rows, as read.
    rows: Vec<Vec<String>>,
    /// Per column of the header, what it seems to fill (`null`: nothing recognised).
    suggested_mapping: Vec<Option<ColumnTarget>>,
}

impl From<Mappable> for MappingPreview {
    fn from(m: Mappable) -> Self {
        Self {
            import: m.status.into(),
            delimiter: char::from(m.preview.delimiter).to_string(),
            header: m.preview.header,
            rows: m.preview.rows,
            suggested_mapping: m.suggested.into_iter().map(|t| t.map(ColumnTarget::from)).collect(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The file's name, as the import list shows it.
    #[param(max_length = 255)]
    file_name: Option<String>,
}

/// Upload a CSV file as the request body (`Content-Type: text/csv`), UTF-8 with or without a
/// byte order mark, with a header row, separated by commas or semicolons. The body is stored
/// as it arrives; past the server's limit (`MOS_IMPORT_MAX_BYTES`) the answer is 413 and
/// nothing is kept. Answers the import and its first rows: showing them is recorded in the
/// audit trail (`contact_import.previewed`).
#[utoipa::path(post, path = "/v1/orgs/{slug}/imports", tag = "imports",
    params(("slug" = String, Path), UploadQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses((status = 201, body = MappingPreview),
        (status = 413, description = "The file is larger than the server's limit"),
        (status = 422, description = "The file is empty or has no header (`field`: `file`)")))]
async fn upload_import(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let name = query.file_name.unwrap_or_default();
    let uploaded = app::upload(&state, auth, &name, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, Json(MappingPreview::from(uploaded))).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ImportPage {
    items: Vec<ImportView>,
    next_cursor: Option<String>,
}

/// Imports, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/orgs/{slug}/imports", tag = "imports",
    params(("slug" = String, Path), PageQuery),
    responses((status = 200, body = ImportPage)))]
async fn list_imports(
    mut auth: Authorized<ManageContacts>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ImportPage>, ApiError> {
    let (rows, next_cursor) = app::list(&mut auth, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(ImportPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One import: its state, rows done, rows per second, counts and provenance.
#[utoipa::path(get, path = "/v1/orgs/{slug}/imports/{id}", tag = "imports",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ImportView)))]
async fn get_import(
    mut auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ImportView>, ApiError> {
    let status = app::status(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(status.into()))
}

/// An uploaded file's first rows and suggested mapping, again. Recorded like the upload's.
#[utoipa::path(get, path = "/v1/orgs/{slug}/imports/{id}/preview", tag = "imports",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MappingPreview)))]
async fn preview_import(
    mut auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<MappingPreview>, ApiError> {
    let mappable = app::preview(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(mappable.into()))
}

/// Where the list came from: every consent the import records names it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvenanceBody {
    /// The purpose consented to; one that needs a HIPAA authorization cannot be imported.
    purpose: uuid::Uuid,
    #[schema(value_type = ImportBasisName)]
    lawful_basis: String,
    /// For `exemption`: which one, and why it applies (1 to 2000 characters).
    exemption: Option<String>,
    /// The notice version the people saw: SHA-256 of its canonical text, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    notice_sha256: String,
    /// Where the list came from (1 to 2000 characters).
    #[schema(min_length = 1, max_length = 2000)]
    description: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// One entry per column of the header, in order; `null` leaves the column out. Exactly
    /// one column is the address.
    mapping: Vec<Option<ColumnTarget>>,
    /// Without it, the contacts are imported without consent (and cannot be mailed).
    provenance: Option<ProvenanceBody>,
}

/// Start an uploaded import with a mapping and, optionally, the provenance of its consent.
/// Each invalid part is answered 422 naming its field (`mapping`, `provenance.purpose`,
/// `provenance.lawful_basis`, `provenance.exemption`, `provenance.notice_sha256`,
/// `provenance.description`).
#[utoipa::path(post, path = "/v1/orgs/{slug}/imports/{id}/start", tag = "imports", request_body = StartBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 202, body = ImportView),
        (status = 409, description = "The import has already started")))]
async fn start_import(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let mut mapping = Vec::with_capacity(body.mapping.len());
    for (i, column) in body.mapping.iter().enumerate() {
        mapping.push(
            column
                .as_ref()
                .map(|c| app::target(&c.field, c.name.as_deref()))
                .transpose()
                .map_err(|m| ApiError::Invalid { field: "mapping", message: format!("column {}: {m}", i + 1) })?,
        );
    }
    let purpose = body.provenance.as_ref().map(|p| p.purpose.to_string()).unwrap_or_default();
    let provenance = body.provenance.as_ref().map(|p| ProvenanceInput {
        purpose: &purpose,
        lawful_basis: &p.lawful_basis,
        exemption: p.exemption.as_deref(),
        notice_sha256: &p.notice_sha256,
        description: &p.description,
    });
    let status = app::start(&state, auth, &id, &mapping, provenance.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, Json(ImportView::from(status))).into_response())
}

/// Cancel a started import: a queued one at once, a running one after the batch it is
/// writing (the rows written before stay imported).
#[utoipa::path(post, path = "/v1/orgs/{slug}/imports/{id}/cancel", tag = "imports",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 202, body = ImportView),
        (status = 409, description = "The import has not started")))]
async fn cancel_import(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let status = app::cancel(&state, auth, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(ImportView::from(status))).into_response())
}

/// The problems of the import's rows so far, as CSV (`row,column,reason`; rows numbered as a
/// spreadsheet numbers them, the header being row 1), streamed.
#[utoipa::path(get, path = "/v1/orgs/{slug}/imports/{id}/problems", tag = "imports",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "text/csv, streamed", content_type = "text/csv", body = String)))]
async fn import_problems(
    State(state): State<AppState>,
    auth: Authorized<ManageContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let stream = app::problems_csv(&state, auth, &id).await?;
    let file = format!("import-{}-problems.csv", ImportId::parse(&id).map(|i| i.to_string()).unwrap_or_default());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
