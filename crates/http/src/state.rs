//! What every handler and page can reach, built once at start.

use std::sync::Arc;

use mos_auth::{Clock, PasswordError, PasswordHasher, Sealer};
use mos_db::AppPool;
use secrecy::SecretString;

use crate::{api, app, heavy, Mailer, Settings};

/// Why the application cannot start with its settings.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    RelyingParty(#[from] app::passkeys::RelyingPartyError),
    #[error("the HTTPS client for Amazon SNS's certificates cannot be built: {0}")]
    SnsClient(#[from] reqwest::Error),
}

/// What every handler can reach. Passed explicitly: there are no global singletons.
#[derive(Clone)]
pub struct AppState {
    pub pool: AppPool,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub sealer: Sealer,
    pub mailer: Arc<dyn Mailer>,
    pub settings: Arc<Settings>,
    /// What the last database check found; `/readyz` reports it.
    pub readiness: api::health::Readiness,
    /// The WebAuthn relying party of the public URL.
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// Where CPU-bound work runs, a bounded number of jobs at a time.
    pub heavy: heavy::Heavy,
    /// The installation's audit signing key (`mos audit checkpoint`'s), which signs the
    /// checkpoint of a consent receipt; none when the server was not given one.
    pub audit_signer: Option<Arc<ed25519_dalek::SigningKey>>,
    /// Wakes this process's job runner when a request queues a job; none where no runner
    /// runs (the runner of another process finds the job at its next poll).
    pub jobs: Option<mos_db::jobs::runner::Waker>,
    /// A real hash of a random password: verifying against it when an email is unknown makes
    /// that answer cost the same as a wrong password.
    pub(crate) dummy_hash: Arc<str>,
    /// Amazon SNS's signing certificates, pinned or fetched, for SES notifications.
    pub(crate) sns: Arc<crate::feedback::sns::Certificates>,
    /// Follows tracked links, with the launched campaigns' links it has read.
    pub(crate) clicks: Arc<crate::clicks::Follower>,
    /// Takes delivery feedback in, the reports that arrive together in one transaction.
    pub(crate) feedback: Arc<crate::feedback::Ingestor>,
}

impl AppState {
    /// Wakes this process's job runner, after a transaction that queued a job has committed.
    pub fn wake_jobs(&self) {
        if let Some(jobs) = &self.jobs {
            jobs.wake();
        }
    }

    pub async fn new(
        pool: AppPool,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        sealer: Sealer,
        mailer: Arc<dyn Mailer>,
        settings: Settings,
    ) -> Result<Self, StartError> {
        let webauthn = Arc::new(app::passkeys::relying_party(&settings.public_url)?);
        let random = mos_auth::OneTimeToken::generate(&mut rand::thread_rng()).secret;
        let dummy_hash: Arc<str> =
            hasher.hash(SecretString::from(secrecy::ExposeSecret::expose_secret(&random).to_owned())).await?.into();
        let readiness = api::health::Readiness::default();
        let heavy = heavy::Heavy::new(settings.heavy_jobs, settings.heavy_wait);
        let sns = Arc::new(crate::feedback::sns::Certificates::new(settings.feedback_sns_certificates.clone())?);
        let clicks = Arc::new(crate::clicks::Follower::new(sealer.click_tokens().clone(), pool.clone()));
        let feedback = Arc::new(crate::feedback::Ingestor::new(pool.clone(), settings.public_url.clone()));
        Ok(Self {
            pool,
            clock,
            hasher,
            mailer,
            settings: Arc::new(settings),
            readiness,
            webauthn,
            heavy,
            audit_signer: None,
            jobs: None,
            dummy_hash,
            sns,
            clicks,
            feedback,
            sealer,
        })
    }
}
