//! The complaint-rate breaker (docs/sending.md, "Complaint-rate breaker"): where it stands with
//! the window's counts, its settings, the ADMIN's resume, and the letter that tells the ADMINs
//! when it warns or halts. The judging itself is `mos_db::breaker`, in the transaction that
//! records the feedback.

use lettre::message::Mailbox;
use mos_db::breaker::{self, Breaker, Counts, Resumed, Totals, Verdict, HARD_BOUNCE_LIMIT_RANGE, MIN_SENT_RANGE};
use mos_db::{orgs, DbError, TenantTx};

use crate::access::{Authorized, ManageOrganization, Needs, ReadOrganization};
use crate::mail::{self, MailError, Mailer};
use crate::{ApiError, AppState};

/// The breaker as a page or an answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub breaker: Breaker,
    /// The breaker's window ([`breaker::WINDOW_DAYS`] days up to today), summed.
    pub window: Totals,
    /// The last 30 days and 12 months.
    pub counts: Counts,
}

async fn shown(state: &AppState, tx: &mut TenantTx) -> Result<Shown, ApiError> {
    let today = state.clock.now().date_naive();
    let counts = breaker::counts(tx, today).await?;
    Ok(Shown { breaker: breaker::get(tx).await?, window: counts.window(today), counts })
}

/// Where the organization's breaker stands. Any member may see it: whether the sending is
/// halted is what every campaign of theirs depends on.
pub async fn get(state: &AppState, auth: &mut Authorized<ReadOrganization>) -> Result<Shown, ApiError> {
    shown(state, &mut auth.tx).await
}

/// Whether the organization's sending is held back (warned or halted), for a page of another
/// permission that shows it beside its own: every member may know it.
pub async fn standing<P: Needs>(auth: &mut Authorized<P>) -> Result<Breaker, ApiError> {
    Ok(breaker::get(&mut auth.tx).await?)
}

/// Sets the minimum volume before a rate counts and the hard-bounce limit (basis points).
/// A policy of the organization: an ADMIN with a recent sign-in, audited.
pub async fn configure(
    state: &AppState,
    auth: Authorized<ManageOrganization>,
    min_sent: Option<i32>,
    hard_bounce_limit: Option<i32>,
) -> Result<Shown, ApiError> {
    if min_sent.is_some_and(|n| !MIN_SENT_RANGE.contains(&n)) {
        return Err(ApiError::Invalid {
            field: "min_sent",
            message: format!("min_sent must be {} to {}", MIN_SENT_RANGE.start(), MIN_SENT_RANGE.end()),
        });
    }
    if hard_bounce_limit.is_some_and(|n| !HARD_BOUNCE_LIMIT_RANGE.contains(&n)) {
        return Err(ApiError::Invalid {
            field: "hard_bounce_limit",
            message: format!(
                "hard_bounce_limit must be {} to {} basis points (0.5% to 20%)",
                HARD_BOUNCE_LIMIT_RANGE.start(),
                HARD_BOUNCE_LIMIT_RANGE.end()
            ),
        });
    }
    auth.require_recent(state)?;
    let mut tx = auth.tx;
    breaker::configure(&mut tx, min_sent, hard_bounce_limit, auth.session.user, &auth.source).await?;
    let shown = shown(state, &mut tx).await?;
    tx.commit().await?;
    Ok(shown)
}

/// Resumes the organization's halted sending: an ADMIN with a recent sign-in, audited with the
/// rates at that moment. 409 when it is not halted.
pub async fn resume(state: &AppState, auth: Authorized<ManageOrganization>) -> Result<(Resumed, Shown), ApiError> {
    auth.require_recent(state)?;
    let mut tx = auth.tx;
    let resumed = breaker::resume(&mut tx, auth.session.user, state.clock.now(), &auth.source)
        .await?
        .ok_or(ApiError::Conflict("the organization's sending is not halted"))?;
    let shown = shown(state, &mut tx).await?;
    tx.commit().await?;
    // The resumed campaigns' sending jobs are queued.
    state.wake_jobs();
    Ok((resumed, shown))
}

/// What the ADMINs are told of a warning or a halt: to whom, and the letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
}

impl Notice {
    /// The letter for `verdict` in the organization of `tx` (its ADMINs' addresses read there),
    /// or none when there is nothing to tell. `console` is the public address of the console.
    pub async fn of(tx: &mut TenantTx, verdict: &Verdict, console: &str) -> Result<Option<Notice>, DbError> {
        let (what, window) = match verdict {
            Verdict::Quiet => return Ok(None),
            Verdict::Warned(window) => ("warning", window),
            Verdict::Tripped { window, .. } => ("halt", window),
        };
        let Some(org) = orgs::get(tx).await? else { return Ok(None) };
        let to = breaker::admin_addresses(tx).await?;
        let rate = |r: Option<String>| r.unwrap_or_else(|| "none".into());
        let counts = format!(
            "Over the last {} days: {} messages sent, {} refused by the relay; {} complaints ({}), {} hard bounces ({}).",
            breaker::WINDOW_DAYS,
            window.sent,
            window.refused,
            window.complaints,
            rate(window.complaint_rate()),
            window.hard_bounces,
            rate(window.hard_bounce_rate()),
        );
        let page = format!("{console}/orgs/{}/sending", org.slug.as_str());
        let (subject, text) = if what == "warning" {
            (
                format!("Spam complaints about {}'s mail passed 0.1%", org.name),
                format!(
                    "Recipients have marked {}'s campaign mail as spam more often than the mailbox providers allow for long: {counts}\n\nAt 0.3% Marketing OS halts the organization's sending until an ADMIN resumes it. Look at who the recent campaigns went to and whether they expected them:\n\n{page}\n",
                    org.name
                ),
            )
        } else {
            let why = match verdict {
                Verdict::Tripped { reason: breaker::Reason::HardBounces, .. } => {
                    "hard bounces passed the organization's limit"
                }
                _ => "spam complaints reached 0.3%",
            };
            (
                format!("{}'s sending is halted: {why}", org.name),
                format!(
                    "Marketing OS halted {}'s campaign sending because {why}. {counts}\n\nEvery campaign that was sending is paused; nothing is sent until an ADMIN who signed in recently resumes it:\n\n{page}\n",
                    org.name
                ),
            )
        };
        Ok(Some(Notice { to, subject, text }))
    }

    /// Sends the letter to each ADMIN and waits: a command that ends right after must not lose it.
    pub async fn send(&self, mailer: &dyn Mailer, from: &Mailbox) -> Result<(), MailError> {
        for to in &self.to {
            mailer.send(mail::letter(from, to, &self.subject, self.text.clone())?).await?;
        }
        Ok(())
    }
}
