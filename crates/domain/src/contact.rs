//! What a member writes about a contact besides the address: name, locale, time zone, tags.
//! Each is parsed here once, with the rule the database's CHECKs hold too (migration 11), so
//! that a client is told which field is wrong instead of meeting a constraint.

use unicode_normalization::UnicodeNormalization;

use crate::content::fold_tag;

/// A contact field that breaks its rule; `field` names it as a client writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: &'static str,
}

const fn error(field: &'static str, message: &'static str) -> FieldError {
    FieldError { field, message }
}

/// Trimmed and NFC; empty is none. No control characters: a name is shown in lists and mails.
pub fn name(input: &str) -> Result<Option<String>, FieldError> {
    let name: String = input.trim().nfc().collect();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(error("name", "a name is up to 200 characters without control characters"));
    }
    Ok(Some(name))
}

/// A BCP 47 language tag as the database accepts it: `en`, `de-CH`, `zh-Hant-TW`; empty is none.
pub fn locale(input: &str) -> Result<Option<String>, FieldError> {
    let locale = input.trim();
    if locale.is_empty() {
        return Ok(None);
    }
    let mut parts = locale.split('-');
    let first_ok =
        parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok = parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if first_ok && rest_ok && locale.len() <= 35 {
        Ok(Some(locale.to_owned()))
    } else {
        Err(error("locale", "a locale is a language tag such as en, de-CH or pt-BR"))
    }
}

/// An IANA time zone name such as `Europe/Zurich` or `UTC`; empty is none.
pub fn time_zone(input: &str) -> Result<Option<String>, FieldError> {
    let zone = input.trim();
    if zone.is_empty() {
        return Ok(None);
    }
    let ok = zone.len() <= 64
        && zone.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && zone.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if ok {
        Ok(Some(zone.to_owned()))
    } else {
        Err(error("time_zone", "a time zone is an IANA name such as Europe/Zurich or America/New_York"))
    }
}

/// Tags as content's are: folded, lowercase letters, digits and single hyphens, 1 to 40 each;
/// sorted and without repeats, at most 50.
pub fn tags(input: &[String]) -> Result<Vec<String>, FieldError> {
    let mut tags = Vec::with_capacity(input.len());
    for raw in input {
        let tag = fold_tag(raw);
        let ok = (1..=40).contains(&tag.len())
            && tag.split('-').all(|part| !part.is_empty() && part.chars().all(char::is_alphanumeric));
        if !ok {
            return Err(error("tags", "a tag is 1 to 40 lowercase letters, digits and single hyphens"));
        }
        tags.push(tag);
    }
    tags.sort();
    tags.dedup();
    if tags.len() > 50 {
        return Err(error("tags", "a contact has at most 50 tags"));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_parsed_with_the_rules_of_the_table() {
        assert_eq!(name("  Ana  ").unwrap().as_deref(), Some("Ana"));
        assert_eq!(name(" ").unwrap(), None);
        assert_eq!(name("a\u{7}b").unwrap_err().field, "name");
        assert_eq!(locale("de-CH").unwrap().as_deref(), Some("de-CH"));
        assert_eq!(locale("german").unwrap_err().field, "locale");
        assert_eq!(time_zone("America/New_York").unwrap().as_deref(), Some("America/New_York"));
        assert_eq!(time_zone("<b>").unwrap_err().field, "time_zone");
        assert_eq!(tags(&["VIP".into(), "vip".into(), "flu-2026".into()]).unwrap(), ["flu-2026", "vip"]);
        assert_eq!(tags(&["two words".into()]).unwrap_err().field, "tags");
    }
}
