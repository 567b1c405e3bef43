//! Unsubscribe tokens: the part of a message's unsubscribe link that names whom the link is
//! for. One is minted for every message sent, so nothing is stored for it: the server signs
//! the four ids it names (organization, contact, purpose, campaign) under a key derived for
//! this alone, and checks the signature when the link comes back. The ids are random uuids, so
//! the token says nothing of the address; a changed bit anywhere, a token cut short or grown,
//! or one signed under another purpose's key is refused alike.

use data_encoding::BASE64URL_NOPAD;
use mos_domain::{ContactId, OrgId, PurposeId};
use secrecy::{ExposeSecret, SecretString};

use crate::Signer;

/// The first byte of every token, so that a later format can be told apart from this one.
const VERSION: u8 = 1;
const IDS: usize = 4 * 16;
const TAG: usize = 32;
const LENGTH: usize = 1 + IDS + TAG;

/// Whom an unsubscribe link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe {
    pub organization: OrgId,
    pub contact: ContactId,
    pub purpose: PurposeId,
    /// The campaign whose message carried the link; recorded with what the link does.
    pub campaign: uuid::Uuid,
}

impl Unsubscribe {
    fn ids(&self) -> [u8; IDS] {
        let mut ids = [0u8; IDS];
        let parts = [self.organization.as_uuid(), self.contact.as_uuid(), self.purpose.as_uuid(), self.campaign];
        for (chunk, id) in ids.chunks_exact_mut(16).zip(parts) {
            chunk.copy_from_slice(id.as_bytes());
        }
        ids
    }
}

/// Issues and checks unsubscribe tokens under a key of their own.
#[derive(Clone, Debug)]
pub struct UnsubscribeTokens {
    signer: Signer,
}

impl UnsubscribeTokens {
    pub fn new(signer: Signer) -> Self {
        Self { signer }
    }

    /// The token of `link`: base64url (no padding) of the version, the four ids and their
    /// signature, 130 characters that a URL path carries as they are.
    pub fn issue(&self, link: &Unsubscribe) -> String {
        let ids = link.ids();
        let tag = self.signer.sign(&[&[VERSION], &ids]);
        BASE64URL_NOPAD.encode(&[[VERSION].as_slice(), &ids, &tag].concat())
    }

    /// The unsubscribe link of `link` for a message's `List-Unsubscribe` header and its footer:
    /// `<public URL>/u/<token>`, where the same address opens the preference centre (GET) and
    /// takes the one-click unsubscribe (POST).
    pub fn url(&self, public_url: &str, link: &Unsubscribe) -> String {
        format!("{}/u/{}", public_url.trim_end_matches('/'), self.issue(link))
    }

    /// Whom `token` is for, if this server issued it; `None` for anything else.
    pub fn verify(&self, token: &SecretString) -> Option<Unsubscribe> {
        let bytes = BASE64URL_NOPAD.decode(token.expose_secret().as_bytes()).ok()?;
        if bytes.len() != LENGTH || bytes[0] != VERSION {
            return None;
        }
        let (ids, tag) = bytes[1..].split_at(IDS);
        if !self.signer.verify(&[&[VERSION], ids], tag) {
            return None;
        }
        let id = |n: usize| uuid::Uuid::from_slice(&ids[n * 16..(n + 1) * 16]).ok();
        Some(Unsubscribe {
            organization: OrgId::from_uuid(id(0)?).ok()?,
            contact: ContactId::from_uuid(id(1)?).ok()?,
            purpose: PurposeId::from_uuid(id(2)?).ok()?,
            campaign: id(3)?,
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

    fn tokens(secret: &[u8], purpose: &str) -> UnsubscribeTokens {
        UnsubscribeTokens::new(Signer::derive(secret, purpose))
    }

    #[test]
    fn a_token_names_whom_it_was_issued_for() {
        let (tokens, link) = (tokens(b"one secret", "unsubscribe tokens"), link());
        let token = tokens.issue(&link);
        assert_eq!(token.len(), 130);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{token}");
        assert_eq!(tokens.verify(&SecretString::from(token)), Some(link));
    }

    #[test]
    fn every_changed_bit_and_every_other_key_is_refused() {
        let (tokens, link) = (tokens(b"one secret", "unsubscribe tokens"), link());
        let bytes = BASE64URL_NOPAD.decode(tokens.issue(&link).as_bytes()).unwrap();
        for byte in 0..bytes.len() {
            for bit in 0..8 {
                let mut changed = bytes.clone();
                changed[byte] ^= 1 << bit;
                let token = SecretString::from(BASE64URL_NOPAD.encode(&changed));
                assert_eq!(tokens.verify(&token), None, "bit {bit} of byte {byte}");
            }
        }
        let token = tokens.issue(&link);
        for other in [self::tokens(b"another secret", "unsubscribe tokens"), self::tokens(b"one secret", "form tokens")]
        {
            assert_eq!(other.verify(&SecretString::from(token.clone())), None);
        }
        // A character outside base64url (always present: `/` in place of the first).
        let outside = format!("/{}", &token[1..]);
        for mangled in [&token[..129], &format!("{token}A"), "", "not a token", &outside] {
            assert_eq!(tokens.verify(&SecretString::from(mangled.to_owned())), None, "{mangled}");
        }
    }
}
