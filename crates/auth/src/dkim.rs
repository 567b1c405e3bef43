//! DKIM key pairs (RFC 6376): RSA-2048, generated with OpenSSL. The private key is handed out
//! only as PKCS#1 PEM text (`-----BEGIN RSA PRIVATE KEY-----`), the form lettre's
//! `DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa)` reads, inside a [`SecretString`] so that
//! no `Debug` or log line prints it; the public key as the DER SubjectPublicKeyInfo that the
//! DNS record's `p=` tag carries in base64.

use openssl::rsa::Rsa;
use secrecy::SecretString;

/// RSA-2048: what mailbox providers expect of DKIM today (RFC 8301 asks for at least 1024 bits;
/// 2048 still fits a single DNS TXT string of 255 bytes or less per chunk).
pub const BITS: u32 = 2048;

#[derive(Debug, thiserror::Error)]
#[error("OpenSSL could not generate or encode a DKIM key")]
pub struct DkimKeyError(#[from] openssl::error::ErrorStack);

/// A freshly generated key pair.
#[derive(Debug)]
pub struct DkimKeyPair {
    /// DER SubjectPublicKeyInfo (294 bytes for RSA-2048 with exponent 65537).
    pub public_key_spki: Vec<u8>,
    /// PKCS#1 PEM.
    pub private_key_pem: SecretString,
}

impl DkimKeyPair {
    /// A new RSA-2048 pair. Takes tens to hundreds of milliseconds of CPU: call it off the async
    /// workers (`spawn_blocking`).
    pub fn generate() -> Result<Self, DkimKeyError> {
        let rsa = Rsa::generate(BITS)?;
        let public_key_spki = rsa.public_key_to_der()?;
        let pem = String::from_utf8(rsa.private_key_to_pem()?)
            .unwrap_or_else(|_| unreachable!("PEM is ASCII by construction"));
        Ok(Self { public_key_spki, private_key_pem: SecretString::from(pem) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::sign::{Signer, Verifier};
    use secrecy::ExposeSecret;

    #[test]
    fn a_generated_pair_is_rsa_2048_in_pkcs1_pem_and_its_public_half_verifies_its_signatures() {
        let pair = DkimKeyPair::generate().unwrap();
        let pem = pair.private_key_pem.expose_secret();
        assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"), "PKCS#1, as lettre reads it");
        assert!(!format!("{pair:?}").contains("PRIVATE KEY"), "Debug hides the private key");
        let private = PKey::from_rsa(Rsa::private_key_from_pem(pem.as_bytes()).unwrap()).unwrap();
        let public = PKey::public_key_from_der(&pair.public_key_spki).unwrap();
        assert_eq!(public.bits(), 2048);
        assert_eq!(pair.public_key_spki.len(), 294);
        let mut signer = Signer::new(MessageDigest::sha256(), &private).unwrap();
        signer.update(b"a message").unwrap();
        let signature = signer.sign_to_vec().unwrap();
        let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
        verifier.update(b"a message").unwrap();
        assert!(verifier.verify(&signature).unwrap());
    }
}
