//! Segments: a definition that picks contacts by their custom attributes, tags, consent for a
//! purpose and creation date, combined with `all`, `any` and `not`.
//!
//! A definition arrives as JSON and is parsed once against the organization's attributes and
//! purposes ([`Catalog`]) into a [`Segment`], whose every value is typed by what it is compared
//! with. The database layer compiles a `Segment` into one parameterised statement; nothing of
//! the JSON but typed values (bound as parameters) and ids looked up in the catalog reaches it.
//! docs/segments.md describes the format.
//!
//! A segment's canonical form is the JSON text it is stored as and hashed over: keys in byte
//! order, no whitespace, lists whose order means nothing sorted and without repeats, and the
//! members of `all` and `any` sorted by their own canonical text. Two definitions that differ
//! only in key order, whitespace, spelling of the same number or date, or the order of an
//! `all`/`any` therefore have the same hash.

use std::fmt;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::audiences::AttributeKind;
use crate::content::ContentHash;
use crate::{AttributeId, PurposeId};

/// How deep `all`, `any` and `not` may nest.
pub const MAX_DEPTH: usize = 8;
/// How many nodes (groups and conditions) a definition may have.
pub const MAX_NODES: usize = 100;
/// How many values a list (`in`, `has_any`, `has_all`) may hold.
pub const MAX_LIST: usize = 100;
/// The longest text value or tag, in characters.
pub const MAX_TEXT: usize = 1000;
/// The largest definition, in bytes of JSON as received.
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// The largest magnitude of a number compared with: beyond it an `f64` no longer holds every
/// integer, so two different numbers a person typed could compare as one.
pub const MAX_NUMBER: f64 = 1e15;

/// One thing wrong with a definition: where (`all[2].value`; empty for the whole definition)
/// and what, in words safe to show the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the definition: {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A definition that was refused, with every problem found (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the segment definition is invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct SegmentError(pub Vec<Problem>);

/// A custom attribute as a definition may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogAttribute {
    pub id: AttributeId,
    pub name: String,
    pub kind: AttributeKind,
}

/// What an organization has that a definition may name: its attributes and its purposes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub attributes: Vec<CatalogAttribute>,
    pub purposes: Vec<PurposeId>,
}

/// A comparison with a value of an ordered kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare<T> {
    Equals(T),
    Lt(T),
    Lte(T),
    Gt(T),
    Gte(T),
    /// Both bounds included; the first is not above the second.
    Between(T, T),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Equals,
    Contains,
    StartsWith,
}

/// What a condition on a custom attribute asks, typed by the attribute's kind. Text compares
/// exactly as stored (case and normal form included).
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeTest {
    IsSet,
    IsNotSet,
    Text(TextOp, String),
    Number(Compare<f64>),
    Date(Compare<NaiveDate>),
    Boolean(bool),
    /// One of these choices, sorted, each one of the attribute's.
    ChoiceIn(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp {
    /// Has the one tag.
    Has,
    HasAny,
    HasAll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedOp {
    Before,
    After,
}

/// A node of a parsed definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every member holds; an empty `all` holds for every contact.
    All(Vec<Node>),
    /// Some member holds; an empty `any` holds for none.
    Any(Vec<Node>),
    Not(Box<Node>),
    /// `kind` says which typed column holds the attribute's values.
    Attribute {
        id: AttributeId,
        name: String,
        kind: AttributeKind,
        test: AttributeTest,
    },
    /// The tags, sorted and without repeats (one for [`TagOp::Has`]).
    Tags {
        op: TagOp,
        tags: Vec<String>,
    },
    /// The contact's consent for the purpose is live when counted: the latest event is a grant
    /// (other than a sign-up awaiting its confirmation) or a confirmation, not past its expiry.
    Consent {
        purpose: PurposeId,
        live: bool,
    },
    Created {
        op: CreatedOp,
        at: DateTime<Utc>,
    },
}

/// A definition parsed against an organization's catalog, with its canonical text.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    root: Node,
    canonical: String,
}

impl Segment {
    /// Parses a definition from JSON text.
    pub fn parse(json: &str, catalog: &Catalog) -> Result<Self, SegmentError> {
        if json.len() > MAX_JSON_BYTES {
            return Err(problem("", format!("a definition is at most {MAX_JSON_BYTES} bytes of JSON")));
        }
        let value: Value =
            serde_json::from_str(json).map_err(|_| problem("", "a definition is a JSON object".to_owned()))?;
        Self::from_value(&value, catalog)
    }

    /// Parses a definition that arrived as part of a JSON document.
    pub fn from_value(value: &Value, catalog: &Catalog) -> Result<Self, SegmentError> {
        let mut parser = Parser { catalog, problems: Vec::new(), nodes: 0 };
        let root = parser.node(value, "", 0);
        match root {
            Some(root) if parser.problems.is_empty() => {
                let canonical = canonical_text(&canonical_value(&root));
                if canonical.len() > MAX_JSON_BYTES {
                    return Err(problem("", format!("a definition is at most {MAX_JSON_BYTES} bytes of JSON")));
                }
                // The tree is taken from the canonical text, so that two definitions with one
                // hash are one tree too and compile to the same statement.
                let reread = serde_json::from_str::<Value>(&canonical).ok().and_then(|value| {
                    let mut again = Parser { catalog, problems: Vec::new(), nodes: 0 };
                    again.node(&value, "", 0)
                });
                match reread {
                    Some(root) => Ok(Self { root, canonical }),
                    None => Err(problem("", "the definition's canonical form does not read back".to_owned())),
                }
            }
            _ => Err(SegmentError(parser.problems)),
        }
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The text stored and hashed: see the module's documentation.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// SHA-256 of the canonical text's UTF-8 bytes: what names a saved version.
    pub fn hash(&self) -> ContentHash {
        ContentHash(Sha256::digest(self.canonical.as_bytes()).into())
    }
}

fn problem(path: &str, message: String) -> SegmentError {
    SegmentError(vec![Problem { path: path.to_owned(), message }])
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The keys a node may have besides the one that says what it is.
const SUBJECTS: &[(&str, &[&str])] = &[
    ("all", &[]),
    ("any", &[]),
    ("not", &[]),
    ("attribute", &["op", "value"]),
    ("tags", &["value"]),
    ("consent", &["purpose"]),
    ("created", &["value"]),
];

struct Parser<'a> {
    catalog: &'a Catalog,
    problems: Vec<Problem>,
    nodes: usize,
}

impl Parser<'_> {
    fn fail<T>(&mut self, path: &str, message: impl Into<String>) -> Option<T> {
        self.problems.push(Problem { path: path.to_owned(), message: message.into() });
        None
    }

    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Option<Node> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            // Said once, at the first node past the limit.
            return if self.nodes == MAX_NODES + 1 {
                self.fail(path, format!("a definition has at most {MAX_NODES} conditions and groups"))
            } else {
                None
            };
        }
        let Some(object) = value.as_object() else {
            return self.fail(path, "a condition or group is a JSON object");
        };
        let found: Vec<&(&str, &[&str])> = SUBJECTS.iter().filter(|(key, _)| object.contains_key(*key)).collect();
        let [(subject, extra)] = found.as_slice() else {
            return self.fail(
                path,
                "a condition or group has exactly one of the keys all, any, not, attribute, tags, consent, created",
            );
        };
        let mut clean = true;
        for key in object.keys() {
            if key != subject && !extra.contains(&key.as_str()) {
                clean = false;
                self.fail::<()>(&at(path, key), format!("not a key of a {subject} node"));
            }
        }
        let body = &object[*subject];
        let node = match *subject {
            "all" | "any" => self.group(subject, body, path, depth),
            "not" => {
                if depth + 1 > MAX_DEPTH {
                    return self.fail(&at(path, "not"), format!("groups nest at most {MAX_DEPTH} deep"));
                }
                self.node(body, &at(path, "not"), depth + 1).map(|n| Node::Not(Box::new(n)))
            }
            "attribute" => self.attribute(object, path),
            "tags" => self.tags(object, path),
            "consent" => self.consent(object, path),
            _ => self.created(object, path),
        }?;
        clean.then_some(node)
    }

    fn group(&mut self, subject: &str, body: &Value, path: &str, depth: usize) -> Option<Node> {
        let here = at(path, subject);
        if depth + 1 > MAX_DEPTH {
            return self.fail(&here, format!("groups nest at most {MAX_DEPTH} deep"));
        }
        let Some(members) = body.as_array() else {
            return self.fail(&here, "a list of conditions and groups");
        };
        let mut parsed = Vec::with_capacity(members.len());
        let mut complete = true;
        for (i, member) in members.iter().enumerate() {
            match self.node(member, &format!("{here}[{i}]"), depth + 1) {
                Some(node) => parsed.push(node),
                None => complete = false,
            }
        }
        if !complete {
            return None;
        }
        Some(if subject == "all" { Node::All(parsed) } else { Node::Any(parsed) })
    }

    fn attribute(&mut self, object: &Map<String, Value>, path: &str) -> Option<Node> {
        let name_path = at(path, "attribute");
        let Some(name) = object["attribute"].as_str() else {
            return self.fail(&name_path, "an attribute's name, as text");
        };
        let catalog = self.catalog;
        let Some(attribute) = catalog.attributes.iter().find(|a| a.name == name) else {
            return self.fail(&name_path, "the organization has no attribute of this name");
        };
        let op_path = at(path, "op");
        let Some(op) = object.get("op").and_then(Value::as_str) else {
            return self.fail(&op_path, "an operator, as text");
        };
        let value_path = at(path, "value");
        let value = object.get("value");
        let test = match (op, value) {
            ("is_set", None) => AttributeTest::IsSet,
            ("is_not_set", None) => AttributeTest::IsNotSet,
            ("is_set" | "is_not_set", Some(_)) => return self.fail(&value_path, "is_set and is_not_set take no value"),
            (_, None) => return self.fail(&value_path, "this operator compares with a value"),
            (op, Some(value)) => match &attribute.kind {
                AttributeKind::Text { max_length } => {
                    let op = match op {
                        "equals" => TextOp::Equals,
                        "contains" => TextOp::Contains,
                        "starts_with" => TextOp::StartsWith,
                        _ => {
                            return self.fail(
                                &op_path,
                                "a text attribute takes equals, contains, starts_with, is_set or is_not_set",
                            )
                        }
                    };
                    let text = self.text(value, &value_path)?;
                    let limit = usize::try_from(*max_length).unwrap_or(0);
                    if text.chars().count() > limit {
                        return self.fail(
                            &value_path,
                            format!("longer than the attribute's {limit} characters: no value can match"),
                        );
                    }
                    AttributeTest::Text(op, text)
                }
                AttributeKind::Number => AttributeTest::Number(self.compare(
                    op,
                    value,
                    &op_path,
                    &value_path,
                    |v| v.as_f64().filter(|n| n.is_finite() && n.abs() <= MAX_NUMBER),
                    "a number of magnitude at most 10^15",
                )?),
                AttributeKind::Date => AttributeTest::Date(self.compare(
                    op,
                    value,
                    &op_path,
                    &value_path,
                    |v| v.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()),
                    "a date as YYYY-MM-DD",
                )?),
                AttributeKind::Boolean => match (op, value.as_bool()) {
                    ("equals", Some(b)) => AttributeTest::Boolean(b),
                    ("equals", None) => return self.fail(&value_path, "true or false"),
                    _ => return self.fail(&op_path, "a boolean attribute takes equals, is_set or is_not_set"),
                },
                AttributeKind::Choice { choices } => {
                    if op != "in" {
                        return self.fail(&op_path, "a choice attribute takes in, is_set or is_not_set");
                    }
                    let picked = self.list(value, &value_path)?;
                    let mut known = true;
                    for (i, choice) in picked.iter().enumerate() {
                        if !choices.contains(choice) {
                            known = false;
                            self.fail::<()>(&format!("{value_path}[{i}]"), "not one of the attribute's choices");
                        }
                    }
                    if !known {
                        return None;
                    }
                    AttributeTest::ChoiceIn(sorted(picked))
                }
            },
        };
        Some(Node::Attribute { id: attribute.id, name: attribute.name.clone(), kind: attribute.kind.clone(), test })
    }

    fn compare<T: PartialOrd + Copy>(
        &mut self,
        op: &str,
        value: &Value,
        op_path: &str,
        value_path: &str,
        read: impl Fn(&Value) -> Option<T>,
        what: &str,
    ) -> Option<Compare<T>> {
        let one = |this: &mut Self| match read(value) {
            Some(v) => Some(v),
            None => this.fail(value_path, what.to_owned()),
        };
        Some(match op {
            "equals" => Compare::Equals(one(self)?),
            "lt" => Compare::Lt(one(self)?),
            "lte" => Compare::Lte(one(self)?),
            "gt" => Compare::Gt(one(self)?),
            "gte" => Compare::Gte(one(self)?),
            "between" => {
                let bounds = value.as_array().filter(|a| a.len() == 2);
                let Some([low, high]) = bounds.map(Vec::as_slice) else {
                    return self.fail(value_path, format!("a list of two bounds, each {what}"));
                };
                let (Some(low), Some(high)) = (read(low), read(high)) else {
                    return self.fail(value_path, format!("a list of two bounds, each {what}"));
                };
                if low > high {
                    return self.fail(value_path, "the first bound is above the second");
                }
                Compare::Between(low, high)
            }
            _ => return self.fail(op_path, "takes equals, lt, lte, gt, gte, between, is_set or is_not_set"),
        })
    }

    /// A text value or tag: 1 to [`MAX_TEXT`] characters, no NUL (which PostgreSQL's text
    /// cannot hold, so no contact could match it).
    fn text(&mut self, value: &Value, path: &str) -> Option<String> {
        match value.as_str() {
            Some(s) if !s.is_empty() && s.chars().count() <= MAX_TEXT && !s.contains('\0') => Some(s.to_owned()),
            _ => self.fail(path, format!("text of 1 to {MAX_TEXT} characters without NUL")),
        }
    }

    fn list(&mut self, value: &Value, path: &str) -> Option<Vec<String>> {
        let Some(items) = value.as_array().filter(|a| (1..=MAX_LIST).contains(&a.len())) else {
            return self.fail(path, format!("a list of 1 to {MAX_LIST} texts"));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.text(item, &format!("{path}[{i}]")));
        }
        out.into_iter().collect()
    }

    fn tags(&mut self, object: &Map<String, Value>, path: &str) -> Option<Node> {
        let value_path = at(path, "value");
        let Some(value) = object.get("value") else {
            return self.fail(&value_path, "the tag, or the list of tags");
        };
        let (op, tags) = match object["tags"].as_str() {
            Some("has") => (TagOp::Has, vec![self.text(value, &value_path)?]),
            Some("has_any") => (TagOp::HasAny, sorted(self.list(value, &value_path)?)),
            Some("has_all") => (TagOp::HasAll, sorted(self.list(value, &value_path)?)),
            _ => return self.fail(&at(path, "tags"), "has, has_any or has_all"),
        };
        Some(Node::Tags { op, tags })
    }

    fn consent(&mut self, object: &Map<String, Value>, path: &str) -> Option<Node> {
        let live = match object["consent"].as_str() {
            Some("live") => true,
            Some("not_live") => false,
            _ => return self.fail(&at(path, "consent"), "live or not_live"),
        };
        let purpose_path = at(path, "purpose");
        let purpose = object.get("purpose").and_then(Value::as_str).and_then(|s| PurposeId::parse(s).ok());
        let Some(purpose) = purpose else {
            return self.fail(&purpose_path, "a purpose's id");
        };
        if !self.catalog.purposes.contains(&purpose) {
            return self.fail(&purpose_path, "the organization has no purpose with this id");
        }
        Some(Node::Consent { purpose, live })
    }

    fn created(&mut self, object: &Map<String, Value>, path: &str) -> Option<Node> {
        let op = match object["created"].as_str() {
            Some("before") => CreatedOp::Before,
            Some("after") => CreatedOp::After,
            _ => return self.fail(&at(path, "created"), "before or after"),
        };
        let value_path = at(path, "value");
        let instant = object
            .get("value")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        let Some(at) = instant else {
            return self.fail(&value_path, "an instant as RFC 3339 (2026-01-31T09:00:00Z)");
        };
        Some(Node::Created { op, at })
    }
}

fn sorted(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

fn compare_value<T>(compare: &Compare<T>, json: impl Fn(&T) -> Value) -> (&'static str, Value) {
    match compare {
        Compare::Equals(v) => ("equals", json(v)),
        Compare::Lt(v) => ("lt", json(v)),
        Compare::Lte(v) => ("lte", json(v)),
        Compare::Gt(v) => ("gt", json(v)),
        Compare::Gte(v) => ("gte", json(v)),
        Compare::Between(low, high) => ("between", Value::Array(vec![json(low), json(high)])),
    }
}

fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

/// The canonical JSON of a node, before it is written out by [`canonical_text`].
fn canonical_value(node: &Node) -> Value {
    match node {
        Node::All(members) | Node::Any(members) => {
            let mut texts: Vec<String> = members.iter().map(|m| canonical_text(&canonical_value(m))).collect();
            texts.sort();
            texts.dedup();
            // Each text was just written from a Value, so it reads back.
            let members = texts.iter().filter_map(|t| serde_json::from_str(t).ok()).collect();
            let key = if matches!(node, Node::All(_)) { "all" } else { "any" };
            object(vec![(key, Value::Array(members))])
        }
        Node::Not(inner) => object(vec![("not", canonical_value(inner))]),
        Node::Attribute { name, test, .. } => {
            let (op, value) = match test {
                AttributeTest::IsSet => ("is_set", None),
                AttributeTest::IsNotSet => ("is_not_set", None),
                AttributeTest::Text(op, text) => {
                    let op = match op {
                        TextOp::Equals => "equals",
                        TextOp::Contains => "contains",
                        TextOp::StartsWith => "starts_with",
                    };
                    (op, Some(Value::String(text.clone())))
                }
                AttributeTest::Number(compare) => {
                    let (op, v) = compare_value(compare, |n| serde_json::json!(n));
                    (op, Some(v))
                }
                AttributeTest::Date(compare) => {
                    let (op, v) = compare_value(compare, |d| Value::String(d.format("%Y-%m-%d").to_string()));
                    (op, Some(v))
                }
                AttributeTest::Boolean(b) => ("equals", Some(Value::Bool(*b))),
                AttributeTest::ChoiceIn(choices) => ("in", Some(strings(choices))),
            };
            let mut entries = vec![("attribute", Value::String(name.clone())), ("op", Value::String(op.to_owned()))];
            entries.extend(value.map(|v| ("value", v)));
            object(entries)
        }
        Node::Tags { op, tags } => {
            let (op, value) = match op {
                TagOp::Has => ("has", tags.first().cloned().map(Value::String).unwrap_or(Value::Null)),
                TagOp::HasAny => ("has_any", strings(tags)),
                TagOp::HasAll => ("has_all", strings(tags)),
            };
            object(vec![("tags", Value::String(op.to_owned())), ("value", value)])
        }
        Node::Consent { purpose, live } => object(vec![
            ("consent", Value::String(if *live { "live" } else { "not_live" }.to_owned())),
            ("purpose", Value::String(purpose.to_string())),
        ]),
        Node::Created { op, at } => object(vec![
            ("created", Value::String(if *op == CreatedOp::Before { "before" } else { "after" }.to_owned())),
            ("value", Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))),
        ]),
    }
}

/// JSON without whitespace, object keys in byte order whatever map type serde_json was built
/// with, strings and numbers as serde_json writes them.
fn canonical_text(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests;
