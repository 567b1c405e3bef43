//! Delivery of signed messages to the relay named by `SMTP_URL`: the crate's one I/O part.
//!
//! A [`Relay`] keeps its own small pool of SMTP connections (lettre's connection, not its
//! pool: see [`Relay`]) and sends several messages over each, at most `max_connections` at a
//! time. [`Relay::send`] answers a [`Delivery`] the send ledger records as it is: accepted with
//! the relay's reply (its queue id), a temporary failure to retry under a [`RetryPolicy`], or a
//! permanent one (a bounce). It never answers "accepted" unless the relay said so after the
//! message's final dot: a connection lost or timed out on the way is a temporary failure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::Semaphore;

use crate::dkim::Signed;

/// The most characters of a relay's reply kept in a [`Delivery`]: enough for a queue id or a
/// reason, bounded because the ledger stores one per message.
pub const MAX_REPLY_CHARS: usize = 300;

/// A connection idle for longer than this is checked with `NOOP` before it carries a message
/// (the relay may have closed it); one used more recently is trusted, which saves a round trip
/// per message while a campaign is sending.
const TRUSTED_IDLE: Duration = Duration::from_secs(2);

/// `SMTP_URL` that cannot name a relay. No variant carries the URL or any part of it: it may
/// hold a password, and these errors reach logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    #[error("SMTP_URL is not a URL")]
    NotAUrl,
    #[error("SMTP_URL must start with smtp:// (plain, or STARTTLS with ?tls=required) or smtps:// (TLS)")]
    Scheme,
    #[error("SMTP_URL names no host")]
    NoHost,
    #[error("SMTP_URL has options the SMTP client does not understand (only tls=required or tls=opportunistic)")]
    Options,
    #[error("SMTP_URL's user name or password is not valid percent-encoded UTF-8")]
    Credentials,
    #[error("the TLS settings for SMTP_URL's host could not be made")]
    Tls,
    #[error("SMTP_URL has a password but no TLS: use smtps:// or ?tls=required, so that it is not sent in the clear")]
    PasswordInTheClear,
}

/// How a relay is used: how many connections may carry messages at once (each carries one
/// message at a time), and how long one step (connecting, one command) may wait for the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    pub max_connections: u32,
    pub timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self { max_connections: 8, timeout: Duration::from_secs(60) }
    }
}

/// The relay a campaign's messages go to: up to `max_connections` SMTP connections to one
/// server, each reused for message after message.
///
/// Not lettre's `pool` feature, by what the tests saw of it: it hands a connection back to its
/// pool on a spawned task after each message, so the next message, sent at once, often found the
/// pool empty and opened another connection (two connections for five messages in a row with a
/// pool of one), and it checks every reused connection with `NOOP`, a round trip per message.
/// Here a connection goes back to the pool before the next message may start, so a pool of one
/// is one connection, and only a connection idle for a while is checked.
pub struct Relay {
    settings: Settings,
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection: whoever holds one owns a connection (idle or new) until it is
    /// back in `idle` or closed, so there are never more than `max_connections`.
    permits: Semaphore,
}

struct Settings {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        f.debug_struct("Relay").field("endpoint", &self.endpoint()).finish_non_exhaustive()
    }
}

impl Relay {
    /// `smtp://host:port` (plain, for a relay on the same machine or network),
    /// `smtp://host:port?tls=required` (STARTTLS, refusing a relay that does not offer it),
    /// `smtp://host:port?tls=opportunistic` (STARTTLS when offered), `smtps://host:port` (TLS
    /// from the first byte), each with `user:password@` (percent-encoded) when the relay asks for
    /// it, which requires TLS (lettre would send it in the clear). The ports default to 25 and
    /// 465.
    pub fn from_url(url: &str, config: RelayConfig) -> Result<Self, SmtpUrlError> {
        let parsed = url::Url::parse(url).map_err(|_| SmtpUrlError::NotAUrl)?;
        let host = parsed.host_str().filter(|h| !h.is_empty()).ok_or(SmtpUrlError::NoHost)?.to_owned();
        let tls_option = match parsed.query_pairs().collect::<Vec<_>>().as_slice() {
            [] => None,
            [(key, value)] if key == "tls" => Some(value.to_string()),
            _ => return Err(SmtpUrlError::Options),
        };
        let parameters = || TlsParameters::new(host.clone()).map_err(|_| SmtpUrlError::Tls);
        let tls = match (parsed.scheme(), tls_option.as_deref()) {
            ("smtp", None) => Tls::None,
            ("smtp", Some("required")) => Tls::Required(parameters()?),
            ("smtp", Some("opportunistic")) => Tls::Opportunistic(parameters()?),
            ("smtps", None) => Tls::Wrapper(parameters()?),
            ("smtp" | "smtps", Some(_)) => return Err(SmtpUrlError::Options),
            _ => return Err(SmtpUrlError::Scheme),
        };
        let port = parsed.port().unwrap_or(if parsed.scheme() == "smtps" { 465 } else { 25 });
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| SmtpUrlError::Credentials)
        };
        let credentials = match (parsed.username(), parsed.password()) {
            ("", None) => None,
            (user, password) => Some(Credentials::new(decode(user)?, decode(password.unwrap_or(""))?)),
        };
        if credentials.is_some() && matches!(tls, Tls::None | Tls::Opportunistic(_)) {
            return Err(SmtpUrlError::PasswordInTheClear);
        }
        let max_connections = usize::try_from(config.max_connections.max(1)).unwrap_or(1);
        let settings = Settings { host, port, tls, credentials, hello: ClientId::default(), timeout: config.timeout };
        Ok(Self { settings, idle: Mutex::new(Vec::new()), permits: Semaphore::new(max_connections) })
    }

    /// `host:port` of the relay.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    /// Hands one signed message to the relay, waiting for a free connection when all are busy.
    /// A future dropped before it completes has reported nothing: the ledger row it was for is
    /// still unsent (the message may have arrived: at least once, never "accepted" without the
    /// relay's word).
    pub async fn send(&self, message: &Signed) -> Delivery {
        // The semaphore is never closed, so a permit always comes.
        let Ok(_permit) = self.permits.acquire().await else {
            return Delivery::Temporary { code: None, text: "the relay client is shut down".to_owned() };
        };
        let mut connection = match self.connection().await {
            Ok(connection) => connection,
            Err(failed) => return failed,
        };
        let sent = connection.send(message.envelope(), &message.formatted()).await;
        // lettre closes a connection after any error, a negative reply included (it sends
        // QUIT); one that is still good goes back before the permit is released.
        if !connection.has_broken() {
            self.lock_idle().push(Idle { connection, since: Instant::now() });
        }
        match sent {
            Ok(response) => {
                let text = bounded(&response.message().collect::<Vec<_>>().join(" "));
                Delivery::Accepted { code: u16::from(response.code()), text }
            }
            Err(error) => classify(&error),
        }
    }

    /// Closes the idle connections, each with `QUIT`.
    pub async fn shutdown(&self) {
        let idle = std::mem::take(&mut *self.lock_idle());
        for mut idle in idle {
            let _ = idle.connection.quit().await;
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        // The list is only pushed to and popped from; a panic elsewhere cannot leave it torn.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// An idle connection that is still open, or a new one; the delivery to report when no
    /// connection could be made.
    async fn connection(&self) -> Result<AsyncSmtpConnection, Delivery> {
        loop {
            let Some(idle) = self.lock_idle().pop() else { break };
            let mut connection = idle.connection;
            if idle.since.elapsed() < TRUSTED_IDLE || connection.test_connected().await {
                return Ok(connection);
            }
            connection.abort().await;
        }
        let s = &self.settings;
        let mut connection = match &s.tls {
            // lettre's own connect, the only way it wraps TLS round a socket from the first
            // byte; its socket keeps Nagle's algorithm (see below).
            Tls::Wrapper(parameters) => {
                let wrapper = Some(parameters.clone());
                AsyncSmtpConnection::connect_tokio1((s.host.as_str(), s.port), Some(s.timeout), &s.hello, wrapper, None)
                    .await
                    .map_err(|e| classify(&e))?
            }
            // lettre writes a message's final dot apart from its body, without waiting for a
            // reply in between: with Nagle's algorithm the dot waited for the relay's delayed
            // ACK, about 40 ms per message (22 messages/s per connection against smtp-sink on
            // loopback, whatever the pool did). So the socket is made here, with TCP_NODELAY.
            _ => {
                let connect = tokio::net::TcpStream::connect((s.host.as_str(), s.port));
                let stream = tokio::time::timeout(s.timeout, connect)
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"))
                    .and_then(|connected| connected)
                    .and_then(|stream| stream.set_nodelay(true).map(|()| stream))
                    .map_err(|error| Delivery::Temporary {
                        code: None,
                        text: bounded(&format!("Connection error: {error}")),
                    })?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &s.hello)
                    .await
                    .map_err(|e| classify(&e))?
            }
        };
        match &s.tls {
            Tls::Required(parameters) => connection.starttls(parameters.clone(), &s.hello).await,
            Tls::Opportunistic(parameters) if connection.can_starttls() => {
                connection.starttls(parameters.clone(), &s.hello).await
            }
            _ => Ok(()),
        }
        .map_err(|e| classify(&e))?;
        if let Some(credentials) = &s.credentials {
            connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials).await.map_err(|e| classify(&e))?;
        }
        Ok(connection)
    }
}

/// What became of one message handed to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The relay took responsibility for the message (2xx after the final dot); `text` usually
    /// holds its queue id.
    Accepted { code: u16, text: String },
    /// Try again later: a 4xx reply, or no complete answer at all (the connection refused, lost
    /// or timed out, TLS failed), when `code` is `None`.
    Temporary { code: Option<u16>, text: String },
    /// The relay refused the message for good (5xx): a bounce.
    Permanent { code: u16, text: String },
}

impl Delivery {
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Accepted { code, .. } | Self::Permanent { code, .. } => Some(*code),
            Self::Temporary { code, .. } => *code,
        }
    }

    /// The relay's text (trimmed, control characters made spaces, at most
    /// [`MAX_REPLY_CHARS`]), or what went wrong on the way when there was no reply.
    pub fn text(&self) -> &str {
        match self {
            Self::Accepted { text, .. } | Self::Temporary { text, .. } | Self::Permanent { text, .. } => text,
        }
    }
}

fn classify(error: &lettre::transport::smtp::Error) -> Delivery {
    // A negative reply's source is the relay's text; any other error's is what failed locally
    // (an I/O error, a timeout), whose Display never holds the URL or the credentials.
    let reply = || std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
    match error.status().map(u16::from) {
        Some(code) if error.is_permanent() => Delivery::Permanent { code, text: bounded(&reply()) },
        Some(code) => Delivery::Temporary { code: Some(code), text: bounded(&reply()) },
        None => Delivery::Temporary { code: None, text: bounded(&error.to_string()) },
    }
}

/// `text` trimmed, each control character a space, cut at [`MAX_REPLY_CHARS`] characters.
fn bounded(text: &str) -> String {
    text.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_REPLY_CHARS).collect()
}

/// When to try a message again after a temporary failure: exponential backoff (`first_delay`,
/// doubled per failed attempt, at most `max_delay`) with jitter, so that the messages a relay
/// refused together do not all come back at the same instant; at most `max_attempts` attempts,
/// and none that would start after `deadline` from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// Within Postfix's own defaults' spirit (retries for days), but shorter: a campaign's row
    /// gives up after a day, and a relay that refuses for a minute costs at most a few retries.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(3600),
            max_attempts: 12,
            deadline: Duration::from_secs(24 * 3600),
        }
    }
}

/// What to do after a temporary failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    After(Duration),
    /// Out of attempts or past the deadline: the row is final (failed after retries).
    GiveUp,
}

impl RetryPolicy {
    /// After `attempts` attempts (the one that just failed included), `elapsed` after the first
    /// began. `jitter` is a random number in `[0, 1)` the caller draws (randomness is an input,
    /// so a test chooses it): the delay is the backoff's upper half scaled by it ("equal
    /// jitter"), so it still grows with each attempt.
    pub fn next(&self, attempts: u32, elapsed: Duration, jitter: f64) -> Retry {
        if attempts >= self.max_attempts {
            return Retry::GiveUp;
        }
        let doublings = attempts.saturating_sub(1).min(31);
        let backoff = self.first_delay.saturating_mul(1 << doublings).min(self.max_delay);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        let delay = backoff / 2 + backoff.mul_f64(jitter / 2.0);
        if elapsed.saturating_add(delay) > self.deadline {
            return Retry::GiveUp;
        }
        Retry::After(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_secs(10),
            max_delay: Duration::from_secs(100),
            max_attempts: 5,
            deadline: Duration::from_secs(1000),
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() {
        let p = policy();
        let at = |attempts, jitter| p.next(attempts, Duration::ZERO, jitter);
        assert_eq!(at(1, 0.0), Retry::After(Duration::from_secs(5)));
        assert_eq!(at(1, 1.0), Retry::After(Duration::from_secs(10)));
        assert_eq!(at(2, 0.5), Retry::After(Duration::from_secs(15)));
        assert_eq!(at(3, 0.0), Retry::After(Duration::from_secs(20)));
        assert_eq!(at(4, 1.0), Retry::After(Duration::from_secs(80)));
        // Out-of-range jitter is clamped, never a negative or endless delay.
        assert_eq!(at(1, -3.0), Retry::After(Duration::from_secs(5)));
        assert_eq!(at(1, f64::NAN), Retry::After(Duration::from_secs(5)));
        let capped = RetryPolicy { max_attempts: 100, ..p };
        assert_eq!(capped.next(40, Duration::ZERO, 1.0), Retry::After(Duration::from_secs(100)));
    }

    #[test]
    fn retries_stop_at_the_attempt_limit_or_the_deadline() {
        let p = policy();
        assert_eq!(p.next(5, Duration::ZERO, 0.0), Retry::GiveUp);
        assert_eq!(p.next(1, Duration::from_secs(995), 0.0), Retry::After(Duration::from_secs(5)));
        assert_eq!(p.next(1, Duration::from_secs(996), 0.0), Retry::GiveUp);
    }

    #[test]
    fn a_reply_is_trimmed_stripped_of_controls_and_bounded() {
        assert_eq!(bounded("  250 2.0.0 Ok: queued as 4F\r\nX  "), "250 2.0.0 Ok: queued as 4F  X");
        assert_eq!(bounded(&"x".repeat(1000)).chars().count(), MAX_REPLY_CHARS);
    }
}
