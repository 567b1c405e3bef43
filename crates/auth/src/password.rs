use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("stored password hash is not a valid PHC string")]
    MalformedHash,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hashing task did not finish")]
    Interrupted,
}

/// argon2id at OWASP's minimum (m = 19 MiB, t = 2, p = 1), run on blocking threads with a
/// bound on how many run at once: each takes 19 MiB and a core, so a login flood must queue
/// rather than exhaust memory or stall the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
    pub const OWASP_ITERATIONS: u32 = 2;

    pub fn new(max_concurrent: usize) -> Self {
        Self::with_params(max_concurrent, Self::OWASP_MEMORY_KIB, Self::OWASP_ITERATIONS)
    }

    /// Other costs, for deployments that raise them; never below OWASP's minimum.
    pub fn with_params(max_concurrent: usize, memory_kib: u32, iterations: u32) -> Self {
        let params =
            Params::new(memory_kib.max(Self::OWASP_MEMORY_KIB), iterations.max(Self::OWASP_ITERATIONS), 1, None)
                .unwrap_or_default();
        Self { params, permits: Arc::new(Semaphore::new(max_concurrent.max(1))) }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string of `password` with a fresh random salt.
    pub async fn hash(&self, password: SecretString) -> Result<String, PasswordError> {
        let argon2 = self.argon2();
        self.blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hashing(e.to_string()))
        })
        .await
    }

    /// Whether `password` matches `phc`. Also says whether the hash was made with other
    /// parameters than today's, so that a successful login can rehash it.
    pub async fn verify(&self, password: SecretString, phc: String) -> Result<Verified, PasswordError> {
        let argon2 = self.argon2();
        let current = self.params.clone();
        self.blocking(move || {
            let parsed = PasswordHash::new(&phc).map_err(|_| PasswordError::MalformedHash)?;
            let ok = argon2.verify_password(password.expose_secret().as_bytes(), &parsed).is_ok();
            let outdated = parsed.algorithm != argon2::ARGON2ID_IDENT
                || Params::try_from(&parsed)
                    .map(|p| p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost())
                    .unwrap_or(true);
            Ok(Verified { ok, outdated })
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self.permits.acquire().await.map_err(|_| PasswordError::Interrupted)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|_| PasswordError::Interrupted)?
    }
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash is weaker than the current parameters: rehash it now that we have the password.
    pub outdated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = PasswordHasher::new(2);
        let phc = hasher.hash(secret("correct horse battery staple")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hasher.verify(secret("correct horse battery staple"), phc.clone()).await.unwrap(),
            Verified { ok: true, outdated: false }
        );
        assert!(!hasher.verify(secret("correct horse battery stapler"), phc).await.unwrap().ok);
    }

    #[tokio::test]
    async fn hashes_made_with_weaker_parameters_are_flagged_for_rehashing() {
        let stronger = PasswordHasher::with_params(1, 32 * 1024, 3);
        let old = PasswordHasher::new(1).hash(secret("a long enough password")).await.unwrap();
        assert_eq!(
            stronger.verify(secret("a long enough password"), old).await.unwrap(),
            Verified { ok: true, outdated: true }
        );
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let err = PasswordHasher::new(1).verify(secret("x"), "not-a-hash".into()).await.unwrap_err();
        assert!(matches!(err, PasswordError::MalformedHash));
    }
}
