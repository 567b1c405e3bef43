//! Campaigns (docs/campaigns.md): a campaign is a content item of the channel `campaign` whose
//! versions carry its definition, so its review (submit, approve, withdraw) goes through the
//! content operations unchanged; these operations create and edit its definition, launch it,
//! control its sending and page through its send ledger.
//!
//! A definition is checked here before anything is written, each fault a 422 naming its
//! field: the versions it names exist with the right channels, the template is a valid
//! `mos_mail::Template`, the sender and the purpose are this tenant's, each personalisation
//! field is something a contact has, and one message renders. That trial render is what makes
//! a placeholder nobody declared a refusal at creation instead of a failure per recipient.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use mos_db::audiences::{browse, segments};
use mos_db::campaigns::{self, Control, Launch, Message, Run, MESSAGE_STATES};
use mos_db::content::{self, Item, Step, Tally};
use mos_db::{senders, DbError, TenantTx};
use mos_domain::campaigns::{ContentRef, Definition, DefinitionError, Field, Schedule, SegmentRef};
use mos_domain::content::{Channel, ContentHash};
use mos_domain::{ContactId, ContentId, PurposeId, SegmentId, SenderId};

use crate::access::{Authorized, ReadContacts, ReadContent, SendCampaigns, WriteContent};
use crate::{paging, ApiError, AppState};

fn invalid(field: &'static str, message: impl ToString) -> ApiError {
    ApiError::Invalid { field, message: message.to_string() }
}

fn parse_id(id: &str) -> Result<ContentId, ApiError> {
    ContentId::parse(id).map_err(|_| ApiError::NotFound)
}

/// A version of a content item or a segment, named as a client wrote it.
pub struct VersionInput<'a> {
    pub id: &'a str,
    pub version: i32,
}

/// When the messages go out, as a client wrote it: `kind` is `now`, `at` (with `at`) or
/// `local_hour` (with `date` and `hour`).
pub struct ScheduleInput<'a> {
    pub kind: &'a str,
    pub at: Option<DateTime<Utc>>,
    pub date: Option<NaiveDate>,
    pub hour: Option<i64>,
}

/// A campaign's name and definition as a door received them, before anything is looked up.
pub struct CampaignInput<'a> {
    pub name: &'a str,
    pub content: VersionInput<'a>,
    pub template: VersionInput<'a>,
    pub segment: VersionInput<'a>,
    pub sender: &'a str,
    pub purpose: &'a str,
    pub schedule: ScheduleInput<'a>,
    /// Each field's name and its most characters.
    pub fields: Vec<(&'a str, i64)>,
}

impl ScheduleInput<'_> {
    fn parse(&self) -> Result<Schedule, ApiError> {
        let wrong = |message: &str| invalid("schedule", message);
        match (self.kind, self.at, self.date, self.hour) {
            ("now", None, None, None) => Ok(Schedule::Now),
            ("at", Some(at), None, None) => Ok(Schedule::at(at)),
            ("local_hour", None, Some(date), Some(hour)) => {
                let hour = u8::try_from(hour).map_err(|_| wrong("a local hour is 0 to 23"))?;
                Schedule::local_hour(date, hour).map_err(|e| wrong(&e.to_string()))
            }
            ("now" | "at" | "local_hour", ..) => Err(wrong(
                "a schedule is {\"kind\":\"now\"}, {\"kind\":\"at\",\"at\":<time>} or {\"kind\":\"local_hour\",\"date\":<day>,\"hour\":<0-23>}, with no other member",
            )),
            _ => Err(wrong("the schedule's kind is now, at or local_hour")),
        }
    }
}

/// What a personalisation field may name: the contact's own `name`, or a text or choice
/// attribute the organization defined. A number, date or flag is no line of text to show.
async fn check_fields(tx: &mut TenantTx, fields: &[(&str, i64)]) -> Result<Vec<Field>, ApiError> {
    let attributes = browse::attributes(tx).await?;
    let mut checked = Vec::with_capacity(fields.len());
    for (name, max) in fields {
        let readable = *name == "name"
            || attributes.iter().any(|a| a.name == *name && matches!(a.kind.as_str(), "text" | "choice"));
        if !readable {
            return Err(invalid(
                "fields",
                format!("`{name}` is neither `name` nor a text or choice attribute of this organization"),
            ));
        }
        let max = u16::try_from(*max).map_err(|_| invalid("fields", DefinitionError::Field))?;
        checked.push(Field::text(name, max).map_err(|e| invalid("fields", e))?);
    }
    Ok(checked)
}

/// A content version of `channel`, named by the client, with its hash; its text for the trial
/// render.
async fn content_version(
    tx: &mut TenantTx,
    field: &'static str,
    input: &VersionInput<'_>,
    channel: Channel,
) -> Result<(ContentRef, content::Version), ApiError> {
    let missing = || invalid(field, format!("no {channel} content has this id and version"));
    let item = ContentId::parse(input.id).map_err(|_| missing())?;
    let version = content::version(tx, item, input.version).await?.ok_or_else(missing)?;
    if version.channel != channel {
        return Err(invalid(field, format!("this version's channel is {}, not {channel}", version.channel)));
    }
    Ok((ContentRef { item, version: version.number, sha256: version.sha256 }, version))
}

/// The layout a content body is rendered in alone, to tell a fault of the body from a fault of
/// the template: it holds every element a message needs and nothing else.
const BARE_LAYOUT: &str = "{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}})";

/// Renders one message as a recipient would get it, with a harmless value per field, the
/// sender's postal address and placeholder links; a fault names `content` when the body alone
/// fails in a bare layout, else `template`.
fn trial_render(
    template: &str,
    title: &str,
    body: &str,
    postal_address: &mos_domain::senders::PostalAddress,
    fields: &[Field],
) -> Result<(), ApiError> {
    let template = mos_mail::Template::new(template).map_err(|e| invalid("template", e))?;
    let declared: Result<Vec<mos_mail::Field>, _> =
        fields.iter().map(|f| mos_mail::Field::text(f.name(), f.max())).collect();
    let declared =
        mos_mail::Fields::new(declared.map_err(|e| invalid("fields", e))?).map_err(|e| invalid("fields", e))?;
    let values = mos_mail::Personalisation::new(&declared, fields.iter().map(|f| (f.name(), "A")))
        .map_err(|e| invalid("fields", e))?;
    let link = |path: &str| mos_mail::HttpsUrl::parse(&format!("https://unsubscribe.invalid/{path}"));
    let (Ok(unsubscribe), Ok(preferences)) = (link("unsubscribe"), link("preferences")) else {
        return Err(ApiError::Internal("the trial render's links do not parse".into()));
    };
    let essentials =
        mos_mail::Essentials { postal_address: postal_address.clone(), unsubscribe, preferences, clicks: Vec::new() };
    let content = mos_mail::Content { title, body, subject: None };
    let Err(fault) = mos_mail::render(&template, &content, &values, &essentials) else { return Ok(()) };
    let bare = mos_mail::Template::new(BARE_LAYOUT).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let field = match mos_mail::render(&bare, &content, &values, &essentials) {
        Err(_) => "content",
        Ok(_) => "template",
    };
    Err(invalid(field, fault))
}

/// Everything a definition names, looked up in the tenant and checked; the name and the
/// definition's text to store.
async fn definition(
    state: &AppState,
    tx: &mut TenantTx,
    input: &CampaignInput<'_>,
) -> Result<(Definition, mos_domain::content::Text), ApiError> {
    let (content, piece) = content_version(tx, "content", &input.content, Channel::Email).await?;
    let (template, layout) = content_version(tx, "template", &input.template, Channel::EmailTemplate).await?;
    let no_segment = || invalid("segment", "no segment of this organization has this id and version");
    let segment_id = SegmentId::parse(input.segment.id).map_err(|_| no_segment())?;
    let segment = segments::version(tx, segment_id, input.segment.version).await?.ok_or_else(no_segment)?;
    let no_sender = || invalid("sender", "no sender of this organization has this id");
    let sender_id = SenderId::parse(input.sender).map_err(|_| no_sender())?;
    let (sender, _) = senders::get(tx, sender_id).await?.ok_or_else(no_sender)?;
    let no_purpose = || invalid("purpose", "no purpose of this organization has this id");
    let purpose_id = PurposeId::parse(input.purpose).map_err(|_| no_purpose())?;
    let purpose = browse::purpose(tx, purpose_id).await?.ok_or_else(no_purpose)?;
    if purpose.channel != "email" {
        return Err(invalid("purpose", format!("this purpose's channel is {}, not email", purpose.channel)));
    }
    let schedule = input.schedule.parse()?;
    let fields = check_fields(tx, &input.fields).await?;
    let definition = Definition::new(
        content,
        template,
        SegmentRef { segment: segment.segment, version: segment.version, sha256: segment.sha256 },
        sender.id,
        purpose.id,
        schedule,
        fields,
    )
    .map_err(|e| invalid("fields", e))?;
    let text = definition.text(input.name).map_err(|e| match e {
        DefinitionError::Text(e) if e.field() == "title" => invalid("name", e),
        other => invalid("fields", other),
    })?;
    // Rendering is CPU work: off the async workers, on the bounded pool.
    let (layout, title, body) = (layout.body, piece.title, piece.body);
    let postal = sender.postal_address.clone();
    let fields = definition.fields().to_vec();
    state.heavy.run(move || trial_render(&layout, &title, &body, &postal, &fields)).await??;
    Ok((definition, text))
}

/// A campaign as a member sees it: the item and its latest version (whose body is the
/// definition), the approvals of that version, and the run once it is launched with its
/// messages counted by state and skip reason.
pub struct Campaign {
    pub item: Item,
    pub approvals: Tally,
    pub run: Option<(Run, BTreeMap<String, i64>)>,
    /// Once launched: each tracked link of its content with its clicks.
    pub links: Vec<crate::clicks::LinkClicks>,
    /// Once launched: what its messages did, hour by hour.
    pub hours: Vec<campaigns::Hour>,
}

async fn shown(tx: &mut TenantTx, item: Item, me: mos_domain::UserId) -> Result<Campaign, ApiError> {
    let approvals = content::approvals(tx, &item, me).await?;
    let (run, links, hours) = match campaigns::run(tx, item.id).await? {
        Some(run) => (
            Some((run, campaigns::progress(tx, item.id).await?)),
            super::clicks::report(tx, item.id).await?,
            campaigns::activity(tx, item.id).await?,
        ),
        None => (None, Vec::new(), Vec::new()),
    };
    Ok(Campaign { item, approvals, run, links, hours })
}

/// The campaign `id`, or 404: an item of another channel is no campaign.
async fn find(tx: &mut TenantTx, id: &str) -> Result<Item, ApiError> {
    let item = content::get(tx, parse_id(id)?).await?.ok_or(ApiError::NotFound)?;
    if item.version.channel != Channel::Campaign {
        return Err(ApiError::NotFound);
    }
    Ok(item)
}

/// Creates a campaign, a draft at version 1 written by the member, once its definition passed
/// every check.
pub async fn create(
    state: &AppState,
    auth: Authorized<WriteContent>,
    input: &CampaignInput<'_>,
) -> Result<Campaign, ApiError> {
    let mut tx = auth.tx;
    let (definition, text) = definition(state, &mut tx, input).await?;
    let me = auth.session.user;
    let item = campaigns::create(&mut tx, &definition, &text, me, state.clock.now(), &auth.source).await?;
    let created = shown(&mut tx, item, me).await?;
    tx.commit().await?;
    Ok(created)
}

/// A page of campaigns, newest first, and the cursor of the next.
pub async fn list(
    auth: &mut Authorized<ReadContent>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Item>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let filter = content::Filter {
        channel: Some(Channel::Campaign),
        before: cursor.map(ContentId::parse).transpose().map_err(|_| paging::bad_cursor())?,
        ..Default::default()
    };
    let rows = content::list(&mut auth.tx, &filter, limit + 1).await?;
    Ok(paging::split(rows, limit, |i: &Item| i.id.to_string()))
}

pub async fn get(auth: &mut Authorized<ReadContent>, id: &str) -> Result<Campaign, ApiError> {
    let item = find(&mut auth.tx, id).await?;
    shown(&mut auth.tx, item, auth.session.user).await
}

/// The runs of the launched campaigns among `items`, by campaign, for a list of them.
pub async fn runs(
    auth: &mut Authorized<ReadContent>,
    items: &[Item],
) -> Result<std::collections::HashMap<ContentId, Run>, ApiError> {
    if items.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let ids: Vec<ContentId> = items.iter().map(|i| i.id).collect();
    Ok(campaigns::runs(&mut auth.tx, &ids).await?.into_iter().collect())
}

/// The campaign `id` as its editor opens it: its latest version, described.
pub async fn editable(auth: &mut Authorized<WriteContent>, id: &str) -> Result<(Item, Described), ApiError> {
    let item = find(&mut auth.tx, id).await?;
    let described = describe(&mut auth.tx, &item.version).await?;
    Ok((item, described))
}

/// A review step's outcome as an answer, the way the content routes answer it.
fn refused(step: Step) -> ApiError {
    match step {
        Step::Done(_) | Step::NotFound => ApiError::NotFound,
        Step::Stale { revision } => ApiError::PreconditionFailed { revision },
        Step::OtherVersion { number, .. } => ApiError::VersionChanged { number },
        Step::Refused(refusal) => ApiError::Review(refusal),
    }
}

/// A new definition (and name): a new version, which voids the approvals as any edit of
/// content does. `revisions` are those `If-Match` accepts.
pub async fn edit(
    state: &AppState,
    auth: Authorized<WriteContent>,
    id: &str,
    revisions: &[i32],
    input: &CampaignInput<'_>,
) -> Result<Campaign, ApiError> {
    let mut tx = auth.tx;
    let item = find(&mut tx, id).await?;
    let (definition, text) = definition(state, &mut tx, input).await?;
    let me = auth.session.user;
    let now = state.clock.now();
    let step = campaigns::edit(&mut tx, item.id, &definition, &text, me, auth.role, Some(revisions), now, &auth.source)
        .await?;
    let answer = match step {
        Step::Done(item) => Ok(shown(&mut tx, *item, me).await?),
        other => Err(refused(other)),
    };
    // A refusal for authorship commits its audit record, and nothing else was written.
    tx.commit().await?;
    answer
}

/// Launches the approved campaign: its audience snapshotted into the send ledger.
pub async fn launch(state: &AppState, auth: Authorized<SendCampaigns>, id: &str) -> Result<Campaign, ApiError> {
    let mut tx = auth.tx;
    let item = find(&mut tx, id).await?;
    let me = auth.session.user;
    let launched = campaigns::launch(&mut tx, item.id, me, auth.role, state.clock.now(), &auth.source).await;
    let answer = match launched {
        // The ledger refused the queued messages: the piece or the template left the approved
        // version the campaign names (withdrawn, edited, archived) after the campaign's approval.
        // Nothing of the launch is kept; the transaction ends unused.
        Err(DbError::Invalid { constraint }) if constraint == "campaign_messages_approved" => {
            return Err(ApiError::Conflict(
                "the content or the template this campaign names is no longer at its approved version; approve it again, or edit the campaign to name the approved one",
            ))
        }
        Err(e) => return Err(e.into()),
        Ok(Launch::Done(_)) => {
            let item = content::get(&mut tx, item.id).await?.ok_or(ApiError::NotFound)?;
            Ok(shown(&mut tx, item, me).await?)
        }
        Ok(Launch::Step(step)) => Err(refused(step)),
    };
    tx.commit().await?;
    // The launch queued the sending job.
    state.wake_jobs();
    answer
}

/// Pauses, resumes or cancels the campaign's sending; 409 when its run is not in a state the
/// step applies to (not launched, finished, cancelled, or already so).
pub async fn control(
    state: &AppState,
    auth: Authorized<SendCampaigns>,
    id: &str,
    step: Control,
) -> Result<Campaign, ApiError> {
    let mut tx = auth.tx;
    let item = find(&mut tx, id).await?;
    let me = auth.session.user;
    let done = match campaigns::control(&mut tx, item.id, step, me, state.clock.now(), &auth.source).await {
        Err(DbError::Invalid { constraint }) if constraint == "campaign_runs_halted" => {
            return Err(ApiError::Conflict(
                "the organization's sending is halted by its complaint-rate breaker; an ADMIN resumes it on the sending breaker's page",
            ))
        }
        other => other?,
    };
    if done.is_none() {
        return Err(ApiError::Conflict(match step {
            Control::Pause => "only a campaign that is sending can be paused",
            Control::Resume => "only a paused campaign can be resumed",
            Control::Cancel => "only a campaign that is sending or paused can be cancelled",
        }));
    }
    let shown = shown(&mut tx, item, me).await?;
    tx.commit().await?;
    // Resuming queued the sending job again.
    state.wake_jobs();
    Ok(shown)
}

/// An SMTP reply with every word that holds an `@` replaced: servers often quote the
/// recipient's address, and the ledger page shows no address.
fn without_addresses(reply: &str) -> String {
    reply.split(' ').map(|word| if word.contains('@') { "<address>" } else { word }).collect::<Vec<_>>().join(" ")
}

/// A page of the campaign's send ledger in contact id order, only rows in `state` when given,
/// and the cursor of the next. No row says who a contact is beyond their id.
pub async fn messages(
    auth: &mut Authorized<ReadContent>,
    id: &str,
    state: Option<&str>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Message>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    if let Some(state) = state.filter(|s| !MESSAGE_STATES.contains(s)) {
        return Err(ApiError::InvalidParameter {
            name: "state".into(),
            message: format!("`{state}` is not a state; one of {}", MESSAGE_STATES.join(", ")),
        });
    }
    let after = cursor.map(ContactId::parse).transpose().map_err(|_| paging::bad_cursor())?;
    let item = find(&mut auth.tx, id).await?;
    let mut rows = campaigns::messages(&mut auth.tx, item.id, state, after, limit + 1).await?;
    for row in &mut rows {
        row.reply = row.reply.as_deref().map(without_addresses);
    }
    Ok(paging::split(rows, limit, |m: &Message| m.contact.to_string()))
}

/// A campaign version's definition, read back from its body: the canonical form this code
/// wrote, so a body that does not read back is a fault on our side, not the client's.
pub fn definition_of(version: &content::Version) -> Result<Definition, ApiError> {
    #[derive(serde::Deserialize)]
    struct Piece {
        item: ContentId,
        sha256: String,
        version: i32,
    }
    #[derive(serde::Deserialize)]
    struct Audience {
        id: SegmentId,
        sha256: String,
        version: i32,
    }
    #[derive(serde::Deserialize)]
    struct When {
        kind: String,
        at: Option<DateTime<Utc>>,
        date: Option<NaiveDate>,
        hour: Option<i64>,
    }
    #[derive(serde::Deserialize)]
    struct Reads {
        name: String,
        max: u16,
    }
    #[derive(serde::Deserialize)]
    struct Canonical {
        content: Piece,
        fields: Vec<Reads>,
        purpose: PurposeId,
        schedule: When,
        segment: Audience,
        sender: SenderId,
        template: Piece,
    }
    let broken =
        |what: String| ApiError::Internal(format!("a stored campaign definition does not read back: {what}").into());
    let body: Canonical = serde_json::from_str(&version.body).map_err(|e| broken(e.to_string()))?;
    let hash = |hex: &str| ContentHash::parse(hex).map_err(|e| broken(e.to_string()));
    let piece =
        |p: &Piece| Ok::<_, ApiError>(ContentRef { item: p.item, version: p.version, sha256: hash(&p.sha256)? });
    let when = &body.schedule;
    let schedule = ScheduleInput { kind: &when.kind, at: when.at, date: when.date, hour: when.hour }
        .parse()
        .map_err(|e| broken(e.to_string()))?;
    let fields = body
        .fields
        .iter()
        .map(|f| Field::text(&f.name, f.max))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| broken(e.to_string()))?;
    let segment =
        SegmentRef { segment: body.segment.id, version: body.segment.version, sha256: hash(&body.segment.sha256)? };
    Definition::new(piece(&body.content)?, piece(&body.template)?, segment, body.sender, body.purpose, schedule, fields)
        .map_err(|e| broken(e.to_string()))
}

/// A definition with what each of its parts is called, for people to read; a part that is
/// gone (a sender removed since) is `None`.
pub struct Described {
    pub definition: Definition,
    pub content: Option<String>,
    pub template: Option<String>,
    pub segment: Option<String>,
    /// The from name and address.
    pub sender: Option<String>,
    pub purpose: Option<String>,
}

/// The definition of campaign version `version`, with the titles and names of what it names.
pub async fn describe(tx: &mut TenantTx, version: &content::Version) -> Result<Described, ApiError> {
    let definition = definition_of(version)?;
    let title = |v: Option<content::Version>| v.map(|v| v.title);
    let content = title(content::version(tx, definition.content.item, definition.content.version).await?);
    let template = title(content::version(tx, definition.template.item, definition.template.version).await?);
    let segment = segments::versions(tx, definition.segment.segment).await?.map(|(name, _)| name);
    let sender = senders::get(tx, definition.sender)
        .await?
        .map(|(s, _)| format!("{} <{}>", s.from_name.as_str(), s.from_address));
    let purpose = browse::purpose(tx, definition.purpose).await?.map(|p| p.name);
    Ok(Described { definition, content, template, segment, sender, purpose })
}

/// What a campaign editor offers to choose from: each email piece and email template with a
/// version under review's approval or published (its number and title), the saved segments
/// with their latest version, the senders, the email purposes, and the attributes a field may
/// name.
pub struct Choices {
    pub pieces: Vec<(ContentId, i32, String)>,
    pub templates: Vec<(ContentId, i32, String)>,
    pub segments: Vec<segments::Saved>,
    pub senders: Vec<senders::Sender>,
    pub purposes: Vec<browse::Purpose>,
    pub attributes: Vec<String>,
}

/// The most of each kind an editor offers.
const CHOICES: u16 = 200;

pub async fn choices(auth: &mut Authorized<WriteContent>) -> Result<Choices, ApiError> {
    let tx = &mut auth.tx;
    let offered = |channel: Channel| content::Filter { channel: Some(channel), ..Default::default() };
    let approved = |items: Vec<Item>| {
        items
            .into_iter()
            .filter_map(|i| i.approved_version.or(i.published_version).map(|n| (i.id, n, i.version.title)))
            .collect::<Vec<_>>()
    };
    let pieces = approved(content::list(tx, &offered(Channel::Email), i64::from(CHOICES)).await?);
    let templates = approved(content::list(tx, &offered(Channel::EmailTemplate), i64::from(CHOICES)).await?);
    let segments = segments::list(tx, None, CHOICES).await?;
    let senders = senders::list(tx, None, CHOICES).await?;
    let purposes = browse::purposes(tx).await?.into_iter().filter(|p| p.channel == "email").collect();
    let attributes = browse::attributes(tx)
        .await?
        .into_iter()
        .filter(|a| matches!(a.kind.as_str(), "text" | "choice"))
        .map(|a| a.name)
        .collect();
    Ok(Choices { pieces, templates, segments, senders, purposes, attributes })
}

/// One message of a campaign's latest version as a recipient would get it, for its editor to
/// look at before the review: for the first contact of its segment, or for a made-up one when
/// the segment holds nobody.
pub struct Preview {
    /// The contact it was rendered for; `None` for the made-up sample.
    pub sample: Option<ContactId>,
    /// The HTML part, as sanitised by the renderer; a page shows it as text.
    pub html: String,
    pub text: String,
    /// The headers a recipient trusts, as the message carries them (folded lines joined).
    pub headers: Vec<(&'static str, String)>,
    /// The headers the DKIM signature covers (its `h=` tag).
    pub signed: Vec<String>,
}

/// The headers a preview shows, in this order.
pub const PREVIEW_HEADERS: [&str; 6] =
    ["From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"];

/// The address of the made-up recipient (RFC 2606's example domain, which nobody receives at).
const SAMPLE_ADDRESS: &str = "recipient@example.com";

/// Renders and signs one message of campaign `id`'s latest version exactly as the sending job
/// does (`sending::rendered` and `sending::signed`), for the segment's first contact: reading
/// that contact's address and declared fields is recorded as a read of personal data, as every
/// contact page is. The unsubscribe link carries no token (a preview must not hand out a live
/// one); a real message carries its recipient's signed link at the same place.
pub async fn preview(state: &AppState, auth: &mut Authorized<ReadContacts>, id: &str) -> Result<Preview, ApiError> {
    let item = find(&mut auth.tx, id).await?;
    let definition = definition_of(&item.version)?;
    let org = auth.tx.org();
    // The sender's key is read before anything is written in this transaction (docs/scaling.md).
    let campaign = crate::sending::load_version(&mut auth.tx, &state.sealer, org, item.id, item.version.number)
        .await
        .map_err(|message| ApiError::Invalid { field: "campaign", message })?;
    let names: Vec<String> = definition.fields().iter().map(|f| f.name().to_owned()).collect();
    let stored = segments::version(&mut auth.tx, definition.segment.segment, definition.segment.version)
        .await?
        .ok_or(ApiError::Conflict("the segment version this campaign names is gone"))?;
    let catalog = segments::catalog(&mut auth.tx).await?;
    let segment = mos_domain::segments::Segment::parse(&stored.definition, &catalog).map_err(|_| {
        ApiError::Conflict("the segment this campaign names no longer reads against this organization's attributes")
    })?;
    let now = state.clock.now();
    let (me, source) = (auth.session.user, auth.source.clone());
    let first = segments::first(&mut auth.tx, &segment, now).await?;
    let contacts: Vec<ContactId> = first.into_iter().collect();
    let found = campaigns::recipients(&mut auth.tx, &contacts, &names).await?.into_iter().next();
    let (recipient, sample) = match found {
        Some(recipient) => {
            let mut shown: Vec<&str> = vec!["address"];
            shown.extend(names.iter().map(String::as_str));
            let read = browse::Shown::Detail { contact: recipient.contact, fields: &shown };
            browse::shown(&mut auth.tx, read, me, &source).await?;
            let contact = recipient.contact;
            (recipient, Some(contact))
        }
        None => (
            campaigns::Recipient {
                contact: ContactId::new(),
                address: mos_domain::Email::parse(SAMPLE_ADDRESS).map_err(|e| ApiError::Internal(Box::new(e)))?,
                // Each value its field's name, cut to the field's length: visibly a stand-in.
                values: definition
                    .fields()
                    .iter()
                    .map(|f| (f.name().to_owned(), f.name().chars().take(usize::from(f.max())).collect()))
                    .collect(),
            },
            None,
        ),
    };
    let public = state.settings.public_url.trim_end_matches('/');
    // The content's links as written: a tracked link of a preview would lead nowhere.
    let addresses = mos_mail::HttpsUrl::parse(&format!("{public}/u/preview"))
        .or_else(|_| mos_mail::HttpsUrl::parse("https://unsubscribe.invalid/u/preview"))
        .ok()
        .map(|unsubscribe| crate::sending::Addresses { unsubscribe, clicks: Vec::new() });
    // Rendering and the RSA signature are CPU work: off the async workers.
    let made = state
        .heavy
        .run(move || {
            let rendered = crate::sending::rendered(&campaign, &recipient, addresses)?;
            let signed = crate::sending::signed(&campaign, &recipient, &rendered)?;
            Ok::<_, String>((rendered, signed.formatted()))
        })
        .await?;
    let (rendered, wire) = made.map_err(|message| ApiError::Invalid { field: "campaign", message })?;
    let headers = header_fields(&wire);
    let signed = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("DKIM-Signature"))
        .map(|(_, value)| signed_list(value))
        .unwrap_or_default();
    let shown = PREVIEW_HEADERS
        .iter()
        .filter_map(|want| {
            headers.iter().find(|(name, _)| name.eq_ignore_ascii_case(want)).map(|(_, v)| (*want, v.clone()))
        })
        .collect();
    Ok(Preview { sample, html: rendered.html().to_owned(), text: rendered.text().to_owned(), headers: shown, signed })
}

/// A message's header fields, name and value, with folded lines joined (RFC 5322 2.2.3).
fn header_fields(message: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        match (line.starts_with([' ', '\t']), fields.last_mut()) {
            (true, Some((_, value))) => {
                value.push(' ');
                value.push_str(line.trim());
            }
            _ => {
                if let Some((name, value)) = line.split_once(':') {
                    fields.push((name.to_owned(), value.trim().to_owned()));
                }
            }
        }
    }
    fields
}

/// The `h=` tag of a DKIM-Signature's value: the headers it signs.
fn signed_list(signature: &str) -> Vec<String> {
    signature
        .split(';')
        .filter_map(|tag| tag.trim().strip_prefix("h="))
        .flat_map(|list| list.split(':').map(|h| h.trim().to_owned()))
        .filter(|h| !h.is_empty())
        .collect()
}

/// How a launched campaign's sending goes, from its run and its messages counted by state:
/// what the progress panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    pub sent: i64,
    /// Queued or being handed over.
    pub remaining: i64,
    /// Skipped, by reason.
    pub skipped: Vec<(String, i64)>,
    pub bounced: i64,
    pub failed: i64,
    /// Messages sent per second since the launch (until the run finished), when any time passed.
    pub per_second: Option<f64>,
    /// When the remaining messages are out at that pace; `None` with nothing sent yet, or
    /// nothing remaining.
    pub eta: Option<DateTime<Utc>>,
}

impl Pace {
    pub fn of(run: &Run, counts: &BTreeMap<String, i64>, now: DateTime<Utc>) -> Self {
        let count = |state: &str| counts.get(state).copied().unwrap_or(0);
        let sent = count("sent");
        let remaining = count("queued") + count("sending");
        let skipped = counts
            .iter()
            .filter_map(|(key, n)| key.strip_prefix("skipped:").map(|reason| (reason.to_owned(), *n)))
            .collect();
        let until = run.finished_at.unwrap_or(now);
        let seconds = (until - run.launched_at).num_milliseconds() as f64 / 1000.0;
        let per_second = (seconds > 0.0).then(|| sent as f64 / seconds);
        let eta = match per_second {
            Some(rate) if rate > 0.0 && remaining > 0 && run.finished_at.is_none() => {
                Some(now + chrono::Duration::milliseconds((remaining as f64 / rate * 1000.0) as i64))
            }
            _ => None,
        };
        Self { sent, remaining, skipped, bounced: count("bounced"), failed: count("failed"), per_second, eta }
    }
}

#[cfg(test)]
mod tests {
    use super::{header_fields, signed_list, without_addresses, Pace};

    #[test]
    fn a_reply_shows_no_address_it_quotes() {
        assert_eq!(
            without_addresses("550 5.1.1 <ada@p.example>: Recipient address rejected"),
            "550 5.1.1 <address> Recipient address rejected"
        );
        assert_eq!(without_addresses("250 2.0.0 Ok: queued as 4F2"), "250 2.0.0 Ok: queued as 4F2");
    }

    #[test]
    fn a_preview_reads_folded_header_fields_and_the_signed_list() {
        let wire = b"From: \"Acme\" <news@acme.example>\r\nDKIM-Signature: v=1; a=rsa-sha256; d=acme.example;\r\n h=From:To:\r\n List-Unsubscribe; bh=x; b=y\r\nTo: a@b.example\r\n\r\nbody: not a header\r\n";
        let fields = header_fields(wire);
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["From", "DKIM-Signature", "To"]);
        assert_eq!(signed_list(&fields[1].1), ["From", "To", "List-Unsubscribe"]);
    }

    #[test]
    fn the_pace_counts_since_the_launch_and_expects_the_rest_at_it() {
        let launched = chrono::DateTime::parse_from_rfc3339("2026-12-08T09:00:00Z").unwrap().to_utc();
        let run = mos_db::campaigns::Run {
            state: "sending".into(),
            version: 1,
            launched_by: mos_domain::UserId::new(),
            launched_at: launched,
            recipients: 1_000,
            finished_at: None,
        };
        let counts =
            [("sent", 200), ("queued", 590), ("sending", 10), ("skipped:no_consent", 150), ("skipped:suppressed", 50)]
                .map(|(k, n)| (k.to_owned(), n))
                .into();
        let now = launched + chrono::Duration::seconds(100);
        let pace = Pace::of(&run, &counts, now);
        assert_eq!((pace.sent, pace.remaining, pace.bounced, pace.failed), (200, 600, 0, 0));
        assert_eq!(pace.skipped, [("no_consent".to_owned(), 150), ("suppressed".to_owned(), 50)]);
        assert_eq!(pace.per_second, Some(2.0));
        assert_eq!(pace.eta, Some(now + chrono::Duration::seconds(300)));
        // Finished: the pace is until the end, and nothing is expected.
        let done =
            mos_db::campaigns::Run { finished_at: Some(launched + chrono::Duration::seconds(50)), ..run.clone() };
        let pace = Pace::of(&done, &counts, now);
        assert_eq!((pace.per_second, pace.eta), (Some(4.0), None));
        // At the launch's instant there is no pace yet, and no division by zero.
        assert_eq!(Pace::of(&run, &counts, launched).per_second, None);
    }
}
