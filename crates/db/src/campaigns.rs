//! Campaigns and their send ledger (migration 24, docs/campaigns.md).
//!
//! A campaign is a content item of the channel `campaign` whose versions carry its definition
//! ([`Definition`]), so the content review serves it unchanged: [`content::act`] submits,
//! approves and withdraws it, by the same rules and with the same audit records. Only this
//! module writes a campaign's versions ([`create`], [`edit`]) and launches it ([`launch`]).
//!
//! Launching snapshots the segment version's audience into `campaign_messages`, one row per
//! contact, with one `INSERT .. SELECT`: a contact the segment holds but who may not be mailed
//! (no live consent for the purpose, a suppression in force) gets a row too, `skipped` with its
//! reason, so every contact the audience held is accounted for. The ledger's triggers refuse a
//! row to be sent for such a contact whatever this code does. Every statement names the tenant
//! as `$1` besides Row-Level Security.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, QueryBuilder};

use crate::audiences::consent::live_until;
use crate::audiences::segments::{self, push_matching};
use crate::audiences::suppression::in_force;
use crate::content::{self, Item, Request, Step};
use crate::error::stored;
use crate::jobs::{self, JobKind};
use crate::{audit, chain, Result, TenantTx};
use mos_domain::campaigns::{Definition, Schedule};
use mos_domain::content::{Action, Channel, ContentHash, Text};
use mos_domain::events::{CAMPAIGN, CAMPAIGN_BATCH_SENT, CAMPAIGN_CONTROLLED, CAMPAIGN_LAUNCHED};
use mos_domain::merkle;
use mos_domain::segments::Segment;
use mos_domain::{
    AuditEvent, ContactId, ContentId, Email, JobId, OrgId, PurposeId, RequestSource, Role, SegmentId, SenderId, UserId,
};

/// The ledger row of each message a statement names, looked up by its key one by one: as a join,
/// the planner may scan every sent message of the campaign through the partial index of sent
/// messages and match the statement's against each (measured: 2 ms a click at 10,000 sent, in
/// the minutes after a send, before the ledger's statistics are renewed). The `limit`, a no-op
/// on a key, keeps the lookup a subquery of its own, run per row by the primary key. The
/// statement names its rows `r` (with `campaign_id` and `contact_id`) and the organization `$1`.
pub(crate) const MESSAGE: &str = "cross join lateral (select * from app.campaign_messages m
                                    where m.organization_id = $1 and m.campaign_id = r.campaign_id
                                      and m.contact_id = r.contact_id
                                    limit 1) m";

/// Why contact `c` may not be sent a message for the purpose `k.purpose` at `k.at`, as the
/// ledger's `skip_reason` says it, or null: erased, no live consent (its current state for the
/// purpose, kept beside the ledger, fails `consent::LIVE_UNTIL`), or a suppression of its address
/// in force (`audiences::suppression::in_force!`), as text. The statement must have bound the
/// tenant as `$1`, which every table repeats: a condition on the tenant's own value, not on
/// `c.organization_id`, is what lets Citus route an `INSERT .. SELECT` to one shard; and it
/// joins `k`, a row of the statement's other values, so that nothing else needs binding before
/// the tenant. The ledger's trigger states the same rules.
const REFUSAL: &str = concat!(
    "(case when c.erased_at is not null then 'erased'
           when not exists (select 1 from app.consent_state e
                             where e.organization_id = $1 and e.purpose_id = k.purpose and e.contact_id = c.id
                               and ",
    live_until!(),
    "k.at)) then 'no_consent'
           when exists (select 1 from app.suppressions s
                         where s.organization_id = $1 and s.address_key = c.address_key and ",
    in_force!(),
    ") then 'suppressed'
      end)"
);

/// The job that sends a launched campaign's due messages (`mos_http::sending`).
pub const SEND_JOB: JobKind = JobKind::new("campaign_send");

/// Attempts of one sending job; each attempt is a slice of the sending, so few fail for good.
const SEND_ATTEMPTS: i32 = 20;

/// Queues the campaign's sending job, due when its first message is: a queued one's time, or
/// the end of the lease of one still `sending` (its worker died, so nobody records it until
/// it is claimed again); nothing when no message is queued or sending.
pub async fn schedule_sending(tx: &mut TenantTx, id: ContentId, now: DateTime<Utc>) -> Result<Option<JobId>> {
    let due: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select min(case when state = 'queued' then not_before else lease_until end) from app.campaign_messages
          where organization_id = $1 and campaign_id = $2 and state in ('queued', 'sending')",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_one(tx.conn())
    .await?;
    let Some(due) = due else { return Ok(None) };
    let payload = json!({ "campaign": id });
    Ok(Some(jobs::enqueue_at(tx, SEND_JOB, &payload, SEND_ATTEMPTS, now, due.max(now)).await?))
}

/// Creates a campaign as a draft at version 1: `text` is `definition.text(name)`.
pub async fn create(
    tx: &mut TenantTx,
    definition: &Definition,
    text: &Text,
    author: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Item> {
    let item = content::create(tx, text, author, now, source).await?;
    insert_version(tx, item.id, 1, item.version.sha256, definition).await?;
    Ok(item)
}

/// A new version of the campaign's definition (which voids its approvals, as an edit of any
/// content does). The same definition again is no new version.
#[allow(clippy::too_many_arguments)]
pub async fn edit(
    tx: &mut TenantTx,
    id: ContentId,
    definition: &Definition,
    text: &Text,
    actor: UserId,
    role: Role,
    revisions: Option<&[i32]>,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Step> {
    let request = Request {
        action: Action::Edit,
        text: Some(text),
        note: None,
        actor,
        role,
        revisions,
        sha256: None,
        now,
        source,
    };
    let before: Option<i32> =
        sqlx::query_scalar("select current_version from app.content_items where organization_id = $1 and id = $2")
            .bind(tx.org().as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    let step = content::act_on(tx, id, request, Channel::Campaign).await?;
    if let Step::Done(item) = &step {
        if Some(item.current_version) != before {
            insert_version(tx, id, item.current_version, item.version.sha256, definition).await?;
        }
    }
    Ok(step)
}

async fn insert_version(
    tx: &mut TenantTx,
    id: ContentId,
    version: i32,
    sha256: ContentHash,
    d: &Definition,
) -> Result<()> {
    let (send_at, local_date, local_hour) = match d.schedule {
        Schedule::Now => (None, None, None),
        Schedule::At(at) => (Some(at), None, None),
        Schedule::LocalHour { date, hour } => (None, Some(date), Some(i16::from(hour))),
    };
    sqlx::query(
        "insert into app.campaign_versions
                (organization_id, campaign_id, version, sha256, content_id, content_version, content_sha256,
                 template_id, template_version, template_sha256, segment_id, segment_version, segment_sha256,
                 sender_id, purpose_id, schedule, send_at, local_date, local_hour, fields)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                 $16::text::app.campaign_schedule, $17, $18, $19, $20)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(version)
    .bind(sha256.as_bytes())
    .bind(d.content.item.as_uuid())
    .bind(d.content.version)
    .bind(d.content.sha256.as_bytes())
    .bind(d.template.item.as_uuid())
    .bind(d.template.version)
    .bind(d.template.sha256.as_bytes())
    .bind(d.segment.segment.as_uuid())
    .bind(d.segment.version)
    .bind(d.segment.sha256.as_bytes())
    .bind(d.sender.as_uuid())
    .bind(d.purpose.as_uuid())
    .bind(d.schedule.kind())
    .bind(send_at)
    .bind(local_date)
    .bind(local_hour)
    .bind(d.fields_json())
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// How a launch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    Done(Launched),
    /// The review refused the step (not approved, not allowed, already launched).
    Step(Step),
}

/// A launched campaign's audience snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub version: i32,
    /// Every contact the segment held: queued and skipped.
    pub recipients: i64,
    pub queued: i64,
    /// Contacts the segment held that are not sent to, by reason (`no_consent`, `suppressed`).
    pub skipped: BTreeMap<String, i64>,
    /// Launched paused, because the organization's breaker halted its sending: it sends once an
    /// ADMIN resumes.
    pub held: bool,
}

/// Launches the campaign's approved version (the review's `publish` step, which the member's
/// role must allow) and snapshots its audience, in the caller's transaction.
pub async fn launch(
    tx: &mut TenantTx,
    id: ContentId,
    actor: UserId,
    role: Role,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Launch> {
    let request = Request {
        action: Action::Publish,
        text: None,
        note: None,
        actor,
        role,
        revisions: None,
        sha256: None,
        now,
        source,
    };
    let item = match content::act_on(tx, id, request, Channel::Campaign).await? {
        Step::Done(item) => item,
        other => return Ok(Launch::Step(other)),
    };
    let version = item.published_version.ok_or_else(|| stored("content_items_published"))?;
    let stored_version = version_of(tx, id, version).await?.ok_or_else(|| stored("campaign_versions_pkey"))?;
    let saved = segments::version(tx, stored_version.segment, stored_version.segment_version)
        .await?
        .ok_or_else(|| stored("campaign_versions_segment_fkey"))?;
    let catalog = segments::catalog(tx).await?;
    let segment = Segment::parse(&saved.definition, &catalog).map_err(|_| stored("segment_versions_definition"))?;

    // While the organization's sending is halted the run waits, held for the ADMIN's resume (the
    // database refuses it `sending` anyway).
    let held = crate::breaker::get(tx).await?.halted();
    sqlx::query(
        "insert into app.campaign_runs
                (organization_id, campaign_id, version, state, launched_by, launched_at, recipients, held)
         values ($1, $2, $3, $6::text::app.campaign_run_state, $4, $5, 0, $7)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(version)
    .bind(actor.as_uuid())
    .bind(now)
    .bind(if held { "paused" } else { "sending" })
    .bind(held)
    .execute(tx.conn())
    .await?;

    // One statement: the segment's contacts as the segment's own count reads them, each with
    // its refusal, written as the ledger's rows. The contacts come first, so that the tenant is
    // `$1` as the segment's conditions and the refusal read it; the other values follow as one
    // row `k`. The tenant written comes from the contacts' own column, so that Citus runs the
    // whole statement on the tenant's shard instead of through the coordinator.
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "insert into app.campaign_messages
                (organization_id, campaign_id, contact_id, version, state, skip_reason, not_before, updated_at)
         select b.organization_id, b.campaign, b.id, b.version,
                case when b.reason is null then 'queued' else 'skipped' end::app.campaign_message_state,
                b.reason, b.not_before, b.at
           from (select c.organization_id, c.id, k.campaign, k.version, k.at, ",
    );
    query.push(REFUSAL).push(
        "::app.campaign_skip_reason as reason,
                        coalesce(k.not_before,
                                 -- The hour on that day in the contact's time zone; UTC for a
                                 -- contact without a zone PostgreSQL knows.
                                 (k.local_date + make_interval(hours => k.local_hour))
                                   at time zone coalesce((select z.name from pg_timezone_names z
                                                           where z.name = c.time_zone), 'UTC')) as not_before
                   from (select c.organization_id, c.id, c.time_zone, c.erased_at, c.address_key",
    );
    push_matching(&mut query, tx.org().as_uuid(), &segment, now);
    query.push(") c, (select ").push_bind(id.as_uuid()).push("::uuid as campaign, ").push_bind(version);
    query.push("::integer as version, ").push_bind(now).push("::timestamptz as at, ");
    query.push_bind(stored_version.purpose.as_uuid()).push("::uuid as purpose, ");
    let (not_before, local) = match stored_version.schedule {
        Schedule::Now => (Some(now), None),
        Schedule::At(at) => (Some(at), None),
        Schedule::LocalHour { date, hour } => (None, Some((date, i32::from(hour)))),
    };
    query.push_bind(not_before).push("::timestamptz as not_before, ");
    query.push_bind(local.map(|l| l.0)).push("::date as local_date, ");
    query.push_bind(local.map(|l| l.1)).push("::integer as local_hour) k) b");
    // Unnamed, so planned with its values, as a segment's count is.
    query.build().persistent(false).execute(tx.conn()).await?;

    let counts: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "select state::text, skip_reason::text, count(*) from app.campaign_messages
          where organization_id = $1 and campaign_id = $2 group by 1, 2 order by 1, 2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let queued = counts.iter().filter(|(s, _, _)| s == "queued").map(|(_, _, n)| *n).sum();
    let skipped: BTreeMap<String, i64> =
        counts.iter().filter_map(|(_, reason, n)| reason.clone().map(|r| (r, *n))).collect();
    let total: i64 = counts.iter().map(|(_, _, n)| *n).sum();
    sqlx::query("update app.campaign_runs set recipients = $3 where organization_id = $1 and campaign_id = $2")
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(total)
        .execute(tx.conn())
        .await?;
    let event = AuditEvent::new(CAMPAIGN_LAUNCHED, CAMPAIGN)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("version", json!(version))
        .meta("sha256", json!(item.version.sha256.to_string()))
        .meta("recipients", json!(total))
        .meta("queued", json!(queued))
        .meta("skipped", json!(skipped))
        .meta("held", json!(held));
    audit::record(tx, &event).await?;
    if !held {
        schedule_sending(tx, id, now).await?;
    }
    Ok(Launch::Done(Launched { version, recipients: total, queued, skipped, held }))
}

/// A campaign version as stored: what it sends, to whom, from whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub content: (ContentId, i32),
    pub template: (ContentId, i32),
    /// The personalisation fields: name and most characters.
    pub fields: Vec<(String, u16)>,
    pub segment: SegmentId,
    pub segment_version: i32,
    pub sender: SenderId,
    pub purpose: PurposeId,
    pub schedule: Schedule,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    content_id: uuid::Uuid,
    content_version: i32,
    template_id: uuid::Uuid,
    template_version: i32,
    fields: serde_json::Value,
    segment_id: uuid::Uuid,
    segment_version: i32,
    sender_id: uuid::Uuid,
    purpose_id: uuid::Uuid,
    schedule: String,
    send_at: Option<DateTime<Utc>>,
    local_date: Option<NaiveDate>,
    local_hour: Option<i16>,
}

/// Version `version` of campaign `id`.
pub async fn version_of(tx: &mut TenantTx, id: ContentId, version: i32) -> Result<Option<Stored>> {
    let row: Option<StoredRow> = sqlx::query_as(
        "select content_id, content_version, template_id, template_version, fields, segment_id, segment_version,
                sender_id, purpose_id, schedule::text, send_at, local_date, local_hour
           from app.campaign_versions where organization_id = $1 and campaign_id = $2 and version = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(version)
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let broken = || stored("campaign_versions_schedule");
    let schedule = match (row.schedule.as_str(), row.send_at, row.local_date, row.local_hour) {
        ("now", None, None, None) => Schedule::Now,
        ("at", Some(at), None, None) => Schedule::At(at),
        ("local_hour", None, Some(date), Some(hour)) => {
            Schedule::local_hour(date, u8::try_from(hour).map_err(|_| broken())?).map_err(|_| broken())?
        }
        _ => return Err(broken()),
    };
    let item = |id: uuid::Uuid| ContentId::try_from(id).map_err(|_| stored("campaign_versions_content_id"));
    #[derive(serde::Deserialize)]
    struct StoredField {
        name: String,
        max: u16,
    }
    let fields: Vec<StoredField> =
        serde_json::from_value(row.fields).map_err(|_| stored("campaign_versions_fields"))?;
    Ok(Some(Stored {
        content: (item(row.content_id)?, row.content_version),
        template: (item(row.template_id)?, row.template_version),
        fields: fields.into_iter().map(|f| (f.name, f.max)).collect(),
        segment: SegmentId::try_from(row.segment_id).map_err(|_| stored("campaign_versions_segment_id"))?,
        segment_version: row.segment_version,
        sender: SenderId::try_from(row.sender_id).map_err(|_| stored("campaign_versions_sender_id"))?,
        purpose: PurposeId::try_from(row.purpose_id).map_err(|_| stored("campaign_versions_purpose_id"))?,
        schedule,
    }))
}

/// A message handed to the transport: the row is `sending` under a lease until `lease_until`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    #[sqlx(try_from = "uuid::Uuid")]
    pub contact: ContactId,
    pub attempts: i16,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claim {
    /// To be sent now.
    pub messages: Vec<Claimed>,
    /// Refused at hand-over and recorded as skipped, by reason.
    pub skipped: BTreeMap<String, i64>,
}

/// Claims up to `limit` of the campaign's due messages (queued and due, or sending under a lease
/// that ran out: its worker died), checking each again as the launch did: a contact who revoked,
/// was suppressed or erased since is recorded as skipped with the reason, not handed over. When
/// the campaign no longer stands (its content or template withdrawn, edited or archived), every
/// queued message is skipped as `withdrawn`. A paused or ended campaign hands nothing over.
/// Rows another worker holds are passed over (`SKIP LOCKED`).
pub async fn claim(
    tx: &mut TenantTx,
    id: ContentId,
    limit: i64,
    lease: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<Claim> {
    let standing: Option<(String, bool, uuid::Uuid)> = sqlx::query_as(
        "select r.state::text,
                ci.state = 'published' and ci.published_version = cv.version
                and co.state in ('approved', 'published') and co.approved_version = cv.content_version
                and te.state in ('approved', 'published') and te.approved_version = cv.template_version,
                cv.purpose_id
           from app.campaign_runs r
           join app.campaign_versions cv on cv.organization_id = $1 and cv.campaign_id = r.campaign_id and cv.version = r.version
           join app.content_items ci on ci.organization_id = $1 and ci.id = cv.campaign_id
           join app.content_items co on co.organization_id = $1 and co.id = cv.content_id
           join app.content_items te on te.organization_id = $1 and te.id = cv.template_id
          where r.organization_id = $1 and r.campaign_id = $2
          for update of r",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let Some((run, stands, purpose)) = standing else { return Ok(Claim::default()) };
    if run != "sending" {
        return Ok(Claim::default());
    }
    let purpose = PurposeId::try_from(purpose).map_err(|_| stored("campaign_versions_purpose_id"))?;
    if !stands {
        let skipped: i64 = sqlx::query_scalar(
            "with skipped as (
               update app.campaign_messages set state = 'skipped', skip_reason = 'withdrawn', updated_at = $3
                where organization_id = $1 and campaign_id = $2 and state = 'queued' returning 1)
             select count(*) from skipped",
        )
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
        let skipped = if skipped > 0 { BTreeMap::from([("withdrawn".to_owned(), skipped)]) } else { BTreeMap::new() };
        return Ok(Claim { messages: Vec::new(), skipped });
    }
    // The due rows are found and locked by two searches, each in the order of its own partial
    // index and stopping at the batch: the messages whose lease ran out (their worker died)
    // first, then the queued that are due. Asked as one condition joined by `or`, the planner
    // used neither index's order and read and sorted the campaign's whole remaining ledger for
    // every claim (112 ms at 100,000 recipients, against 0.34 ms for the queued search alone);
    // locked by a second look-up of the rows found, a campaign just launched (a million rows
    // the planner has not counted yet) had every claim compare each due row with each one found
    // (9 s a claim). Each search locks what it finds, skipping rows another claim holds, and
    // checks them again as it locks them; rows found beyond the batch stay locked only until
    // the claim commits.
    let org = tx.org().as_uuid();
    let mut query: QueryBuilder<Postgres> = QueryBuilder::new(
        "with expired as (
           select l.contact_id from app.campaign_messages l
            where l.organization_id = ",
    );
    query.push_bind(org).push(" and l.campaign_id = ").push_bind(id.as_uuid());
    query.push(" and l.state = 'sending' and l.lease_until < ").push_bind(now);
    query.push(" order by l.lease_until limit ").push_bind(limit);
    query.push(
        " for update skip locked
         ), queued as (
           select q.contact_id from app.campaign_messages q
            where q.organization_id = ",
    );
    query.push_bind(org).push(" and q.campaign_id = ").push_bind(id.as_uuid());
    query.push(" and q.state = 'queued' and q.not_before <= ").push_bind(now);
    query.push(" order by q.not_before, q.contact_id limit ").push_bind(limit);
    query.push(
        " for update skip locked
         ), due as (
           select e.contact_id from expired e union all select q.contact_id from queued q limit ",
    );
    query.push_bind(limit);
    // Decided once per row: inlined, the refusal would be evaluated again wherever the update
    // reads the reason.
    query.push("), decided as materialized (select c.id, ").push(REFUSAL);
    query.push(" as reason from app.contacts c join due d on d.contact_id = c.id, (select ");
    query.push_bind(purpose.as_uuid()).push("::uuid as purpose, ").push_bind(now).push("::timestamptz as at) k");
    query.push(" where c.organization_id = ").push_bind(tx.org().as_uuid());
    // Citus calls no stable function (an enum's input) on a column in an UPDATE's SET or
    // RETURNING: the reason is cast here, and comes back as the text it was decided as.
    query.push(
        "), judged as (
           select d.id, d.reason, d.reason::app.campaign_skip_reason as skip_reason from decided d
         ) update app.campaign_messages m
              set state = case when j.reason is null then 'sending'::app.campaign_message_state
                               else 'skipped'::app.campaign_message_state end,
                  skip_reason = j.skip_reason,
                  lease_until = case when j.reason is null then ",
    );
    query.push_bind(now + lease);
    query.push(" end, claimed_at = case when j.reason is null then ").push_bind(now);
    query.push(" else m.claimed_at end, attempts = m.attempts + (j.reason is null)::int, updated_at = ").push_bind(now);
    query.push(" from judged j where m.organization_id = ").push_bind(tx.org().as_uuid());
    query.push(" and m.campaign_id = ").push_bind(id.as_uuid());
    // The rows to change as one array of keys too: with the statistics of a campaign just
    // launched (none yet), the planner otherwise walked the whole ledger and compared each row
    // with each decided one (50 million comparisons, 5.5 s, at 100,000 recipients).
    query.push(" and m.contact_id = any(array(select d.id from decided d)) and m.contact_id = j.id");
    query.push(" returning m.contact_id, j.reason, m.attempts");
    let rows: Vec<(uuid::Uuid, Option<String>, i16)> =
        query.build_query_as().persistent(false).fetch_all(tx.conn()).await?;
    let mut claim = Claim::default();
    for (contact, reason, attempts) in rows {
        match reason {
            Some(reason) => *claim.skipped.entry(reason).or_default() += 1,
            None => claim.messages.push(Claimed {
                contact: ContactId::try_from(contact).map_err(|_| stored("campaign_messages_contact_id"))?,
                attempts,
            }),
        }
    }
    claim.messages.sort_by_key(|m| m.contact);
    Ok(claim)
}

/// One message the transport accepted.
#[derive(Debug, Clone)]
pub struct Sent<'a> {
    pub contact: ContactId,
    /// The personalisation values it was rendered with, by field name.
    pub values: &'a BTreeMap<String, String>,
    /// The server's reply (code and text), bounded by the caller.
    pub reply: &'a str,
}

/// A batch of sent messages as recorded: the audit record's Merkle root over the messages'
/// hashes, in contact order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: uuid::Uuid,
    pub messages: usize,
    pub root: merkle::Hash,
}

/// The hashes a message's is computed from, besides its own fields.
struct Hashes {
    campaign: ContentHash,
    content: ContentHash,
    template: ContentHash,
    /// The sender's DKIM domain, which the `Message-ID`s name.
    domain: String,
}

/// The `Message-ID` of the campaign's message to `contact` (without the angle brackets): the
/// same at every attempt, so that a message sent twice across a crash is recognisably one.
pub fn message_id(campaign: ContentId, contact: ContactId, domain: &str) -> String {
    format!("{campaign}.{contact}@{domain}")
}

/// The `Feedback-ID` header of the campaign's messages: the campaign and its organization, which
/// a provider's feedback loop reports by and a returned message carries back
/// (`feedback::addressed` reads it).
pub fn feedback_id(campaign: ContentId, org: OrgId) -> String {
    format!("{campaign}:{org}")
}

/// SHA-256 of a salt and the values in name order, as the chain encodes texts: what a sent row
/// keeps after its values are erased.
pub fn values_commitment(salt: &[u8; 16], values: &BTreeMap<String, String>) -> [u8; 32] {
    let texts = values.iter().flat_map(|(name, value)| [Some(name.as_str()), Some(value.as_str())]);
    Sha256::new().chain_update(salt).chain_update(chain::encoded(texts)).finalize().into()
}

/// A message's hash (docs/campaigns.md, "Proof"): SHA-256 of the campaign's, the content's and
/// the template's hashes, the contact's id, the `Message-ID` and the values' commitment, as the
/// chain encodes texts.
pub fn message_hash(
    campaign: &ContentHash,
    content: &ContentHash,
    template: &ContentHash,
    contact: ContactId,
    message_id: &str,
    commitment: &[u8; 32],
) -> [u8; 32] {
    let texts = [
        campaign.to_string(),
        content.to_string(),
        template.to_string(),
        contact.to_string(),
        message_id.to_owned(),
        hex::encode(commitment),
    ];
    Sha256::digest(chain::encoded(texts.iter().map(|t| Some(t.as_str())))).into()
}

/// A launched campaign's version as its proofs need it.
#[derive(sqlx::FromRow)]
struct RunRow {
    campaign_id: uuid::Uuid,
    version: i32,
    sha256: Vec<u8>,
    content_sha256: Vec<u8>,
    template_sha256: Vec<u8>,
    dkim_domain: String,
}

const RUNS: &str = "select r.campaign_id, r.version, cv.sha256, cv.content_sha256, cv.template_sha256, s.dkim_domain
                      from app.campaign_runs r
                      join app.campaign_versions cv
                        on cv.organization_id = $1 and cv.campaign_id = r.campaign_id and cv.version = r.version
                      join app.senders s on s.organization_id = $1 and s.id = cv.sender_id
                     where r.organization_id = $1";

impl RunRow {
    fn hashes(&self) -> Result<Hashes> {
        let hash = |bytes: &[u8]| ContentHash::try_from(bytes.to_vec()).map_err(|_| stored("campaign_versions_sha256"));
        Ok(Hashes {
            campaign: hash(&self.sha256)?,
            content: hash(&self.content_sha256)?,
            template: hash(&self.template_sha256)?,
            domain: self.dkim_domain.clone(),
        })
    }
}

async fn hashes(tx: &mut TenantTx, id: ContentId) -> Result<Option<Hashes>> {
    let row: Option<RunRow> = sqlx::query_as(&format!("{RUNS} and r.campaign_id = $2"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(tx.conn())
        .await?;
    row.map(|r| r.hashes()).transpose()
}

/// Records `sent` as sent in one batch: each row's hash, the commitment to its values and the
/// values themselves, and one audit record with the count and the Merkle root (RFC 9162) of
/// the batch's message hashes in contact order. Only rows still `sending` are recorded; the
/// batch answers for those.
pub async fn record_sent(
    tx: &mut TenantTx,
    id: ContentId,
    sent: &[Sent<'_>],
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Batch> {
    let hashes = hashes(tx, id).await?.ok_or_else(|| stored("campaign_runs_pkey"))?;
    let batch = uuid::Uuid::now_v7();
    let (mut contacts, mut digests, mut commitments, mut values, mut salts, mut replies) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for s in sent {
        let salt: [u8; 16] = rand::random();
        let commitment = values_commitment(&salt, s.values);
        let message_id = message_id(id, s.contact, &hashes.domain);
        let digest =
            message_hash(&hashes.campaign, &hashes.content, &hashes.template, s.contact, &message_id, &commitment);
        contacts.push(s.contact.as_uuid());
        digests.push(digest.to_vec());
        commitments.push(commitment.to_vec());
        values.push(json!(s.values));
        salts.push(salt.to_vec());
        replies.push(s.reply.to_owned());
    }
    let mut recorded: Vec<(uuid::Uuid, Vec<u8>)> = sqlx::query_as(
        "update app.campaign_messages m
            set state = 'sent', lease_until = null, batch = $3, sent_at = $4, updated_at = $4,
                message_sha256 = u.digest, values_commitment = u.commitment, personalisation = u.personalisation,
                personalisation_salt = u.salt, reply = u.reply
           from unnest($5::uuid[], $6::bytea[], $7::bytea[], $8::jsonb[], $9::bytea[], $10::text[])
                u(contact_id, digest, commitment, personalisation, salt, reply)
          where m.organization_id = $1 and m.campaign_id = $2 and m.contact_id = u.contact_id and m.state = 'sending'
         returning m.contact_id, m.message_sha256",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(batch)
    .bind(now)
    .bind(&contacts)
    .bind(&digests)
    .bind(&commitments)
    .bind(&values)
    .bind(&salts)
    .bind(&replies)
    .fetch_all(tx.conn())
    .await?;
    recorded.sort();
    let leaves: Vec<merkle::Hash> = recorded.iter().map(|(_, digest)| merkle::leaf_hash(digest)).collect();
    let root = merkle::root(&leaves);
    let event = AuditEvent::new(CAMPAIGN_BATCH_SENT, CAMPAIGN)
        .resource_id(id)
        .source(source.clone())
        .meta("batch", json!(batch))
        .meta("campaign_sha256", json!(hashes.campaign.to_string()))
        .meta("messages", json!(recorded.len()))
        .meta("merkle_root", json!(hex::encode(root)));
    audit::record(tx, &event).await?;
    Ok(Batch { id: batch, messages: recorded.len(), root })
}

/// What became of a message the transport did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A temporary failure (4xx, the connection lost): queued again, not before `retry_at`.
    Deferred { reply: String, retry_at: DateTime<Utc> },
    /// A permanent refusal (5xx): the caller also suppresses a hard-bounced address.
    Bounced { reply: String },
    /// Temporary failures until the attempts ran out.
    Failed { reply: String },
}

/// Records `failure` for the message of `contact`, if it is still `sending`.
pub async fn record_failure(
    tx: &mut TenantTx,
    id: ContentId,
    contact: ContactId,
    failure: &Failure,
    now: DateTime<Utc>,
) -> Result<Recorded> {
    let (state, reply, not_before) = match failure {
        Failure::Deferred { reply, retry_at } => ("queued", reply, Some(*retry_at)),
        Failure::Bounced { reply } => ("bounced", reply, None),
        Failure::Failed { reply } => ("failed", reply, None),
    };
    let updated = sqlx::query(
        "update app.campaign_messages
            set state = $4::text::app.campaign_message_state, reply = $5, lease_until = null,
                not_before = coalesce($6, not_before), updated_at = $7
          where organization_id = $1 and campaign_id = $2 and contact_id = $3 and state = 'sending'",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(contact.as_uuid())
    .bind(state)
    .bind(reply)
    .bind(not_before)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if updated.rows_affected() != 1 {
        return Ok(Recorded::Not);
    }
    // A hard refusal at hand-over counts towards the hard-bounce rate as a reported hard bounce
    // does, by the one rule the counts apply (migration 32); the caller suppresses the address.
    if let Failure::Bounced { reply } = failure {
        let hard: bool = sqlx::query_scalar("select app.hard_refusal($1)").bind(reply).fetch_one(tx.conn()).await?;
        if hard {
            crate::breaker::judge(tx, crate::breaker::Event::HardBounce, now, &RequestSource::default()).await?;
            return Ok(Recorded::HardRefusal);
        }
    }
    Ok(Recorded::Failure)
}

/// What [`record_failure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Nothing: the message was no longer being handed over (another worker took it over).
    Not,
    /// The failure, a temporary or a permanent one that says nothing about the address.
    Failure,
    /// A refusal that says the mailbox does not exist (`app.hard_refusal`: 5.1.x, or 550, 551
    /// or 553 without an enhanced status): the address takes no mail.
    HardRefusal,
}

/// A member's step on a launched campaign's sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    /// Ends it: every message not yet handed over is skipped as `cancelled`.
    Cancel,
}

impl Control {
    fn states(self) -> (&'static [&'static str], &'static str) {
        match self {
            Control::Pause => (&["sending"], "paused"),
            Control::Resume => (&["paused"], "sending"),
            Control::Cancel => (&["sending", "paused"], "cancelled"),
        }
    }
}

/// Pauses, resumes or cancels the campaign's sending; `None` when it has no run in a state
/// the step applies to. Audited.
pub async fn control(
    tx: &mut TenantTx,
    id: ContentId,
    step: Control,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<&'static str>> {
    let (from, to) = step.states();
    let before: Option<String> = sqlx::query_scalar(
        "select state::text from app.campaign_runs where organization_id = $1 and campaign_id = $2 for update",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let before = before.filter(|state| from.contains(&state.as_str()));
    if before.is_some() {
        sqlx::query(
            "update app.campaign_runs set state = $3::text::app.campaign_run_state,
                    finished_at = case when $3 = 'cancelled' then $4 end, held = false
              where organization_id = $1 and campaign_id = $2",
        )
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(to)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    let Some(before) = before else { return Ok(None) };
    if step == Control::Resume {
        schedule_sending(tx, id, now).await?;
    }
    let mut skipped = 0;
    if step == Control::Cancel {
        skipped = sqlx::query(
            "update app.campaign_messages set state = 'skipped', skip_reason = 'cancelled', updated_at = $3
              where organization_id = $1 and campaign_id = $2 and state = 'queued'",
        )
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(now)
        .execute(tx.conn())
        .await?
        .rows_affected();
    }
    let event = AuditEvent::new(CAMPAIGN_CONTROLLED, CAMPAIGN)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .change("state", json!(before), json!(to))
        .meta("skipped", json!(skipped));
    audit::record(tx, &event).await?;
    Ok(Some(to))
}

/// Marks the campaign's run finished once every message is in a final state; whether it is.
pub async fn finish_if_done(tx: &mut TenantTx, id: ContentId, now: DateTime<Utc>) -> Result<bool> {
    let finished = sqlx::query(
        "update app.campaign_runs set state = 'finished', finished_at = $3
          where organization_id = $1 and campaign_id = $2 and state = 'sending'
            and not exists (select 1 from app.campaign_messages m
                             where m.organization_id = $1 and m.campaign_id = $2 and m.state in ('queued', 'sending'))",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(finished.rows_affected() == 1)
}

/// The first message that carried a version of a content item: when it was sent, by which
/// campaign, in which batch (whose sealed audit record holds the batch's Merkle root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstUse {
    pub version: i32,
    pub campaign: ContentId,
    pub sent_at: DateTime<Utc>,
    pub batch: uuid::Uuid,
}

/// When each version of content item `content` (a piece, or a template) was first sent, oldest
/// version first; versions never sent are not listed. Read from the ledger: the first sent
/// message of each campaign version that names the content version (an index step each), the
/// earliest of them.
pub async fn first_use(tx: &mut TenantTx, content: ContentId) -> Result<Vec<FirstUse>> {
    let rows: Vec<(i32, uuid::Uuid, DateTime<Utc>, uuid::Uuid)> = sqlx::query_as(
        "select distinct on (u.piece_version) u.piece_version, f.campaign_id, f.sent_at, f.batch
           from (select v.campaign_id, v.version, v.content_version as piece_version from app.campaign_versions v
                  where v.organization_id = $1 and v.content_id = $2
                 union all
                 select v.campaign_id, v.version, v.template_version from app.campaign_versions v
                  where v.organization_id = $1 and v.template_id = $2) u
           join lateral (select m.campaign_id, m.sent_at, m.batch from app.campaign_messages m
                          where m.organization_id = $1 and m.campaign_id = u.campaign_id
                            and m.version = u.version and m.state = 'sent'
                          order by m.sent_at limit 1) f on true
          order by u.piece_version, f.sent_at",
    )
    .bind(tx.org().as_uuid())
    .bind(content.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(version, campaign, sent_at, batch)| {
            let campaign = ContentId::try_from(campaign).map_err(|_| stored("campaign_messages_campaign_id"))?;
            Ok(FirstUse { version, campaign, sent_at, batch })
        })
        .collect()
}

/// How a campaign's messages stand: the count per state and, for skipped ones, per reason.
pub async fn progress(tx: &mut TenantTx, id: ContentId) -> Result<BTreeMap<String, i64>> {
    // The counts the ledger's triggers keep (migration 27), not a count of its rows.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select outcome, n from app.campaign_tallies where organization_id = $1 and campaign_id = $2 and n > 0",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

/// What a campaign's messages did in one span of time (migration 35): handed over, reported
/// delivered or deferred, bounced for good or for now (at hand-over or reported later),
/// complained about, recipients who unsubscribed through its links, clicks, and recipients who
/// clicked for the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Activity {
    pub sent: i64,
    pub delivered: i64,
    pub deferred: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    pub unsubscribes: i64,
    pub clicks: i64,
    pub clickers: i64,
}

impl std::ops::AddAssign for Activity {
    fn add_assign(&mut self, o: Self) {
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.deferred += o.deferred;
        self.hard_bounces += o.hard_bounces;
        self.soft_bounces += o.soft_bounces;
        self.complaints += o.complaints;
        self.unsubscribes += o.unsubscribes;
        self.clicks += o.clicks;
        self.clickers += o.clickers;
    }
}

/// One UTC hour of a campaign's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Hour {
    pub starts: DateTime<Utc>,
    #[sqlx(flatten)]
    pub activity: Activity,
}

/// The sum of `hours`.
pub fn total(hours: &[Hour]) -> Activity {
    hours.iter().fold(Activity::default(), |mut sum, h| {
        sum += h.activity;
        sum
    })
}

/// A campaign's activity hour by hour, oldest first; an hour with nothing in it has no entry.
/// Read from the counts its changes keep (migration 35), a row per hour, never the ledger.
pub async fn activity(tx: &mut TenantTx, id: ContentId) -> Result<Vec<Hour>> {
    Ok(sqlx::query_as(
        "select hour as starts, sent, delivered, deferred, hard_bounces, soft_bounces, complaints, unsubscribes,
                clicks, clickers
           from app.campaign_activity where organization_id = $1 and campaign_id = $2
          order by hour",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// What the sealed audit trail and the ledger prove about one launched campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub campaign: uuid::Uuid,
    pub version: i32,
    pub sha256: ContentHash,
    /// Sent messages, all in proven batches when `problems` is empty.
    pub sent: usize,
    pub batches: usize,
    /// Why the trail does not prove the campaign's sending; empty when it does.
    pub problems: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct SentRow {
    contact_id: uuid::Uuid,
    batch: uuid::Uuid,
    message_sha256: Vec<u8>,
    values_commitment: Vec<u8>,
    personalisation: Option<serde_json::Value>,
    personalisation_salt: Option<Vec<u8>>,
}

/// For every launched campaign of organization `org`: each sent message's hash recomputes from
/// the campaign's, content's and template's hashes, the contact, its `Message-ID` and the
/// commitment (and the commitment from the values, where they are not erased); each sent
/// message is in a batch whose sealed `campaign.batch_sent` record names the campaign's hash,
/// the batch's count and the Merkle root the ledger gives; and no message was handed over after
/// its content, template or campaign stopped standing on the launched versions, to a contact
/// whose latest consent then was not a grant in force, or to an address suppressed then (for
/// contacts not erased since). Run on a connection that sees every tenant, after the chain
/// itself verified; the campaign's approvals are proven as any published content's are.
pub async fn evidence(conn: &mut sqlx::PgConnection, org: uuid::Uuid) -> Result<Vec<Proof>> {
    let runs: Vec<RunRow> =
        sqlx::query_as(&format!("{RUNS} order by r.campaign_id")).bind(org).fetch_all(&mut *conn).await?;
    let mut proofs = Vec::new();
    for run in runs {
        let Hashes { campaign: campaign_hash, content, template, domain } = run.hashes()?;
        let campaign = ContentId::try_from(run.campaign_id).map_err(|_| stored("campaign_runs_campaign_id"))?;
        let mut problems = Vec::new();
        let rows: Vec<SentRow> = sqlx::query_as(
            "select contact_id, batch, message_sha256, values_commitment, personalisation, personalisation_salt
               from app.campaign_messages
              where organization_id = $1 and campaign_id = $2 and state = 'sent'
              order by batch, contact_id",
        )
        .bind(org)
        .bind(run.campaign_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut leaves: BTreeMap<uuid::Uuid, Vec<merkle::Hash>> = BTreeMap::new();
        for row in &rows {
            let contact = ContactId::try_from(row.contact_id).map_err(|_| stored("campaign_messages_contact_id"))?;
            let commitment: [u8; 32] =
                row.values_commitment.clone().try_into().map_err(|_| stored("campaign_messages_values_commitment"))?;
            let id = message_id(campaign, contact, &domain);
            let digest = message_hash(&campaign_hash, &content, &template, contact, &id, &commitment);
            if digest.as_slice() != row.message_sha256.as_slice() {
                problems.push(format!("the message to contact {contact} does not have the hash of its fields"));
            }
            if let (Some(values), Some(salt)) = (&row.personalisation, &row.personalisation_salt) {
                let values: Option<BTreeMap<String, String>> = serde_json::from_value(values.clone()).ok();
                let salt: Option<[u8; 16]> = salt.clone().try_into().ok();
                if values.zip(salt).is_none_or(|(v, s)| values_commitment(&s, &v) != commitment) {
                    problems.push(format!(
                        "the values kept for contact {contact} are not the ones its message committed to"
                    ));
                }
            }
            leaves.entry(row.batch).or_default().push(merkle::leaf_hash(&row.message_sha256));
        }
        let records: Vec<serde_json::Value> = sqlx::query_scalar(
            "select a.metadata from app.audit_logs a
              where a.organization_id = $1 and a.resource_type = 'campaign' and a.resource_id = $2
                and a.action = 'campaign.batch_sent' and a.outcome = 'success'
                and exists (select from app.audit_blocks b where b.organization_id = $1 and a.id = any (b.audit_ids))",
        )
        .bind(org)
        .bind(run.campaign_id.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let mut proven = 0;
        for (batch, batch_leaves) in &leaves {
            let record = records.iter().find(|m| m["batch"].as_str() == Some(batch.to_string().as_str()));
            let Some(record) = record else {
                problems.push(format!("batch {batch} has no sealed record"));
                continue;
            };
            let root = hex::encode(merkle::root(batch_leaves));
            if record["merkle_root"].as_str() != Some(root.as_str())
                || record["messages"].as_u64() != u64::try_from(batch_leaves.len()).ok()
                || record["campaign_sha256"].as_str() != Some(campaign_hash.to_string().as_str())
            {
                problems
                    .push(format!("batch {batch}'s messages do not give the root and count its sealed record names"));
            } else {
                proven += 1;
            }
        }
        problems.extend(late_hand_overs(conn, org, run.campaign_id).await?);
        proofs.push(Proof {
            campaign: run.campaign_id,
            version: run.version,
            sha256: campaign_hash,
            sent: rows.len(),
            batches: proven,
            problems,
        });
    }
    Ok(proofs)
}

/// Sent messages handed over when they should not have been, each kind counted.
async fn late_hand_overs(conn: &mut sqlx::PgConnection, org: uuid::Uuid, campaign: uuid::Uuid) -> Result<Vec<String>> {
    let (withdrawn, unconsented, suppressed): (i64, i64, i64) = sqlx::query_as(
        "with run as (
           select r.launched_at, cv.campaign_id, cv.content_id, cv.template_id, cv.purpose_id
             from app.campaign_runs r
             join app.campaign_versions cv on cv.organization_id = $1 and cv.campaign_id = r.campaign_id and cv.version = r.version
            where r.organization_id = $1 and r.campaign_id = $2
         ), stopped as (
           select min(e.created_at) as at from app.content_events e, run
            where e.organization_id = $1 and e.created_at > run.launched_at
              and ((e.item_id in (run.content_id, run.template_id) and e.to_state not in ('approved', 'published'))
                   or (e.item_id = run.campaign_id and e.to_state <> 'published'))
         ), sent as (
           select m.contact_id, m.claimed_at from app.campaign_messages m
            where m.organization_id = $1 and m.campaign_id = $2 and m.state = 'sent'
         )
         select
           (select count(*) from sent, stopped where sent.claimed_at >= stopped.at),
           (select count(*) from sent, run
             where not exists (
               select 1 from (select e.kind, e.source, e.expires_at from app.consent_events e
                               where e.organization_id = $1 and e.contact_id = sent.contact_id
                                 and e.purpose_id = run.purpose_id and e.created_at <= sent.claimed_at
                               order by e.seq desc limit 1) l
                where l.kind in ('grant', 'confirm') and not (l.kind = 'grant' and l.source = 'signup_form')
                  and (l.expires_at is null or l.expires_at > sent.claimed_at))),
           (select count(*) from sent
              join app.contacts c on c.organization_id = $1 and c.id = sent.contact_id
              join app.suppressions s on s.organization_id = $1 and s.address_key = c.address_key
             where s.created_at < sent.claimed_at
               and (s.reason = 'manual'
                    or not exists (select 1 from app.consent_events l
                                    where l.organization_id = $1 and l.contact_id = c.id and l.kind = 'confirm'
                                      and l.created_at > s.created_at and l.created_at < sent.claimed_at)))",
    )
    .bind(org)
    .bind(campaign)
    .fetch_one(&mut *conn)
    .await?;
    let mut problems = Vec::new();
    for (n, what) in [
        (withdrawn, "handed over after its content, template or campaign stopped standing on the launched version"),
        (unconsented, "handed over to a contact without a live consent at that moment"),
        (suppressed, "handed over to an address suppressed at that moment"),
    ] {
        if n > 0 {
            problems.push(format!("{n} message(s) {what}"));
        }
    }
    Ok(problems)
}

/// One recipient of a claimed message: the address and only the fields the campaign declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub contact: ContactId,
    pub address: Email,
    pub values: BTreeMap<String, String>,
}

/// The address and the declared `fields` of `contacts` (minimum necessary: nothing else of a
/// contact is read). A field is `name` (the contact's name) or a text or choice attribute's
/// name; a contact without a value has the empty text. Erased contacts have no address and are
/// left out: the claim already skipped them.
pub async fn recipients(tx: &mut TenantTx, contacts: &[ContactId], fields: &[String]) -> Result<Vec<Recipient>> {
    let ids: Vec<uuid::Uuid> = contacts.iter().map(|c| c.as_uuid()).collect();
    let wants_name = fields.iter().any(|f| f == "name");
    let rows: Vec<(uuid::Uuid, Option<String>, Option<String>, serde_json::Value)> = sqlx::query_as(
        "select c.id, c.address, case when $4 then c.name end,
                coalesce((select jsonb_object_agg(a.name, coalesce(v.text_value, v.choice_value))
                            from app.contact_attributes a
                            join app.contact_attribute_values v
                              on v.organization_id = $1 and v.attribute_id = a.id and v.contact_id = c.id
                           where a.organization_id = $1 and a.name = any($3)
                             and coalesce(v.text_value, v.choice_value) is not null), '{}')
           from app.contacts c
          where c.organization_id = $1 and c.id = any($2) and c.erased_at is null
          order by c.id",
    )
    .bind(tx.org().as_uuid())
    .bind(&ids)
    .bind(fields)
    .bind(wants_name)
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|(id, address, name, attributes)| {
            let contact = ContactId::try_from(id).map_err(|_| stored("contacts_id"))?;
            let address = address.and_then(|a| Email::parse(&a).ok()).ok_or_else(|| stored("contacts_address"))?;
            let attributes: BTreeMap<String, String> =
                serde_json::from_value(attributes).map_err(|_| stored("contact_attribute_values"))?;
            let values = fields
                .iter()
                .map(|f| {
                    let value = if f == "name" { name.clone() } else { attributes.get(f).cloned() };
                    (f.clone(), value.unwrap_or_default())
                })
                .collect();
            Ok(Recipient { contact, address, values })
        })
        .collect()
}

/// The states of a ledger row, as the database enum `campaign_message_state` names them.
pub const MESSAGE_STATES: [&str; 6] = ["queued", "sending", "sent", "bounced", "failed", "skipped"];

/// One row of a campaign's send ledger as a member reads it: whom by id only (no address, no
/// name, no personalisation values), where it stands and what the transport answered.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    #[sqlx(rename = "contact_id", try_from = "uuid::Uuid")]
    pub contact: ContactId,
    pub state: String,
    pub skip_reason: Option<String>,
    pub attempts: i16,
    pub not_before: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub reply: Option<String>,
}

/// A page of campaign `id`'s ledger in contact id order, after contact `after`, at most
/// `limit` rows, only those in `state` (one of [`MESSAGE_STATES`]) when it is given. Two
/// statements rather than one with an optional filter, so that each is planned on its own
/// index: the state filter walks `campaign_messages_state_idx` in contact order.
pub async fn messages(
    tx: &mut TenantTx,
    id: ContentId,
    state: Option<&str>,
    after: Option<ContactId>,
    limit: i64,
) -> Result<Vec<Message>> {
    const COLUMNS: &str = "select contact_id, state::text as state, skip_reason::text as skip_reason, attempts,
                                  not_before, sent_at, reply
                             from app.campaign_messages
                            where organization_id = $1 and campaign_id = $2
                              and ($3::uuid is null or contact_id > $3)";
    let after = after.map(|a| a.as_uuid());
    let rows = match state {
        Some(state) => {
            sqlx::query_as(&format!(
                "{COLUMNS} and state = $4::text::app.campaign_message_state order by contact_id limit $5"
            ))
            .bind(tx.org().as_uuid())
            .bind(id.as_uuid())
            .bind(after)
            .bind(state)
            .bind(limit)
            .fetch_all(tx.conn())
            .await?
        }
        None => {
            sqlx::query_as(&format!("{COLUMNS} order by contact_id limit $4"))
                .bind(tx.org().as_uuid())
                .bind(id.as_uuid())
                .bind(after)
                .bind(limit)
                .fetch_all(tx.conn())
                .await?
        }
    };
    Ok(rows)
}

/// A launched campaign's run: which version it sends, who launched it and when, how many
/// contacts its audience held, and where its sending stands.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Run {
    /// `sending`, `paused`, `cancelled` or `finished`.
    pub state: String,
    pub version: i32,
    #[sqlx(try_from = "uuid::Uuid")]
    pub launched_by: UserId,
    pub launched_at: DateTime<Utc>,
    pub recipients: i64,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The runs of the launched campaigns among `ids`, by campaign: one statement for a page of
/// campaigns.
pub async fn runs(tx: &mut TenantTx, ids: &[ContentId]) -> Result<Vec<(ContentId, Run)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(try_from = "uuid::Uuid")]
        campaign_id: ContentId,
        #[sqlx(flatten)]
        run: Run,
    }
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.as_uuid()).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "select campaign_id, state::text as state, version, launched_by, launched_at, recipients, finished_at
           from app.campaign_runs where organization_id = $1 and campaign_id = any($2)",
    )
    .bind(tx.org().as_uuid())
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.campaign_id, r.run)).collect())
}

/// Campaign `id`'s run; `None` while it is not launched.
pub async fn run(tx: &mut TenantTx, id: ContentId) -> Result<Option<Run>> {
    Ok(sqlx::query_as(
        "select state::text as state, version, launched_by, launched_at, recipients, finished_at
           from app.campaign_runs where organization_id = $1 and campaign_id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}
