//! The personalisation a campaign declares (a typed list of fields, e.g. `first_name`: text of at
//! most 40 characters) and one recipient's values for it. Only declared fields can be filled in,
//! every declared field must be, and every value follows its field's rule before a template sees
//! it: the minimum necessary, as a type.

use mos_domain::audiences::AttributeName;
use mos_domain::deceptive;

use crate::error::InputError;

/// Names a template uses for what every message carries; no field may take one.
pub(crate) const RESERVED: [&str; 4] = ["content", "postal_address", "unsubscribe_url", "preferences_url"];

/// What a field's values may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// One line of text of at most `max_chars` characters (Unicode scalar values).
    Text { max_chars: u16 },
}

/// One declared personalisation field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    name: AttributeName,
    kind: FieldKind,
}

impl Field {
    /// A text field, e.g. `Field::text("first_name", 40)`.
    pub fn text(name: &str, max_chars: u16) -> Result<Self, InputError> {
        if !(1..=10_000).contains(&max_chars) {
            return Err(InputError::MaxChars);
        }
        let name = AttributeName::parse(name).map_err(|_| InputError::FieldName)?;
        if RESERVED.contains(&name.as_str()) {
            return Err(InputError::ReservedField(name.as_str().to_owned()));
        }
        Ok(Self { name, kind: FieldKind::Text { max_chars } })
    }

    pub fn name(&self) -> &str {
        self.name.as_str()
    }

    pub fn kind(&self) -> FieldKind {
        self.kind
    }

    fn check(&self, value: &str) -> Result<(), InputError> {
        let field = || self.name().to_owned();
        let FieldKind::Text { max_chars } = self.kind;
        if value.chars().count() > usize::from(max_chars) {
            return Err(InputError::TooLong { field: field(), max: max_chars });
        }
        // A line break would end a header early (a Bcc smuggled into a subject); a bidirectional
        // override would show the text in another order than it is.
        if value.chars().any(|c| c.is_control() || deceptive(c)) {
            return Err(InputError::Invisible(field()));
        }
        // Escaping keeps a value from becoming a link in our HTML, but mail clients make links of
        // what looks like an address in text, so a value that looks like one is refused.
        let lower = value.to_lowercase();
        if lower.contains("://") || lower.contains("www.") || lower.contains('@') {
            return Err(InputError::LinkLike(field()));
        }
        Ok(())
    }
}

/// The fields a campaign may use, each named once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<Field>);

impl Fields {
    pub fn new(fields: Vec<Field>) -> Result<Self, InputError> {
        for (i, field) in fields.iter().enumerate() {
            if fields[..i].iter().any(|earlier| earlier.name == field.name) {
                return Err(InputError::DuplicateField(field.name().to_owned()));
            }
        }
        Ok(Self(fields))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.0.iter()
    }
}

/// One recipient's values, one for each declared field, each checked against its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personalisation {
    values: Vec<(AttributeName, String)>,
}

impl Personalisation {
    /// `values` as (field name, value) pairs. A value for an undeclared field, a declared field
    /// without a value, or a value that breaks its field's rule is refused; an empty value is a
    /// value (a contact without a first name).
    pub fn new<'v>(fields: &Fields, values: impl IntoIterator<Item = (&'v str, &'v str)>) -> Result<Self, InputError> {
        let mut given: Vec<(&str, &str)> = Vec::new();
        for (name, value) in values {
            if !fields.iter().any(|f| f.name() == name) {
                return Err(InputError::UndeclaredValue(name.to_owned()));
            }
            if given.iter().any(|(n, _)| *n == name) {
                return Err(InputError::DuplicateField(name.to_owned()));
            }
            given.push((name, value));
        }
        let mut checked = Vec::with_capacity(fields.0.len());
        for field in fields.iter() {
            let (_, value) = given
                .iter()
                .find(|(n, _)| *n == field.name())
                .ok_or_else(|| InputError::MissingValue(field.name().to_owned()))?;
            field.check(value)?;
            checked.push((field.name.clone(), (*value).to_owned()));
        }
        Ok(Self { values: checked })
    }

    /// No fields, no values.
    pub fn none() -> Self {
        Self { values: Vec::new() }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| n.as_str() == name).map(|(_, v)| v.as_str())
    }
}
