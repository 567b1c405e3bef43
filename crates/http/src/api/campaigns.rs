//! Campaigns under `/v1/orgs/{slug}/campaigns`: create and edit a definition, read one or a
//! page of them, launch, pause, resume and cancel, and page through the send ledger. Adapters
//! over `app::campaigns`. A campaign's review (submit, approve, withdraw, comment) is the
//! content review's, at `/v1/orgs/{slug}/content/{id}/...`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use mos_db::campaigns::{self, Control, Message, Run, MESSAGE_STATES};
use mos_db::content::Item;
use mos_domain::{ContactId, ContentId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ReadContacts, ReadContent, SendCampaigns, WriteContent};
use crate::api::content::{etag, if_match, IfMatch, StateName};
use crate::api::docs::label_schema;
use crate::app::audit::csv_field;
use crate::app::campaigns::{self as app, Campaign, CampaignInput, ScheduleInput, VersionInput};
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, edit_campaign))
        .routes(routes!(launch_campaign))
        .routes(routes!(pause_campaign))
        .routes(routes!(resume_campaign))
        .routes(routes!(cancel_campaign))
        .routes(routes!(campaign_messages))
        .routes(routes!(campaign_preview))
        .routes(routes!(campaign_csv))
}

label_schema!(
    /// A send ledger row's state.
    MessageStateName,
    MESSAGE_STATES
);

label_schema!(
    /// When a campaign's messages go out.
    ScheduleKind,
    ["now", "at", "local_hour"]
);

/// A content version, by item and number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    #[schema(value_type = uuid::Uuid)]
    item: String,
    #[schema(minimum = 1)]
    version: i32,
}

/// A saved segment version, by segment and number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentBody {
    #[schema(value_type = uuid::Uuid)]
    id: String,
    #[schema(minimum = 1)]
    version: i32,
}

/// `now`; `at` with `at` (to the second, UTC); or `local_hour` with `date` and `hour`: that hour
/// on that day in each contact's own time zone.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    #[schema(value_type = ScheduleKind)]
    kind: String,
    at: Option<DateTime<Utc>>,
    date: Option<NaiveDate>,
    #[schema(minimum = 0, maximum = 23)]
    hour: Option<i64>,
}

/// A contact field a message may show, as one line of at most `max` characters.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldBody {
    /// `name` (the contact's name) or a text or choice attribute of the organization.
    #[schema(example = "name", min_length = 1, max_length = 40, pattern = "^[a-z][a-z0-9_]*$")]
    name: String,
    #[schema(minimum = 1, maximum = 200)]
    max: i64,
}

/// A campaign's name and definition.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// 1 to 200 characters.
    #[schema(example = "December flu shots", min_length = 1, max_length = 200)]
    name: String,
    /// A version of an `email` content item.
    content: VersionBody,
    /// A version of an `email_template` content item: Markdown holding `{{content}}` once,
    /// the postal address and the unsubscribe link.
    template: VersionBody,
    segment: SegmentBody,
    #[schema(value_type = uuid::Uuid)]
    sender: String,
    /// A purpose of the channel email.
    #[schema(value_type = uuid::Uuid)]
    purpose: String,
    schedule: ScheduleBody,
    /// Up to 20; each name once.
    #[serde(default)]
    #[schema(max_items = 20)]
    fields: Vec<FieldBody>,
}

impl CampaignBody {
    fn input(&self) -> CampaignInput<'_> {
        fn version(v: &VersionBody) -> VersionInput<'_> {
            VersionInput { id: &v.item, version: v.version }
        }
        CampaignInput {
            name: &self.name,
            content: version(&self.content),
            template: version(&self.template),
            segment: VersionInput { id: &self.segment.id, version: self.segment.version },
            sender: &self.sender,
            purpose: &self.purpose,
            schedule: ScheduleInput {
                kind: &self.schedule.kind,
                at: self.schedule.at,
                date: self.schedule.date,
                hour: self.schedule.hour,
            },
            fields: self.fields.iter().map(|f| (f.name.as_str(), f.max)).collect(),
        }
    }
}

/// A reviewed version named in a definition.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct VersionRefView {
    item: uuid::Uuid,
    /// The version's SHA-256, in hex.
    sha256: String,
    version: i32,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SegmentRefView {
    id: uuid::Uuid,
    sha256: String,
    version: i32,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ScheduleView {
    #[schema(value_type = ScheduleKind)]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hour: Option<u8>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FieldView {
    /// `text`.
    kind: String,
    max: u16,
    name: String,
}

/// The definition as reviewed: the canonical form whose SHA-256 is the campaign's hash
/// (docs/campaigns.md).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefinitionView {
    /// `email`.
    channel: String,
    content: VersionRefView,
    fields: Vec<FieldView>,
    purpose: uuid::Uuid,
    schedule: ScheduleView,
    segment: SegmentRefView,
    sender: uuid::Uuid,
    template: VersionRefView,
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalsView {
    /// Approvals of the latest version that count.
    given: i64,
    /// Approvals that stay in the history but no longer count.
    lapsed: i64,
    required: i32,
}

/// A launched campaign's sending.
#[derive(Serialize, ToSchema)]
pub struct RunView {
    /// `sending`, `paused`, `cancelled` or `finished`.
    state: String,
    /// The campaign version it sends.
    version: i32,
    #[schema(value_type = uuid::Uuid)]
    launched_by: UserId,
    launched_at: DateTime<Utc>,
    /// Every contact the audience held, queued or skipped.
    recipients: i64,
    finished_at: Option<DateTime<Utc>>,
    /// Messages by state, and skipped ones by reason (`skipped:no_consent`, ...).
    progress: BTreeMap<String, i64>,
    /// Each tracked link of the content, in the order messages hold them, with its clicks.
    links: Vec<LinkView>,
    /// What the messages did since the launch, in all.
    activity: ActivityView,
    /// The same, per UTC hour, oldest first; an hour with nothing in it is left out.
    hours: Vec<HourView>,
}

/// What a campaign's messages did: handed over, then what came back about them and what their
/// recipients did.
#[derive(Serialize, ToSchema)]
pub struct ActivityView {
    /// Handed over to the relay, which accepted them.
    sent: i64,
    /// Reported delivered (by a DSN or a provider's delivery event).
    delivered: i64,
    /// Reported delayed, still being retried by a relay on the way.
    deferred: i64,
    /// Refused for good at hand-over or reported so later (the mailbox does not exist).
    hard_bounces: i64,
    /// Refused for now at hand-over or reported so later.
    soft_bounces: i64,
    /// Reported as spam by the recipient's mailbox provider.
    complaints: i64,
    /// Recipients who unsubscribed through the message's links (one click, or the preference centre).
    unsubscribes: i64,
    /// Clicks on tracked links (a link scanner's visit counts too).
    clicks: i64,
    /// Recipients who followed at least one link.
    clickers: i64,
}

impl From<campaigns::Activity> for ActivityView {
    fn from(a: campaigns::Activity) -> Self {
        Self {
            sent: a.sent,
            delivered: a.delivered,
            deferred: a.deferred,
            hard_bounces: a.hard_bounces,
            soft_bounces: a.soft_bounces,
            complaints: a.complaints,
            unsubscribes: a.unsubscribes,
            clicks: a.clicks,
            clickers: a.clickers,
        }
    }
}

/// The measures of `a` by the names the report's CSV gives them, `sent` first.
fn measures(a: &campaigns::Activity) -> [(&'static str, i64); 9] {
    [
        ("sent", a.sent),
        ("delivered", a.delivered),
        ("deferred", a.deferred),
        ("hard_bounces", a.hard_bounces),
        ("soft_bounces", a.soft_bounces),
        ("complaints", a.complaints),
        ("unsubscribes", a.unsubscribes),
        ("clicks", a.clicks),
        ("clickers", a.clickers),
    ]
}

/// One UTC hour of a campaign's activity.
#[derive(Serialize, ToSchema)]
pub struct HourView {
    /// The first instant of the hour.
    starts: DateTime<Utc>,
    activity: ActivityView,
}

/// One tracked link of a launched campaign.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// Where it leads, as the approved content says.
    #[schema(example = "https://clinic.example/flu")]
    address: String,
    /// Recipients who followed it.
    unique_clicks: i64,
    /// Times it was followed in all (a link scanner's visit counts too).
    clicks: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignView {
    #[schema(value_type = uuid::Uuid)]
    id: ContentId,
    name: String,
    /// Its review state.
    #[schema(value_type = StateName)]
    state: String,
    /// Goes up with every change; the `ETag` is this number in quotes.
    revision: i32,
    #[schema(value_type = uuid::Uuid)]
    created_by: UserId,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The current version.
    version: i32,
    /// The current version's SHA-256 in hex: the campaign's hash, what an approval names.
    sha256: String,
    approved_version: Option<i32>,
    /// The version launched.
    published_version: Option<i32>,
    approvals: ApprovalsView,
    definition: DefinitionView,
    /// Present once launched.
    run: Option<RunView>,
}

fn view(campaign: Campaign) -> Result<(HeaderMap, Json<CampaignView>), ApiError> {
    let Campaign { item, approvals, run, links, hours } = campaign;
    // The body is the canonical definition this code wrote; one that does not read back is a
    // fault on our side.
    let definition: DefinitionView =
        serde_json::from_str(&item.version.body).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, etag(item.revision));
    let run = run.map(|(run, progress): (Run, _)| RunView {
        state: run.state,
        version: run.version,
        launched_by: run.launched_by,
        launched_at: run.launched_at,
        recipients: run.recipients,
        finished_at: run.finished_at,
        progress,
        links: links
            .into_iter()
            .map(|l| LinkView { address: l.address, unique_clicks: l.unique, clicks: l.total })
            .collect(),
        activity: campaigns::total(&hours).into(),
        hours: hours.into_iter().map(|h| HourView { starts: h.starts, activity: h.activity.into() }).collect(),
    });
    Ok((
        headers,
        Json(CampaignView {
            id: item.id,
            name: item.version.title,
            state: item.state.to_string(),
            revision: item.revision,
            created_by: item.created_by,
            created_at: item.created_at,
            updated_at: item.updated_at,
            version: item.version.number,
            sha256: item.version.sha256.to_string(),
            approved_version: item.approved_version,
            published_version: item.published_version,
            approvals: ApprovalsView { given: approvals.given, lapsed: approvals.lapsed, required: approvals.required },
            definition,
            run,
        }),
    ))
}

/// A campaign in a list.
#[derive(Serialize, ToSchema)]
pub struct CampaignSummary {
    #[schema(value_type = uuid::Uuid)]
    id: ContentId,
    name: String,
    #[schema(value_type = StateName)]
    state: String,
    revision: i32,
    version: i32,
    sha256: String,
    published_version: Option<i32>,
    updated_at: DateTime<Utc>,
}

impl From<Item> for CampaignSummary {
    fn from(i: Item) -> Self {
        Self {
            id: i.id,
            name: i.version.title,
            state: i.state.to_string(),
            revision: i.revision,
            version: i.version.number,
            sha256: i.version.sha256.to_string(),
            published_version: i.published_version,
            updated_at: i.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CampaignPage {
    /// Newest first.
    items: Vec<CampaignSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
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

/// Create a campaign: a draft at version 1, written by you, once everything it names is found
/// in this organization and one message renders.
#[utoipa::path(post, path = "/v1/orgs/{slug}/campaigns", tag = "campaigns", request_body = CampaignBody,
    params(("slug" = String, Path)),
    responses(
        (status = 201, body = CampaignView, headers(("ETag" = String), ("Location" = String))),
        (status = 422, description = "A field is invalid, names nothing of this organization, or cannot render (a placeholder not declared, a template without its footer); `field` names it"),
    ))]
async fn create_campaign(
    State(state): State<AppState>,
    auth: Authorized<WriteContent>,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Response, ApiError> {
    let (mut headers, view) = view(app::create(&state, auth, &body.input()).await?)?;
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/orgs/{slug}/campaigns/{}", view.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, view).into_response())
}

/// Campaigns, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/orgs/{slug}/campaigns", tag = "campaigns",
    params(("slug" = String, Path), PageQuery),
    responses((status = 200, body = CampaignPage)))]
async fn list_campaigns(
    mut auth: Authorized<ReadContent>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<CampaignPage>, ApiError> {
    let (rows, next_cursor) = app::list(&mut auth, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(CampaignPage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A campaign: its definition, review state, approvals and, once launched, its run and the
/// count of its messages by state.
#[utoipa::path(get, path = "/v1/orgs/{slug}/campaigns/{id}", tag = "campaigns",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CampaignView, headers(("ETag" = String)))))]
async fn get_campaign(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let campaign = app::get(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(view(campaign)?.into_response())
}

/// Replace the definition (and name): a new version, by you, checked as at creation. Send
/// `If-Match` with the `ETag` you read. An edit after approval voids it: the review starts over.
#[utoipa::path(put, path = "/v1/orgs/{slug}/campaigns/{id}", tag = "campaigns", request_body = CampaignBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("If-Match" = String, Header, description = "The campaign's ETag as you read it, or a list of ETags (any one matches). A weak tag never matches; `*` is refused with 428")),
    responses(
        (status = 200, body = CampaignView, headers(("ETag" = String))),
        (status = 403, description = "Not your campaign, or your role may not write content"),
        (status = 409, description = "Its state allows no edit (in review, launched, archived)"),
        (status = 412, description = "It changed since you read it"),
        (status = 422, description = "A field is invalid, names nothing of this organization, or cannot render; `field` names it"),
        (status = 428, description = "No If-Match, or `If-Match: *`"),
    ))]
async fn edit_campaign(
    State(state): State<AppState>,
    auth: Authorized<WriteContent>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CampaignBody>,
) -> Result<Response, ApiError> {
    let revisions = match if_match(&headers)? {
        IfMatch::Absent => return Err(ApiError::PreconditionRequired),
        IfMatch::Any => return Err(ApiError::PreconditionAny),
        IfMatch::Revisions(revisions) => revisions,
    };
    let campaign = app::edit(&state, auth, &id, &revisions, &body.input()).await?;
    Ok(view(campaign)?.into_response())
}

/// Launch an approved campaign: the approved version is published and its segment's contacts
/// are written into the send ledger, those who may not be mailed as skipped with the reason.
#[utoipa::path(post, path = "/v1/orgs/{slug}/campaigns/{id}/launch", tag = "campaigns",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = CampaignView, headers(("ETag" = String))),
        (status = 409, description = "It is not approved (a draft, in review, an edit voided its approval), launched already, or its approvals lapsed; or the content or template it names left its approved version"),
    ))]
async fn launch_campaign(
    State(state): State<AppState>,
    auth: Authorized<SendCampaigns>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(view(app::launch(&state, auth, &id).await?)?.into_response())
}

macro_rules! control_route {
    ($(#[$doc:meta])* $name:ident, $path:literal, $step:expr, $conflict:literal) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "campaigns",
            params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
            responses(
                (status = 200, body = CampaignView, headers(("ETag" = String))),
                (status = 409, description = $conflict),
            ))]
        async fn $name(
            State(state): State<AppState>,
            auth: Authorized<SendCampaigns>,
            Path((_, id)): Path<(String, String)>,
        ) -> Result<Response, ApiError> {
            Ok(view(app::control(&state, auth, &id, $step).await?)?.into_response())
        }
    };
}

control_route!(
    /// Pause a campaign's sending: nothing more is handed to the transport until it resumes.
    pause_campaign, "/v1/orgs/{slug}/campaigns/{id}/pause", Control::Pause,
    "It is not sending (not launched, paused, cancelled or finished)"
);
control_route!(
    /// Resume a paused campaign.
    resume_campaign, "/v1/orgs/{slug}/campaigns/{id}/resume", Control::Resume,
    "It is not paused"
);
control_route!(
    /// Cancel a campaign's sending for good: every message not yet handed over is skipped as
    /// `cancelled`.
    cancel_campaign, "/v1/orgs/{slug}/campaigns/{id}/cancel", Control::Cancel,
    "It is neither sending nor paused"
);

/// A row of the send ledger: whom by contact id only, where the message stands, and the
/// transport's last reply (any address in it masked).
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = uuid::Uuid)]
    contact: ContactId,
    #[schema(value_type = MessageStateName)]
    state: String,
    /// Why a skipped message was not sent: `no_consent`, `suppressed`, `erased`, `withdrawn`
    /// or `cancelled`.
    skip_reason: Option<String>,
    attempts: i16,
    /// Not handed over before this.
    not_before: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
    reply: Option<String>,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            contact: m.contact,
            state: m.state,
            skip_reason: m.skip_reason,
            attempts: m.attempts,
            not_before: m.not_before,
            sent_at: m.sent_at,
            reply: m.reply,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    /// In contact id order.
    items: Vec<MessageView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// Only rows in this state.
    #[param(value_type = Option<MessageStateName>)]
    state: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The campaign's send ledger, a page at a time in contact id order: one row per contact its
/// audience held, with no address or name.
#[utoipa::path(get, path = "/v1/orgs/{slug}/campaigns/{id}/messages", tag = "campaigns",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), MessageQuery),
    responses((status = 200, body = MessagePage)))]
async fn campaign_messages(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<MessageQuery>,
) -> Result<Json<MessagePage>, ApiError> {
    let (rows, next_cursor) =
        app::messages(&mut auth, &id, query.state.as_deref(), query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(MessagePage { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A header of a previewed message, as the message carries it.
#[derive(Serialize, ToSchema)]
pub struct HeaderView {
    name: String,
    value: String,
}

/// One message of the campaign's latest version, rendered and DKIM-signed as the sending job
/// does it.
#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// The contact it was rendered for (the segment's first); absent for the made-up recipient
    /// of a segment that holds nobody.
    #[schema(value_type = Option<uuid::Uuid>)]
    sample: Option<ContactId>,
    /// From, To, Subject, Message-ID, List-Unsubscribe and List-Unsubscribe-Post.
    headers: Vec<HeaderView>,
    /// The headers the DKIM signature covers (its `h=` tag).
    signed_headers: Vec<String>,
    /// The plain-text part.
    text: String,
    /// The HTML part, as the renderer sanitised it.
    html: String,
}

/// A preview of one message for the segment's first contact (or a made-up recipient when it
/// holds nobody): its headers, the headers its signature covers, and both parts. Reading the
/// contact's address and declared fields is recorded (`contact.viewed`). Its unsubscribe link
/// carries no token.
#[utoipa::path(get, path = "/v1/orgs/{slug}/campaigns/{id}/preview", tag = "campaigns",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = PreviewView),
        (status = 422, description = "The campaign cannot be rendered or signed (its sender has no active key, a version it names is gone); `field` is `campaign`"),
    ))]
async fn campaign_preview(
    State(state): State<AppState>,
    mut auth: Authorized<ReadContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<PreviewView>, ApiError> {
    let preview = app::preview(&state, &mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(PreviewView {
        sample: preview.sample,
        headers: preview.headers.into_iter().map(|(name, value)| HeaderView { name: name.to_owned(), value }).collect(),
        signed_headers: preview.signed,
        text: preview.text,
        html: preview.html,
    }))
}

/// A campaign's report as CSV: its recipients and its messages by outcome (the ledger's states,
/// and each skip by its reason), what its messages did in all (`delivered`, `deferred`,
/// `hard_bounces`, `soft_bounces`, `complaints`, `unsubscribes`, `clicks`, `clickers`), each
/// tracked link with the recipients who followed it and how often it was followed, then the same
/// measures of what the messages did per UTC hour (with `sent`), for each hour that had any.
///
/// `measure,link,hour,count`; `link` is the address of a `link_recipients` or `link_clicks` line,
/// `hour` the first instant of an hour's line (RFC 3339). Before the launch it holds the header only.
#[utoipa::path(get, path = "/v1/orgs/{slug}/campaigns/{id}/report.csv", tag = "campaigns",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "text/csv", content_type = "text/csv", body = String)))]
async fn campaign_csv(
    mut auth: Authorized<ReadContent>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let campaign = app::get(&mut auth, &id).await?;
    auth.commit().await?;
    let mut csv = String::from("measure,link,hour,count\r\n");
    if let Some((run, counts)) = &campaign.run {
        csv.push_str(&format!("recipients,,,{}\r\n", run.recipients));
        counts.iter().for_each(|(outcome, n)| csv.push_str(&format!("{},,,{n}\r\n", csv_field(outcome))));
        for (measure, n) in measures(&campaigns::total(&campaign.hours)).into_iter().skip(1) {
            csv.push_str(&format!("{measure},,,{n}\r\n"));
        }
    }
    for link in &campaign.links {
        let address = csv_field(&link.address);
        csv.push_str(&format!(
            "link_recipients,{address},,{}\r\nlink_clicks,{address},,{}\r\n",
            link.unique, link.total
        ));
    }
    for hour in &campaign.hours {
        let starts = hour.starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for (measure, n) in measures(&hour.activity).into_iter().filter(|(_, n)| *n != 0) {
            csv.push_str(&format!("{measure},,{starts},{n}\r\n"));
        }
    }
    let disposition = format!("attachment; filename=\"campaign-{}.csv\"", campaign.item.id);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        csv,
    )
        .into_response())
}
