//! Address keys: the keyed hash of a normalised address that suppressions are keyed by, under a
//! key derived from the server's configured secret for this use alone. The database holds
//! only the hashes, so a copy of it cannot be searched for a guessed address; the price is that
//! a new server secret gives every address a new key, and the suppressions recorded under the
//! old one no longer match (docs/operations.md).

use mos_domain::audiences::{AddressKey, AddressKeyer};
use mos_domain::Email;

use crate::Signer;

/// Computes [`AddressKey`]s: HMAC-SHA-256 of the address's UTF-8 bytes (length-prefixed, as
/// every [`Signer`] message is) under the derived key.
#[derive(Clone, Debug)]
pub struct AddressKeys(Signer);

impl AddressKeys {
    /// Address keys under a key derived from `secret` for addresses alone.
    pub fn derive(secret: &[u8]) -> Self {
        Self(Signer::derive(secret, "address keys"))
    }
}

impl AddressKeyer for AddressKeys {
    fn key(&self, address: &Email) -> AddressKey {
        AddressKey(self.0.sign(&[address.as_str().as_bytes()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_has_one_key_under_one_secret_and_another_under_another() {
        let keys = AddressKeys::derive(b"one secret");
        let ada = Email::parse("Ada@Example.COM").unwrap();
        assert_eq!(keys.key(&ada), keys.key(&Email::parse("ada@example.com").unwrap()), "normalised first");
        assert_ne!(keys.key(&ada), keys.key(&Email::parse("bea@example.com").unwrap()));
        assert_ne!(keys.key(&ada), AddressKeys::derive(b"another secret").key(&ada));
        assert_ne!(keys.key(&ada).0, Signer::derive(b"one secret", "form tokens").sign(&[b"ada@example.com"]));
    }
}
