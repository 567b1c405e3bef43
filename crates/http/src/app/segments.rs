//! Segments: count a definition, show a page of the contacts it picks, and save it as a
//! versioned segment. Each operation parses the definition against the organization's own
//! attributes and purposes (`mos_domain::segments`) in the request's transaction, then calls
//! the repository (`mos_db::audiences::segments`), which compiles it. A definition that does not
//! parse is refused with every part at fault named by its JSON Pointer, never a 500.
//!
//! The console's editor writes a definition as rows of form fields; [`Draft`] turns them into
//! the JSON the API takes (and back, for a definition that is one group of conditions), so
//! that both doors parse the same text the same way.

use mos_db::audiences::browse::{self, Attribute, Purpose};
use mos_db::audiences::segments::{self, Member, Saved, Version, MAX_PREVIEW};
use mos_db::{DbError, TenantTx};
use mos_domain::content::ContentHash;
use mos_domain::segments::{Segment, SegmentError};
use mos_domain::{ContactId, SegmentId};
use serde_json::{json, Map, Value};

use crate::access::{Authorized, ManageSegments, ReadAudience, ReadContacts};
use crate::error::PartProblem;
use crate::{paging, ApiError, AppState};

/// The request field that holds a definition, at the root of every JSON Pointer of a problem.
pub const DEFINITION: &str = "definition";

/// The largest page of saved segments: the repository reads at most [`MAX_PREVIEW`] rows, and
/// a page reads one more than it shows to know whether another follows.
pub const LIST_MAX: i64 = 50;

/// A definition as a door received it.
#[derive(Clone, Copy)]
pub enum Definition<'a> {
    /// Part of a JSON request body.
    Json(&'a Value),
    /// JSON text, as a form's textarea or [`Draft::definition`] gives it.
    Text(&'a str),
}

/// The JSON Pointer (RFC 6901) under `/definition` of a problem's path as the parser names it
/// (`all[2].value` is `/definition/all/2/value`; the empty path is the whole definition).
pub fn pointer(path: &str) -> String {
    let mut out = format!("/{DEFINITION}");
    let mut token = String::new();
    let flush = |out: &mut String, token: &mut String| {
        if !token.is_empty() {
            out.push('/');
            out.push_str(&token.replace('~', "~0").replace('/', "~1"));
            token.clear();
        }
    };
    for c in path.chars() {
        match c {
            '.' | '[' | ']' => flush(&mut out, &mut token),
            c => token.push(c),
        }
    }
    flush(&mut out, &mut token);
    out
}

fn refused(error: SegmentError) -> ApiError {
    let errors = error.0.into_iter().map(|p| PartProblem { pointer: pointer(&p.path), detail: p.message }).collect();
    ApiError::InvalidParts { field: DEFINITION, errors }
}

/// Parses `definition` against the catalog of the transaction's organization.
async fn parse(tx: &mut TenantTx, definition: Definition<'_>) -> Result<Segment, ApiError> {
    let catalog = segments::catalog(tx).await?;
    match definition {
        Definition::Json(value) => Segment::from_value(value, &catalog),
        Definition::Text(text) => Segment::parse(text, &catalog),
    }
    .map_err(refused)
}

fn parse_segment(id: &str) -> Result<SegmentId, ApiError> {
    SegmentId::parse(id).map_err(|_| ApiError::NotFound)
}

/// The smallest count shown exactly to a member who may not read contacts. A definition can
/// be narrowed until it picks one person ("age 47 and tagged vip": 1), and a count of one or
/// a few tells that member something about people whose data their role keeps from them
/// (HIPAA's minimum necessary): below this they are told only that it is fewer
/// (docs/segments.md, "Who sees what").
pub const SMALL_COUNT: i64 = 10;

/// A count as the member who asked may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact(i64),
    /// Fewer than this many ([`SMALL_COUNT`]): the exact number is withheld.
    FewerThan(i64),
}

impl Count {
    /// `count` as shown to a member who may (`reads_contacts`) or may not read contacts.
    pub fn shown(count: i64, reads_contacts: bool) -> Self {
        if reads_contacts || count >= SMALL_COUNT {
            Count::Exact(count)
        } else {
            Count::FewerThan(SMALL_COUNT)
        }
    }
}

/// A definition counted: how many contacts it picks now, as the member may see it, and the
/// canonical text and hash it would be saved under.
pub struct Counted {
    pub count: Count,
    pub canonical: String,
    pub sha256: ContentHash,
}

/// How many contacts the definition picks now. Every role may ask; a member who may not read
/// contacts gets a small count as "fewer than [`SMALL_COUNT`]".
pub async fn count(
    state: &AppState,
    auth: &mut Authorized<ReadAudience>,
    definition: Definition<'_>,
) -> Result<Counted, ApiError> {
    let segment = parse(&mut auth.tx, definition).await?;
    let count = segments::count(&mut auth.tx, &segment, state.clock.now()).await?;
    let count = Count::shown(count, auth.may::<ReadContacts>());
    Ok(Counted { count, canonical: segment.canonical().to_owned(), sha256: segment.hash() })
}

/// The page size of a preview asked for: 1 to [`MAX_PREVIEW`], 20 by default.
fn preview_limit(asked: Option<i64>) -> Result<u16, ApiError> {
    asked
        .unwrap_or(20)
        .try_into()
        .ok()
        .filter(|n| (1..=MAX_PREVIEW).contains(n))
        .ok_or_else(|| ApiError::Invalid { field: "limit", message: format!("limit must be 1 to {MAX_PREVIEW}") })
}

/// A page of the contacts the definition picks, in id order after `cursor`, and the cursor of
/// the next page when this one is full. Showing them is recorded (`segment.previewed`), naming
/// every contact shown, in this transaction.
pub async fn preview(
    state: &AppState,
    auth: &mut Authorized<ReadContacts>,
    definition: Definition<'_>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Member>, Option<String>), ApiError> {
    let limit = preview_limit(limit)?;
    let after = cursor.map(ContactId::parse).transpose().map_err(|_| paging::bad_cursor())?;
    let segment = parse(&mut auth.tx, definition).await?;
    // Exactly `limit` rows: one more, read only to learn that another page follows, would be
    // recorded as shown too.
    let rows =
        segments::preview(&mut auth.tx, &segment, state.clock.now(), after, limit, auth.session.user, &auth.source)
            .await?;
    let next = (rows.len() == usize::from(limit)).then(|| rows.last().map(|m| m.id.to_string())).flatten();
    Ok((rows, next))
}

/// A page of the organization's saved segments in id order, with each one's latest version.
pub async fn list(
    auth: &mut Authorized<ReadAudience>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Saved>, Option<String>), ApiError> {
    let limit = limit.unwrap_or(LIST_MAX);
    if !(1..=LIST_MAX).contains(&limit) {
        return Err(ApiError::Invalid { field: "limit", message: format!("limit must be 1 to {LIST_MAX}") });
    }
    let after = cursor.map(SegmentId::parse).transpose().map_err(|_| paging::bad_cursor())?;
    let asked = u16::try_from(limit + 1).unwrap_or(MAX_PREVIEW);
    let rows = segments::list(&mut auth.tx, after, asked).await?;
    Ok(paging::split(rows, limit, |s: &Saved| s.id.to_string()))
}

/// A segment's name: 1 to 200 characters, trimmed, no control characters.
fn segment_name(input: &str) -> Result<String, ApiError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid {
            field: "name",
            message: "a segment's name is 1 to 200 characters without control characters".into(),
        });
    }
    Ok(name.to_owned())
}

/// Saves a new segment with `definition` as its version 1. A name in use is 409 naming `name`.
pub async fn create(
    state: &AppState,
    auth: Authorized<ManageSegments>,
    name: &str,
    definition: Definition<'_>,
) -> Result<Version, ApiError> {
    let name = segment_name(name)?;
    let mut tx = auth.tx;
    let segment = parse(&mut tx, definition).await?;
    let created = segments::create(&mut tx, &name, &segment, auth.session.user, state.clock.now(), &auth.source).await;
    let version = match created {
        Ok(version) => version,
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::ConflictOn { field: "name", message: "a segment with this name exists".into() })
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok(version)
}

/// A saved segment with its versions, newest first.
pub struct SegmentPage {
    pub id: SegmentId,
    pub name: String,
    pub versions: Vec<Version>,
}

pub async fn segment(auth: &mut Authorized<ReadAudience>, id: &str) -> Result<SegmentPage, ApiError> {
    let id = parse_segment(id)?;
    let (name, versions) = segments::versions(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    Ok(SegmentPage { id, name, versions })
}

/// Saves `definition` as the segment's next version, unless its canonical text is the latest
/// version's: then that version is answered and nothing is saved (`false`).
pub async fn add_version(
    state: &AppState,
    auth: Authorized<ManageSegments>,
    id: &str,
    definition: Definition<'_>,
) -> Result<(Version, bool), ApiError> {
    let id = parse_segment(id)?;
    let mut tx = auth.tx;
    let (_, versions) = segments::versions(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    let segment = parse(&mut tx, definition).await?;
    if let Some(latest) = versions.into_iter().next().filter(|v| v.sha256 == segment.hash()) {
        tx.commit().await?;
        return Ok((latest, false));
    }
    let added = segments::add_version(&mut tx, id, &segment, auth.session.user, state.clock.now(), &auth.source).await;
    let version = match added {
        Ok(version) => version,
        // Another save took the same number first.
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::Conflict("another version of this segment was saved at the same time; try again"))
        }
        Err(e) => return Err(e.into()),
    };
    tx.commit().await?;
    Ok((version, true))
}

/// One version of a saved segment.
pub async fn version(auth: &mut Authorized<ReadAudience>, id: &str, number: i32) -> Result<Version, ApiError> {
    let id = parse_segment(id)?;
    segments::version(&mut auth.tx, id, number).await?.ok_or(ApiError::NotFound)
}

/// What the console's editor needs to offer: the organization's attributes and purposes.
pub struct Choices {
    pub attributes: Vec<Attribute>,
    pub purposes: Vec<Purpose>,
}

pub async fn choices(auth: &mut Authorized<ReadAudience>) -> Result<Choices, ApiError> {
    Ok(Choices { attributes: browse::attributes(&mut auth.tx).await?, purposes: browse::purposes(&mut auth.tx).await? })
}

/// One condition of the editor: what it tests (`attribute:NAME`, `tags`, `consent:PURPOSE_ID`,
/// `created`), the operator, and the value as typed (lists separated by commas; `between`
/// takes two values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// A definition as rows of conditions joined by `all` or `any`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// `any`, or else `all`.
    pub joint: String,
    pub rows: Vec<Row>,
}

fn listed(value: &str) -> Value {
    Value::Array(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(|v| json!(v)).collect())
}

/// A number as typed, or the text itself, which the parser then refuses at its path.
fn number(value: &str) -> Value {
    value.trim().parse::<f64>().ok().filter(|n| n.is_finite()).map_or_else(|| json!(value.trim()), |n| json!(n))
}

impl Draft {
    /// The JSON text of the definition. A row without a field is left out; the `n`-th row kept is
    /// member `n` of the group, which the paths of problems name. How a value is read depends on
    /// the attribute's kind in `attributes`; one that does not fit is passed on as text, for the
    /// parser to refuse at its path.
    pub fn definition(&self, attributes: &[Attribute]) -> String {
        let members: Vec<Value> =
            self.rows.iter().filter(|r| !r.field.trim().is_empty()).map(|r| row(r, attributes)).collect();
        let joint = if self.joint == "any" { "any" } else { "all" };
        let mut group = Map::new();
        group.insert(joint.to_owned(), Value::Array(members));
        Value::Object(group).to_string()
    }

    /// The rows of a definition that is one `all` or `any` group of conditions; `None` for one
    /// with nested groups or that is not JSON, which the editor shows as JSON only.
    pub fn from_definition(text: &str) -> Option<Draft> {
        let value: Value = serde_json::from_str(text).ok()?;
        let object = value.as_object()?;
        let (joint, members) = match (object.get("all"), object.get("any")) {
            (Some(members), None) => ("all", members.as_array()?),
            (None, Some(members)) => ("any", members.as_array()?),
            _ => return None,
        };
        if object.len() != 1 {
            return None;
        }
        let rows = members.iter().map(|m| m.as_object().and_then(from_member)).collect::<Option<Vec<Row>>>()?;
        Some(Draft { joint: joint.to_owned(), rows })
    }
}

fn row(row: &Row, attributes: &[Attribute]) -> Value {
    let (field, op, value) = (row.field.trim(), row.op.trim(), row.value.trim());
    if let Some(purpose) = field.strip_prefix("consent:") {
        return json!({ "consent": op, "purpose": purpose });
    }
    match field {
        "tags" if op == "has" => json!({ "tags": op, "value": value }),
        "tags" => json!({ "tags": op, "value": listed(value) }),
        "created" => {
            // A date alone is its first instant, in UTC.
            let at = if value.len() == 10 { format!("{value}T00:00:00Z") } else { value.to_owned() };
            json!({ "created": op, "value": at })
        }
        _ => {
            let name = field.strip_prefix("attribute:").unwrap_or(field);
            let mut node = Map::new();
            node.insert("attribute".into(), json!(name));
            node.insert("op".into(), json!(op));
            if !matches!(op, "is_set" | "is_not_set") {
                let kind = attributes.iter().find(|a| a.name == name).map_or("text", |a| a.kind.as_str());
                let one = |v: &str| if kind == "number" { number(v) } else { json!(v.trim()) };
                let given = match (kind, op) {
                    (_, "between") => Value::Array(value.split(',').map(one).collect()),
                    ("boolean", _) => match value {
                        "true" | "yes" => json!(true),
                        "false" | "no" => json!(false),
                        other => json!(other),
                    },
                    (_, "in") => listed(value),
                    _ => one(value),
                };
                node.insert("value".into(), given);
            }
            Value::Object(node)
        }
    }
}

/// A value as the editor's text input shows it.
fn typed(value: &Value) -> Option<String> {
    Some(match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        // `50.0` is shown as typed, `50`.
        Value::Number(n) => n.as_f64().map(|f| f.to_string())?,
        Value::Array(items) => items.iter().map(typed).collect::<Option<Vec<_>>>()?.join(", "),
        _ => return None,
    })
}

fn from_member(node: &Map<String, Value>) -> Option<Row> {
    let text = |key: &str| node.get(key).and_then(Value::as_str).map(str::to_owned);
    let value = node.get("value").map(typed).unwrap_or(Some(String::new()))?;
    if let Some(name) = text("attribute") {
        return Some(Row { field: format!("attribute:{name}"), op: text("op")?, value });
    }
    if let Some(op) = text("tags") {
        return Some(Row { field: "tags".into(), op, value });
    }
    if let Some(op) = text("consent") {
        return Some(Row { field: format!("consent:{}", text("purpose")?), op, value: String::new() });
    }
    if let Some(op) = text("created") {
        return Some(Row { field: "created".into(), op, value });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_problems_path_becomes_a_json_pointer_into_the_request() {
        assert_eq!(pointer(""), "/definition");
        assert_eq!(pointer("all[2].value"), "/definition/all/2/value");
        assert_eq!(pointer("any[0].not.attribute"), "/definition/any/0/not/attribute");
        assert_eq!(pointer("all[1].a/b~c"), "/definition/all/1/a~1b~0c");
    }

    #[test]
    fn rows_become_a_definition_and_a_definition_of_one_group_becomes_rows_again() {
        let draft = Draft {
            joint: "any".into(),
            rows: vec![
                Row { field: "attribute:age".into(), op: "between".into(), value: "50, 65".into() },
                Row { field: String::new(), op: "equals".into(), value: "ignored".into() },
                Row { field: "tags".into(), op: "has_any".into(), value: "staff, vip".into() },
                Row { field: "consent:0189".into(), op: "live".into(), value: String::new() },
                Row { field: "created".into(), op: "after".into(), value: "2026-01-31".into() },
            ],
        };
        let attributes = [Attribute {
            id: mos_domain::AttributeId::new(),
            name: "age".into(),
            kind: "number".into(),
            max_length: None,
            choices: vec![],
            created_at: Utc::now(),
        }];
        let text = draft.definition(&attributes);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({ "any": [
                { "attribute": "age", "op": "between", "value": [50.0, 65.0] },
                { "tags": "has_any", "value": ["staff", "vip"] },
                { "consent": "live", "purpose": "0189" },
                { "created": "after", "value": "2026-01-31T00:00:00Z" },
            ] })
        );
        let again = Draft::from_definition(&text).unwrap();
        let kept: Vec<Row> = draft.rows.iter().filter(|r| !r.field.is_empty()).cloned().collect();
        assert_eq!(again.joint, "any");
        assert_eq!(again.rows[0], Row { value: "50, 65".into(), ..kept[0].clone() });
        assert_eq!(again.rows[1..3], kept[1..3]);
        assert_eq!(again.rows[3].value, "2026-01-31T00:00:00Z");
        assert_eq!(Draft::from_definition(r#"{"all": [{"not": {"tags": "has", "value": "x"}}]}"#), None);
    }
}
