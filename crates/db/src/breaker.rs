//! An organization's sending counted per day and month, and its complaint-rate breaker
//! (migration 32, docs/sending.md, "Complaint-rate breaker").
//!
//! The counts are kept by the send ledger's and the feedback's own triggers; this module only
//! reads them, a few dozen rows at most. The breaker is judged in the transaction that records
//! the feedback (or the relay's refusal) that may cross a line: a warning once the complaint
//! rate reaches [`WARN_BP`], and a halt at [`HALT_BP`] or at the organization's hard-bounce
//! limit, which pauses every sending run of the organization in that transaction. While halted,
//! the database refuses any run to be `sending`, so nothing is handed over until an ADMIN
//! [`resume`]s. Every statement names the tenant as `$1` besides Row-Level Security.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::json;

use crate::error::stored;
use crate::{audit, campaigns, Result, TenantTx};
use mos_domain::events::{
    BREAKER_CONFIGURED, BREAKER_RESUMED, BREAKER_TRIPPED, BREAKER_WARNED, CAMPAIGN, CAMPAIGN_CONTROLLED,
    SENDING_BREAKER,
};
use mos_domain::{AuditEvent, ContentId, RequestSource, UserId};

/// The breaker's window: the last seven UTC days, today included. Gmail's Postmaster Tools
/// report the spam rate per day and ask that it never reach 0.3%; a week still holds the
/// complaints that arrive days after their messages, while a month of good sending could hide
/// a bad campaign of this week under its volume.
pub const WINDOW_DAYS: i64 = 7;
/// The complaint rate, in basis points of the messages sent, that warns the ADMINs (0.1%, the
/// rate the mailbox providers ask senders to stay under).
pub const WARN_BP: i64 = 10;
/// The complaint rate that halts sending (0.3%, the providers' limit).
pub const HALT_BP: i64 = 30;
/// The defaults and bounds of the settings (the table's constraints say the same).
pub const DEFAULT_MIN_SENT: i32 = 1000;
pub const MIN_SENT_RANGE: std::ops::RangeInclusive<i32> = 100..=1_000_000;
pub const DEFAULT_HARD_BOUNCE_LIMIT: i32 = 500;
pub const HARD_BOUNCE_LIMIT_RANGE: std::ops::RangeInclusive<i32> = 50..=2000;

/// What an organization's sending came to over a span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, sqlx::FromRow)]
pub struct Totals {
    /// Accepted by the relay.
    pub sent: i64,
    /// Refused by the relay at hand-over (5xx); each also counts as a hard or a soft bounce.
    pub refused: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub delivered: i64,
    pub complaints: i64,
}

impl Totals {
    /// Messages the relay answered for good: the volume a rate is taken over.
    pub fn handed_over(&self) -> i64 {
        self.sent + self.refused
    }

    /// Whether the complaints reach `bp` basis points of the messages sent.
    pub fn complaints_reach(&self, bp: i64) -> bool {
        self.sent > 0 && self.complaints * 10_000 >= self.sent * bp
    }

    /// Whether the hard bounces reach `bp` basis points of the messages handed over.
    pub fn hard_bounces_reach(&self, bp: i64) -> bool {
        self.handed_over() > 0 && self.hard_bounces * 10_000 >= self.handed_over() * bp
    }

    /// The complaint rate in percent, for people (`0.12%`); none before anything was sent.
    pub fn complaint_rate(&self) -> Option<String> {
        percent(self.complaints, self.sent)
    }

    /// The hard-bounce rate in percent, for people.
    pub fn hard_bounce_rate(&self) -> Option<String> {
        percent(self.hard_bounces, self.handed_over())
    }

    fn add(&mut self, other: &Totals) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.hard_bounces += other.hard_bounces;
        self.soft_bounces += other.soft_bounces;
        self.delivered += other.delivered;
        self.complaints += other.complaints;
    }

    fn audited(&self) -> serde_json::Value {
        json!({
            "sent": self.sent, "refused": self.refused, "hard_bounces": self.hard_bounces,
            "soft_bounces": self.soft_bounces, "delivered": self.delivered, "complaints": self.complaints,
            "complaint_rate": self.complaint_rate(), "hard_bounce_rate": self.hard_bounce_rate(),
        })
    }
}

fn percent(part: i64, whole: i64) -> Option<String> {
    // Two decimals, rounded half up, in integers: 0.1% must not print as 0.09%.
    (whole > 0).then(|| {
        let hundredths = (part * 10_000 * 2 + whole) / (whole * 2);
        format!("{}.{:02}%", hundredths / 100, hundredths % 100)
    })
}

/// One day or month of counts: the first day of it and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub starts: NaiveDate,
    pub totals: Totals,
}

/// An organization's counts: each of the last 30 days that had any, the last 12 months that
/// had any, and the 30 days summed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    pub days: Vec<Period>,
    pub months: Vec<Period>,
    pub last_30_days: Totals,
}

impl Counts {
    /// The breaker's window ending on `today`, from the days already read.
    pub fn window(&self, today: NaiveDate) -> Totals {
        let first = today - Duration::days(WINDOW_DAYS - 1);
        let mut totals = Totals::default();
        self.days.iter().filter(|d| d.starts >= first && d.starts <= today).for_each(|d| totals.add(&d.totals));
        totals
    }
}

#[derive(sqlx::FromRow)]
struct PeriodRow {
    starts: NaiveDate,
    #[sqlx(flatten)]
    totals: Totals,
}

const PERIODS: &str = "select starts, sent, refused, hard_bounces, soft_bounces, delivered, complaints
                         from app.sending_counts where organization_id = $1";

async fn days_since(tx: &mut TenantTx, first: NaiveDate) -> Result<Vec<Period>> {
    let rows: Vec<PeriodRow> = sqlx::query_as(&format!("{PERIODS} and span = 'day' and starts >= $2 order by starts"))
        .bind(tx.org().as_uuid())
        .bind(first)
        .fetch_all(tx.conn())
        .await?;
    Ok(rows.into_iter().map(|r| Period { starts: r.starts, totals: r.totals }).collect())
}

/// The organization's counts up to `today` (UTC), read from at most 42 rows of the counts the
/// triggers keep, never from the ledger.
pub async fn counts(tx: &mut TenantTx, today: NaiveDate) -> Result<Counts> {
    let days = days_since(tx, today - Duration::days(29)).await?;
    let rows: Vec<PeriodRow> = sqlx::query_as(&format!("{PERIODS} and span = 'month' order by starts desc limit 12"))
        .bind(tx.org().as_uuid())
        .fetch_all(tx.conn())
        .await?;
    let mut months: Vec<Period> = rows.into_iter().map(|r| Period { starts: r.starts, totals: r.totals }).collect();
    months.reverse();
    let mut last_30_days = Totals::default();
    days.iter().for_each(|d| last_30_days.add(&d.totals));
    Ok(Counts { days, months, last_30_days })
}

/// The breaker's window ending on `today`, summed.
pub async fn window(tx: &mut TenantTx, today: NaiveDate) -> Result<Totals> {
    let mut totals = Totals::default();
    days_since(tx, today - Duration::days(WINDOW_DAYS - 1)).await?.iter().for_each(|d| totals.add(&d.totals));
    Ok(totals)
}

/// Why the breaker halted sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Complaints,
    HardBounces,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Complaints => "complaints",
            Reason::HardBounces => "hard_bounces",
        }
    }
}

/// Where an organization's breaker stands, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Breaker {
    /// `clear`, `warned` or `halted`.
    pub state: String,
    /// `complaints` or `hard_bounces` while halted.
    pub reason: Option<String>,
    pub changed_at: Option<DateTime<Utc>>,
    pub min_sent: i32,
    /// Basis points of the messages handed over (500 = 5%).
    pub hard_bounce_limit: i32,
}

impl Breaker {
    pub fn halted(&self) -> bool {
        self.state == "halted"
    }
}

const BREAKER: &str =
    "select state, reason, changed_at, min_sent, hard_bounce_limit from app.sending_breakers where organization_id = $1";

/// The organization's breaker, as it is made with its defaults before anything was counted.
pub async fn get(tx: &mut TenantTx) -> Result<Breaker> {
    let found: Option<Breaker> = sqlx::query_as(BREAKER).bind(tx.org().as_uuid()).fetch_optional(tx.conn()).await?;
    Ok(found.unwrap_or(Breaker {
        state: "clear".into(),
        reason: None,
        changed_at: None,
        min_sent: DEFAULT_MIN_SENT,
        hard_bounce_limit: DEFAULT_HARD_BOUNCE_LIMIT,
    }))
}

/// The breaker's row, made if need be and locked until the transaction ends: judgements,
/// resumes and changes of one organization queue here.
async fn lock(tx: &mut TenantTx) -> Result<Breaker> {
    sqlx::query(
        "insert into app.sending_breakers (organization_id) values ($1) on conflict (organization_id) do nothing",
    )
    .bind(tx.org().as_uuid())
    .execute(tx.conn())
    .await?;
    Ok(sqlx::query_as(&format!("{BREAKER} for update")).bind(tx.org().as_uuid()).fetch_one(tx.conn()).await?)
}

async fn set_state(tx: &mut TenantTx, state: &str, reason: Option<Reason>, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("update app.sending_breakers set state = $2, reason = $3, changed_at = $4 where organization_id = $1")
        .bind(tx.org().as_uuid())
        .bind(state)
        .bind(reason.map(Reason::as_str))
        .bind(now)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// What was just recorded, which decides the lines it may cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Complaint,
    HardBounce,
    /// Anything else (a delivery, a soft bounce): it may only lower a rate.
    Other,
}

/// What a judgement did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Quiet,
    /// The complaint rate crossed the warning line: audited, the ADMINs are to be told.
    Warned(Totals),
    /// Sending halted and these campaigns paused: audited, the ADMINs are to be told.
    Tripped {
        reason: Reason,
        window: Totals,
        paused: Vec<ContentId>,
    },
}

/// Judges the organization's breaker after `event` was recorded in this transaction, at `now`.
/// A line is crossed only by the kind of event that counts towards it, and only once the window
/// holds the organization's minimum volume.
pub async fn judge(tx: &mut TenantTx, event: Event, now: DateTime<Utc>, source: &RequestSource) -> Result<Verdict> {
    let breaker = lock(tx).await?;
    if breaker.halted() {
        return Ok(Verdict::Quiet);
    }
    let window = window(tx, now.date_naive()).await?;
    let enough = window.handed_over() >= i64::from(breaker.min_sent);
    let reason = match event {
        Event::Complaint if enough && window.complaints_reach(HALT_BP) => Some(Reason::Complaints),
        Event::HardBounce if enough && window.hard_bounces_reach(i64::from(breaker.hard_bounce_limit)) => {
            Some(Reason::HardBounces)
        }
        _ => None,
    };
    if let Some(reason) = reason {
        let paused = trip(tx, &breaker, reason, &window, now, source).await?;
        return Ok(Verdict::Tripped { reason, window, paused });
    }
    let warning = enough && window.complaints_reach(WARN_BP);
    match (breaker.state.as_str(), warning) {
        ("clear", true) if event == Event::Complaint => {
            set_state(tx, "warned", None, now).await?;
            let warned = AuditEvent::new(BREAKER_WARNED, SENDING_BREAKER)
                .resource_id(tx.org())
                .source(source.clone())
                .change("state", json!("clear"), json!("warned"))
                .meta("window_days", json!(WINDOW_DAYS))
                .meta("window", window.audited());
            audit::record(tx, &warned).await?;
            Ok(Verdict::Warned(window))
        }
        // Back under the line: the next crossing warns again.
        ("warned", false) => {
            set_state(tx, "clear", None, now).await?;
            Ok(Verdict::Quiet)
        }
        _ => Ok(Verdict::Quiet),
    }
}

/// Halts sending and pauses every sending run of the organization, each audited.
async fn trip(
    tx: &mut TenantTx,
    breaker: &Breaker,
    reason: Reason,
    window: &Totals,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Vec<ContentId>> {
    set_state(tx, "halted", Some(reason), now).await?;
    let paused: Vec<uuid::Uuid> = sqlx::query_scalar(
        "update app.campaign_runs set state = 'paused', held = true
          where organization_id = $1 and state = 'sending' returning campaign_id",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let mut paused: Vec<ContentId> = paused
        .into_iter()
        .map(|id| ContentId::try_from(id).map_err(|_| stored("campaign_runs_campaign_id")))
        .collect::<Result<_>>()?;
    paused.sort();
    for id in &paused {
        let controlled = AuditEvent::new(CAMPAIGN_CONTROLLED, CAMPAIGN)
            .resource_id(id)
            .source(source.clone())
            .change("state", json!("sending"), json!("paused"))
            .meta("by", json!("breaker"))
            .meta("reason", json!(reason.as_str()));
        audit::record(tx, &controlled).await?;
    }
    let tripped = AuditEvent::new(BREAKER_TRIPPED, SENDING_BREAKER)
        .resource_id(tx.org())
        .source(source.clone())
        .change("state", json!(breaker.state), json!("halted"))
        .meta("reason", json!(reason.as_str()))
        .meta("window_days", json!(WINDOW_DAYS))
        .meta("window", window.audited())
        .meta("min_sent", json!(breaker.min_sent))
        .meta("hard_bounce_limit", json!(breaker.hard_bounce_limit))
        .meta("paused", json!(paused));
    audit::record(tx, &tripped).await?;
    Ok(paused)
}

/// A resume: the window at that moment and the campaigns that sending again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub window: Totals,
    pub campaigns: Vec<ContentId>,
}

/// Resumes a halted organization's sending on `actor`'s word (the caller checked that they are
/// an ADMIN who signed in recently): the runs the breaker paused send again, a member's own
/// pause stays. `None` when the breaker is not halted. The breaker stays armed: while the
/// window's rate is still over a line, the next complaint or hard bounce halts it again.
pub async fn resume(
    tx: &mut TenantTx,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<Resumed>> {
    let breaker = lock(tx).await?;
    if !breaker.halted() {
        return Ok(None);
    }
    let window = window(tx, now.date_naive()).await?;
    // Still over the warning line: that crossing was told already.
    let warned = window.handed_over() >= i64::from(breaker.min_sent) && window.complaints_reach(WARN_BP);
    let state = if warned { "warned" } else { "clear" };
    set_state(tx, state, None, now).await?;
    let resumed: Vec<uuid::Uuid> = sqlx::query_scalar(
        "update app.campaign_runs set state = 'sending', held = false
          where organization_id = $1 and held returning campaign_id",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let mut campaigns: Vec<ContentId> = resumed
        .into_iter()
        .map(|id| ContentId::try_from(id).map_err(|_| stored("campaign_runs_campaign_id")))
        .collect::<Result<_>>()?;
    campaigns.sort();
    for id in &campaigns {
        campaigns::schedule_sending(tx, *id, now).await?;
        let controlled = AuditEvent::new(CAMPAIGN_CONTROLLED, CAMPAIGN)
            .actor(actor)
            .resource_id(id)
            .source(source.clone())
            .change("state", json!("paused"), json!("sending"))
            .meta("by", json!("breaker_resume"));
        audit::record(tx, &controlled).await?;
    }
    let event = AuditEvent::new(BREAKER_RESUMED, SENDING_BREAKER)
        .actor(actor)
        .resource_id(tx.org())
        .source(source.clone())
        .change("state", json!("halted"), json!(state))
        .meta("reason", json!(breaker.reason))
        .meta("window_days", json!(WINDOW_DAYS))
        .meta("window", window.audited())
        .meta("resumed", json!(campaigns));
    audit::record(tx, &event).await?;
    Ok(Some(Resumed { window, campaigns }))
}

/// Sets the breaker's minimum volume and hard-bounce limit (`None` leaves one as it is; the
/// caller validated them against the ranges), audited when something changed.
pub async fn configure(
    tx: &mut TenantTx,
    min_sent: Option<i32>,
    hard_bounce_limit: Option<i32>,
    actor: UserId,
    source: &RequestSource,
) -> Result<Breaker> {
    let before = lock(tx).await?;
    let after = Breaker {
        min_sent: min_sent.unwrap_or(before.min_sent),
        hard_bounce_limit: hard_bounce_limit.unwrap_or(before.hard_bounce_limit),
        ..before.clone()
    };
    if after == before {
        return Ok(after);
    }
    sqlx::query("update app.sending_breakers set min_sent = $2, hard_bounce_limit = $3 where organization_id = $1")
        .bind(tx.org().as_uuid())
        .bind(after.min_sent)
        .bind(after.hard_bounce_limit)
        .execute(tx.conn())
        .await?;
    let mut event =
        AuditEvent::new(BREAKER_CONFIGURED, SENDING_BREAKER).actor(actor).resource_id(tx.org()).source(source.clone());
    if before.min_sent != after.min_sent {
        event = event.change("min_sent", json!(before.min_sent), json!(after.min_sent));
    }
    if before.hard_bounce_limit != after.hard_bounce_limit {
        event = event.change("hard_bounce_limit", json!(before.hard_bounce_limit), json!(after.hard_bounce_limit));
    }
    audit::record(tx, &event).await?;
    Ok(after)
}

/// The addresses of the organization's ADMINs, whom a warning or a halt is mailed to.
pub async fn admin_addresses(tx: &mut TenantTx) -> Result<Vec<String>> {
    let admins: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select user_id from app.user_organizations where organization_id = $1 and role = 'ADMIN' order by user_id",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    Ok(sqlx::query_scalar("select email from app.member_addresses($1) order by email")
        .bind(&admins)
        .fetch_all(tx.conn())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_compare_in_integers_and_print_rounded_to_hundredths_of_a_percent() {
        let t = Totals { sent: 1000, complaints: 1, ..Totals::default() };
        assert!(t.complaints_reach(WARN_BP) && !t.complaints_reach(HALT_BP));
        assert_eq!(t.complaint_rate().as_deref(), Some("0.10%"));
        let t = Totals { sent: 999, refused: 1, complaints: 3, hard_bounces: 50, ..Totals::default() };
        assert!(t.complaints_reach(HALT_BP));
        assert!(t.hard_bounces_reach(500) && !t.hard_bounces_reach(501));
        assert_eq!(t.hard_bounce_rate().as_deref(), Some("5.00%"));
        assert_eq!(Totals::default().complaint_rate(), None);
        assert_eq!(percent(1, 3), Some("33.33%".into()));
        assert_eq!(percent(2, 3), Some("66.67%".into()));
    }

    #[test]
    fn the_window_is_the_last_seven_days_today_included() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let day = |d: u32, sent: i64| Period {
            starts: NaiveDate::from_ymd_opt(2026, 3, d).unwrap(),
            totals: Totals { sent, ..Totals::default() },
        };
        let counts = Counts { days: vec![day(3, 1), day(4, 10), day(10, 100)], ..Counts::default() };
        assert_eq!(counts.window(today).sent, 110);
    }
}
