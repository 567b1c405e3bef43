use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub use mos_domain::TokenHash;

/// A fresh 256-bit random token for a session, email verification or password reset.
pub struct OneTimeToken {
    /// base64url without padding, 43 characters: what travels to the client.
    pub secret: SecretString,
    pub hash: TokenHash,
}

impl OneTimeToken {
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self {
            secret: SecretString::from(BASE64URL_NOPAD.encode(&bytes)),
            hash: TokenHash(Sha256::digest(bytes).into()),
        }
    }
}

/// The hash of a token a client presented; `None` when it cannot be one of ours, which callers
/// answer exactly like an unknown token.
pub fn hash_presented(token: &SecretString) -> Option<TokenHash> {
    let bytes = BASE64URL_NOPAD.decode(token.expose_secret().trim().as_bytes()).ok()?;
    (bytes.len() == 32).then(|| TokenHash(Sha256::digest(&bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_hashes_to_the_hash_it_was_issued_with() {
        let token = OneTimeToken::generate(&mut rand::thread_rng());
        assert_eq!(token.secret.expose_secret().len(), 43);
        assert_eq!(hash_presented(&token.secret), Some(token.hash));
    }

    #[test]
    fn malformed_or_short_tokens_have_no_hash() {
        for bad in ["", "not base64!", "c2hvcnQ", &"A".repeat(44)] {
            assert_eq!(hash_presented(&SecretString::from(bad.to_owned())), None, "{bad}");
        }
    }
}
