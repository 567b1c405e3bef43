//! Short signatures that the server makes and checks itself (device tokens, form tokens):
//! HMAC-SHA256 under a key derived for one purpose from the one configured secret, so that a
//! signature made for one purpose is never good for another.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks messages for one purpose.
#[derive(Clone)]
pub struct Signer {
    key: std::sync::Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// An HMAC over `parts`, each prefixed with its length so that no two lists of parts collide.
fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

impl Signer {
    /// A signer under a key derived from `secret` for `purpose` alone.
    pub fn derive(secret: &[u8], purpose: &str) -> Self {
        let key: [u8; 32] = mac(secret, &[b"mos signing key v1", purpose.as_bytes()]).finalize().into_bytes().into();
        Self { key: std::sync::Arc::new(SecretBox::new(Box::new(key))) }
    }

    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac(self.key.expose_secret(), parts).finalize().into_bytes().into()
    }

    /// Whether `tag` is the signature of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        mac(self.key.expose_secret(), parts).verify_slice(tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Signer;

    #[test]
    fn a_signature_is_good_for_its_message_purpose_and_secret_only() {
        let signer = Signer::derive(b"secret", "forms");
        let tag = signer.sign(&[b"a", b"bc"]);
        assert!(signer.verify(&[b"a", b"bc"], &tag));
        assert!(!signer.verify(&[b"ab", b"c"], &tag), "parts do not run into each other");
        assert!(!Signer::derive(b"secret", "devices").verify(&[b"a", b"bc"], &tag), "another purpose");
        assert!(!Signer::derive(b"other", "forms").verify(&[b"a", b"bc"], &tag), "another secret");
        assert!(!signer.verify(&[b"a", b"bc"], &tag[..31]));
    }
}
