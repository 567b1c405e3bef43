use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::UserId;

/// What happened, as `noun.verb` segments (`org.created`, `member.role_changed`).
/// Kept to a closed alphabet so that auditors can filter on it and no free text, and with it
/// no secret, ends up in the action column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditAction(Cow<'static, str>);

/// The kind of thing an action touched (`organization`, `user`, `membership`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceType(Cow<'static, str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditTextError {
    #[error("audit action must be dotted lowercase segments like `org.created`, at most 100 characters")]
    Action,
    #[error("resource type must be a lowercase identifier like `organization`, at most 64 characters")]
    ResourceType,
}

/// `[a-z][a-z0-9_]*` over `bytes[start..end]`; `const` so that constants are checked by the compiler.
const fn is_segment(bytes: &[u8], start: usize, end: usize) -> bool {
    if start >= end || !bytes[start].is_ascii_lowercase() {
        return false;
    }
    let mut i = start + 1;
    while i < end {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

const fn is_action(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() > 100 {
        return false;
    }
    let (mut start, mut segments, mut i) = (0, 0, 0);
    while i <= bytes.len() {
        if i == bytes.len() || bytes[i] == b'.' {
            if !is_segment(bytes, start, i) {
                return false;
            }
            segments += 1;
            start = i + 1;
        }
        i += 1;
    }
    segments >= 2
}

const fn is_resource_type(s: &str) -> bool {
    s.len() <= 64 && is_segment(s.as_bytes(), 0, s.len())
}

impl AuditAction {
    pub fn parse(input: &str) -> Result<Self, AuditTextError> {
        if is_action(input) {
            Ok(Self(Cow::Owned(input.to_owned())))
        } else {
            Err(AuditTextError::Action)
        }
    }

    /// For actions named in code: `const A: AuditAction = AuditAction::known("org.created");`
    /// does not compile when the name breaks the rule.
    pub const fn known(action: &'static str) -> Self {
        assert!(is_action(action), "audit actions are dotted lowercase segments");
        Self(Cow::Borrowed(action))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ResourceType {
    pub fn parse(input: &str) -> Result<Self, AuditTextError> {
        if is_resource_type(input) {
            Ok(Self(Cow::Owned(input.to_owned())))
        } else {
            Err(AuditTextError::ResourceType)
        }
    }

    /// See [`AuditAction::known`].
    pub const fn known(resource_type: &'static str) -> Self {
        assert!(is_resource_type(resource_type), "resource types are lowercase identifiers");
        Self(Cow::Borrowed(resource_type))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How an audited attempt ended. Denied and failed attempts are recorded too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    /// The label shared with the database enum `app.audit_outcome`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// Where a request came from, as real columns so that investigations can index on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSource {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Our own id of the request.
    pub request_id: Option<String>,
    /// The id the client gave the request, if it was short and plain; it proves nothing.
    pub client_request_id: Option<String>,
}

/// One audit record before it is written. `changes` and `metadata` are JSON objects; callers
/// must never put a password, token or TOTP secret in them.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub action: AuditAction,
    pub actor: Option<UserId>,
    pub resource_type: ResourceType,
    pub resource_id: Option<String>,
    pub outcome: Outcome,
    pub source: RequestSource,
    pub changes: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

impl AuditEvent {
    /// A successful action with no changes or metadata yet; fill in the rest with the setters.
    pub fn new(action: AuditAction, resource_type: ResourceType) -> Self {
        Self {
            action,
            actor: None,
            resource_type,
            resource_id: None,
            outcome: Outcome::Success,
            source: RequestSource::default(),
            changes: Map::new(),
            metadata: Map::new(),
        }
    }

    pub fn actor(mut self, actor: UserId) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn resource_id(mut self, id: impl fmt::Display) -> Self {
        self.resource_id = Some(id.to_string());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    pub fn source(mut self, source: RequestSource) -> Self {
        self.source = source;
        self
    }

    pub fn change(mut self, field: &str, before: Value, after: Value) -> Self {
        self.changes.insert(field.to_owned(), serde_json::json!({ "before": before, "after": after }));
        self
    }

    pub fn meta(mut self, key: &str, value: Value) -> Self {
        self.metadata.insert(key.to_owned(), value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_dotted_lowercase_segments() {
        for good in ["org.created", "member.role_changed", "auth.login.failed"] {
            assert!(AuditAction::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "created", "Org.created", "org..created", "org.created ", "org.1x", ".org"] {
            assert!(AuditAction::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn known_constants_pass_the_same_rule() {
        const CREATED: AuditAction = AuditAction::known("org.created");
        assert_eq!(AuditAction::parse("org.created"), Ok(CREATED));
        assert_eq!(ResourceType::known("user"), ResourceType::parse("user").unwrap());
    }

    #[test]
    fn resource_types_are_single_identifiers() {
        assert!(ResourceType::parse("organization").is_ok());
        assert!(ResourceType::parse("org.member").is_err());
        assert!(ResourceType::parse("").is_err());
    }
}
