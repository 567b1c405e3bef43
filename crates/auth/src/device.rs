//! Device tokens (OWASP's "device cookies"): a client that has signed in to an account gets a
//! token naming that account, signed by the server, and from then on its failed attempts count
//! against its own budget. Failures from anywhere else then slow down the guesser, never the
//! owner on a device they have used before.

use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::Signer;

const NONCE_BYTES: usize = 16;

/// Issues and checks device tokens under a key of their own.
#[derive(Clone, Debug)]
pub struct DeviceTokens {
    signer: Signer,
}

/// A device token as issued: what the client keeps, and the device's name in counters.
pub struct DeviceToken {
    pub secret: SecretString,
    pub device: String,
}

impl DeviceTokens {
    pub fn new(signer: Signer) -> Self {
        Self { signer }
    }

    /// A token for a client that just signed in to `account` (a stable, non-secret name of the
    /// account, such as its address's digest).
    pub fn issue(&self, account: &str, rng: &mut impl RngCore) -> DeviceToken {
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        let tag = self.signer.sign(&[account.as_bytes(), &nonce]);
        let device = BASE64URL_NOPAD.encode(&nonce);
        DeviceToken { secret: SecretString::from(format!("{device}.{}", BASE64URL_NOPAD.encode(&tag))), device }
    }

    /// The device a token names, if this server issued it for `account`; `None` for anything
    /// else (another account's token, a forged or mangled one), which callers treat as no token.
    pub fn verify(&self, account: &str, token: &SecretString) -> Option<String> {
        let (device, tag) = token.expose_secret().trim().split_once('.')?;
        let nonce = BASE64URL_NOPAD.decode(device.as_bytes()).ok().filter(|n| n.len() == NONCE_BYTES)?;
        let tag = BASE64URL_NOPAD.decode(tag.as_bytes()).ok()?;
        self.signer.verify(&[account.as_bytes(), &nonce], &tag).then(|| device.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_account_under_its_key_only() {
        let tokens = DeviceTokens::new(Signer::derive(b"one secret", "devices"));
        let issued = tokens.issue("ada", &mut rand::thread_rng());
        assert_eq!(tokens.verify("ada", &issued.secret).as_deref(), Some(issued.device.as_str()));
        assert_eq!(tokens.verify("bob", &issued.secret), None, "another account");
        assert_eq!(
            DeviceTokens::new(Signer::derive(b"another secret", "devices")).verify("ada", &issued.secret),
            None,
            "another key"
        );
        let text = issued.secret.expose_secret();
        let (device, tag) = text.split_once('.').unwrap();
        let other = BASE64URL_NOPAD.encode(&[7u8; NONCE_BYTES]);
        for forged in [format!("{other}.{tag}"), format!("{device}.{}", &tag[1..]), device.to_owned(), String::new()] {
            assert_eq!(tokens.verify("ada", &SecretString::from(forged.clone())), None, "{forged}");
        }
    }
}
