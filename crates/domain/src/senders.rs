//! Senders: who a campaign's messages come from (a display name and an address, an optional
//! reply-to), the postal address that CAN-SPAM requires in every commercial message, and the
//! DNS name under which the sender's DKIM keys are published. The database holds the same rules
//! as CHECK constraints (migration 23, docs/senders.md).

use crate::Email;

/// A sender field that breaks its rule, naming the request field; the message is safe to show
/// a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SenderError {
    pub field: &'static str,
    pub message: &'static str,
}

fn refuse<T>(field: &'static str, message: &'static str) -> Result<T, SenderError> {
    Err(SenderError { field, message })
}

/// The longest display name: a header that a mail client shows whole.
pub const MAX_FROM_NAME: usize = 100;
/// The longest postal address, in characters, and its most lines.
pub const MAX_POSTAL_ADDRESS: usize = 500;
pub const MAX_POSTAL_LINES: usize = 10;

/// The display name of the From header: 1 to 100 characters, trimmed, no control characters
/// (a line break would start a header of its own), no `<`, `>` or `"` (a name that carries an
/// address of its own misleads the reader about who wrote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromName(String);

impl FromName {
    pub fn parse(input: &str) -> Result<Self, SenderError> {
        let name = input.trim();
        if name.is_empty()
            || name.chars().count() > MAX_FROM_NAME
            || name.chars().any(|c| c.is_control() || crate::deceptive(c) || "<>\"\u{2028}\u{2029}".contains(c))
        {
            return refuse(
                "from_name",
                "the from name is 1 to 100 characters without control characters, quotes or angle brackets",
            );
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A physical postal address (CAN-SPAM, 15 U.S.C. 7704(a)(5)(A)(iii)): 1 to 10 lines, each
/// trimmed, line breaks as `\n`, no blank lines at either end, at most 500 characters in all, no
/// control characters besides the line breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostalAddress(String);

impl PostalAddress {
    pub fn parse(input: &str) -> Result<Self, SenderError> {
        let unified = input.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = unified.split('\n').map(str::trim).collect();
        let text = lines.join("\n").trim_matches('\n').to_owned();
        if text.is_empty()
            || text.chars().count() > MAX_POSTAL_ADDRESS
            || text.split('\n').count() > MAX_POSTAL_LINES
            || text.chars().any(|c| (c.is_control() && c != '\n') || crate::deceptive(c))
        {
            return refuse(
                "postal_address",
                "the postal address is 1 to 10 lines, at most 500 characters, without control characters",
            );
        }
        Ok(Self(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` is one or more DNS labels: lower-case letters, digits and inner hyphens,
/// 1 to 63 characters each.
fn labels(name: &str) -> bool {
    name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The domain a sender's DKIM signatures name (`d=`): at least two DNS labels, in the ASCII
/// form of internationalised names, lower case, at most 253 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimDomain(String);

impl DkimDomain {
    pub fn parse(input: &str) -> Result<Self, SenderError> {
        const WHY: &str = "the DKIM domain is a DNS name of at least two labels (letters, digits and inner hyphens)";
        let Ok(domain) = idna::domain_to_ascii(input.trim()) else { return refuse("dkim_domain", WHY) };
        if domain.len() > 253 || !domain.contains('.') || !labels(&domain) {
            return refuse("dkim_domain", WHY);
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// DMARC alignment (RFC 7489 section 3.1.1, relaxed): the From address's domain is this
    /// domain or a subdomain of it, so that a receiver counts the signature for the From
    /// address the reader sees.
    pub fn aligns_with(&self, from: &Email) -> bool {
        let domain = from.as_str().rsplit_once('@').map_or("", |(_, d)| d);
        domain == self.0 || domain.strip_suffix(self.0.as_str()).is_some_and(|rest| rest.ends_with('.'))
    }
}

/// The selector of a DKIM key (`s=`): the DNS labels in front of `._domainkey.` that name the
/// record holding the key, at most 63 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector(String);

impl Selector {
    pub fn parse(input: &str) -> Result<Self, SenderError> {
        let selector = input.trim().to_ascii_lowercase();
        if selector.len() > 63 || !labels(&selector) {
            return refuse(
                "selector",
                "the selector is one or more DNS labels (letters, digits and inner hyphens), at most 63 characters",
            );
        }
        Ok(Self(selector))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a DKIM key stands. A new key is `active` (it signs); the key it replaced is
/// `previous` (still published, so that mail signed with it and still in flight verifies) until
/// an ADMIN retires it; a `retired` key is no longer published and never signs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Previous,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Previous => "previous",
            KeyState::Retired => "retired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => KeyState::Active,
            "previous" => KeyState::Previous,
            "retired" => KeyState::Retired,
            _ => return None,
        })
    }

    /// Whether the key's record stays in DNS.
    pub fn published(self) -> bool {
        !matches!(self, KeyState::Retired)
    }
}

/// The DNS TXT record that publishes a DKIM public key (RFC 6376 section 3.6.1): its name,
/// `selector._domainkey.domain`, and its value, `v=DKIM1; k=rsa; p=` and the base64 of the
/// key's DER SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    pub name: String,
    pub value: String,
}

impl TxtRecord {
    pub fn new(selector: &Selector, domain: &DkimDomain, public_key_spki: &[u8]) -> Self {
        Self {
            name: format!("{}._domainkey.{}", selector.as_str(), domain.as_str()),
            value: format!("v=DKIM1; k=rsa; p={}", data_encoding::BASE64.encode(public_key_spki)),
        }
    }
}

macro_rules! stored {
    ($($name:ident),*) => {$(
        /// For row structs: a stored value is parsed like any other.
        impl TryFrom<String> for $name {
            type Error = SenderError;
            fn try_from(text: String) -> Result<Self, SenderError> {
                Self::parse(&text)
            }
        }
    )*};
}
stored!(FromName, PostalAddress, DkimDomain, Selector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_from_address_aligns_with_its_dkim_domain_or_a_parent_of_it_only() {
        let domain = DkimDomain::parse("Example.COM").unwrap();
        assert_eq!(domain.as_str(), "example.com");
        let aligned = |a: &str| domain.aligns_with(&Email::parse(a).unwrap());
        assert!(aligned("news@example.com"));
        assert!(aligned("news@mail.example.com"));
        assert!(!aligned("news@badexample.com"), "a suffix that is not a label boundary");
        assert!(!aligned("news@example.com.evil.test"));
        assert!(!aligned("example.com@evil.test"));
    }

    #[test]
    fn dns_names_and_selectors_are_labels() {
        assert!(DkimDomain::parse("localhost").is_err(), "one label");
        assert!(DkimDomain::parse("a_b.example").is_err());
        assert!(DkimDomain::parse("-a.example").is_err());
        assert_eq!(DkimDomain::parse("bücher.example").unwrap().as_str(), "xn--bcher-kva.example");
        assert_eq!(Selector::parse(" S2026.Mos ").unwrap().as_str(), "s2026.mos");
        assert_eq!(Selector::parse("a..b").unwrap_err().field, "selector");
        assert!(Selector::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn a_postal_address_is_bounded_lines_without_controls() {
        let address = PostalAddress::parse("\r\n  Example Health  \r\n1 Main St\r\nSpringfield, IL 62701\n\n").unwrap();
        assert_eq!(address.as_str(), "Example Health\n1 Main St\nSpringfield, IL 62701");
        assert_eq!(PostalAddress::parse(" \n ").unwrap_err().field, "postal_address");
        assert!(PostalAddress::parse(&"x".repeat(501)).is_err());
        assert!(PostalAddress::parse(&"x\n".repeat(11)).is_err());
        assert!(PostalAddress::parse("1 Main St\u{202E}").is_err());
    }

    #[test]
    fn a_from_name_cannot_start_a_header_or_carry_an_address() {
        assert!(FromName::parse("Example Health").is_ok());
        assert!(FromName::parse("Example\r\nBcc: x@evil.test").is_err());
        assert!(FromName::parse("support@bank.test <x@evil.test>").is_err());
        assert_eq!(FromName::parse("").unwrap_err().field, "from_name");
    }

    #[test]
    fn the_txt_record_names_the_selector_under_domainkey() {
        let record =
            TxtRecord::new(&Selector::parse("s1").unwrap(), &DkimDomain::parse("example.com").unwrap(), b"\x30\x82");
        assert_eq!(record.name, "s1._domainkey.example.com");
        assert_eq!(record.value, "v=DKIM1; k=rsa; p=MII=");
    }
}
