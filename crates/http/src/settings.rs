//! How the service behaves: every field with a sensible default, set by the binary from its
//! configuration.

use chrono::Duration;

use crate::heavy;

/// How identity behaves; every field has a sensible default.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where people reach the service, for links in emails.
    pub public_url: String,
    /// A session unused for this long ends (HIPAA automatic logoff).
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    /// The name authenticator apps show next to a code.
    pub issuer: String,
    /// Reverse proxies whose `X-Forwarded-For` names the client; nobody's by default.
    pub trusted_proxies: Vec<ipnetwork::IpNetwork>,
    pub mail_from: lettre::message::Mailbox,
    /// How long the comparison of two versions' bodies may refine itself; past it the diff is
    /// coarser, and says so.
    pub diff_deadline: std::time::Duration,
    /// CPU-bound jobs (diffs) running at once, off the async workers.
    pub heavy_jobs: usize,
    /// How long a CPU-bound job waits for a free slot before its request is answered 503.
    pub heavy_wait: std::time::Duration,
    /// How long a search of content by its words may run in the database before it is
    /// cancelled and answered 503.
    pub search_deadline: std::time::Duration,
    /// The largest CSV file a contact import takes, in bytes; a larger upload is answered 413
    /// as soon as it passes the limit, and nothing of it is kept.
    pub import_max_bytes: u64,
    /// The Amazon SNS topics whose SES notifications `POST /v1/feedback/ses` takes.
    pub feedback_ses_topics: Vec<String>,
    /// A directory of pinned SNS signing certificates, looked in before fetching one.
    pub feedback_sns_certificates: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: "http://localhost:8080".into(),
            session_idle: Duration::minutes(15),
            session_absolute: Duration::hours(12),
            issuer: "Marketing OS".into(),
            trusted_proxies: Vec::new(),
            mail_from: lettre::message::Mailbox::new(
                Some("Marketing OS".into()),
                lettre::Address::new("no-reply", "marketing-os.localhost")
                    .unwrap_or_else(|_| unreachable!("a valid address")),
            ),
            diff_deadline: std::time::Duration::from_secs(2),
            heavy_jobs: heavy::default_jobs(),
            heavy_wait: std::time::Duration::from_secs(10),
            search_deadline: std::time::Duration::from_secs(5),
            import_max_bytes: 100 * 1024 * 1024,
            feedback_ses_topics: Vec::new(),
            feedback_sns_certificates: None,
        }
    }
}
