//! Recovery codes: 10 single-use codes of 120 random bits, shown once. At 120 bits no offline
//! search is feasible, so a plain SHA-256 is stored (a salted slow hash would be needed below
//! 112 bits).

use data_encoding::Encoding;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::TokenHash;

pub const COUNT: usize = 10;
const BYTES: usize = 15;

/// Lowercase RFC 4648 base32: 24 characters for 15 bytes, no padding needed.
fn alphabet() -> Encoding {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    spec.encoding().unwrap_or_else(|_| unreachable!("a valid base32 alphabet"))
}

/// Fresh codes, formatted `xxxx-xxxx-xxxx-xxxx-xxxx-xxxx`, with their hashes.
pub fn generate(rng: &mut impl RngCore) -> Vec<(SecretString, TokenHash)> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; BYTES];
            rng.fill_bytes(&mut bytes);
            let text = alphabet().encode(&bytes);
            let grouped = text
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-");
            (SecretString::from(grouped), TokenHash(Sha256::digest(bytes).into()))
        })
        .collect()
}

/// The hash of a code as typed: case, spaces and hyphens do not matter.
pub fn hash_presented(code: &SecretString) -> Option<TokenHash> {
    let cleaned: String =
        code.expose_secret().chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    let bytes = alphabet().decode(cleaned.as_bytes()).ok()?;
    (bytes.len() == BYTES).then(|| TokenHash(Sha256::digest(&bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_hash_back_however_they_are_typed() {
        let codes = generate(&mut rand::thread_rng());
        assert_eq!(codes.len(), COUNT);
        let (code, hash) = &codes[0];
        assert_eq!(code.expose_secret().len(), 29);
        assert_eq!(hash_presented(code), Some(*hash));
        let sloppy = SecretString::from(code.expose_secret().to_uppercase().replace('-', " "));
        assert_eq!(hash_presented(&sloppy), Some(*hash));
        let unique: std::collections::HashSet<_> = codes.iter().map(|(_, h)| h.0).collect();
        assert_eq!(unique.len(), COUNT);
        assert_eq!(hash_presented(&SecretString::from("short".to_owned())), None);
    }
}
