//! What a new password must be, per NIST SP 800-63B §5.1.1.2: at least 12 characters, up to
//! 256, any characters, no composition rules, and not a commonly used password.

use std::collections::HashSet;
use std::sync::OnceLock;

use secrecy::{ExposeSecret, SecretString};

pub const MIN_CHARS: usize = 12;
pub const MAX_CHARS: usize = 256;

/// The 19,640 most common passwords of Django's list (Royce Williams' 2017 compilation of
/// breach corpora), shipped in the binary.
const COMMON: &str = include_str!("../data/common-passwords.txt");

fn common() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_lowercase).collect())
}

/// Why a password was refused; safe to show the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    #[error("password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("password is on a list of commonly used passwords; choose another")]
    Common,
    #[error("password must not be your email address")]
    IsEmail,
}

/// A password that passed the policy, still secret.
pub struct NewPassword(SecretString);

impl NewPassword {
    /// `email` is the account's address: a password equal to it, or to its local part, is as
    /// guessable as a common one.
    pub fn parse(password: SecretString, email: &str) -> Result<Self, PasswordRejected> {
        let text = password.expose_secret();
        let chars = text.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordRejected::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordRejected::TooLong);
        }
        let lower = text.to_lowercase();
        if common().contains(lower.as_str()) {
            return Err(PasswordRejected::Common);
        }
        let email = email.to_lowercase();
        let local = email.split('@').next().unwrap_or_default();
        if lower == email || lower == local {
            return Err(PasswordRejected::IsEmail);
        }
        Ok(Self(password))
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(p: &str, email: &str) -> Result<(), PasswordRejected> {
        NewPassword::parse(SecretString::from(p.to_owned()), email).map(|_| ())
    }

    #[test]
    fn the_shipped_list_has_at_least_ten_thousand_entries() {
        assert!(common().len() >= 10_000, "{}", common().len());
    }

    #[test]
    fn length_is_the_only_structural_rule() {
        assert_eq!(check("short-pw", "a@b.co"), Err(PasswordRejected::TooShort));
        assert_eq!(check(&"x".repeat(257), "a@b.co"), Err(PasswordRejected::TooLong));
        assert_eq!(check("all lowercase words here", "a@b.co"), Ok(()));
        assert_eq!(check("ünïcödé pässwörd ✓", "a@b.co"), Ok(()));
        assert_eq!(check(&"x".repeat(256), "a@b.co"), Ok(()));
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert_eq!(check("qwerty123456", "a@b.co"), Err(PasswordRejected::Common));
        assert_eq!(check("1Q2W3E4R5T6Y", "a@b.co"), Err(PasswordRejected::Common));
        assert_eq!(check("q1w2e3r4t5y6", "a@b.co"), Err(PasswordRejected::Common));
    }

    #[test]
    fn the_email_address_is_not_a_password() {
        assert_eq!(check("ada.lovelace@example.com", "ada.lovelace@example.com"), Err(PasswordRejected::IsEmail));
        assert_eq!(check("ADA.LOVELACE1", "ada.lovelace1@example.com"), Err(PasswordRejected::IsEmail));
    }
}
