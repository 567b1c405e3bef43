//! Builds what the HTTP layer needs for identity from the configuration: the sealing key for
//! TOTP secrets, the mailer, and the session settings.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use mos_auth::{PasswordHasher, Sealer, SystemClock};
use mos_db::AppPool;
use mos_http::mail::{OutboxMailer, SmtpMailer};
use mos_http::{AppState, Mailer};
use secrecy::ExposeSecret;

use crate::config::Settings;

const KEY_FILE: &str = "totp.key";

/// The key that seals TOTP secrets: configured, or on the embedded default, generated once
/// and kept beside the database (readable by its owner only).
fn totp_sealer(settings: &Settings, embedded: bool) -> anyhow::Result<Sealer> {
    if let Some(key) = &settings.identity.totp_key {
        return Sealer::from_base64(key.expose_secret()).context("MOS_TOTP_KEY");
    }
    if !embedded {
        anyhow::bail!(
            "MOS_TOTP_KEY is required with DATABASE_URL, so that every server seals two-factor secrets with the same key; \
             generate one with `openssl rand -base64 32` and keep it as safe as the database password"
        );
    }
    let path = settings.data_dir.join(KEY_FILE);
    if !path.exists() {
        write_new_key(&path)?;
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Sealer::from_base64(&text).with_context(|| format!("the key in {}", path.display()))
}

fn write_new_key(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let key = Sealer::generate_key_base64(&mut rand::thread_rng());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(key.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated the key that seals two-factor secrets; back it up with the database");
    Ok(())
}

/// The From of the server's own mail (`MOS_MAIL_FROM`), when it is set.
pub fn mail_from(settings: &Settings) -> anyhow::Result<Option<mos_http::mail::Mailbox>> {
    settings
        .identity
        .mail_from
        .as_ref()
        .map(|from| {
            from.parse().with_context(|| format!("MOS_MAIL_FROM {from:?} is not a mailbox like `Name <a@b.example>`"))
        })
        .transpose()
}

pub fn mailer(settings: &Settings) -> anyhow::Result<Arc<dyn Mailer>> {
    match &settings.identity.smtp_url {
        Some(url) => Ok(Arc::new(SmtpMailer::from_url(url.expose_secret())?)),
        None => {
            let outbox = settings.data_dir.join("outbox");
            tracing::info!(outbox = %outbox.display(), "SMTP_URL is not set: mail goes to the dev outbox as .eml files");
            Ok(Arc::new(OutboxMailer::new(outbox)))
        }
    }
}

/// The campaign sender of a server with a relay (`SMTP_URL`) and an https public address; none,
/// with the reason logged, otherwise.
pub fn outbox(
    settings: &Settings,
    state: &AppState,
    keys: Arc<dyn mos_domain::audiences::AddressKeyer>,
) -> anyhow::Result<Option<Arc<mos_http::sending::Outbox>>> {
    use mos_http::sending::{Links, Outbox};
    let Some(url) = &settings.identity.smtp_url else {
        tracing::info!("SMTP_URL is not set: launched campaigns wait for a server that can send them");
        return Ok(None);
    };
    let links = match Links::new(&state.sealer, &state.settings.public_url) {
        Ok(links) => links,
        Err(e) => {
            tracing::warn!("{e}");
            return Ok(None);
        }
    };
    let mut outbox = Outbox::new(url.expose_secret(), Arc::new(state.sealer.clone()), keys, links)?;
    outbox.lease = chrono::Duration::from_std(settings.jobs.lease).context("MOS_JOB_LEASE_SECS")?;
    if let Some(batch) = settings.send_batch {
        outbox.batch = i64::try_from(batch).context("MOS_SEND_BATCH")?;
    }
    Ok(Some(Arc::new(outbox)))
}

pub async fn state(settings: &Settings, embedded: bool, pool: AppPool, listen: SocketAddr) -> anyhow::Result<AppState> {
    let identity = &settings.identity;
    let mut http = mos_http::Settings {
        public_url: identity.public_url.clone().unwrap_or_else(|| default_public_url(listen)),
        session_idle: chrono::Duration::seconds(i64::from(identity.session_idle_secs)),
        session_absolute: chrono::Duration::seconds(i64::from(identity.session_absolute_secs)),
        ..mos_http::Settings::default()
    };
    if let Some(max) = settings.import_max_bytes {
        http.import_max_bytes = max;
    }
    http.feedback_ses_topics = settings.feedback_ses_topics.iter().map(|t| t.trim().to_owned()).collect();
    http.feedback_sns_certificates = settings.feedback_sns_certificates.clone();
    http.webhooks.allow_private = settings.webhook_allow_private;
    http.webhooks.allow_http_loopback = settings.webhook_allow_http_loopback;
    http.webhooks.keep = settings.webhook_keep;
    for proxy in &identity.trusted_proxies {
        let net = proxy
            .trim()
            .parse()
            .with_context(|| format!("MOS_TRUSTED_PROXIES: {proxy:?} is not an address or CIDR"))?;
        http.trusted_proxies.push(net);
    }
    if let Some(from) = mail_from(settings)? {
        http.mail_from = from;
    }
    std::fs::create_dir_all(&settings.data_dir).with_context(|| format!("creating {}", settings.data_dir.display()))?;
    let hasher = PasswordHasher::new(identity.hash_concurrency);
    let state =
        AppState::new(pool, Arc::new(SystemClock), hasher, totp_sealer(settings, embedded)?, mailer(settings)?, http)
            .await
            .map_err(|e| match e {
                mos_http::StartError::RelyingParty(why) => {
                    anyhow::anyhow!("{why}; set MOS_PUBLIC_URL to the address people open Marketing OS at")
                }
                other => other.into(),
            })?;
    Ok(state)
}

/// Without `MOS_PUBLIC_URL`, the listening address; a loopback one as `localhost`, the one
/// address by IP that browsers let passkeys work on.
pub fn default_public_url(listen: SocketAddr) -> String {
    if listen.ip().is_loopback() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}
