//! Audiences and consent: the notice texts people agree to, the kinds of custom attributes an
//! organization gives its contacts, and the words of the consent ledger. The database holds the
//! same enumerations (migration 12).

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::content::ContentHash;

/// An audience field that breaks its rule; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudienceError {
    #[error("a notice must be 1 to 100,000 bytes of text without control characters other than line breaks and tabs")]
    Notice,
    #[error("an attribute name is a lower-case letter followed by up to 62 lower-case letters, digits or underscores")]
    AttributeName,
    #[error("a text attribute's maximum length is between 1 and 10,000")]
    MaxLength,
    #[error("a choice attribute has 1 to 200 choices of 1 to 200 characters each")]
    Choices,
}

const MAX_NOTICE_BYTES: usize = 100_000;

/// A notice version's text in its canonical form: NFC, line breaks as `\n`, no trailing
/// whitespace on any line, no blank lines at either end. Two texts that a reader cannot tell
/// apart by these differences have the same canonical form, so the same hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeText(String);

impl NoticeText {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let unified = input.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = unified.split('\n').map(str::trim_end).collect();
        let text: String = lines.join("\n").trim_matches('\n').nfc().collect();
        if text.is_empty()
            || text.len() > MAX_NOTICE_BYTES
            || text.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(AudienceError::Notice);
        }
        Ok(Self(text))
    }

    /// The canonical text, which is what is stored and hashed (its UTF-8 bytes).
    pub fn canonical(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> ContentHash {
        ContentHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// What kind of value a custom attribute holds, with the rule its values follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeKind {
    Text { max_length: i32 },
    Number,
    Date,
    Boolean,
    Choice { choices: Vec<String> },
}

impl AttributeKind {
    pub fn text(max_length: i32) -> Result<Self, AudienceError> {
        if (1..=10_000).contains(&max_length) {
            Ok(Self::Text { max_length })
        } else {
            Err(AudienceError::MaxLength)
        }
    }

    pub fn choice(choices: &[&str]) -> Result<Self, AudienceError> {
        let mut choices: Vec<String> = choices.iter().map(|c| c.trim().nfc().collect::<String>()).collect();
        choices.sort();
        choices.dedup();
        let fits = |c: &String| (1..=200).contains(&c.chars().count()) && !c.chars().any(char::is_control);
        if choices.is_empty() || choices.len() > 200 || !choices.iter().all(fits) {
            return Err(AudienceError::Choices);
        }
        Ok(Self::Choice { choices })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Number => "number",
            Self::Date => "date",
            Self::Boolean => "boolean",
            Self::Choice { .. } => "choice",
        }
    }
}

/// A custom attribute's name: what a segment and an import mapping call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeName(String);

impl AttributeName {
    pub fn parse(input: &str) -> Result<Self, AudienceError> {
        let name = input.trim();
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && name.len() <= 63 {
            Ok(Self(name.to_owned()))
        } else {
            Err(AudienceError::AttributeName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The keyed hash of a normalised address that suppressions are keyed by and a contact carries
/// (HMAC-SHA-256 under a key only the server holds): it matches the same address on a
/// re-import and after the contact's erasure, and says nothing about the address to anyone
/// without the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(pub [u8; 32]);

impl AddressKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, as an audit record names a suppression entry.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AddressKey({})", self.to_hex())
    }
}

impl TryFrom<Vec<u8>> for AddressKey {
    type Error = Vec<u8>;
    fn try_from(bytes: Vec<u8>) -> Result<Self, Vec<u8>> {
        Ok(Self(bytes.try_into()?))
    }
}

/// Computes address keys. The server's implementation (`mos_auth::AddressKeys`, from
/// `Sealer::address_keys`) holds the key; the database never does, so a dump of it alone
/// cannot test a guessed address against the suppressions.
pub trait AddressKeyer: Send + Sync {
    fn key(&self, address: &crate::Email) -> AddressKey;
}

macro_rules! words {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok(Self::$variant),)* _ => Err(s.to_owned()) }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse()
            }
        }
    };
}

words!(
    /// What happened to a contact's consent for a purpose.
    ConsentKind { Grant = "grant", Confirm = "confirm", Revoke = "revoke", Expire = "expire" }
);
words!(
    /// Why the organization may write to the contact for the purpose.
    LawfulBasis { Consent = "consent", HipaaAuthorization = "hipaa_authorization", Exemption = "exemption" }
);
words!(
    /// Where a consent event came from.
    ConsentSource {
        SignupForm = "signup_form",
        Import = "import",
        Api = "api",
        Console = "console",
        Unsubscribe = "unsubscribe",
        PreferenceCentre = "preference_centre",
        Complaint = "complaint",
    }
);
words!(
    /// Why an address is suppressed.
    SuppressionReason { Unsubscribe = "unsubscribe", HardBounce = "hard_bounce", Complaint = "complaint", Manual = "manual" }
);
words!(
    /// A contact's consent for a purpose now, derived from the latest event.
    ConsentState { Pending = "pending", Granted = "granted", Revoked = "revoked", Expired = "expired" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_that_differ_only_in_line_breaks_trailing_spaces_or_normal_form_hash_alike() {
        let a = NoticeText::parse("Caf\u{e9} news\r\nweekly.  \r\n\r\n").unwrap();
        let b = NoticeText::parse("Cafe\u{301} news\nweekly.").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.canonical(), "Caf\u{e9} news\nweekly.");
        assert_eq!(a.hash().0, <[u8; 32]>::from(Sha256::digest("Caf\u{e9} news\nweekly.".as_bytes())));
        assert_ne!(a.hash(), NoticeText::parse("Caf\u{e9} news weekly.").unwrap().hash());
    }

    #[test]
    fn empty_or_control_character_notices_are_refused() {
        assert_eq!(NoticeText::parse(" \n\n"), Err(AudienceError::Notice));
        assert_eq!(NoticeText::parse("a\u{7}b"), Err(AudienceError::Notice));
    }

    #[test]
    fn attribute_rules_are_checked_when_parsed() {
        assert!(AttributeName::parse("plan_2024").is_ok());
        assert!(AttributeName::parse("Plan").is_err());
        assert!(AttributeKind::text(0).is_err());
        assert!(AttributeKind::choice(&[]).is_err());
        assert_eq!(
            AttributeKind::choice(&["b", "a", "a"]).unwrap(),
            AttributeKind::Choice { choices: vec!["a".into(), "b".into()] }
        );
    }
}
