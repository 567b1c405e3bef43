//! Delivering outgoing webhooks (docs/webhooks.md): the job that takes an organization's due
//! events from the outbox and posts them to its endpoints, signed as the Standard Webhooks
//! specification says, and the rule that keeps endpoints off the server's own network.
//!
//! Each attempt is signed anew (the timestamp is the attempt's), over the same body and the same
//! `webhook-id`, so a receiver verifies every attempt and drops the ones it has seen.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use data_encoding::BASE64;
use futures_util::stream::{self, StreamExt};
use hmac::{Hmac, Mac};
use mos_auth::Sealer;
use mos_db::jobs::runner::{Next, Outcome, Work};
use mos_db::jobs::{Ending, Progress};
use mos_db::webhooks::{self, Attempt, Claimed};
use mos_db::DbError;
use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use url::Url;
use uuid::Uuid;

use crate::settings::WebhookSettings;

/// Events claimed at once.
const BATCH: i64 = 100;
/// Attempts in flight at once; events of one endpoint and contact are never two of them.
const CONCURRENCY: usize = 16;
/// Finished events deleted at most per pass with nothing due: a backlog of them goes over
/// several passes rather than in one long transaction.
const PRUNE_BATCH: i64 = 1000;
/// After about this long the job goes back to the queue, so other organizations' jobs run.
const SLICE: Duration = Duration::from_secs(5);
/// The bytes of a signing secret.
const SECRET_BYTES: usize = 32;

/// Why an endpoint's address is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    #[error("the URL is not a valid absolute URL")]
    Malformed,
    #[error("the URL must use https")]
    NotHttps,
    #[error("the URL must not hold a user name or password")]
    Credentials,
    #[error("the URL's host does not resolve")]
    Unresolved,
    #[error("the URL's host is, or resolves to, an address that is not public (loopback, private, link-local)")]
    NotPublic,
}

/// A new signing secret as Standard Webhooks spells it (`whsec_` and the key in base64), and the
/// key itself. Shown to the organization once, at creation or rotation.
pub fn new_secret() -> (SecretString, Vec<u8>) {
    let mut key = vec![0u8; SECRET_BYTES];
    rand::thread_rng().fill(&mut key[..]);
    (SecretString::from(format!("whsec_{}", BASE64.encode(&key))), key)
}

/// `v1,` and the base64 of the HMAC-SHA256 under `key` of `id.timestamp.body`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(&mac.finalize().into_bytes()))
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), documentation, multicast or unspecified, in IPv4 or IPv6 (an IPv4 address
/// mapped into IPv6 is judged as itself).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Checks an endpoint's address as a member gave it: https (or http to loopback where the
/// settings allow it), no credentials, and a host that is and resolves only to public addresses
/// unless private ones are allowed. The delivery checks the addresses again at each connection
/// (the host's DNS may change).
pub async fn check_url(input: &str, settings: &WebhookSettings) -> Result<Url, UrlRefused> {
    let url = Url::parse(input.trim()).map_err(|_| UrlRefused::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_http_loopback && settings.allow_private && is_loopback_host(&url) => {}
        _ => return Err(UrlRefused::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    let host = url.host_str().ok_or(UrlRefused::Malformed)?.to_owned();
    if input.trim().len() > 2000 {
        return Err(UrlRefused::Malformed);
    }
    if settings.allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        _ => tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host.as_str(), port)))
            .await
            .map_err(|_| UrlRefused::Unresolved)?
            .map_err(|_| UrlRefused::Unresolved)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(UrlRefused::Unresolved);
    }
    if addrs.iter().any(|a| !is_public(a.ip())) {
        return Err(UrlRefused::NotPublic);
    }
    Ok(url)
}

/// Resolves an endpoint's host and keeps only the addresses the settings allow, so that the
/// connection goes to an address that was checked (a host that resolved to a public address at
/// creation may resolve to a private one later).
struct Guarded {
    allow_private: bool,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(UrlRefused::NotPublic) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// What the delivery job needs: the HTTP client, the key that opens the secrets, the settings.
pub struct Deliverer {
    client: reqwest::Client,
    sealer: Arc<Sealer>,
    settings: WebhookSettings,
}

/// The client could not be built (the TLS configuration).
#[derive(Debug, thiserror::Error)]
#[error("the webhook client could not be built: {0}")]
pub struct ClientError(String);

impl Deliverer {
    pub fn new(sealer: Arc<Sealer>, settings: WebhookSettings) -> Result<Self, ClientError> {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .dns_resolver(Arc::new(Guarded { allow_private: settings.allow_private }))
            // A redirect would lead the request where the checks above never looked.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .user_agent("Marketing-OS-Webhooks/1")
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(Self { client, sealer, settings })
    }

    /// How long an attempt holds its events: the endpoint's time to answer, with room to record.
    fn lease(&self) -> Duration {
        self.settings.timeout * 3 + Duration::from_secs(30)
    }

    /// The wait before attempt `made + 1`, `made` attempts having failed: doubling from the
    /// base up to the cap, drawn between its half and its whole.
    fn backoff(&self, made: i32) -> Duration {
        let doublings = made.saturating_sub(1).clamp(0, 20) as u32;
        let full = self.settings.retry_base.saturating_mul(1 << doublings).min(self.settings.retry_cap);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rand::thread_rng().gen::<f64>())
    }

    async fn attempt(&self, event: Claimed) -> Attempt {
        let made = event.attempts + 1;
        let (status, error) = match self.post(&event).await {
            Ok(status) if (200..300).contains(&status) => (Some(status), None),
            Ok(status) => (Some(status), Some(format!("the endpoint answered {status}"))),
            Err(error) => (None, Some(error)),
        };
        let delivered = error.is_none();
        let retry_at = (!delivered && made < self.settings.max_attempts)
            .then(|| Utc::now() + chrono::Duration::from_std(self.backoff(made)).unwrap_or(chrono::Duration::hours(1)));
        Attempt { subscription: event.subscription, event_id: event.event_id, status, delivered, error, retry_at }
    }

    /// Posts one event; the status, or why there is none (never the URL, which may hold a token).
    async fn post(&self, event: &Claimed) -> Result<u16, String> {
        let url = Url::parse(&event.url).map_err(|_| "the endpoint's URL does not parse".to_owned())?;
        if !self.settings.allow_private {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if literal.is_some_and(|ip| !is_public(ip)) {
                return Err(UrlRefused::NotPublic.to_string());
            }
        }
        let (id, body) = message(event);
        let timestamp = Utc::now().timestamp();
        let signature = signature(event.secret.expose_secret(), &id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) if e.is_timeout() => Err("the endpoint did not answer in time".into()),
            Err(e) if e.is_connect() => Err("could not connect to the endpoint".into()),
            Err(_) => Err("the request to the endpoint failed".into()),
        }
    }
}

/// The `webhook-id` and the body of an event: the same for every attempt.
pub fn message(event: &Claimed) -> (String, Vec<u8>) {
    let id = format!("msg_{}", event.event_id.simple());
    let body = serde_json::json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": event.data,
    });
    (id, serde_json::to_vec(&body).unwrap_or_default())
}

/// The job's handler: slices of claim, deliver, record, until nothing is due; then back to the
/// queue for when the next event is due or the poll interval, or finished once the organization
/// has no enabled endpoint.
pub async fn run(mut work: Work, deliverer: Arc<Deliverer>) -> Outcome {
    let fail = |e: DbError| e.to_string();
    let started = Instant::now();
    let token = Uuid::from_u128(rand::thread_rng().gen());
    let (mut done, mut errors) = (0i64, 0i64);
    loop {
        let mut tx = work.begin().await.map_err(fail)?;
        let now = Utc::now();
        let claimed =
            webhooks::claim(&mut tx, &deliverer.sealer, token, now, deliverer.lease(), BATCH).await.map_err(fail)?;
        if claimed.is_empty() {
            let keep = chrono::Duration::from_std(deliverer.settings.keep).unwrap_or(chrono::Duration::MAX);
            let kept_since = now.checked_sub_signed(keep).unwrap_or(DateTime::<Utc>::MIN_UTC);
            webhooks::prune(&mut tx, kept_since, PRUNE_BATCH).await.map_err(fail)?;
            let (active, next) = webhooks::outlook(&mut tx).await.map_err(fail)?;
            let progress = Progress { total: None, done, errors, busy: Duration::ZERO };
            return Ok(match work.checkpoint(tx, progress).await.map_err(fail)? {
                Next::Cancel => Ending::Cancelled,
                Next::Stop | Next::Lost => Ending::Released,
                Next::Continue if !active => Ending::Succeeded,
                Next::Continue => Ending::Later { after: wait_until(next, now, deliverer.settings.poll) },
            });
        }
        tx.commit().await.map_err(fail)?;
        let attempts: Vec<Attempt> =
            stream::iter(claimed).map(|event| deliverer.attempt(event)).buffer_unordered(CONCURRENCY).collect().await;
        done += attempts.iter().filter(|a| a.delivered).count() as i64;
        errors += attempts.iter().filter(|a| !a.delivered).count() as i64;
        let mut tx = work.begin().await.map_err(fail)?;
        let disabled = webhooks::record(&mut tx, token, &attempts, Utc::now(), deliverer.settings.disable_after)
            .await
            .map_err(fail)?;
        for id in disabled {
            tracing::warn!(webhook = %id, "disabled a webhook endpoint after too many failed attempts in a row");
        }
        let progress = Progress { total: None, done, errors, busy: Duration::ZERO };
        match work.checkpoint(tx, progress).await.map_err(fail)? {
            Next::Continue => {}
            Next::Cancel => return Ok(Ending::Cancelled),
            Next::Stop | Next::Lost => return Ok(Ending::Released),
        }
        if started.elapsed() >= SLICE {
            return Ok(Ending::Later { after: Duration::ZERO });
        }
    }
}

/// Until the next due event, at most `poll`: new events arrive without waking anyone.
fn wait_until(next: Option<DateTime<Utc>>, now: DateTime<Utc>, poll: Duration) -> Duration {
    next.map(|n| (n - now).to_std().unwrap_or(Duration::ZERO)).unwrap_or(poll).min(poll)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications_example() {
        // The example of the Standard Webhooks specification's reference implementations.
        let key = BASE64.decode(b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
