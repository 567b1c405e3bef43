//! Content and its review. Every step runs on the item's row locked `FOR UPDATE` in the
//! request's [`TenantTx`]: the state it is judged on is the state it changes, the domain's
//! state machine decides, and the step, its review event and its audit record commit together.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Executor;

use crate::error::stored;
use crate::{audit, Result, TenantTx};
use mos_domain::content::{Action, Actor, Approvals, Channel, ContentHash, Refusal, State, Text};
use mos_domain::events::{self, ACCESS_DENIED, CONTENT};
use mos_domain::{AuditEvent, ContentId, Outcome, Permission, RequestSource, Role, UserId};

/// An item with its latest version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Item {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: ContentId,
    #[sqlx(try_from = "uuid::Uuid")]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub state: State,
    pub revision: i32,
    pub current_version: i32,
    pub approved_version: Option<i32>,
    pub published_version: Option<i32>,
    pub published_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub version: Version,
}

/// One version as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Version {
    pub number: i32,
    #[sqlx(rename = "author_id", try_from = "uuid::Uuid")]
    pub author: UserId,
    #[sqlx(rename = "version_created_at")]
    pub created_at: DateTime<Utc>,
    pub title: String,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub audience: String,
    pub body: String,
    pub tags: Vec<String>,
    #[sqlx(try_from = "Vec<u8>")]
    pub sha256: ContentHash,
}

impl Version {
    /// The stored fields as the domain's text, parsed again like any input.
    pub fn text(&self) -> Result<Text> {
        Text::stored(&self.title, self.channel, &self.audience, &self.body, &self.tags)
            .map_err(|_| stored("content_versions_text"))
    }
}

/// A step of the review as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Event {
    pub id: uuid::Uuid,
    pub kind: String,
    pub version: i32,
    #[sqlx(try_from = "Vec<u8>")]
    pub sha256: ContentHash,
    #[sqlx(rename = "actor_id", try_from = "uuid::Uuid")]
    pub actor: UserId,
    pub from_state: Option<String>,
    pub to_state: String,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What to look for in a list; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<State>,
    pub channel: Option<Channel>,
    pub tag: Option<String>,
    pub author: Option<UserId>,
    /// Words in the title or body (web search syntax: `"a phrase"`, `-not`, `or`).
    pub text: Option<String>,
    /// How long a search by `text` may run. A search the word index cannot serve (only
    /// excluded words, say) reads every body of the tenant; past this it is cancelled
    /// ([`DbError::Cancelled`](crate::DbError::Cancelled)) instead of running on after its
    /// request has ended.
    pub text_within: std::time::Duration,
    /// In review, written by someone else, not yet approved by this member.
    pub awaiting: Option<UserId>,
    /// Items older than this one (the list runs newest first).
    pub before: Option<ContentId>,
}

/// A step someone asks for, with the preconditions they state.
pub struct Request<'a> {
    pub action: Action,
    /// The new text, for an edit.
    pub text: Option<&'a Text>,
    pub note: Option<&'a str>,
    pub actor: UserId,
    pub role: Role,
    /// The revisions the client accepts (`If-Match`: the one it last saw, or a list); `None`
    /// for any. An empty list matches nothing.
    pub revisions: Option<&'a [i32]>,
    /// The hash of the version the client means (an approval names it).
    pub sha256: Option<ContentHash>,
    pub now: DateTime<Utc>,
    pub source: &'a RequestSource,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Done(Box<Item>),
    NotFound,
    /// The item is at another revision than the client said.
    Stale {
        revision: i32,
    },
    /// The latest version is not the one the client named.
    OtherVersion {
        number: i32,
        sha256: ContentHash,
    },
    Refused(Refusal),
}

const ITEM: &str = "select i.id, i.created_by, i.created_at, i.updated_at, i.state::text as state, i.revision,
        i.current_version, i.approved_version, i.published_version, i.published_at,
        v.number, v.author_id, v.created_at as version_created_at, v.title, v.channel::text as channel,
        v.audience, v.body, v.tags, v.sha256
   from app.content_items i
   join app.content_versions v
     on v.organization_id = i.organization_id and v.item_id = i.id and v.number = i.current_version
  where i.organization_id = $1";

fn tags(text: &Text) -> Vec<String> {
    text.tags().to_vec()
}

async fn insert_version(
    tx: &mut TenantTx,
    id: ContentId,
    number: i32,
    text: &Text,
    author: UserId,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into app.content_versions
                (organization_id, item_id, number, author_id, created_at, title, channel, audience, body, tags, sha256)
         values ($1, $2, $3, $4, $5, $6, $7::text::app.content_channel, $8, $9, $10, $11)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(number)
    .bind(author.as_uuid())
    .bind(now)
    .bind(text.title())
    .bind(text.channel().as_str())
    .bind(text.audience())
    .bind(text.body())
    .bind(tags(text))
    .bind(text.hash().as_bytes())
    .execute(tx.conn())
    .await?;
    Ok(())
}

struct Happened<'a> {
    item: &'a Item,
    kind: &'static str,
    from: Option<State>,
    to: State,
    actor: UserId,
    note: Option<&'a str>,
    now: DateTime<Utc>,
}

/// The review event and the audit record of one step, naming the version and its hash.
async fn record(tx: &mut TenantTx, happened: Happened<'_>, audit_event: AuditEvent) -> Result<()> {
    let version = &happened.item.version;
    sqlx::query(
        "insert into app.content_events (organization_id, item_id, id, kind, version, sha256, version_author,
                                         actor_id, from_state, to_state, note, created_at)
         values ($1, $2, $3, $4::text::app.content_event_kind, $5, $6, $7, $8,
                 $9::text::app.content_state, $10::text::app.content_state, $11, $12)",
    )
    .bind(tx.org().as_uuid())
    .bind(happened.item.id.as_uuid())
    .bind(uuid::Uuid::now_v7())
    .bind(happened.kind)
    .bind(version.number)
    .bind(version.sha256.as_bytes())
    .bind(version.author.as_uuid())
    .bind(happened.actor.as_uuid())
    .bind(happened.from.map(State::as_str))
    .bind(happened.to.as_str())
    .bind(happened.note)
    .bind(happened.now)
    .execute(tx.conn())
    .await?;
    let mut audit_event = audit_event
        .actor(happened.actor)
        .resource_id(happened.item.id)
        .meta("version", json!(version.number))
        .meta("sha256", json!(version.sha256.to_string()))
        .meta("version_author", json!(version.author));
    if let Some(from) = happened.from.filter(|from| *from != happened.to) {
        audit_event = audit_event.change("state", json!(from.as_str()), json!(happened.to.as_str()));
    }
    audit::record(tx, &audit_event).await?;
    Ok(())
}

/// Creates an item as a draft at version 1, written by `author`.
pub async fn create(
    tx: &mut TenantTx,
    text: &Text,
    author: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Item> {
    let id = ContentId::new();
    sqlx::query(
        "insert into app.content_items (organization_id, id, created_by, created_at, updated_at, state, revision, current_version)
         values ($1, $2, $3, $4, $4, 'draft', 1, 1)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(author.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    insert_version(tx, id, 1, text, author, now).await?;
    let item = get(tx, id).await?.ok_or_else(|| stored("content_items_pkey"))?;
    let happened =
        Happened { item: &item, kind: "created", from: None, to: State::Draft, actor: author, note: None, now };
    let created = AuditEvent::new(events::CONTENT_CREATED, CONTENT)
        .source(source.clone())
        .meta("title", json!(text.title()))
        .meta("channel", json!(text.channel().as_str()));
    record(tx, happened, created).await?;
    Ok(item)
}

/// The item with its latest version.
pub async fn get(tx: &mut TenantTx, id: ContentId) -> Result<Option<Item>> {
    Ok(sqlx::query_as(&format!("{ITEM} and i.id = $2"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(tx.conn())
        .await?)
}

/// A page of items, newest first.
pub async fn list(tx: &mut TenantTx, filter: &Filter, limit: i64) -> Result<Vec<Item>> {
    if filter.text.is_some() {
        // Its own statement, and one that takes no parameter: `SET` cannot be prepared.
        let sql = format!("set local statement_timeout = {}", filter.text_within.as_millis().max(1));
        tx.conn().execute(sql.as_str()).await?;
    }
    let sql = format!(
        "{ITEM}
           and ($2::text is null or i.state = $2::text::app.content_state)
           and ($3::text is null or v.channel = $3::text::app.content_channel)
           and ($4::text is null or v.tags @> array[$4::text])
           and ($5::uuid is null or i.created_by = $5)
           and ($6::text is null
                or to_tsvector('simple', v.title || ' ' || v.body) @@ websearch_to_tsquery('simple', $6))
           and ($7::uuid is null
                or (i.state = 'in_review' and v.author_id <> $7
                    and not exists (select from app.content_events e
                                     where e.organization_id = i.organization_id and e.item_id = i.id
                                       and e.version = i.current_version and e.kind = 'approved'
                                       and e.actor_id = $7)))
           and ($8::uuid is null or i.id < $8)
         order by i.id desc
         limit $9"
    );
    Ok(sqlx::query_as(&sql)
        .bind(tx.org().as_uuid())
        .bind(filter.state.map(State::as_str))
        .bind(filter.channel.map(Channel::as_str))
        .bind(filter.tag.as_deref())
        .bind(filter.author.map(|a| a.as_uuid()))
        .bind(filter.text.as_deref())
        .bind(filter.awaiting.map(|a| a.as_uuid()))
        .bind(filter.before.map(|b| b.as_uuid()))
        .bind(limit)
        .fetch_all(tx.conn())
        .await?)
}

const VERSION: &str = "select number, author_id, created_at as version_created_at, title, channel::text as channel,
        audience, body, tags, sha256
   from app.content_versions
  where organization_id = $1 and item_id = $2";

/// Every version of an item, oldest first; empty when there is no such item.
pub async fn versions(tx: &mut TenantTx, id: ContentId) -> Result<Vec<Version>> {
    Ok(sqlx::query_as(&format!("{VERSION} order by number"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .fetch_all(tx.conn())
        .await?)
}

/// One version of an item.
pub async fn version(tx: &mut TenantTx, id: ContentId, number: i32) -> Result<Option<Version>> {
    Ok(sqlx::query_as(&format!("{VERSION} and number = $3"))
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(number)
        .fetch_optional(tx.conn())
        .await?)
}

/// The review history of an item, oldest first.
pub async fn history(tx: &mut TenantTx, id: ContentId) -> Result<Vec<Event>> {
    Ok(sqlx::query_as(
        "select id, kind::text as kind, version, sha256, actor_id, from_state::text as from_state,
                to_state::text as to_state, note, created_at
           from app.content_events
          where organization_id = $1 and item_id = $2
          order by id",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?)
}

/// Approvals of an item's latest version.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tally {
    /// Approvals that count: by members who may still review.
    pub given: i64,
    /// Who gave them.
    pub approvers: Vec<uuid::Uuid>,
    /// Approvals in the history that no longer count: their member has left or been removed,
    /// or holds a role that may not review any more.
    pub lapsed: i64,
    /// Whether the member asking gave one of them, counted or not.
    pub mine: bool,
    /// The organization's policy.
    pub required: i32,
}

/// Approvals of the latest version, whether `actor` gave one, and the organization's policy.
/// An approval counts while its member still belongs to the organization with a role that may
/// review (docs/content-review.md): it stays in the history whatever becomes of the member, but
/// a signature whose authority was withdrawn does not carry a publication.
pub async fn approvals(tx: &mut TenantTx, item: &Item, actor: UserId) -> Result<Tally> {
    let reviewers: Vec<&str> =
        Role::ALL.iter().filter(|r| r.can(Permission::ReviewContent)).map(|r| r.as_str()).collect();
    Ok(sqlx::query_as(
        "select count(m.user_id) as given,
                coalesce(array_agg(e.actor_id order by e.actor_id) filter (where m.user_id is not null), '{}') as approvers,
                count(*) - count(m.user_id) as lapsed,
                coalesce(bool_or(e.actor_id = $4), false) as mine,
                (select o.required_approvals from app.organizations o where o.id = $1) as required
           from app.content_events e
           left join app.user_organizations m
             on m.organization_id = e.organization_id and m.user_id = e.actor_id
            and m.role::text = any ($5::text[])
          where e.organization_id = $1 and e.item_id = $2 and e.version = $3 and e.kind = 'approved'",
    )
    .bind(tx.org().as_uuid())
    .bind(item.id.as_uuid())
    .bind(item.current_version)
    .bind(actor.as_uuid())
    .bind(&reviewers)
    .fetch_one(tx.conn())
    .await?)
}

/// Takes one step of the review on item `id`, if the item's state, the member's role and
/// authorship, and the stated preconditions allow it. A refusal for authorship (not the
/// owner, approving one's own version) is audited as a denied access; the caller commits
/// whatever the outcome.
pub async fn act(tx: &mut TenantTx, id: ContentId, request: Request<'_>) -> Result<Step> {
    act_on(tx, id, request, Channel::Email).await
}

/// [`act`] on an item of the `kind` of channel the caller handles: a campaign is edited and
/// launched only through `campaigns`, and nothing else becomes one; the other steps of the
/// review are the same for both.
pub(crate) async fn act_on(tx: &mut TenantTx, id: ContentId, request: Request<'_>, kind: Channel) -> Result<Step> {
    // The item's row alone: locked together with a join, a row that changed while this waited
    // would be checked against the old version's row and seem gone.
    let locked: Option<i32> =
        sqlx::query_scalar("select revision from app.content_items where organization_id = $1 and id = $2 for update")
            .bind(tx.org().as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    if locked.is_none() {
        return Ok(Step::NotFound);
    }
    let Some(item) = get(tx, id).await? else {
        return Ok(Step::NotFound);
    };
    let campaign = |channel: Channel| channel == Channel::Campaign;
    let edits_kind = request.text.is_some_and(|t| campaign(t.channel()) != campaign(item.version.channel));
    let wrong_door = campaign(kind) != campaign(item.version.channel);
    if edits_kind || (wrong_door && matches!(request.action, Action::Edit | Action::Publish)) {
        return Ok(Step::Refused(Refusal::KindFixed));
    }
    if request.revisions.is_some_and(|r| !r.contains(&item.revision)) {
        return Ok(Step::Stale { revision: item.revision });
    }
    if request.sha256.is_some_and(|h| h != item.version.sha256) {
        return Ok(Step::OtherVersion { number: item.version.number, sha256: item.version.sha256 });
    }
    let tally = approvals(tx, &item, request.actor).await?;
    let actor = Actor {
        role: request.role,
        owns_item: item.created_by == request.actor,
        wrote_version: item.version.author == request.actor,
        approved_version: tally.mine,
    };
    let approvals = Approvals {
        given: u32::try_from(tally.given).unwrap_or(u32::MAX),
        required: u32::try_from(tally.required).unwrap_or(1),
    };
    let next = match item.state.decide(request.action, actor, approvals) {
        Ok(next) => next,
        Err(refusal) => {
            if matches!(refusal, Refusal::NotOwner(_) | Refusal::OwnVersion) {
                let denied = AuditEvent::new(ACCESS_DENIED, CONTENT)
                    .actor(request.actor)
                    .resource_id(item.id)
                    .outcome(Outcome::Denied)
                    .source(request.source.clone())
                    .meta("action", json!(request.action.as_str()))
                    .meta("reason", json!(refusal.to_string()))
                    .meta("version", json!(item.version.number));
                audit::record(tx, &denied).await?;
            }
            return Ok(Step::Refused(refusal));
        }
    };
    let mut number = item.current_version;
    if let (Action::Edit, Some(text)) = (request.action, request.text) {
        if text.hash() == item.version.sha256 {
            // The same text again is no new version, and no change at all.
            return Ok(Step::Done(Box::new(item)));
        }
        number += 1;
        insert_version(tx, id, number, text, request.actor, request.now).await?;
    }
    if request.action != Action::Comment {
        sqlx::query(
            "update app.content_items
                set state = $3::text::app.content_state, revision = revision + 1, current_version = $4,
                    updated_at = $5,
                    approved_version = case when $3 in ('approved', 'published') then $4
                                            when $3 = 'archived' then approved_version end,
                    published_version = case when $3 = 'published' then $4 else published_version end,
                    published_at = case when $3 = 'published' then $5 else published_at end
              where organization_id = $1 and id = $2",
        )
        .bind(tx.org().as_uuid())
        .bind(id.as_uuid())
        .bind(next.as_str())
        .bind(number)
        .bind(request.now)
        .execute(tx.conn())
        .await?;
    }
    let after = get(tx, id).await?.ok_or_else(|| stored("content_items_pkey"))?;
    let mut audit_event = AuditEvent::new(events::content(request.action), CONTENT).source(request.source.clone());
    if request.action == Action::Approve {
        let given = approvals.given + 1;
        audit_event = audit_event.meta("approvals", json!({ "given": given, "required": approvals.required }));
    }
    if request.action == Action::Publish {
        // The members whose approvals carried the publication, for `mos audit verify`.
        let counted: Vec<String> = tally.approvers.iter().map(ToString::to_string).collect();
        let approvals = json!({ "given": approvals.given, "required": approvals.required, "approvers": counted });
        audit_event = audit_event.meta("approvals", approvals);
    }
    let happened = Happened {
        item: &after,
        kind: request.action.event(),
        from: Some(item.state),
        to: next,
        actor: request.actor,
        note: request.note,
        now: request.now,
    };
    record(tx, happened, audit_event).await?;
    Ok(Step::Done(Box::new(after)))
}

/// What the audit trail proves about one published version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub item: uuid::Uuid,
    pub version: i32,
    pub sha256: ContentHash,
    /// Distinct members whose sealed approval of this hash is in the chain.
    pub approvers: usize,
    /// Why the trail does not prove the publication; `None` when it does.
    pub problem: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Published {
    item_id: uuid::Uuid,
    #[sqlx(flatten)]
    version: Version,
}

#[derive(sqlx::FromRow)]
struct Evidence {
    action: String,
    actor_user_id: Option<uuid::Uuid>,
    required: Option<i64>,
    /// The members whose approvals a publication counted (recorded since approvals lapse).
    counted: Option<String>,
}

/// For every published version of organization `org`, whether the tenant's sealed audit
/// records prove it: its stored text still has the published hash, a sealed record of its
/// publication names that hash, and as many distinct members as the organization required
/// then, none of them the member whose record wrote the version, approved that very hash in
/// sealed records. Run on a connection that sees every tenant (`mos audit verify`), after
/// the chain itself verified: the records are then known to be unchanged.
pub async fn evidence(conn: &mut sqlx::PgConnection, org: uuid::Uuid) -> Result<Vec<Proof>> {
    let published: Vec<Published> = sqlx::query_as(
        "select i.id as item_id, v.number, v.author_id, v.created_at as version_created_at, v.title,
                v.channel::text as channel, v.audience, v.body, v.tags, v.sha256
           from app.content_items i
           join app.content_versions v
             on v.organization_id = i.organization_id and v.item_id = i.id and v.number = i.published_version
          where i.organization_id = $1
          order by i.id",
    )
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    let mut proofs = Vec::new();
    for Published { item_id, version } in published {
        let records: Vec<Evidence> = sqlx::query_as(
            "select a.action, a.actor_user_id, (a.metadata #>> '{approvals,required}')::bigint as required,
                    a.metadata #>> '{approvals,approvers}' as counted
               from app.audit_logs a
              where a.organization_id = $1 and a.resource_type = 'content' and a.resource_id = $2
                and a.outcome = 'success' and a.metadata ->> 'sha256' = $3
                and a.action in ('content.created', 'content.edited', 'content.approved', 'content.published')
                and exists (select from app.audit_blocks b where b.organization_id = $1 and a.id = any (b.audit_ids))",
        )
        .bind(org)
        .bind(item_id.to_string())
        .bind(version.sha256.to_string())
        .fetch_all(&mut *conn)
        .await?;
        let actors = |action: &str| -> Vec<uuid::Uuid> {
            records.iter().filter(|r| r.action == action).filter_map(|r| r.actor_user_id).collect()
        };
        let writers = [actors("content.created"), actors("content.edited")].concat();
        let mut approvers = actors("content.approved");
        approvers.sort();
        approvers.dedup();
        let publication = records.iter().find(|r| r.action == "content.published");
        let required = publication.map(|r| r.required.unwrap_or(1));
        // A publication that names the approvals it counted is proven by those alone: each
        // must be a sealed approval of this text.
        let counted: Option<Vec<uuid::Uuid>> =
            publication.and_then(|r| r.counted.as_deref()).and_then(|c| serde_json::from_str(c).ok());
        let recomputed = version.text().map(|t| t.hash()).ok();
        let problem = if recomputed != Some(version.sha256) {
            Some("the stored text no longer has the hash it was published with".to_owned())
        } else if writers.is_empty() {
            Some("no sealed record says who wrote this text".to_owned())
        } else if approvers.iter().any(|a| writers.contains(a)) {
            Some("an approval of this text is by the member who wrote it".to_owned())
        } else if counted.as_ref().is_some_and(|c| c.iter().any(|a| !approvers.contains(a))) {
            Some("the publication counted an approval of this text that no sealed record holds".to_owned())
        } else if let Some(required) = required {
            let approvers = counted.as_ref().unwrap_or(&approvers);
            (i64::try_from(approvers.len()).unwrap_or(i64::MAX) < required).then(|| {
                format!(
                    "{} sealed approval(s) of this text, {required} required when it was published",
                    approvers.len()
                )
            })
        } else {
            Some("no sealed record of this publication".to_owned())
        };
        proofs.push(Proof {
            item: item_id,
            version: version.number,
            sha256: version.sha256,
            approvers: approvers.len(),
            problem,
        });
    }
    Ok(proofs)
}
