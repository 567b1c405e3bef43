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
    /// How outgoing webhooks are delivered (docs/webhooks.md).
    pub webhooks: WebhookSettings,
}

/// Outgoing webhooks: where they may go, and how often a failed delivery is tried again.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Endpoints that are, or resolve to, loopback, private, link-local or other non-public
    /// addresses are refused unless this is set: otherwise an organization could make the
    /// server call into its own network (SSRF). Off by default.
    pub allow_private: bool,
    /// Plain http to a loopback address (a receiver on the same machine, as the tests run one);
    /// only together with `allow_private`. Every other endpoint must be https.
    pub allow_http_loopback: bool,
    /// The wait before the second attempt, doubling for each further one up to `retry_cap`,
    /// each wait drawn between its half and its whole (jitter).
    pub retry_base: std::time::Duration,
    pub retry_cap: std::time::Duration,
    /// Attempts of one event before it is marked failed.
    pub max_attempts: i32,
    /// Failed attempts in a row, over all its events, after which an endpoint is disabled.
    pub disable_after: i32,
    /// How long an endpoint has to answer one attempt.
    pub timeout: std::time::Duration,
    /// How often an organization's delivery job looks for new events when it has none due.
    pub poll: std::time::Duration,
    /// How long an event delivered or given up stays in the outbox (and on its endpoint's page).
    pub keep: std::time::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_http_loopback: false,
            retry_base: std::time::Duration::from_secs(30),
            retry_cap: std::time::Duration::from_secs(6 * 3600),
            max_attempts: 12,
            disable_after: 100,
            timeout: std::time::Duration::from_secs(10),
            poll: std::time::Duration::from_secs(1),
            keep: std::time::Duration::from_secs(30 * 86_400),
        }
    }
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
            webhooks: WebhookSettings::default(),
        }
    }
}
