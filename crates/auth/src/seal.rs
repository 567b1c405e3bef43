//! Secrets at rest (TOTP seeds): AES-256-GCM with a random 96-bit nonce per message, bound to
//! the row it belongs to through the associated data, so a sealed secret copied onto another
//! user's row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};

const NONCE: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealing key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("a sealed secret did not open: wrong key, wrong owner, or altered")]
    Corrupt,
}

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// The same configured secret signs device tokens, form tokens, unsubscribe and tracked
    /// links and keys addresses, each under a key derived for that alone.
    devices: crate::DeviceTokens,
    forms: crate::Signer,
    addresses: crate::AddressKeys,
    unsubscribe: crate::UnsubscribeTokens,
    clicks: crate::ClickTokens,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &SecretBox<[u8; 32]>) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.expose_secret().into()),
            devices: crate::DeviceTokens::new(crate::Signer::derive(key.expose_secret(), "device tokens")),
            forms: crate::Signer::derive(key.expose_secret(), "form tokens"),
            addresses: crate::AddressKeys::derive(key.expose_secret()),
            unsubscribe: crate::UnsubscribeTokens::new(crate::Signer::derive(
                key.expose_secret(),
                "unsubscribe tokens",
            )),
            clicks: crate::ClickTokens::new(crate::Signer::derive(key.expose_secret(), "click tokens")),
        }
    }

    pub fn device_tokens(&self) -> &crate::DeviceTokens {
        &self.devices
    }

    pub fn form_signer(&self) -> &crate::Signer {
        &self.forms
    }

    /// The keys of contacts' addresses, which suppressions are keyed by.
    pub fn address_keys(&self) -> &crate::AddressKeys {
        &self.addresses
    }

    /// The tokens of messages' unsubscribe links.
    pub fn unsubscribe_tokens(&self) -> &crate::UnsubscribeTokens {
        &self.unsubscribe
    }

    /// The tokens of messages' tracked links.
    pub fn click_tokens(&self) -> &crate::ClickTokens {
        &self.clicks
    }

    /// A key from its base64 form (standard alphabet, padded), as configuration holds it.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = data_encoding::BASE64.decode(text.trim().as_bytes()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self::new(&SecretBox::new(Box::new(key))))
    }

    /// A fresh random key in its base64 form.
    pub fn generate_key_base64(rng: &mut impl RngCore) -> String {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        data_encoding::BASE64.encode(&key)
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8], owner: &[u8], rng: &mut impl RngCore) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: owner })
            .unwrap_or_else(|_| unreachable!("AES-GCM encrypts any message under 64 GiB"));
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8], owner: &[u8]) -> Result<SecretBox<Vec<u8>>, SealError> {
        if sealed.len() < NONCE {
            return Err(SealError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: owner })
            .map_err(|_| SealError::Corrupt)?;
        Ok(SecretBox::new(Box::new(plain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_and_key() {
        let mut rng = rand::thread_rng();
        let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rng)).unwrap();
        let sealed = sealer.seal(b"totp seed", b"user-a", &mut rng);
        assert_eq!(sealer.open(&sealed, b"user-a").unwrap().expose_secret().as_slice(), b"totp seed");
        assert!(sealer.open(&sealed, b"user-b").is_err(), "bound to its owner");
        let other = Sealer::from_base64(&Sealer::generate_key_base64(&mut rng)).unwrap();
        assert!(other.open(&sealed, b"user-a").is_err(), "bound to its key");
        let mut altered = sealed.clone();
        altered[20] ^= 1;
        assert!(sealer.open(&altered, b"user-a").is_err(), "authenticated");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(Sealer::from_base64("not base64").is_err());
    }
}
