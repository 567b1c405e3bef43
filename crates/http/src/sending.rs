//! Sending a launched campaign (docs/sending.md): the handler of the job `campaign_send`.
//!
//! Each attempt of the job works in slices. A slice claims a batch of due messages in one
//! transaction (`campaigns::claim` checks each again and skips the refused with their reason),
//! reads only the declared fields of those contacts, renders and DKIM-signs the messages off the
//! async workers, hands them to the relay with the organization's rate limit, and records every
//! outcome in a second transaction: the accepted as one batch (one audit record with the Merkle
//! root of their hashes), temporary failures queued again after a backoff, permanent ones
//! bounced (a hard bounce also suppresses the address), a message that cannot be rendered failed.
//! After a slice of about [`SLICE`] the job goes back to the queue (`Ending::Released`), so the
//! runner's claim, which serves the tenant served least recently first, lets another
//! organization's campaign in between: a million-recipient campaign never starves a small one.
//!
//! A message the relay accepted but whose outcome was not recorded (the process killed in
//! between) is claimed again after its lease and sent again, with the same `Message-ID`: the
//! documented at-least-once edge.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::stream::{self, StreamExt};
use mos_auth::{Click, ClickTokens, Sealer, Unsubscribe, UnsubscribeTokens};
use mos_db::audiences::suppression;
use mos_db::campaigns::{self, Claimed, Failure, Recipient, Recorded, Sent};
use mos_db::jobs::runner::{Next, Outcome, Work};
use mos_db::jobs::{Ending, Progress};
use mos_db::{content, senders, DbError, TenantTx};
use mos_domain::audiences::{AddressKeyer, SuppressionReason};
use mos_domain::{ContactId, ContentId, OrgId, PurposeId, RequestSource};
use mos_mail::smtp::{Delivery, Relay, RelayConfig, Retry, RetryPolicy, SmtpUrlError};
use mos_mail::{
    render, tracked_links, Content, DkimSigner, Envelope, Essentials, FeedbackId, Field, Fields, HttpsUrl, Mailbox,
    Message, MessageId, Personalisation, Rendered, Signed, Template,
};

/// How long one attempt of the job sends before it lets another campaign in.
pub const SLICE: Duration = Duration::from_secs(5);

/// Blocking tasks a batch's messages are rendered and signed on, at once.
const PREPARE_THREADS: usize = 2;

/// The links a message carries for its recipient: its unsubscribe link, which is also the
/// `List-Unsubscribe` header's one-click address and, opened, the preference centre, and a
/// tracked link in place of each of the content's links.
pub struct Links {
    tokens: UnsubscribeTokens,
    clicks: ClickTokens,
    public_url: String,
}

/// One message's own addresses ([`Links::of`]).
pub(crate) struct Addresses {
    pub(crate) unsubscribe: HttpsUrl,
    /// One per tracked link of the campaign's content, in order; none in a preview.
    pub(crate) clicks: Vec<HttpsUrl>,
}

/// Campaigns cannot be sent from a server whose public address is not https.
#[derive(Debug, thiserror::Error)]
#[error("campaigns are not sent: MOS_PUBLIC_URL must be an https address, which every message's one-click unsubscribe link needs (RFC 8058)")]
pub struct NotHttps;

impl Links {
    pub fn new(sealer: &Sealer, public_url: &str) -> Result<Self, NotHttps> {
        HttpsUrl::parse(public_url).map_err(|_| NotHttps)?;
        Ok(Self {
            tokens: sealer.unsubscribe_tokens().clone(),
            clicks: sealer.click_tokens().clone(),
            public_url: public_url.to_owned(),
        })
    }

    fn of(&self, campaign: &Campaign, contact: ContactId) -> Option<Addresses> {
        let link = Unsubscribe {
            organization: campaign.org,
            contact,
            purpose: campaign.purpose,
            campaign: campaign.id.as_uuid(),
        };
        let unsubscribe = HttpsUrl::parse(&self.tokens.url(&self.public_url, &link)).ok()?;
        let clicks = (0..campaign.tracked)
            .map(|link| {
                let click = Click { organization: campaign.org, campaign: campaign.id, contact, link };
                HttpsUrl::parse(&self.clicks.url(&self.public_url, &click)).ok()
            })
            .collect::<Option<_>>()?;
        Some(Addresses { unsubscribe, clicks })
    }
}

/// What sending needs besides the database.
pub struct Outbox {
    pub relay: Relay,
    pub sealer: Arc<Sealer>,
    pub keys: Arc<dyn AddressKeyer>,
    pub links: Links,
    pub retry: RetryPolicy,
    /// Messages claimed and sent together.
    pub batch: i64,
    /// How long a claimed message is held before another worker may claim it again: the job's
    /// lease (`mos serve` passes `MOS_JOB_LEASE_SECS`), so that a job taken over after its
    /// runner died finds the messages that runner held due again about as soon as the job.
    pub lease: chrono::Duration,
    /// Most messages per second one organization's campaigns hand over, together.
    pub per_org_rate: f64,
    limits: RateLimits,
}

impl Outbox {
    /// Sends through the relay `smtp_url` names (docs/messages.md, "Delivery over SMTP").
    pub fn new(
        smtp_url: &str,
        sealer: Arc<Sealer>,
        keys: Arc<dyn AddressKeyer>,
        links: Links,
    ) -> Result<Self, SmtpUrlError> {
        Ok(Self {
            relay: Relay::from_url(smtp_url, RelayConfig::default())?,
            sealer,
            keys,
            links,
            retry: RetryPolicy::default(),
            // Every claim costs about as much however few it takes (docs/performance.md,
            // "Sending": 1,353 messages/s at 500, 725 at 100, in the same bench).
            batch: 500,
            lease: chrono::Duration::from_std(mos_db::jobs::runner::RunnerConfig::default().lease)
                .unwrap_or(chrono::Duration::minutes(1)),
            per_org_rate: 500.0,
            limits: RateLimits::default(),
        })
    }
}

/// A token bucket per organization, shared by every job of this process.
#[derive(Default)]
struct RateLimits(Mutex<HashMap<OrgId, (f64, Instant)>>);

impl RateLimits {
    /// How long to wait, from `now`, before sending `n` more messages of `org` at `rate` per
    /// second (a burst of one second's worth is allowed).
    fn take(&self, org: OrgId, n: usize, rate: f64, now: Instant) -> Duration {
        let mut buckets = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, at) = buckets.entry(org).or_insert((rate, now));
        let refilled = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        let left = refilled - n as f64;
        *tokens = left;
        *at = now;
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / rate)
        }
    }
}

/// Everything about the campaign that every message of it shares.
pub(crate) struct Campaign {
    id: ContentId,
    org: OrgId,
    purpose: PurposeId,
    template: Template,
    title: String,
    body: String,
    fields: Fields,
    field_names: Vec<String>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    postal_address: mos_domain::senders::PostalAddress,
    domain: String,
    signer: DkimSigner,
    /// How many of the content's links go through `/c/`: a message carries that many.
    tracked: u16,
}

/// Why a campaign cannot be sent at all; the job fails with it, naming no secret.
fn broken(what: &str) -> String {
    format!("the campaign cannot be sent: {what}")
}

async fn load(tx: &mut TenantTx, sealer: &Sealer, org: OrgId, id: ContentId) -> Result<Option<Campaign>, String> {
    let Some(version) = campaigns::run(tx, id).await.map_err(|e| e.to_string())?.map(|r| r.version) else {
        return Ok(None);
    };
    load_version(tx, sealer, org, id, version).await.map(Some)
}

/// Version `version` of campaign `id` as its messages are rendered and signed: the launched one
/// when sending, the latest one for the console's preview, so that a preview is built exactly
/// as a message is.
pub(crate) async fn load_version(
    tx: &mut TenantTx,
    sealer: &Sealer,
    org: OrgId,
    id: ContentId,
    version: i32,
) -> Result<Campaign, String> {
    let fail = |e: DbError| e.to_string();
    let stored = campaigns::version_of(tx, id, version).await.map_err(fail)?.ok_or_else(|| broken("no version"))?;
    let piece = content::version(tx, stored.content.0, stored.content.1)
        .await
        .map_err(fail)?
        .ok_or_else(|| broken("its content version is gone"))?;
    let layout = content::version(tx, stored.template.0, stored.template.1)
        .await
        .map_err(fail)?
        .ok_or_else(|| broken("its template version is gone"))?;
    let template = Template::new(&layout.body).map_err(|e| broken(&format!("its template: {e}")))?;
    let tracked =
        tracked_links(&template, &piece.body).map_err(|e| broken(&format!("its links: {e}"))).and_then(|links| {
            u16::try_from(links.len()).map_err(|_| broken("it has more links than a message can track"))
        })?;
    let (sender, _) =
        senders::get(tx, stored.sender).await.map_err(fail)?.ok_or_else(|| broken("its sender is gone"))?;
    let key = senders::signing_key(tx, sealer, stored.sender)
        .await
        .map_err(fail)?
        .ok_or_else(|| broken("its sender has no active DKIM key"))?;
    let signer = DkimSigner::new(&key.selector, &key.domain, &key.private_key_pem)
        .map_err(|e| broken(&format!("its DKIM key: {e}")))?;
    let fields = stored
        .fields
        .iter()
        .map(|(name, max)| Field::text(name, *max))
        .collect::<Result<Vec<_>, _>>()
        .and_then(Fields::new)
        .map_err(|e| broken(&format!("its personalisation: {e}")))?;
    let from = Mailbox::new(Some(&sender.from_name), &sender.from_address).map_err(|e| broken(&e.to_string()))?;
    let reply_to =
        sender.reply_to.as_ref().map(|r| Mailbox::new(None, r)).transpose().map_err(|e| broken(&e.to_string()))?;
    Ok(Campaign {
        id,
        org,
        purpose: stored.purpose,
        template,
        title: piece.title,
        body: piece.body,
        fields,
        field_names: stored.fields.into_iter().map(|(name, _)| name).collect(),
        from,
        reply_to,
        postal_address: sender.postal_address,
        domain: sender.dkim_domain.as_str().to_owned(),
        signer,
        tracked,
    })
}

/// One message rendered and signed, or why it could not be.
fn prepare(campaign: &Campaign, recipient: &Recipient, addresses: Option<Addresses>) -> Result<Signed, String> {
    let rendered = rendered(campaign, recipient, addresses)?;
    signed(campaign, recipient, &rendered)
}

/// The approved content in the approved template for one recipient, their values escaped and
/// the required elements checked present.
pub(crate) fn rendered(
    campaign: &Campaign,
    recipient: &Recipient,
    addresses: Option<Addresses>,
) -> Result<Rendered, String> {
    let Addresses { unsubscribe, clicks } = addresses.ok_or("the message's links are not valid https addresses")?;
    let values = Personalisation::new(&campaign.fields, recipient.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| e.to_string())?;
    // One address for both: opened, the unsubscribe link shows the preference centre.
    let essentials = Essentials {
        postal_address: campaign.postal_address.clone(),
        preferences: unsubscribe.clone(),
        unsubscribe,
        clicks,
    };
    let content = Content { title: &campaign.title, body: &campaign.body, subject: None };
    render(&campaign.template, &content, &values, &essentials).map_err(|e| e.to_string())
}

/// The rendered message with its headers, DKIM-signed by the sender's key.
pub(crate) fn signed(campaign: &Campaign, recipient: &Recipient, rendered: &Rendered) -> Result<Signed, String> {
    let id = campaigns::message_id(campaign.id, recipient.contact, &campaign.domain);
    let envelope = Envelope {
        from: campaign.from.clone(),
        reply_to: campaign.reply_to.clone(),
        to: Mailbox::new(None, &recipient.address).map_err(|e| e.to_string())?,
        date: Utc::now(),
        message_id: MessageId::parse(&format!("<{id}>")).map_err(|e| e.to_string())?,
        unsubscribe_mailto: None,
        feedback_id: FeedbackId::parse(&campaigns::feedback_id(campaign.id, campaign.org)).ok(),
    };
    let message = Message::build(rendered, envelope).map_err(|e| e.to_string())?;
    campaign.signer.sign(message).map_err(|e| e.to_string())
}

/// The job's handler.
pub async fn run(mut work: Work, outbox: Arc<Outbox>) -> Outcome {
    let fail = |e: DbError| e.to_string();
    let id = work
        .claim
        .payload
        .get("campaign")
        .and_then(|v| v.as_str())
        .and_then(|s| ContentId::parse(s).ok())
        .ok_or("the job names no campaign")?;
    let org = work.claim.org;
    let mut tx = work.begin().await.map_err(fail)?;
    let Some(campaign) = load(&mut tx, &outbox.sealer, org, id).await? else {
        return Ok(Ending::Succeeded);
    };
    tx.commit().await.map_err(fail)?;
    let campaign = Arc::new(campaign);
    let started = Instant::now();
    let (mut done, mut errors) = (0, 0);
    loop {
        let mut tx = work.begin().await.map_err(fail)?;
        let claim = campaigns::claim(&mut tx, id, outbox.batch, outbox.lease, Utc::now()).await.map_err(fail)?;
        errors += claim.skipped.values().sum::<i64>();
        if claim.messages.is_empty() {
            // Nothing due: finished, or come back when the next message is due (a retry, a
            // local hour), or nothing more while the campaign is paused or cancelled.
            if !campaigns::finish_if_done(&mut tx, id, Utc::now()).await.map_err(fail)? {
                let running = campaigns::run(&mut tx, id).await.map_err(fail)?.map(|r| r.state);
                if running.as_deref() == Some("sending") {
                    campaigns::schedule_sending(&mut tx, id, Utc::now()).await.map_err(fail)?;
                }
            }
            let progress = Progress { total: None, done, errors, busy: Duration::ZERO };
            return Ok(match work.checkpoint(tx, progress).await.map_err(fail)? {
                Next::Lost => Ending::Released,
                _ => Ending::Succeeded,
            });
        }
        let contacts: Vec<ContactId> = claim.messages.iter().map(|m| m.contact).collect();
        let recipients = campaigns::recipients(&mut tx, &contacts, &campaign.field_names).await.map_err(fail)?;
        tx.commit().await.map_err(fail)?;

        let links: Vec<Option<Addresses>> = recipients.iter().map(|r| outbox.links.of(&campaign, r.contact)).collect();
        // Rendering and signing are most of a slice's CPU: split over PREPARE_THREADS blocking
        // tasks, so that more than one core signs (docs/performance.md, "Sending").
        let mut links = links.into_iter();
        let tasks: Vec<_> = recipients
            .chunks(recipients.len().div_ceil(PREPARE_THREADS).max(1))
            .map(|chunk| {
                let (campaign, chunk) = (campaign.clone(), chunk.to_vec());
                let links: Vec<_> = links.by_ref().take(chunk.len()).collect();
                tokio::task::spawn_blocking(move || {
                    chunk.iter().zip(links).map(|(r, l)| prepare(&campaign, r, l)).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut prepared = Vec::with_capacity(recipients.len());
        for task in tasks {
            prepared.extend(task.await.map_err(|e| e.to_string())?);
        }
        tokio::time::sleep(outbox.limits.take(org, recipients.len(), outbox.per_org_rate, Instant::now())).await;
        let deliveries: Vec<Result<Delivery, String>> = stream::iter(prepared)
            .map(|message| async {
                match message {
                    Ok(signed) => Ok(outbox.relay.send(&signed).await),
                    Err(why) => Err(why),
                }
            })
            .buffered(outbox.batch.clamp(1, 64) as usize)
            .collect()
            .await;

        let attempts: BTreeMap<ContactId, &Claimed> = claim.messages.iter().map(|m| (m.contact, m)).collect();
        let mut tx = work.begin().await.map_err(fail)?;
        let mut sent = Vec::new();
        let replies: Vec<String> = deliveries.iter().map(|d| d.as_ref().map_or_else(Clone::clone, reply)).collect();
        for ((recipient, delivery), text) in recipients.iter().zip(&deliveries).zip(&replies) {
            let now = Utc::now();
            let failure = match delivery {
                Ok(Delivery::Accepted { .. }) => {
                    sent.push(Sent { contact: recipient.contact, values: &recipient.values, reply: text });
                    continue;
                }
                Ok(Delivery::Temporary { .. }) => {
                    let tried = attempts.get(&recipient.contact).map_or(1, |m| u32::try_from(m.attempts).unwrap_or(1));
                    match outbox.retry.next(tried, Duration::ZERO, rand::random()) {
                        Retry::After(delay) => Failure::Deferred {
                            reply: text.clone(),
                            retry_at: now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)),
                        },
                        Retry::GiveUp => Failure::Failed { reply: text.clone() },
                    }
                }
                Ok(Delivery::Permanent { .. }) => Failure::Bounced { reply: text.clone() },
                Err(_) => Failure::Failed { reply: text.clone() },
            };
            errors += 1;
            let recorded =
                campaigns::record_failure(&mut tx, id, recipient.contact, &failure, now).await.map_err(fail)?;
            if recorded == Recorded::HardRefusal {
                suppression::suppress(
                    &mut tx,
                    outbox.keys.as_ref(),
                    &recipient.address,
                    SuppressionReason::HardBounce,
                    None,
                    now,
                    &RequestSource::default(),
                )
                .await
                .map_err(fail)?;
            }
        }
        // A claimed contact erased since the claim has no recipient row: nothing was sent.
        for m in claim.messages.iter().filter(|m| !recipients.iter().any(|r| r.contact == m.contact)) {
            let gone = Failure::Failed { reply: "the contact was erased before the message was rendered".into() };
            campaigns::record_failure(&mut tx, id, m.contact, &gone, Utc::now()).await.map_err(fail)?;
        }
        if !sent.is_empty() {
            let batch = campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &RequestSource::default())
                .await
                .map_err(fail)?;
            done += i64::try_from(batch.messages).unwrap_or(i64::MAX);
        }
        let progress = Progress { total: None, done, errors, busy: Duration::ZERO };
        match work.checkpoint(tx, progress).await.map_err(fail)? {
            Next::Continue if started.elapsed() < SLICE => {}
            Next::Continue | Next::Stop => return Ok(Ending::Released),
            Next::Cancel => return Ok(Ending::Cancelled),
            Next::Lost => return Ok(Ending::Released),
        }
    }
}

/// The relay's answer as the ledger keeps it: the code and the text.
fn reply(delivery: &Delivery) -> String {
    match delivery.code() {
        Some(code) => format!("{code} {}", delivery.text()),
        None => delivery.text().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organizations_bucket_allows_a_seconds_burst_and_then_paces_it() {
        let limits = RateLimits::default();
        let (a, b) = (OrgId::new(), OrgId::new());
        let start = Instant::now();
        assert_eq!(limits.take(a, 100, 100.0, start), Duration::ZERO, "a second's worth at once");
        assert_eq!(limits.take(a, 50, 100.0, start), Duration::from_millis(500), "50 more at 100/s");
        // A quarter of a second later the debt is 25 messages smaller, and 25 more wait as long.
        let later = start + Duration::from_millis(250);
        assert_eq!(limits.take(a, 25, 100.0, later), Duration::from_millis(500));
        // Another organization's bucket is its own.
        assert_eq!(limits.take(b, 100, 100.0, later), Duration::ZERO);
    }
}
