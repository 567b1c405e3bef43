//! Segments: a parsed definition ([`Segment`]) compiled to one SQL statement, its count and
//! its preview, and saved segments with their immutable, hashed versions (migration 15,
//! docs/segments.md).
//!
//! The statement is built only from the fixed fragments in this file. What came from the
//! definition reaches it in two ways and no other: ids that the parser looked up in the
//! organization's own catalog, and typed values, both bound as `$n` parameters. Every table
//! the statement reads names the tenant as `organization_id = $1`, besides Row-Level Security,
//! so that Citus routes it to the tenant's shard.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};

use crate::audiences::consent;
use crate::audiences::suppression::in_force;
use crate::error::stored;
use crate::{audit, Result, TenantTx};
use mos_domain::audiences::AttributeKind;
use mos_domain::content::ContentHash;
use mos_domain::events::{SEGMENT, SEGMENT_PREVIEWED, SEGMENT_SAVED};
use mos_domain::segments::{
    AttributeTest, Catalog, CatalogAttribute, Compare, CreatedOp, Node, Segment, TagOp, TextOp,
};
use mos_domain::{AttributeId, AuditEvent, ContactId, PurposeId, RequestSource, SegmentId, UserId};

/// The most rows one preview page shows.
pub const MAX_PREVIEW: u16 = 100;

#[derive(sqlx::FromRow)]
struct AttributeRow {
    #[sqlx(try_from = "uuid::Uuid")]
    id: AttributeId,
    name: String,
    kind: String,
    max_length: Option<i32>,
    choices: Vec<String>,
}

/// What the organization's definitions may name: its attributes (with their choices) and its
/// purposes, read in two statements.
pub async fn catalog(tx: &mut TenantTx) -> Result<Catalog> {
    let rows: Vec<AttributeRow> = sqlx::query_as(
        "select a.id, a.name, a.kind::text as kind, a.max_length,
                coalesce((select array_agg(c.value order by c.value) from app.contact_attribute_choices c
                           where c.organization_id = $1 and c.attribute_id = a.id), '{}') as choices
           from app.contact_attributes a
          where a.organization_id = $1
          order by a.name",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let mut attributes = Vec::with_capacity(rows.len());
    for row in rows {
        let kind = match (row.kind.as_str(), row.max_length) {
            ("text", Some(max_length)) => AttributeKind::Text { max_length },
            ("number", _) => AttributeKind::Number,
            ("date", _) => AttributeKind::Date,
            ("boolean", _) => AttributeKind::Boolean,
            ("choice", _) => AttributeKind::Choice { choices: row.choices },
            _ => return Err(stored("contact_attributes_text_length")),
        };
        attributes.push(CatalogAttribute { id: row.id, name: row.name, kind });
    }
    let purposes: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from app.purposes where organization_id = $1 order by id")
            .bind(tx.org().as_uuid())
            .fetch_all(tx.conn())
            .await?;
    let purposes = purposes
        .into_iter()
        .map(PurposeId::from_uuid)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| stored("purposes_id_v7"))?;
    Ok(Catalog { attributes, purposes })
}

/// Appends `from app.contacts c where <the tenant's live contacts that match>` to `query`,
/// which must have bound nothing yet: the tenant becomes `$1`, which every table repeats.
pub(crate) fn push_matching(
    query: &mut QueryBuilder<'_, Postgres>,
    org: uuid::Uuid,
    segment: &Segment,
    at: DateTime<Utc>,
) {
    query.push(" from app.contacts c where c.organization_id = ");
    query.push_bind(org);
    // Erased contacts are tombstones without data; no definition selects them.
    query.push(" and c.erased_at is null and ");
    push_node(query, segment.root(), at);
}

fn push_node(query: &mut QueryBuilder<'_, Postgres>, node: &Node, at: DateTime<Utc>) {
    match node {
        Node::All(members) | Node::Any(members) if members.is_empty() => {
            query.push(if matches!(node, Node::All(_)) { "true" } else { "false" });
        }
        Node::All(members) | Node::Any(members) => {
            let joint = if matches!(node, Node::All(_)) { " and " } else { " or " };
            query.push("(");
            for (i, member) in members.iter().enumerate() {
                if i > 0 {
                    query.push(joint);
                }
                push_node(query, member, at);
            }
            query.push(")");
        }
        Node::Not(inner) => {
            query.push("not ");
            push_node(query, inner, at);
        }
        Node::Attribute { id, kind, test, .. } => push_attribute(query, *id, kind, test),
        Node::Tags { op, tags } => {
            // The GIN index on tags answers all three.
            match op {
                TagOp::Has | TagOp::HasAll => query.push("c.tags @> "),
                TagOp::HasAny => query.push("c.tags && "),
            };
            query.push_bind(tags.clone()).push("::text[]");
        }
        Node::Consent { purpose, live } => {
            // Live: the contact's current state for the purpose passes `consent::LIVE_UNTIL` at
            // `at`, and no suppression of its address is in force. The current state is one
            // narrow row per contact and purpose that the ledger's trigger keeps (migration
            // 25), read as one range of its key (organization, purpose, contact), index-only;
            // before, the latest events were found by walking every event of the purpose.
            query.push(if *live { "(" } else { "not (" });
            query.push(
                "c.id in (select e.contact_id from app.consent_state e
                           where e.organization_id = $1 and e.purpose_id = ",
            );
            query.push_bind(purpose.as_uuid());
            query.push(" and ");
            query.push(consent::LIVE_UNTIL);
            query.push_bind(at);
            query.push("))");
            // And the address is not suppressed, as `consent::is_live` asks before each message.
            query.push(concat!(
                " and not exists (select 1 from app.suppressions s
                                   where s.organization_id = $1 and s.address_key = c.address_key and ",
                in_force!(),
                "))"
            ));
        }
        Node::Created { op, at: instant } => {
            query.push(if *op == CreatedOp::Before { "c.created_at < " } else { "c.created_at > " });
            query.push_bind(*instant);
        }
    }
}

/// A condition on a custom attribute: the contact has (or has not) a value row for the
/// attribute whose typed column passes the test. Each kind reads its own column, whose partial
/// index on `(organization_id, attribute_id, value)` answers the range.
fn push_attribute(query: &mut QueryBuilder<'_, Postgres>, id: AttributeId, kind: &AttributeKind, test: &AttributeTest) {
    let column = match kind {
        AttributeKind::Text { .. } => "v.text_value",
        AttributeKind::Number => "v.number_value",
        AttributeKind::Date => "v.date_value",
        AttributeKind::Boolean => "v.boolean_value",
        AttributeKind::Choice { .. } => "v.choice_value",
    };
    query.push(if *test == AttributeTest::IsNotSet { "not (" } else { "(" });
    query.push(
        "c.id in (select v.contact_id from app.contact_attribute_values v
                   where v.organization_id = $1 and v.attribute_id = ",
    );
    query.push_bind(id.as_uuid());
    query.push(" and ").push(column);
    match test {
        AttributeTest::IsSet | AttributeTest::IsNotSet => {
            query.push(" is not null");
        }
        AttributeTest::Text(op, text) => {
            match op {
                TextOp::Equals => query.push(" = ").push_bind(text.clone()),
                TextOp::Contains => {
                    query.push(" is not null and strpos(v.text_value, ").push_bind(text.clone()).push(") > 0")
                }
                TextOp::StartsWith => {
                    query.push(" is not null and starts_with(v.text_value, ").push_bind(text.clone()).push(")")
                }
            };
        }
        // Bound as float8 and cast to numeric as `attributes::set` stores them, so that a value
        // compares with the number it was stored from; comparing the column as float8 would
        // also lose its index.
        AttributeTest::Number(compare) => push_compare(query, compare, |q, n| {
            q.push_bind(*n).push("::float8::numeric");
        }),
        AttributeTest::Date(compare) => push_compare(query, compare, |q, d| {
            q.push_bind(*d);
        }),
        AttributeTest::Boolean(b) => {
            query.push(" = ").push_bind(*b);
        }
        AttributeTest::ChoiceIn(choices) => {
            query.push(" = any(").push_bind(choices.clone()).push("::text[])");
        }
    }
    query.push("))");
}

fn push_compare<T>(
    query: &mut QueryBuilder<'_, Postgres>,
    compare: &Compare<T>,
    bind: impl Fn(&mut QueryBuilder<'_, Postgres>, &T),
) {
    let (op, value) = match compare {
        Compare::Equals(v) => (" = ", v),
        Compare::Lt(v) => (" < ", v),
        Compare::Lte(v) => (" <= ", v),
        Compare::Gt(v) => (" > ", v),
        Compare::Gte(v) => (" >= ", v),
        Compare::Between(low, high) => {
            query.push(" between ");
            bind(query, low);
            query.push(" and ");
            bind(query, high);
            return;
        }
    };
    query.push(op);
    bind(query, value);
}

/// The count statement and its parameters, for `EXPLAIN` and for [`count`].
///
/// [`count`] and [`preview`] send it as an unnamed statement, which PostgreSQL plans with the
/// values bound (a custom plan) every time. A named one, after five runs, may get a generic
/// plan, which cannot see the tenant or the purpose and guesses that each condition matches a
/// handful of rows. For one shape of the consent condition tried at 100,000 contacts it
/// rescanned the latest events once per attribute value and ran for more than ten minutes
/// where the custom plan took 0.6 s (docs/performance.md, "Segment counts"); a count's
/// statement depends on its definition, so no shape can be proven safe from that. Planning
/// costs about 2 ms, a small part of a count.
pub fn count_query(org: uuid::Uuid, segment: &Segment, at: DateTime<Utc>) -> QueryBuilder<'static, Postgres> {
    let mut query = QueryBuilder::new("select count(*)");
    push_matching(&mut query, org, segment, at);
    query
}

/// The plan PostgreSQL chooses for [`count`] of `segment` at `at`, one line a row, planned
/// with the values as [`count`] is: what a test or an operator reads to see which indexes
/// answer a definition.
pub async fn explain_count(tx: &mut TenantTx, segment: &Segment, at: DateTime<Utc>) -> Result<Vec<String>> {
    let mut query = QueryBuilder::new("explain (costs off) select count(*)");
    push_matching(&mut query, tx.org().as_uuid(), segment, at);
    Ok(query.build_query_scalar::<String>().persistent(false).fetch_all(tx.conn()).await?)
}

/// How many of the organization's contacts the segment holds at `at` (consent that expires
/// later is live).
pub async fn count(tx: &mut TenantTx, segment: &Segment, at: DateTime<Utc>) -> Result<i64> {
    let mut query = count_query(tx.org().as_uuid(), segment, at);
    // Unnamed, so planned with its values each time: see [`count_query`].
    Ok(query.build_query_scalar::<i64>().persistent(false).fetch_one(tx.conn()).await?)
}

/// A contact of a preview: only what a person needs to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    #[sqlx(try_from = "uuid::Uuid")]
    pub id: ContactId,
    pub address: Option<String>,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The fields of a contact that a preview shows, as its audit record names them.
pub const PREVIEW_FIELDS: [&str; 3] = ["address", "name", "created_at"];

/// The segment's contacts in id order, after `after` (keyset paging), at most `limit` (capped
/// at [`MAX_PREVIEW`]). Showing them is a read of personal data: the audit record, in the same
/// transaction, names the actor, every contact shown and the fields shown.
#[allow(clippy::too_many_arguments)]
pub async fn preview(
    tx: &mut TenantTx,
    segment: &Segment,
    at: DateTime<Utc>,
    after: Option<ContactId>,
    limit: u16,
    actor: UserId,
    source: &RequestSource,
) -> Result<Vec<Member>> {
    let mut query = QueryBuilder::new("select c.id, c.address, c.name, c.created_at");
    push_matching(&mut query, tx.org().as_uuid(), segment, at);
    if let Some(after) = after {
        query.push(" and c.id > ").push_bind(after.as_uuid());
    }
    query.push(" order by c.id limit ").push_bind(i64::from(limit.clamp(1, MAX_PREVIEW)));
    // Unnamed, so planned with its values each time: see [`count_query`].
    let members: Vec<Member> = query.build_query_as().persistent(false).fetch_all(tx.conn()).await?;
    if !members.is_empty() {
        let event = AuditEvent::new(SEGMENT_PREVIEWED, SEGMENT)
            .actor(actor)
            .source(source.clone())
            .meta("definition_sha256", json!(segment.hash().to_string()))
            .meta("contacts", json!(members.iter().map(|m| m.id).collect::<Vec<_>>()))
            .meta("fields", json!(PREVIEW_FIELDS));
        audit::record(tx, &event).await?;
    }
    Ok(members)
}

/// The segment's first contact in id order, by id alone: nothing personal is read, so a
/// caller that goes on to read that contact's data records that read itself.
pub async fn first(tx: &mut TenantTx, segment: &Segment, at: DateTime<Utc>) -> Result<Option<ContactId>> {
    let mut query = QueryBuilder::new("select c.id");
    push_matching(&mut query, tx.org().as_uuid(), segment, at);
    query.push(" order by c.id limit 1");
    // Unnamed, so planned with its values each time: see [`count_query`].
    let id: Option<uuid::Uuid> = query.build_query_scalar().persistent(false).fetch_optional(tx.conn()).await?;
    id.map(|id| ContactId::try_from(id).map_err(|_| stored("contacts_id"))).transpose()
}

/// A saved version of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub segment: SegmentId,
    pub version: i32,
    /// The canonical definition, as hashed.
    pub definition: String,
    pub sha256: ContentHash,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    segment_id: uuid::Uuid,
    version: i32,
    definition: String,
    sha256: Vec<u8>,
    created_by: uuid::Uuid,
    created_at: DateTime<Utc>,
}

impl TryFrom<VersionRow> for Version {
    type Error = crate::DbError;
    fn try_from(row: VersionRow) -> Result<Self> {
        Ok(Self {
            segment: SegmentId::from_uuid(row.segment_id).map_err(|_| stored("segments_id_v7"))?,
            version: row.version,
            definition: row.definition,
            sha256: ContentHash::try_from(row.sha256).map_err(|_| stored("segment_versions_sha256"))?,
            created_by: UserId::from_uuid(row.created_by).map_err(|_| stored("segment_versions_created_by"))?,
            created_at: row.created_at,
        })
    }
}

/// Saves a new segment named `name` with `segment` as its version 1. A name the organization
/// already uses is a conflict (`segments_name_key`).
pub async fn create(
    tx: &mut TenantTx,
    name: &str,
    segment: &Segment,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Version> {
    let id = SegmentId::new();
    sqlx::query(
        "insert into app.segments (organization_id, id, name, created_by, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(name)
    .bind(actor.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    insert_version(tx, id, 1, segment, actor, now, source).await
}

/// Saves `segment` as the next version of a saved segment. Two saves at once both claim the
/// same number, and the later one is refused (`segment_versions_pkey`); no such segment is
/// `segment_versions_segment_fkey`.
pub async fn add_version(
    tx: &mut TenantTx,
    id: SegmentId,
    segment: &Segment,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Version> {
    let last: Option<i32> = sqlx::query_scalar(
        "select max(version) from app.segment_versions where organization_id = $1 and segment_id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_one(tx.conn())
    .await?;
    insert_version(tx, id, last.unwrap_or(0) + 1, segment, actor, now, source).await
}

async fn insert_version(
    tx: &mut TenantTx,
    id: SegmentId,
    number: i32,
    segment: &Segment,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Version> {
    let hash = segment.hash();
    // The stored instant, which has microseconds only.
    let created_at: DateTime<Utc> = sqlx::query_scalar(
        "insert into app.segment_versions (organization_id, segment_id, version, definition, sha256, created_by, created_at)
         values ($1, $2, $3, $4, $5, $6, $7)
         returning created_at",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(number)
    .bind(segment.canonical())
    .bind(hash.as_bytes())
    .bind(actor.as_uuid())
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    let event = AuditEvent::new(SEGMENT_SAVED, SEGMENT)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("version", json!(number))
        .meta("sha256", json!(hash.to_string()));
    audit::record(tx, &event).await?;
    Ok(Version {
        segment: id,
        version: number,
        definition: segment.canonical().to_owned(),
        sha256: hash,
        created_by: actor,
        created_at,
    })
}

/// One version of a saved segment; `None` when the organization has no such version.
pub async fn version(tx: &mut TenantTx, id: SegmentId, number: i32) -> Result<Option<Version>> {
    let row: Option<VersionRow> = sqlx::query_as(
        "select segment_id, version, definition, sha256, created_by, created_at
           from app.segment_versions
          where organization_id = $1 and segment_id = $2 and version = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(number)
    .fetch_optional(tx.conn())
    .await?;
    row.map(Version::try_from).transpose()
}

/// A saved segment and its latest version's number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub id: SegmentId,
    pub name: String,
    pub latest: i32,
    pub sha256: ContentHash,
}

#[derive(sqlx::FromRow)]
struct SavedRow {
    id: uuid::Uuid,
    name: String,
    latest: i32,
    sha256: Vec<u8>,
}

/// The organization's saved segments in id order after `after`, at most `limit`.
pub async fn list(tx: &mut TenantTx, after: Option<SegmentId>, limit: u16) -> Result<Vec<Saved>> {
    let rows: Vec<SavedRow> = sqlx::query_as(
        "select s.id, s.name, v.version as latest, v.sha256
           from app.segments s
           join lateral (select v.version, v.sha256 from app.segment_versions v
                          where v.organization_id = $1 and v.segment_id = s.id
                          order by v.version desc limit 1) v on true
          where s.organization_id = $1 and ($2::uuid is null or s.id > $2)
          order by s.id
          limit $3",
    )
    .bind(tx.org().as_uuid())
    .bind(after.map(|a| a.as_uuid()))
    .bind(i64::from(limit.clamp(1, MAX_PREVIEW)))
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Saved {
                id: SegmentId::from_uuid(r.id).map_err(|_| stored("segments_id_v7"))?,
                name: r.name,
                latest: r.latest,
                sha256: ContentHash::try_from(r.sha256).map_err(|_| stored("segment_versions_sha256"))?,
            })
        })
        .collect()
}

/// A saved segment's name and every version of it, newest first; `None` when the organization
/// has no such segment (every saved segment has a version 1).
pub async fn versions(tx: &mut TenantTx, id: SegmentId) -> Result<Option<(String, Vec<Version>)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        name: String,
        #[sqlx(flatten)]
        version: VersionRow,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select s.name, v.segment_id, v.version, v.definition, v.sha256, v.created_by, v.created_at
           from app.segments s
           join app.segment_versions v on v.organization_id = $1 and v.segment_id = s.id
          where s.organization_id = $1 and s.id = $2
          order by v.version desc",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let Some(name) = rows.first().map(|r| r.name.clone()) else { return Ok(None) };
    let versions = rows.into_iter().map(|r| Version::try_from(r.version)).collect::<Result<Vec<_>>>()?;
    Ok(Some((name, versions)))
}
