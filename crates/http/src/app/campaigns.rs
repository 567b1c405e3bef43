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
use mos_domain::content::Channel;
use mos_domain::{ContactId, ContentId, PurposeId, SegmentId, SenderId};

use crate::access::{Authorized, ReadContent, SendCampaigns, WriteContent};
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
    let essentials = mos_mail::Essentials { postal_address: postal_address.clone(), unsubscribe, preferences };
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
}

async fn shown(tx: &mut TenantTx, item: Item, me: mos_domain::UserId) -> Result<Campaign, ApiError> {
    let approvals = content::approvals(tx, &item, me).await?;
    let run = match campaigns::run(tx, item.id).await? {
        Some(run) => Some((run, campaigns::progress(tx, item.id).await?)),
        None => None,
    };
    Ok(Campaign { item, approvals, run })
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
    let done = campaigns::control(&mut tx, item.id, step, me, state.clock.now(), &auth.source).await?;
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

#[cfg(test)]
mod tests {
    use super::without_addresses;

    #[test]
    fn a_reply_shows_no_address_it_quotes() {
        assert_eq!(
            without_addresses("550 5.1.1 <ada@p.example>: Recipient address rejected"),
            "550 5.1.1 <address> Recipient address rejected"
        );
        assert_eq!(without_addresses("250 2.0.0 Ok: queued as 4F2"), "250 2.0.0 Ok: queued as 4F2");
    }
}
