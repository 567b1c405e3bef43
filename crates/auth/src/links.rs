//! Tokens in the links of a sent message, which name whom the link is for: the unsubscribe link
//! (organization, contact, purpose, campaign) and each tracked link of the content (organization,
//! campaign, contact, and which link). One is minted for every message and link, so nothing is
//! stored for it: the server signs the ids under a key derived for that kind of link alone, and
//! checks the signature when the link comes back. The ids are random uuids, so a token says
//! nothing of the address; a changed bit anywhere, a token cut short or grown, or one signed
//! under another kind's key is refused alike.

use data_encoding::BASE64URL_NOPAD;
use mos_domain::{ContactId, ContentId, OrgId, PurposeId};
use secrecy::{ExposeSecret, SecretString};

use crate::Signer;

/// The first byte of every token, so that a later format can be told apart from this one.
const VERSION: u8 = 1;
const TAG: usize = 32;

/// Issues and opens tokens of one kind: base64url (no padding) of the version, the body and
/// their signature.
#[derive(Clone, Debug)]
struct Tokens {
    signer: Signer,
}

impl Tokens {
    fn issue(&self, body: &[u8]) -> String {
        let tag = self.signer.sign(&[&[VERSION], body]);
        BASE64URL_NOPAD.encode(&[[VERSION].as_slice(), body, &tag].concat())
    }

    /// The body of `token`, if this server issued it with a body of `N` bytes.
    fn open<const N: usize>(&self, token: &str) -> Option<[u8; N]> {
        let bytes = BASE64URL_NOPAD.decode(token.as_bytes()).ok()?;
        if bytes.len() != 1 + N + TAG || bytes[0] != VERSION {
            return None;
        }
        let (body, tag) = bytes[1..].split_at(N);
        self.signer.verify(&[&[VERSION], body], tag).then(|| body.try_into().ok()).flatten()
    }
}

/// `ids` one after the other.
fn concat<const N: usize>(ids: &[uuid::Uuid]) -> [u8; N] {
    let mut bytes = [0u8; N];
    for (chunk, id) in bytes.chunks_exact_mut(16).zip(ids) {
        chunk.copy_from_slice(id.as_bytes());
    }
    bytes
}

/// The `n`th id of `bytes`.
fn id(bytes: &[u8], n: usize) -> Option<uuid::Uuid> {
    uuid::Uuid::from_slice(bytes.get(n * 16..(n + 1) * 16)?).ok()
}

const UNSUBSCRIBE: usize = 4 * 16;

/// Whom an unsubscribe link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    pub organization: OrgId,
    pub contact: ContactId,
    pub purpose: PurposeId,
    /// The campaign whose message carried the link; recorded with what the link does.
    pub campaign: uuid::Uuid,
}

/// Issues and checks unsubscribe tokens under a key of their own.
#[derive(Clone, Debug)]
pub struct UnsubscribeTokens {
    tokens: Tokens,
}

impl UnsubscribeTokens {
    pub fn new(signer: Signer) -> Self {
        Self { tokens: Tokens { signer } }
    }

    /// The token of `link`: 130 characters that a URL path carries as they are.
    pub fn issue(&self, link: &Unsubscribe) -> String {
        let ids = [link.organization.as_uuid(), link.contact.as_uuid(), link.purpose.as_uuid(), link.campaign];
        self.tokens.issue(&concat::<UNSUBSCRIBE>(&ids))
    }

    /// The unsubscribe link of `link` for a message's `List-Unsubscribe` header and its footer:
    /// `<public URL>/u/<token>`, where the same address opens the preference centre (GET) and
    /// takes the one-click unsubscribe (POST).
    pub fn url(&self, public_url: &str, link: &Unsubscribe) -> String {
        format!("{}/u/{}", public_url.trim_end_matches('/'), self.issue(link))
    }

    /// Whom `token` is for, if this server issued it; `None` for anything else.
    pub fn verify(&self, token: &SecretString) -> Option<Unsubscribe> {
        let ids = self.tokens.open::<UNSUBSCRIBE>(token.expose_secret())?;
        Some(Unsubscribe {
            organization: OrgId::from_uuid(id(&ids, 0)?).ok()?,
            contact: ContactId::from_uuid(id(&ids, 1)?).ok()?,
            purpose: PurposeId::from_uuid(id(&ids, 2)?).ok()?,
            campaign: id(&ids, 3)?,
        })
    }
}

const CLICK: usize = 3 * 16 + 2;

/// A tracked link of one message: which of the content's links, in whose message. The address
/// it leads to is not in the token: the server reads it from the approved content, so a token
/// can only ever lead where the approved content pointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Click {
    pub organization: OrgId,
    pub campaign: ContentId,
    pub contact: ContactId,
    /// The link's place among the message's tracked links, from 0.
    pub link: u16,
}

/// Issues and checks the tokens of tracked links under a key of their own.
#[derive(Clone, Debug)]
pub struct ClickTokens {
    tokens: Tokens,
}

impl ClickTokens {
    pub fn new(signer: Signer) -> Self {
        Self { tokens: Tokens { signer } }
    }

    /// The token of `click`: 111 characters that a URL path carries as they are.
    pub fn issue(&self, click: &Click) -> String {
        let mut body: [u8; CLICK] =
            concat(&[click.organization.as_uuid(), click.campaign.as_uuid(), click.contact.as_uuid()]);
        body[48..].copy_from_slice(&click.link.to_be_bytes());
        self.tokens.issue(&body)
    }

    /// `<public URL>/c/<token>`: redirects to the link's address in the approved content.
    pub fn url(&self, public_url: &str, click: &Click) -> String {
        format!("{}/c/{}", public_url.trim_end_matches('/'), self.issue(click))
    }

    /// Which link `token` is, if this server issued it; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Click> {
        let body = self.tokens.open::<CLICK>(token)?;
        Some(Click {
            organization: OrgId::from_uuid(id(&body, 0)?).ok()?,
            campaign: ContentId::from_uuid(id(&body, 1)?).ok()?,
            contact: ContactId::from_uuid(id(&body, 2)?).ok()?,
            link: u16::from_be_bytes([body[48], body[49]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Unsubscribe {
        Unsubscribe {
            organization: OrgId::new(),
            contact: ContactId::new(),
            purpose: PurposeId::new(),
            campaign: uuid::Uuid::now_v7(),
        }
    }

    fn click() -> Click {
        Click { organization: OrgId::new(), campaign: ContentId::new(), contact: ContactId::new(), link: 258 }
    }

    fn signer(secret: &[u8], purpose: &str) -> Signer {
        Signer::derive(secret, purpose)
    }

    #[test]
    fn a_token_names_whom_it_was_issued_for() {
        let (tokens, link) = (UnsubscribeTokens::new(signer(b"one secret", "unsubscribe tokens")), link());
        let token = tokens.issue(&link);
        assert_eq!(token.len(), 130);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert_eq!(tokens.verify(&SecretString::from(token)), Some(link));

        let (tokens, click) = (ClickTokens::new(signer(b"one secret", "click tokens")), click());
        let token = tokens.issue(&click);
        assert_eq!(token.len(), 111);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert_eq!(tokens.verify(&token), Some(click));
        assert_eq!(tokens.url("https://mos.example/", &click), format!("https://mos.example/c/{token}"));
    }

    /// Every changed bit of `token`, and `token` cut short, grown or mangled, is refused by `open`.
    fn refuses_every_change(token: &str, open: impl Fn(&str) -> bool) {
        let bytes = BASE64URL_NOPAD.decode(token.as_bytes()).unwrap();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[byte] ^= 1 << bit;
                assert!(!open(&BASE64URL_NOPAD.encode(&changed)), "bit {bit} of byte {byte}");
            }
        }
        // A character outside base64url (always present: `/` in place of the first).
        let outside = format!("/{}", &token[1..]);
        for mangled in [&token[..token.len() - 1], &format!("{token}A"), "", "not a token", &outside] {
            assert!(!open(mangled), "{mangled}");
        }
    }

    #[test]
    fn every_changed_bit_and_every_other_key_is_refused() {
        let (tokens, link) = (UnsubscribeTokens::new(signer(b"one secret", "unsubscribe tokens")), link());
        let token = tokens.issue(&link);
        refuses_every_change(&token, |t| tokens.verify(&SecretString::from(t.to_owned())).is_some());
        for other in [signer(b"another secret", "unsubscribe tokens"), signer(b"one secret", "click tokens")] {
            assert_eq!(UnsubscribeTokens::new(other).verify(&SecretString::from(token.clone())), None);
        }

        let (tokens, click) = (ClickTokens::new(signer(b"one secret", "click tokens")), click());
        let token = tokens.issue(&click);
        refuses_every_change(&token, |t| tokens.verify(t).is_some());
        for other in [signer(b"another secret", "click tokens"), signer(b"one secret", "unsubscribe tokens")] {
            assert_eq!(ClickTokens::new(other).verify(&token), None);
        }
    }
}
