use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A constrained string that failed its rules; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("slug must be 3 to 63 lowercase letters, digits and single hyphens, not starting or ending with a hyphen")]
    Slug,
    #[error("email address is not valid")]
    Email,
    #[error("organization name must be 1 to 200 characters without control characters")]
    OrgName,
}

macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// For row structs: a stored value is parsed like any other, so a row that breaks the
        /// rule is an error, not a value that skipped it.
        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(text: String) -> Result<Self, TextError> {
                Self::parse(&text)
            }
        }
    };
}

/// `text` as one component of a URL (a query value, a path in a query): every byte but the
/// unreserved characters of RFC 3986 percent-encoded.
pub fn url_component(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The URL name of an organization. The same rule is a CHECK constraint in the schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);
text_newtype!(Slug);

impl Slug {
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let ok = (3..=63).contains(&input.len())
            && input
                .split('-')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(TextError::Slug)
        }
    }
}

/// An email address, trimmed and lowercased, so that one mailbox is one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);
text_newtype!(Email);

/// Characters that show nothing (zero-width spaces and joiners, bidirectional controls, soft
/// hyphens, variation selectors, tags: Unicode's Default_Ignorable_Code_Point), so that two
/// addresses that look the same cannot be two accounts.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Characters that change how the text around them reads while showing nothing themselves:
/// bidirectional controls (an override can show `txt.exe` as `exe.txt`), zero-width spaces,
/// fillers, soft hyphens and tag characters. A title or audience refuses them; a body keeps them
/// (an author may need an isolate in right-to-left text) and the review diff shows them.
/// The zero-width joiner and non-joiner and variation selectors are not among them: emoji and
/// scripts such as Persian need them, and they cannot reorder or hide text.
pub fn deceptive(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180E}' | '\u{200B}' | '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `text` with every [`deceptive`] character written out as `<U+XXXX>`, so that a reviewer
/// sees what an approval covers.
pub fn reveal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if deceptive(c) {
            out.push_str(&format!("<U+{:04X}>", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

impl Email {
    /// One spelling per mailbox: trimmed, refused with invisible or control characters, the
    /// local part in Unicode NFC and lower case, the domain in its IDNA ASCII form (UTS #46), so
    /// that `café` typed as one code point or as `e` plus a combining accent, and `bücher.example`
    /// or `xn--bcher-kva.example`, are the same account.
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let trimmed = input.trim();
        if trimmed.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(TextError::Email);
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or(TextError::Email)?;
        let local: String = local.to_lowercase().nfc().collect();
        let domain = idna::domain_to_ascii(domain).map_err(|_| TextError::Email)?;
        let domain_ok = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local.chars().all(|c| !c.is_whitespace() && !"<>()[]\\,;:\"".contains(c));
        let email = format!("{local}@{domain}");
        if email.len() <= 254 && domain_ok && local_ok {
            Ok(Self(email))
        } else {
            Err(TextError::Email)
        }
    }
}

/// The display name of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgName(String);
text_newtype!(OrgName);

impl OrgName {
    pub fn parse(input: &str) -> Result<Self, TextError> {
        let name = input.trim();
        if (1..=200).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
            Ok(Self(name.to_owned()))
        } else {
            Err(TextError::OrgName)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_components_keep_only_unreserved_characters() {
        assert_eq!(url_component("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_component("2026-11-26T00:00:00Z"), "2026-11-26T00%3A00%3A00Z");
        assert_eq!(url_component("/tmp/x y&z"), "%2Ftmp%2Fx%20y%26z");
    }

    #[test]
    fn slugs_follow_the_schema_rule() {
        for good in ["acme", "acme-health", "a1b", "x2-y3-z4"] {
            assert!(Slug::parse(good).is_ok(), "{good}");
        }
        let long = "a".repeat(64);
        for bad in ["ab", "-acme", "acme-", "ac--me", "Acme", "acme health", "acmé", long.as_str()] {
            assert_eq!(Slug::parse(bad), Err(TextError::Slug), "{bad}");
        }
    }

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Email::parse("  Ada@Example.COM ").map(|e| e.to_string()), Ok("ada@example.com".into()));
    }

    #[test]
    fn one_mailbox_has_one_spelling() {
        let nfc = Email::parse("caf\u{e9}@example.com").unwrap();
        assert_eq!(Email::parse("cafe\u{301}@example.com"), Ok(nfc.clone()), "NFD is NFC");
        assert_eq!(Email::parse("CAF\u{c9}@Example.com"), Ok(nfc));
        let idn = Email::parse("ada@b\u{fc}cher.example").unwrap();
        assert_eq!(idn.as_str(), "ada@xn--bcher-kva.example");
        assert_eq!(Email::parse("ada@xn--bcher-kva.example"), Ok(idn.clone()));
        assert_eq!(Email::parse("ada@bu\u{308}cher.EXAMPLE"), Ok(idn));
    }

    #[test]
    fn invisible_and_control_characters_are_refused() {
        for bad in [
            "ada\u{200b}@example.com",
            "a\u{200d}da@example.com",
            "ada@exa\u{ad}mple.com",
            "\u{202e}ada@example.com",
            "ada\u{feff}@example.com",
            "ada\u{7}@example.com",
            "ada@example.com\u{e0041}",
        ] {
            assert_eq!(Email::parse(bad), Err(TextError::Email), "{bad:?}");
        }
    }

    #[test]
    fn malformed_emails_are_rejected() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@localhost",
            "a b@example.com",
            "ada@exa mple.com",
            "ada@-x.com",
            long_local.as_str(),
        ] {
            assert_eq!(Email::parse(bad), Err(TextError::Email), "{bad}");
        }
    }

    #[test]
    fn deceptive_characters_are_revealed_and_everything_else_kept() {
        assert_eq!(reveal("pay \u{202e}txt.exe"), "pay <U+202E>txt.exe");
        assert_eq!(reveal("a\u{200b}b\u{e0041}"), "a<U+200B>b<U+E0041>");
        // Joiners and variation selectors build emoji and some scripts' words: kept as they are.
        let nurse = "\u{1f469}\u{200d}\u{2695}\u{fe0f} nurse";
        assert_eq!(reveal(nurse), nurse);
        assert_eq!(reveal("caf\u{e9} \u{5d0}"), "caf\u{e9} \u{5d0}");
    }

    #[test]
    fn organization_names_are_trimmed_and_bounded() {
        assert_eq!(OrgName::parse("  Acme Health ").map(|n| n.to_string()), Ok("Acme Health".into()));
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse("a\u{0}b").is_err());
        assert!(OrgName::parse(&"n".repeat(201)).is_err());
    }
}
