//! A campaign: which approved content goes, in which approved template, to which segment
//! version, from which sender, for which purpose, when, and which contact fields it may read.
//!
//! A campaign is reviewed as content is (docs/campaigns.md): its definition, in the canonical
//! form below, is the body of a content version of the channel `campaign`, so the version's
//! SHA-256 is the campaign's hash and an approval names exactly this definition. The database
//! (migration 24) checks that the columns it sends by say what the reviewed body says.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use serde::Serialize;

use crate::content::{ContentError, ContentHash, Text};
use crate::{ContentId, PurposeId, SegmentId, SenderId};

/// A part of a definition that breaks its rule; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("a personalisation field is a name of 1 to 40 lowercase letters, digits and underscores, starting with a letter, that is not content, postal_address, unsubscribe_url or preferences_url, with a length of 1 to 200 characters")]
    Field,
    #[error("a field is listed twice")]
    DuplicateField,
    #[error("a campaign may use at most {MAX_FIELDS} personalisation fields")]
    TooManyFields,
    #[error("a local hour is 0 to 23")]
    Hour,
    #[error(transparent)]
    Text(#[from] ContentError),
}

pub const MAX_FIELDS: usize = 20;

/// The names the template itself fills in (mos-mail's placeholders), which no contact field may take.
const RESERVED: [&str; 4] = ["content", "postal_address", "unsubscribe_url", "preferences_url"];

/// One contact field the campaign may read for rendering, as one line of text of at most `max`
/// characters. Only the listed fields are ever read (minimum necessary, as a projection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    kind: &'static str,
    max: u16,
    name: String,
}

impl Field {
    pub fn text(name: &str, max: u16) -> Result<Self, DefinitionError> {
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && name.len() <= 40
            && !RESERVED.contains(&name);
        if well_formed && (1..=200).contains(&max) {
            Ok(Self { kind: "text", max, name: name.to_owned() })
        } else {
            Err(DefinitionError::Field)
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn max(&self) -> u16 {
        self.max
    }
}

/// A reviewed content version, named by item, number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRef {
    pub item: ContentId,
    pub version: i32,
    pub sha256: ContentHash,
}

/// A saved segment version, named by segment, number and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRef {
    pub segment: SegmentId,
    pub version: i32,
    pub sha256: ContentHash,
}

/// When the messages go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// As soon as the campaign is launched.
    Now,
    /// At a moment, to the second.
    At(DateTime<Utc>),
    /// On a day, at an hour of each recipient's own time zone (the organization's default for
    /// a contact without one).
    LocalHour { date: NaiveDate, hour: u8 },
}

impl Schedule {
    pub fn at(moment: DateTime<Utc>) -> Self {
        Schedule::At(moment.trunc_subsecs(0))
    }

    pub fn local_hour(date: NaiveDate, hour: u8) -> Result<Self, DefinitionError> {
        if hour < 24 {
            Ok(Schedule::LocalHour { date, hour })
        } else {
            Err(DefinitionError::Hour)
        }
    }

    /// The label shared with the database enum `campaign_schedule`.
    pub fn kind(&self) -> &'static str {
        match self {
            Schedule::Now => "now",
            Schedule::At(_) => "at",
            Schedule::LocalHour { .. } => "local_hour",
        }
    }
}

/// Everything a campaign's reviewers approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub content: ContentRef,
    pub template: ContentRef,
    pub segment: SegmentRef,
    pub sender: SenderId,
    pub purpose: PurposeId,
    pub schedule: Schedule,
    fields: Vec<Field>,
}

impl Definition {
    pub fn new(
        content: ContentRef,
        template: ContentRef,
        segment: SegmentRef,
        sender: SenderId,
        purpose: PurposeId,
        schedule: Schedule,
        fields: Vec<Field>,
    ) -> Result<Self, DefinitionError> {
        if fields.len() > MAX_FIELDS {
            return Err(DefinitionError::TooManyFields);
        }
        let mut names: Vec<&str> = fields.iter().map(Field::name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(DefinitionError::DuplicateField);
        }
        Ok(Self { content, template, segment, sender, purpose, schedule, fields })
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The fields as the database's `campaign_versions.fields` holds them.
    pub fn fields_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.fields).unwrap_or_default()
    }

    /// The text that is reviewed and hashed: a JSON object with the keys `channel`, `content`,
    /// `fields`, `purpose`, `schedule`, `segment`, `sender`, `template` in that order (nested
    /// objects' keys sorted too), no whitespace, hashes as lowercase hex, the time of an `at`
    /// schedule as `YYYY-MM-DDTHH:MM:SSZ`. docs/campaigns.md writes it down.
    pub fn canonical(&self) -> String {
        #[derive(Serialize)]
        struct Version<'a> {
            item: &'a ContentId,
            sha256: String,
            version: i32,
        }
        #[derive(Serialize)]
        struct Segment<'a> {
            id: &'a SegmentId,
            sha256: String,
            version: i32,
        }
        #[derive(Serialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        enum When {
            Now,
            At { at: String },
            LocalHour { date: String, hour: u8 },
        }
        #[derive(Serialize)]
        struct Canonical<'a> {
            channel: &'static str,
            content: Version<'a>,
            fields: &'a [Field],
            purpose: &'a PurposeId,
            schedule: When,
            segment: Segment<'a>,
            sender: &'a SenderId,
            template: Version<'a>,
        }
        fn version(r: &ContentRef) -> Version<'_> {
            Version { item: &r.item, sha256: r.sha256.to_string(), version: r.version }
        }
        let canonical = Canonical {
            channel: "email",
            content: version(&self.content),
            fields: &self.fields,
            purpose: &self.purpose,
            schedule: match self.schedule {
                Schedule::Now => When::Now,
                Schedule::At(at) => When::At { at: at.format("%Y-%m-%dT%H:%M:%SZ").to_string() },
                Schedule::LocalHour { date, hour } => {
                    When::LocalHour { date: date.format("%Y-%m-%d").to_string(), hour }
                }
            },
            segment: Segment {
                id: &self.segment.segment,
                sha256: self.segment.sha256.to_string(),
                version: self.segment.version,
            },
            sender: &self.sender,
            template: version(&self.template),
        };
        // Serializing owned and borrowed strings and numbers into a String cannot fail.
        serde_json::to_string(&canonical).unwrap_or_default()
    }

    /// The content version's text that carries this definition under the campaign's `name`;
    /// its hash is the campaign's.
    pub fn text(&self, name: &str) -> Result<Text, DefinitionError> {
        Ok(Text::campaign(name, &self.canonical())?)
    }
}
