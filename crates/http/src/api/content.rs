//! Content and its compliance review under `/v1/orgs/{slug}/content`. Each route names the
//! permission it needs ([`Authorized`]); what the role table cannot say (only the item's
//! creator or an ADMIN writes it, nobody approves their own version, which state allows which
//! step) is decided by `mos_domain::content` on the item's locked row, in the request's one
//! transaction.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::content::{Item, Version};
use mos_domain::content::{Action, Channel, State as ReviewState, Text};
use mos_domain::{reveal, ContentId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, PublishContent, ReadContent, ReviewContent, WriteContent};
use crate::api::docs::label_schema;
use crate::app::content::{self, Draft, Listing, Precondition, Shown, MAX_CONTENT_REQUEST_BYTES};
use crate::extract::{ApiJson, ApiQuery, BodyLimit};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_content, list_content))
        .routes(routes!(get_content, edit_content))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(diff_versions))
        .routes(routes!(content_history))
        .routes(routes!(content_first_use))
        .routes(routes!(content_first_use_evidence))
        .routes(routes!(submit_content))
        .routes(routes!(withdraw_content))
        .routes(routes!(comment_content))
        .routes(routes!(request_changes))
        .routes(routes!(approve_content))
        .routes(routes!(publish_content))
        .routes(routes!(archive_content))
        .layer(DefaultBodyLimit::max(MAX_CONTENT_REQUEST_BYTES))
        .layer(axum::Extension(BodyLimit(MAX_CONTENT_REQUEST_BYTES)))
}

label_schema!(
    /// A review state.
    StateName,
    ReviewState::ALL.iter().map(|s| s.as_str())
);
/// A tag as the document describes it: lowercase letters, digits and single hyphens, 1 to 40.
pub struct TagName;

impl utoipa::PartialSchema for TagName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .min_length(Some(1))
            .max_length(Some(40))
            .pattern(Some("^[a-z0-9]+(-[a-z0-9]+)*$"))
            .into()
    }
}

impl ToSchema for TagName {}

label_schema!(
    /// A channel.
    ChannelName,
    Channel::ALL.iter().map(|c| c.as_str())
);

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    number: i32,
    #[schema(value_type = uuid::Uuid)]
    author: UserId,
    created_at: DateTime<Utc>,
    title: String,
    #[schema(value_type = ChannelName)]
    channel: String,
    audience: String,
    /// Markdown.
    body: String,
    tags: Vec<String>,
    /// SHA-256 of the version's canonical text (docs/content-review.md), in hex: what an
    /// approval names.
    sha256: String,
}

impl From<Version> for VersionView {
    fn from(v: Version) -> Self {
        Self {
            number: v.number,
            author: v.author,
            created_at: v.created_at,
            title: v.title,
            channel: v.channel.to_string(),
            audience: v.audience,
            body: v.body,
            tags: v.tags,
            sha256: v.sha256.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Approvals {
    /// Distinct approvals of the latest version that count: by members who may still review.
    given: i64,
    /// Approvals of the latest version that stay in the history but no longer count: their
    /// member left, was removed, or may no longer review.
    lapsed: i64,
    /// What the organization requires.
    required: i32,
}

#[derive(Serialize, ToSchema)]
pub struct ContentView {
    #[schema(value_type = uuid::Uuid)]
    id: ContentId,
    #[schema(value_type = StateName)]
    state: String,
    /// Goes up with every change; the `ETag` is this number in quotes.
    revision: i32,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The version that reached approval, while the item stands on it.
    approved_version: Option<i32>,
    /// The version published, whose text is exactly what was approved.
    published_version: Option<i32>,
    published_at: Option<DateTime<Utc>>,
    approvals: Approvals,
    /// The latest version.
    version: VersionView,
}

/// An item in a list: its latest version without the body.
#[derive(Serialize, ToSchema)]
pub struct ContentSummary {
    #[schema(value_type = uuid::Uuid)]
    id: ContentId,
    #[schema(value_type = StateName)]
    state: String,
    revision: i32,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    updated_at: DateTime<Utc>,
    version: i32,
    #[schema(value_type = uuid::Uuid)]
    author: UserId,
    title: String,
    #[schema(value_type = ChannelName)]
    channel: String,
    tags: Vec<String>,
    sha256: String,
}

impl From<Item> for ContentSummary {
    fn from(i: Item) -> Self {
        Self {
            id: i.id,
            state: i.state.to_string(),
            revision: i.revision,
            created_by: i.created_by,
            updated_at: i.updated_at,
            version: i.version.number,
            author: i.version.author,
            title: i.version.title,
            channel: i.version.channel.to_string(),
            tags: i.version.tags,
            sha256: i.version.sha256.to_string(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ContentPage {
    /// Newest first.
    items: Vec<ContentSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    id: uuid::Uuid,
    /// created, edited, submitted, withdrawn, commented, changes_requested, approved, published
    /// or archived.
    kind: String,
    version: i32,
    sha256: String,
    #[schema(value_type = uuid::Uuid)]
    actor: UserId,
    #[schema(value_type = Option<StateName>)]
    from_state: Option<String>,
    #[schema(value_type = StateName)]
    to_state: String,
    note: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldChangeView {
    field: &'static str,
    before: String,
    after: String,
}

#[derive(Serialize, ToSchema)]
pub struct DiffView {
    from: i32,
    to: i32,
    /// The short fields that differ, whole.
    fields: Vec<FieldChangeView>,
    /// The body as a unified diff by lines; empty when the bodies are equal. Characters that
    /// show nothing or reorder what follows (bidirectional controls, zero-width and tag
    /// characters) are written out as `<U+XXXX>`, so that a reviewer sees what they approve.
    body: String,
    /// The comparison of the bodies ran out of its time (long bodies with little in common):
    /// `body` is still a correct diff, but may show whole blocks removed and added again where
    /// they share lines.
    deadline_reached: bool,
}

/// The text of a new item or version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentText {
    /// 1 to 200 characters, no control characters; trimmed.
    #[schema(
        example = "Flu shots are here",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$"
    )]
    title: String,
    #[schema(value_type = ChannelName, example = "email")]
    channel: String,
    /// Who it is for, up to 500 characters.
    #[schema(example = "Patients 65 and older", max_length = 500, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    audience: String,
    /// Markdown, up to 100,000 bytes of UTF-8; no control characters but tab and line ends
    /// (`\r\n` and a lone `\r` are stored as `\n`).
    #[schema(example = "Book your flu shot today.", pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    #[serde(default)]
    body: String,
    /// Up to 20, each 1 to 40 lowercase letters, digits and single hyphens.
    #[schema(value_type = Vec<TagName>, max_items = 20)]
    #[serde(default)]
    tags: Vec<String>,
}

/// What a step of the review may say.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// The hash of the latest version as you read it: the step is refused (409
    /// `version_changed`) if it is not the latest any more. Required to approve.
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: Option<String>,
    /// A note for the review history, up to 10,000 characters. Required for a comment and a
    /// request for changes.
    #[schema(max_length = 10000)]
    note: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(value_type = Option<StateName>)]
    state: Option<String>,
    #[param(value_type = Option<ChannelName>)]
    channel: Option<String>,
    tag: Option<String>,
    /// The member who created the items.
    author: Option<uuid::Uuid>,
    /// Words in the title or body: `"a phrase"`, `-excluded`, `or`.
    q: Option<String>,
    /// `true`: only items in review that you did not write and have not approved yet.
    awaiting_my_review: Option<bool>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// The earlier version's number.
    from: i32,
    /// The later version's number.
    to: i32,
}

fn invalid(field: &'static str, error: impl ToString) -> ApiError {
    ApiError::Invalid { field, message: error.to_string() }
}

impl ContentText {
    fn parse(&self) -> Result<Text, ApiError> {
        let draft = Draft {
            title: &self.title,
            channel: &self.channel,
            audience: &self.audience,
            body: &self.body,
            tags: &self.tags,
        };
        draft.parse()
    }
}

/// The item as the API shows it, with its `ETag`.
fn view(shown: Shown) -> (HeaderMap, Json<ContentView>) {
    let Shown { item, approvals: tally } = shown;
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag(item.revision));
    (
        headers,
        Json(ContentView {
            id: item.id,
            state: item.state.to_string(),
            revision: item.revision,
            created_by: item.created_by,
            created_at: item.created_at,
            updated_at: item.updated_at,
            approved_version: item.approved_version,
            published_version: item.published_version,
            published_at: item.published_at,
            approvals: Approvals { given: tally.given, lapsed: tally.lapsed, required: tally.required },
            version: item.version.into(),
        }),
    )
}

pub(crate) fn etag(revision: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// What an `If-Match` asks for (RFC 9110 §13.1.1).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// No `If-Match`.
    Absent,
    /// `*`: whatever the item's revision.
    Any,
    /// A list of entity tags: the revisions of its strong tags that this API hands out. A weak
    /// tag never matches for a change (strong comparison), nor does a tag we never issued, so
    /// either leaves nothing to match and the step gets 412.
    Revisions(Vec<i32>),
}

fn malformed_if_match() -> ApiError {
    invalid("If-Match", "If-Match must be `*` or a comma-separated list of entity tags such as \"3\"")
}

/// Reads every `If-Match` field line as one list: `*`, or entity tags (`"3"`, `W/"3"`, `"3", "4"`).
pub(crate) fn if_match(headers: &HeaderMap) -> Result<IfMatch, ApiError> {
    let mut lines = headers.get_all(header::IF_MATCH).iter().peekable();
    if lines.peek().is_none() {
        return Ok(IfMatch::Absent);
    }
    let mut revisions = Vec::new();
    let mut any = false;
    for line in lines {
        let mut rest = line.to_str().map_err(|_| malformed_if_match())?.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('*') {
                any = true;
                rest = after;
            } else {
                let (weak, tagged) = match rest.strip_prefix("W/") {
                    Some(after) => (true, after),
                    None => (false, rest),
                };
                let opaque = tagged.strip_prefix('"').ok_or_else(malformed_if_match)?;
                let end = opaque.find('"').ok_or_else(malformed_if_match)?;
                let (tag, after) = (&opaque[..end], &opaque[end + 1..]);
                // etagc: visible ASCII but the double quote, or obs-text.
                if !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
                    return Err(malformed_if_match());
                }
                if !weak {
                    revisions.extend(tag.parse::<i32>().ok());
                }
                rest = after;
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(malformed_if_match()),
            }
        }
    }
    // `*` is a whole field value of its own; in a list it is no entity tag.
    match (any, revisions.is_empty()) {
        (true, true) if headers.get_all(header::IF_MATCH).iter().count() == 1 => Ok(IfMatch::Any),
        (true, _) => Err(malformed_if_match()),
        (false, _) => Ok(IfMatch::Revisions(revisions)),
    }
}

/// Create a piece of content: a draft at version 1, written by you.
#[utoipa::path(post, path = "/v1/orgs/{slug}/content", tag = "content", request_body = ContentText,
    params(("slug" = String, Path)),
    responses((status = 201, body = ContentView, headers(("ETag" = String), ("Location" = String)))))]
async fn create_content(
    State(state): State<AppState>,
    auth: Authorized<WriteContent>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<ContentText>,
) -> Result<Response, ApiError> {
    let text = body.parse()?;
    let (mut headers, view) = view(content::create(&state, auth, &text).await?);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/orgs/{slug}/content/{}", view.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, view).into_response())
}

/// Content, newest first, a page at a time; every filter narrows the list.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content", tag = "content",
    params(("slug" = String, Path), ListQuery),
    responses((status = 200, body = ContentPage)))]
async fn list_content(
    State(state): State<AppState>,
    mut auth: Authorized<ReadContent>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<ContentPage>, ApiError> {
    let listing = Listing {
        state: query.state.as_deref(),
        channel: query.channel.as_deref(),
        tag: query.tag.as_deref(),
        author: query.author,
        text: query.q.as_deref(),
        awaiting_my_review: query.awaiting_my_review.unwrap_or(false),
    };
    let (rows, next_cursor) = content::list(&state, &mut auth, &listing, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(ContentPage { items: rows.into_iter().map(ContentSummary::from).collect(), next_cursor }))
}

/// A piece of content with its latest version and its `ETag`.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ContentView, headers(("ETag" = String)))))]
async fn get_content(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let shown = content::get(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(view(shown).into_response())
}

/// Edit: a new version with the whole new text, by you. Send `If-Match` with the `ETag` you
/// read: a change someone made in between gets 412 instead of being overwritten. An edit after
/// approval starts the review over; the same text again changes nothing.
#[utoipa::path(patch, path = "/v1/orgs/{slug}/content/{id}", tag = "content", request_body = ContentText,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("If-Match" = String, Header, description = "The item's ETag as you read it, or a list of ETags (any one matches). A weak tag (`W/\"3\"`) never matches; `*` is refused with 428")),
    responses(
        (status = 200, body = ContentView, headers(("ETag" = String))),
        (status = 403, description = "Not your item, or your role may not write content"),
        (status = 409, description = "Its state allows no edit"),
        (status = 412, description = "It changed since you read it"),
        (status = 428, description = "No If-Match, or `If-Match: *`, which would match any revision"),
    ))]
async fn edit_content(
    State(state): State<AppState>,
    auth: Authorized<WriteContent>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ContentText>,
) -> Result<Response, ApiError> {
    let revisions = match if_match(&headers)? {
        IfMatch::Absent => return Err(ApiError::PreconditionRequired),
        // `*` matches whatever is current, so it would overwrite a change made in between.
        IfMatch::Any => return Err(ApiError::PreconditionAny),
        IfMatch::Revisions(revisions) => revisions,
    };
    let text = body.parse()?;
    let pre = Precondition { revisions: Some(revisions), text: Some(&text), ..Default::default() };
    Ok(view(content::act(&state, auth, &id, Action::Edit, pre).await?).into_response())
}

/// Every version, oldest first, with its author and hash.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/versions", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<VersionView>)))]
async fn list_versions(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<VersionView>>, ApiError> {
    let all = content::versions(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(all.into_iter().map(Into::into).collect()))
}

/// One version.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/versions/{number}", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("number" = i32, Path)),
    responses((status = 200, body = VersionView)))]
async fn get_version(
    mut auth: Authorized<ReadContent>,
    Path((_, id, number)): Path<(String, String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let number = number.parse().map_err(|_| ApiError::NotFound)?;
    let found = content::version(&mut auth, &id, number).await?;
    auth.commit().await?;
    Ok(Json(found.into()))
}

/// What changed between two versions: changed fields whole, the body as a unified diff.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/diff", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), DiffQuery),
    responses(
        (status = 200, body = DiffView),
        (status = 503, description = "Other comparisons took every slot for longer than the server waits (`busy`), or the database is unavailable; try again after `Retry-After` seconds"),
    ))]
async fn diff_versions(
    State(state): State<AppState>,
    auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<DiffView>, ApiError> {
    let compared = content::diff(&state, auth, &id, query.from, query.to).await?;
    let diff = compared.diff;
    Ok(Json(DiffView {
        from: compared.from,
        to: compared.to,
        fields: diff
            .fields
            .into_iter()
            .map(|f| FieldChangeView { field: f.field, before: reveal(&f.before), after: reveal(&f.after) })
            .collect(),
        body: reveal(&diff.body),
        deadline_reached: diff.deadline_reached,
    }))
}

/// The first time a version was sent.
#[derive(Serialize, ToSchema)]
pub struct FirstUseView {
    version: i32,
    /// The campaign whose message carried it first.
    #[schema(value_type = uuid::Uuid)]
    campaign: ContentId,
    sent_at: DateTime<Utc>,
    /// The batch of that message, whose sealed `campaign.batch_sent` audit record holds the
    /// batch's Merkle root (`mos audit verify` proves it).
    batch: uuid::Uuid,
}

/// When each version of the item was first sent (the date of first dissemination), read from
/// the send ledger; versions never sent are not listed.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/first-use", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<FirstUseView>)))]
async fn content_first_use(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<FirstUseView>>, ApiError> {
    let used = content::first_use(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(
        used.into_iter()
            .map(|f| FirstUseView { version: f.version, campaign: f.campaign, sent_at: f.sent_at, batch: f.batch })
            .collect(),
    ))
}

/// The evidence of each version's first use, for Form FDA 2253: a `mos-first-use/1` document
/// (docs/campaigns.md, "First use") with each sent version's approved text and hash, its first
/// message's time, campaign version and audience, and the audit records of its approvals,
/// publication, the launch and the first batch, each with its place in the sealed chain.
/// `mos audit verify --evidence <file>` checks it against the database.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/first-use/evidence", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "A mos-first-use/1 document (JSON), as an attachment", content_type = "application/json")))]
async fn content_first_use_evidence(
    State(state): State<AppState>,
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let evidence = content::first_use_evidence(&state, &mut auth, &id).await?;
    auth.commit().await?;
    let name = format!("attachment; filename=\"first-use-{}.json\"", evidence.content_id);
    Ok(([(header::CONTENT_DISPOSITION, name)], Json(evidence)).into_response())
}

/// The review history, oldest first: every edit, step, comment and approval, with the version
/// and hash it concerned.
#[utoipa::path(get, path = "/v1/orgs/{slug}/content/{id}/history", tag = "content",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<EventView>)))]
async fn content_history(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let events = content::history(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| EventView {
                id: e.id,
                kind: e.kind,
                version: e.version,
                sha256: e.sha256.to_string(),
                actor: e.actor,
                from_state: e.from_state,
                to_state: e.to_state,
                note: e.note,
                created_at: e.created_at,
            })
            .collect(),
    ))
}

/// What a client states with a step: the revisions `If-Match` accepts, and the body.
fn precondition(headers: &HeaderMap, body: Option<ApiJson<StepBody>>) -> Result<Precondition<'static>, ApiError> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let stated = Precondition::stated(None, body.sha256.as_deref(), body.note)?;
    let revisions = match if_match(headers)? {
        IfMatch::Absent | IfMatch::Any => None,
        IfMatch::Revisions(revisions) => Some(revisions),
    };
    Ok(Precondition { revisions, ..stated })
}

macro_rules! step_route {
    ($(#[$doc:meta])* $name:ident, $path:literal, $needs:ident, $action:expr, $conflict:literal) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "content", request_body(content = StepBody, description = "Optional: leave the body out (no `Content-Type`) to say nothing"),
            params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("If-Match" = Option<String>, Header, description = "The item's ETag as you read it, or a list of ETags (any one matches); a weak tag never matches, `*` matches any revision")),
            responses(
                (status = 200, body = ContentView, headers(("ETag" = String))),
                (status = 409, description = $conflict),
                (status = 412, description = "It changed since you read it"),
            ))]
        async fn $name(
            State(state): State<AppState>,
            auth: Authorized<$needs>,
            Path((_, id)): Path<(String, String)>,
            headers: HeaderMap,
            body: Option<ApiJson<StepBody>>,
        ) -> Result<Response, ApiError> {
            let pre = precondition(&headers, body)?;
            Ok(view(content::act(&state, auth, &id, $action, pre).await?).into_response())
        }
    };
}

step_route!(
    /// Submit a draft, or a version whose changes were requested, for review. Only its creator
    /// or an ADMIN.
    submit_content, "/v1/orgs/{slug}/content/{id}/submit", WriteContent, Action::Submit,
    "It is not a draft and no changes were requested"
);
step_route!(
    /// Take an item in review, or an approved one, back to draft; its approvals of the same
    /// version stay. Only its creator or an ADMIN.
    withdraw_content, "/v1/orgs/{slug}/content/{id}/withdraw", WriteContent, Action::Withdraw,
    "It is neither in review nor approved"
);
step_route!(
    /// Comment on an item (`note` required).
    comment_content, "/v1/orgs/{slug}/content/{id}/comments", ReviewContent, Action::Comment,
    "It is archived"
);
step_route!(
    /// Send an item in review back to its author (`note` required: what to change).
    request_changes, "/v1/orgs/{slug}/content/{id}/request-changes", ReviewContent, Action::RequestChanges,
    "It is not in review, or its latest version is not the one named"
);
step_route!(
    /// Approve the latest version, named by its `sha256` (required). Never your own version
    /// (403 `separation_of_duties`). Once the organization's number of distinct approvals is
    /// reached, the item is approved.
    approve_content, "/v1/orgs/{slug}/content/{id}/approve", ReviewContent, Action::Approve,
    "It is not in review, you approved it already, or its latest version is not the one named"
);
step_route!(
    /// Publish an approved item: exactly the approved version's text, whose hash the answer
    /// names. The approvals are counted again: one whose member has since left, been removed
    /// or lost the right to review no longer counts (409 `approvals_lapsed`).
    publish_content, "/v1/orgs/{slug}/content/{id}/publish", PublishContent, Action::Publish,
    "It is not approved, its approvals no longer reach the required number, or its latest version is not the one named"
);
step_route!(
    /// Archive an item that is not in review. An archived item changes no more.
    archive_content, "/v1/orgs/{slug}/content/{id}/archive", PublishContent, Action::Archive,
    "It is in review or archived already"
);
