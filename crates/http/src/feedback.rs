//! Delivery feedback taken in (docs/sending.md, "Delivery feedback"): one report, as Postfix's
//! pipe hands it to `mos feedback ingest`, or as a relay or a provider posts it
//! (`api::feedback`), parsed by `mos_mail::feedback`, addressed by its
//! returned original's `Feedback-ID` and `Message-ID` (never by an address the report claims),
//! and recorded against the send ledger of the organization it names. A complaint or a hard
//! bounce may make the organization's breaker warn or halt its sending in that transaction
//! (`mos_db::breaker`); the ADMINs' letter comes back with the answer, for the caller to send.

pub mod sns;

use chrono::{DateTime, Utc};
use mos_db::breaker::Verdict;
use mos_db::feedback::{self, Kind, Recorded, Returned};
use mos_db::{AppPool, DbError};
use mos_domain::{OrgId, RequestSource};
pub use mos_mail::feedback::MAX_REPORT_BYTES;
use mos_mail::feedback::{Action, Complaint, FeedbackError, ProviderError, Report, What};

pub use crate::app::breaker::Notice;
use crate::batch::{self, Batches, Lost, Write};

/// What taking one report in did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// Recorded, with the suppression it calls for, and the letter to the ADMINs when the
    /// organization's breaker warned or halted.
    Recorded(Option<Notice>),
    /// Every part of it was recorded before: nothing changed.
    Again,
    /// A report that says nothing to record (an ARF `not-spam` report).
    Ignored,
}

/// Why a report was refused; nothing was recorded. No reason holds a value from the report.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Report(#[from] FeedbackError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(
        "the returned message is not one of ours: its Feedback-ID and Message-ID do not name one campaign and contact"
    )]
    NotOurs,
    #[error("the organization sent no such message: the report is refused")]
    NoSuchMessage,
    /// Not refused: the message is still being handed over, and the report came first.
    #[error(
        "the message is still being handed over, and its hand-over is not recorded yet: send the report again later"
    )]
    NotYet,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Lost(#[from] Lost),
}

/// What a report says, as the feedback ledger records it: each kind once, with its code.
fn kinds(report: &Report) -> Vec<(Kind, String)> {
    let mut kinds: Vec<(Kind, String)> = match &report.what {
        What::Delivery(recipients) => recipients
            .iter()
            .map(|status| {
                let kind = match status.action {
                    Action::Failed if status.is_hard_bounce() => Kind::HardBounce,
                    Action::Failed => Kind::SoftBounce,
                    Action::Delayed => Kind::Delayed,
                    Action::Delivered | Action::Relayed | Action::Expanded => Kind::Delivered,
                };
                (kind, status.code.to_string())
            })
            .collect(),
        What::Complaint(Complaint::NotSpam) => Vec::new(),
        What::Complaint(kind) => vec![(Kind::Complaint, complaint_code(*kind).to_owned())],
    };
    // A report on several recipients of one message says each kind once.
    let mut once: Vec<(Kind, String)> = Vec::new();
    for (kind, code) in kinds.drain(..) {
        if !once.iter().any(|(seen, _)| *seen == kind) {
            once.push((kind, code));
        }
    }
    once
}

fn complaint_code(kind: Complaint) -> &'static str {
    match kind {
        Complaint::Abuse => "abuse",
        Complaint::Fraud => "fraud",
        Complaint::Virus => "virus",
        Complaint::AuthFailure => "auth-failure",
        Complaint::NotSpam => "not-spam",
        Complaint::Other => "other",
    }
}

/// Takes in one report (the whole message as received), in a transaction of its own.
/// `console` is the console's public address, for the link in a letter to the ADMINs.
pub async fn ingest(
    pool: &AppPool,
    raw: &[u8],
    now: DateTime<Utc>,
    source: &RequestSource,
    console: &str,
) -> Result<Ingested, IngestError> {
    let report = mos_mail::feedback::parse(raw)?;
    let Some((org, returned)) = returned(&report, now, source)? else { return Ok(Ingested::Ignored) };
    let mut written = write(pool, console, org, vec![returned]).await?;
    written.pop().ok_or(Lost)?
}

/// What a report asks to record, and in which organization; none when it says nothing to record.
fn returned(
    report: &Report,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<(OrgId, Returned)>, IngestError> {
    let original = &report.original;
    let (org, campaign, contact) =
        feedback::addressed(&original.message_id, original.feedback_id.as_deref()).ok_or(IngestError::NotOurs)?;
    let kinds = kinds(report);
    if kinds.is_empty() {
        return Ok(None);
    }
    Ok(Some((org, Returned { campaign, contact, kinds, at: now, source: source.clone() })))
}

/// Records one organization's reports in one transaction: what each did.
async fn write(
    pool: &AppPool,
    console: &str,
    org: OrgId,
    reports: Vec<Returned>,
) -> Result<Vec<Result<Ingested, IngestError>>, IngestError> {
    let mut tx = pool.begin_tenant(org, None).await?;
    let recorded = feedback::record_all(&mut tx, &reports).await?;
    tx.commit().await?;
    let mut answers = Vec::with_capacity(recorded.len());
    for recorded in recorded {
        answers.push(match recorded {
            Recorded::New(verdict) => Ok(Ingested::Recorded(notice(pool, org, &verdict, console).await?)),
            Recorded::Again => Ok(Ingested::Again),
            Recorded::NoSuchMessage => Err(IngestError::NoSuchMessage),
            Recorded::NotYet => Err(IngestError::NotYet),
        });
    }
    Ok(answers)
}

/// The ADMINs' letter about `verdict`, if there is one. Their addresses are read by a definer
/// function, which Citus does not let read a shard that the recording transaction's `app_user`
/// wrote: so in a transaction of its own, after that one.
async fn notice(pool: &AppPool, org: OrgId, verdict: &Verdict, console: &str) -> Result<Option<Notice>, DbError> {
    if *verdict == Verdict::Quiet {
        return Ok(None);
    }
    let mut tx = pool.begin_tenant(org, None).await?;
    let notice = Notice::of(&mut tx, verdict, console).await?;
    tx.commit().await?;
    Ok(notice)
}

/// Takes reports in as they arrive over HTTP: each organization's reports that arrive together
/// are recorded in one transaction ([`crate::batch`]), each answered once its record committed.
pub struct Ingestor {
    reports: Batches<Reports>,
}

/// Writes reports, each organization's in a transaction.
struct Reports {
    pool: AppPool,
    console: String,
}

impl Write for Reports {
    type Item = (OrgId, Returned);
    type Answer = Result<Ingested, IngestError>;

    async fn write(&self, items: Vec<Self::Item>) -> Vec<Self::Answer> {
        let written = batch::by_organization(items, |org, reports| write(&self.pool, &self.console, org, reports));
        written.await.into_iter().map(|answer| answer.and_then(|ingested| ingested)).collect()
    }
}

impl Ingestor {
    /// `console` is the console's public address, for the link in a letter to the ADMINs.
    pub fn new(pool: AppPool, console: String) -> Self {
        Self { reports: Batches::new(Reports { pool, console }) }
    }

    /// Takes in one report (the whole message as received).
    pub async fn ingest(
        &self,
        raw: &[u8],
        now: DateTime<Utc>,
        source: &RequestSource,
    ) -> Result<Ingested, IngestError> {
        let report = mos_mail::feedback::parse(raw)?;
        self.ingest_report(&report, now, source).await
    }

    /// Takes in what a report says, however it arrived (a DSN or ARF message, a provider's
    /// webhook).
    pub async fn ingest_report(
        &self,
        report: &Report,
        now: DateTime<Utc>,
        source: &RequestSource,
    ) -> Result<Ingested, IngestError> {
        let Some(item) = returned(report, now, source)? else { return Ok(Ingested::Ignored) };
        self.reports.submit(item).await?
    }
}
