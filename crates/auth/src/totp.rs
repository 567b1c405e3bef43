//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as authenticator apps
//! implement them: HMAC-SHA1, 6 digits, 30-second steps.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// 160 bits, RFC 4226's recommendation and SHA-1's block-friendly size.
pub const SECRET_BYTES: usize = 20;

/// The hash an HOTP value is computed with.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// RFC 4226 HOTP: the `digits`-digit value for `counter`.
pub fn hotp(algorithm: Algorithm, key: &[u8], counter: u64, digits: u32) -> u32 {
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    let msg = counter.to_be_bytes();
    let digest = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<sha1::Sha1>>(key, &msg),
        Algorithm::Sha256 => mac::<Hmac<sha2::Sha256>>(key, &msg),
        Algorithm::Sha512 => mac::<Hmac<sha2::Sha512>>(key, &msg),
    };
    // Dynamic truncation (RFC 4226 §5.3).
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary =
        u32::from_be_bytes([digest[offset] & 0x7f, digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    binary % 10u32.pow(digits)
}

/// The time step a Unix time falls in.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// A user's TOTP secret.
pub struct Totp {
    secret: SecretBox<[u8; SECRET_BYTES]>,
}

impl Totp {
    pub fn generate(rng: &mut impl RngCore) -> Self {
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut secret);
        Self { secret: SecretBox::new(Box::new(secret)) }
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let secret: [u8; SECRET_BYTES] = bytes.try_into().ok()?;
        Some(Self { secret: SecretBox::new(Box::new(secret)) })
    }

    pub fn expose_bytes(&self) -> &[u8] {
        self.secret.expose_secret()
    }

    /// The secret as authenticator apps take it when typed in: base32 without padding.
    pub fn base32(&self) -> String {
        BASE32_NOPAD.encode(self.secret.expose_secret())
    }

    /// The code for a time step, zero-padded.
    pub fn code(&self, step: i64) -> String {
        let value = hotp(Algorithm::Sha1, self.secret.expose_secret(), step as u64, DIGITS);
        format!("{value:0width$}", width = DIGITS as usize)
    }

    /// The step whose code `code` is, within one step of `now` either way (clock drift), or
    /// `None`. Callers must still reject a step at or before the last one accepted (replay).
    pub fn matching_step(&self, code: &str, unix_seconds: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = step_at(unix_seconds);
        // Check every candidate, so the time taken says nothing about which one matched.
        let mut found = None;
        for step in [now - 1, now, now + 1] {
            if bool::from(self.code(step).as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }

    /// The `otpauth://` URI that authenticator apps read from a QR code.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let enc = percent_encode;
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            enc(issuer),
            enc(account),
            self.base32(),
            enc(issuer)
        )
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
        out
    })
}

/// A QR code of `text` as a standalone SVG document.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the seeds are the ASCII digits repeated to the hash's size.
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let vectors: [(i64, u32, u32, u32); 6] = [
            (59, 94287082, 46119246, 90693936),
            (1111111109, 7081804, 68084774, 25091201),
            (1111111111, 14050471, 67062674, 99943326),
            (1234567890, 89005924, 91819424, 93441116),
            (2000000000, 69279037, 90698825, 38618901),
            (20000000000, 65353130, 77737706, 47863826),
        ];
        for (time, want1, want256, want512) in vectors {
            let counter = step_at(time) as u64;
            assert_eq!(hotp(Algorithm::Sha1, sha1, counter, 8), want1, "SHA1 at {time}");
            assert_eq!(hotp(Algorithm::Sha256, sha256, counter, 8), want256, "SHA256 at {time}");
            assert_eq!(hotp(Algorithm::Sha512, sha512, counter, 8), want512, "SHA512 at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_own_step_and_the_neighbours_only() {
        let totp = Totp::generate(&mut rand::thread_rng());
        let now = 1_700_000_000;
        let step = step_at(now);
        assert_eq!(totp.matching_step(&totp.code(step), now), Some(step));
        assert_eq!(totp.matching_step(&totp.code(step - 1), now), Some(step - 1));
        assert_eq!(totp.matching_step(&totp.code(step + 1), now), Some(step + 1));
        assert_eq!(totp.matching_step(&totp.code(step - 2), now), None);
        assert_eq!(totp.matching_step("12345", now), None);
        assert_eq!(totp.matching_step("abcdef", now), None);
    }

    #[test]
    fn the_uri_carries_the_secret_and_escapes_labels() {
        let totp = Totp::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(
            totp.uri("Marketing OS", "ada@example.com"),
            "otpauth://totp/Marketing%20OS:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Marketing%20OS&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&totp.uri("Marketing OS", "ada@example.com")).unwrap().starts_with("<?xml"));
    }
}
