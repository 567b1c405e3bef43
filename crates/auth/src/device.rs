//! Device tokens (OWASP's "device cookies"): a client that has signed in to an account gets a
//! token naming that account, signed by the server, and from then on its failed attempts count
//! against its own budget. Failures from anywhere else then slow down the guesser, never the
//! owner on a device they have used before.

use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;

const NONCE_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks device tokens under a key of their own.
#[derive(Clone)]
pub struct DeviceTokens {
    key: std::sync::Arc<SecretBox<[u8; 32]>>,
}

impl std::fmt::Debug for DeviceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceTokens(..)")
    }
}

/// A device token as issued: what the client keeps, and the device's name in counters.
pub struct DeviceToken {
    pub secret: SecretString,
    pub device: String,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

impl DeviceTokens {
    /// Device tokens under a key derived from `secret` for this purpose alone, so that one
    /// configured secret can serve several purposes without a token of one being good for another.
    pub fn derive(secret: &[u8]) -> Self {
        let key: [u8; 32] = mac(secret, &[b"mos device token key v1"]).finalize().into_bytes().into();
        Self { key: std::sync::Arc::new(SecretBox::new(Box::new(key))) }
    }

    /// A token for a client that just signed in to `account` (a stable, non-secret name of the
    /// account, such as its address's digest).
    pub fn issue(&self, account: &str, rng: &mut impl RngCore) -> DeviceToken {
        let mut nonce = [0u8; NONCE_BYTES];
        rng.fill_bytes(&mut nonce);
        let tag = mac(self.key.expose_secret(), &[account.as_bytes(), &nonce]).finalize().into_bytes();
        let device = BASE64URL_NOPAD.encode(&nonce);
        DeviceToken { secret: SecretString::from(format!("{device}.{}", BASE64URL_NOPAD.encode(&tag))), device }
    }

    /// The device a token names, if this server issued it for `account`; `None` for anything
    /// else (another account's token, a forged or mangled one), which callers treat as no token.
    pub fn verify(&self, account: &str, token: &SecretString) -> Option<String> {
        let (device, tag) = token.expose_secret().trim().split_once('.')?;
        let nonce = BASE64URL_NOPAD.decode(device.as_bytes()).ok().filter(|n| n.len() == NONCE_BYTES)?;
        let tag = BASE64URL_NOPAD.decode(tag.as_bytes()).ok()?;
        mac(self.key.expose_secret(), &[account.as_bytes(), &nonce]).verify_slice(&tag).ok()?;
        Some(device.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_good_for_its_account_under_its_key_only() {
        let tokens = DeviceTokens::derive(b"one secret");
        let issued = tokens.issue("ada", &mut rand::thread_rng());
        assert_eq!(tokens.verify("ada", &issued.secret).as_deref(), Some(issued.device.as_str()));
        assert_eq!(tokens.verify("bob", &issued.secret), None, "another account");
        assert_eq!(DeviceTokens::derive(b"another secret").verify("ada", &issued.secret), None, "another key");
        let text = issued.secret.expose_secret();
        let (device, tag) = text.split_once('.').unwrap();
        let other = BASE64URL_NOPAD.encode(&[7u8; NONCE_BYTES]);
        for forged in [format!("{other}.{tag}"), format!("{device}.{}", &tag[1..]), device.to_owned(), String::new()] {
            assert_eq!(tokens.verify("ada", &SecretString::from(forged.clone())), None, "{forged}");
        }
    }
}
