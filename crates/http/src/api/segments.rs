//! Segments under `/v1/orgs/{slug}/segments`: count a definition and preview its contacts
//! without saving it, and saved segments with their hashed versions. Adapters over
//! `app::segments`. A definition that does not parse answers 422 with `errors`, each naming a
//! part by its JSON Pointer (`/definition/all/2/value`).

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::audiences::segments::{Member, Saved, Version};
use mos_domain::{ContactId, SegmentId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ManageSegments, ReadAudience, ReadContacts};
use crate::app::segments::{self as app, Count, Definition};
use crate::extract::{ApiJson, ApiQuery, BodyLimit};
use crate::{ApiError, AppState};

/// A definition may be 64 KiB of JSON (`mos_domain::segments::MAX_JSON_BYTES`), with room for
/// the rest of the body.
const MAX_SEGMENT_REQUEST_BYTES: usize = 80 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_segments, create_segment))
        .routes(routes!(count_definition))
        .routes(routes!(preview_definition))
        .routes(routes!(get_segment))
        .routes(routes!(add_segment_version))
        .routes(routes!(get_segment_version))
        .layer(DefaultBodyLimit::max(MAX_SEGMENT_REQUEST_BYTES))
        .layer(axum::Extension(BodyLimit(MAX_SEGMENT_REQUEST_BYTES)))
}

/// A definition: a node of `all`, `any`, `not`, `attribute`, `tags`, `consent` or `created`
/// (docs/segments.md).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionBody {
    #[schema(value_type = Object)]
    definition: Value,
}

#[derive(Serialize, ToSchema)]
pub struct CountView {
    /// Contacts the definition picks now; null when the count is below `fewer_than`, for a
    /// member whose role may not read contacts.
    count: Option<i64>,
    /// Set (to 10) when `count` is withheld: the definition picks fewer contacts than this.
    fewer_than: Option<i64>,
    /// The SHA-256 (hex) of the definition's canonical text: what a saved version would be named.
    sha256: String,
}

/// How many contacts a definition picks now, without saving it. Every role may ask; to a role
/// without `contacts.read` a count below 10 is answered as `{"count": null, "fewer_than": 10}`.
#[utoipa::path(post, path = "/v1/orgs/{slug}/segments/count", tag = "segments", request_body = DefinitionBody,
    params(("slug" = String, Path)),
    responses((status = 200, body = CountView), (status = 422, description = "The definition does not parse; `errors` names each part by its JSON Pointer")))]
async fn count_definition(
    State(state): State<AppState>,
    mut auth: Authorized<ReadAudience>,
    ApiJson(body): ApiJson<DefinitionBody>,
) -> Result<Json<CountView>, ApiError> {
    let counted = app::count(&state, &mut auth, Definition::Json(&body.definition)).await?;
    auth.commit().await?;
    let (count, fewer_than) = match counted.count {
        Count::Exact(n) => (Some(n), None),
        Count::FewerThan(n) => (None, Some(n)),
    };
    Ok(Json(CountView { count, fewer_than, sha256: counted.sha256.to_string() }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewBody {
    #[schema(value_type = Object)]
    definition: Value,
    /// `next_cursor` of the previous page.
    #[schema(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[schema(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A contact of a preview: what a person needs to recognise it.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    #[schema(value_type = uuid::Uuid)]
    id: ContactId,
    address: String,
    name: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self { id: m.id, address: m.address.unwrap_or_default(), name: m.name, created_at: m.created_at }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// In id order.
    items: Vec<MemberView>,
    /// Pass as `cursor` for the next page; present when this page is full (the next may be
    /// empty).
    next_cursor: Option<String>,
}

/// A page of the contacts a definition picks, without saving it. Each page that shows anyone
/// leaves one audit record (`segment.previewed`) naming the contacts and fields shown.
#[utoipa::path(post, path = "/v1/orgs/{slug}/segments/preview", tag = "segments", request_body = PreviewBody,
    params(("slug" = String, Path)),
    responses((status = 200, body = PreviewView), (status = 422, description = "The definition does not parse; `errors` names each part by its JSON Pointer")))]
async fn preview_definition(
    State(state): State<AppState>,
    mut auth: Authorized<ReadContacts>,
    ApiJson(body): ApiJson<PreviewBody>,
) -> Result<Json<PreviewView>, ApiError> {
    let definition = Definition::Json(&body.definition);
    let (rows, next_cursor) = app::preview(&state, &mut auth, definition, body.cursor.as_deref(), body.limit).await?;
    auth.commit().await?;
    Ok(Json(PreviewView { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A saved segment in a list, with its latest version.
#[derive(Serialize, ToSchema)]
pub struct SegmentSummary {
    #[schema(value_type = uuid::Uuid)]
    id: SegmentId,
    name: String,
    /// The latest version's number.
    latest: i32,
    /// The latest version's SHA-256, in hex.
    sha256: String,
}

impl From<Saved> for SegmentSummary {
    fn from(s: Saved) -> Self {
        Self { id: s.id, name: s.name, latest: s.latest, sha256: s.sha256.to_string() }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SegmentPageView {
    /// In id order (oldest first).
    items: Vec<SegmentSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SegmentQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 50 (default 50).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

/// The organization's saved segments, a page at a time.
#[utoipa::path(get, path = "/v1/orgs/{slug}/segments", tag = "segments",
    params(("slug" = String, Path), SegmentQuery),
    responses((status = 200, body = SegmentPageView)))]
async fn list_segments(
    mut auth: Authorized<ReadAudience>,
    ApiQuery(query): ApiQuery<SegmentQuery>,
) -> Result<Json<SegmentPageView>, ApiError> {
    let (rows, next_cursor) = app::list(&mut auth, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(SegmentPageView { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSegment {
    /// 1 to 200 characters; unique in the organization.
    #[schema(example = "Patients 50 and older", min_length = 1, max_length = 200)]
    name: String,
    #[schema(value_type = Object)]
    definition: Value,
}

/// A saved version: its definition in canonical form and the SHA-256 that names it.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    #[schema(value_type = uuid::Uuid)]
    segment: SegmentId,
    version: i32,
    /// The canonical definition, as hashed.
    #[schema(value_type = Object)]
    definition: Value,
    /// SHA-256 (hex) of the canonical text.
    sha256: String,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    created_at: DateTime<Utc>,
}

impl TryFrom<Version> for VersionView {
    type Error = ApiError;
    fn try_from(v: Version) -> Result<Self, ApiError> {
        // The stored text is the canonical JSON the parser wrote; a CHECK holds its hash.
        let definition = serde_json::from_str(&v.definition).map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(Self {
            segment: v.segment,
            version: v.version,
            definition,
            sha256: v.sha256.to_string(),
            created_by: v.created_by,
            created_at: v.created_at,
        })
    }
}

/// Save a segment: its name and its version 1. A name in use answers 409 naming `name`.
#[utoipa::path(post, path = "/v1/orgs/{slug}/segments", tag = "segments", request_body = NewSegment,
    params(("slug" = String, Path)),
    responses((status = 201, body = VersionView), (status = 409, description = "A segment with this name exists (`field`: `name`)"), (status = 422, description = "The definition does not parse; `errors` names each part by its JSON Pointer")))]
async fn create_segment(
    State(state): State<AppState>,
    auth: Authorized<ManageSegments>,
    ApiJson(body): ApiJson<NewSegment>,
) -> Result<Response, ApiError> {
    let version = app::create(&state, auth, &body.name, Definition::Json(&body.definition)).await?;
    Ok((StatusCode::CREATED, Json(VersionView::try_from(version)?)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    #[schema(value_type = uuid::Uuid)]
    id: SegmentId,
    name: String,
    /// Newest first.
    versions: Vec<VersionView>,
}

/// A saved segment with every version, newest first.
#[utoipa::path(get, path = "/v1/orgs/{slug}/segments/{id}", tag = "segments",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SegmentView)))]
async fn get_segment(
    mut auth: Authorized<ReadAudience>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<SegmentView>, ApiError> {
    let page = app::segment(&mut auth, &id).await?;
    auth.commit().await?;
    let versions = page.versions.into_iter().map(VersionView::try_from).collect::<Result<_, _>>()?;
    Ok(Json(SegmentView { id: page.id, name: page.name, versions }))
}

/// Save a changed definition as the segment's next version. A definition whose canonical text
/// is the latest version's is not a new version: that version is answered with 200.
#[utoipa::path(post, path = "/v1/orgs/{slug}/segments/{id}/versions", tag = "segments", request_body = DefinitionBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 201, body = VersionView), (status = 200, description = "The latest version has this definition already", body = VersionView), (status = 422, description = "The definition does not parse; `errors` names each part by its JSON Pointer")))]
async fn add_segment_version(
    State(state): State<AppState>,
    auth: Authorized<ManageSegments>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<DefinitionBody>,
) -> Result<Response, ApiError> {
    let (version, added) = app::add_version(&state, auth, &id, Definition::Json(&body.definition)).await?;
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(VersionView::try_from(version)?)).into_response())
}

/// One version of a saved segment: its canonical definition and hash.
#[utoipa::path(get, path = "/v1/orgs/{slug}/segments/{id}/versions/{number}", tag = "segments",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("number" = i32, Path, description = "From 1")),
    responses((status = 200, body = VersionView)))]
async fn get_segment_version(
    mut auth: Authorized<ReadAudience>,
    Path((_, id, number)): Path<(String, String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let number = number.parse::<i32>().map_err(|_| ApiError::NotFound)?;
    let version = app::version(&mut auth, &id, number).await?;
    auth.commit().await?;
    Ok(Json(VersionView::try_from(version)?))
}
