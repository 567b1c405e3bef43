//! The complaint-rate breaker under `/v1/orgs/{slug}/sending-breaker`: where it stands with the
//! window's counts, its settings, and the ADMIN's resume. Adapters over `app::breaker`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use mos_db::breaker::{Period, Totals, HALT_BP, WARN_BP, WINDOW_DAYS};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ManageOrganization, ReadOrganization};
use crate::app::breaker::{self as app, Shown};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_breaker, configure_breaker))
        .routes(routes!(resume_sending))
        .routes(routes!(sending_csv))
}

/// What an organization's sending came to over a span of time.
#[derive(Serialize, ToSchema)]
pub struct TotalsView {
    /// Accepted by the relay.
    sent: i64,
    /// Refused by the relay at hand-over (5xx); each also counts as a hard or a soft bounce.
    refused: i64,
    hard_bounces: i64,
    soft_bounces: i64,
    delivered: i64,
    complaints: i64,
    /// Complaints over messages sent, in percent with two decimals; absent before any was sent.
    #[schema(example = "0.12%")]
    complaint_rate: Option<String>,
    /// Hard bounces over messages handed over (sent and refused), in percent.
    #[schema(example = "1.50%")]
    hard_bounce_rate: Option<String>,
}

impl From<Totals> for TotalsView {
    fn from(t: Totals) -> Self {
        Self {
            sent: t.sent,
            refused: t.refused,
            hard_bounces: t.hard_bounces,
            soft_bounces: t.soft_bounces,
            delivered: t.delivered,
            complaints: t.complaints,
            complaint_rate: t.complaint_rate(),
            hard_bounce_rate: t.hard_bounce_rate(),
        }
    }
}

/// One UTC day or month of counts.
#[derive(Serialize, ToSchema)]
pub struct PeriodView {
    /// Its first day.
    starts: NaiveDate,
    #[serde(flatten)]
    totals: TotalsView,
}

impl From<Period> for PeriodView {
    fn from(p: Period) -> Self {
        Self { starts: p.starts, totals: p.totals.into() }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BreakerState {
    /// Under the warning line, or too little sent for a rate to count.
    Clear,
    /// The complaint rate crossed 0.1%: the ADMINs were told.
    Warned,
    /// Sending halted: no campaign sends until an ADMIN resumes.
    Halted,
}

#[derive(Serialize, ToSchema)]
pub struct BreakerView {
    state: BreakerState,
    /// While halted: `complaints` or `hard_bounces`.
    reason: Option<String>,
    /// When the state last changed.
    changed_at: Option<DateTime<Utc>>,
    /// The messages handed over in the window before a rate counts.
    min_sent: i32,
    /// The hard-bounce rate that halts sending, in basis points (500 = 5%).
    hard_bounce_limit: i32,
    /// The complaint rates that warn and halt, in basis points (10 = 0.1%, 30 = 0.3%).
    warn_complaints_at: i64,
    halt_complaints_at: i64,
    /// The window's length in UTC days, today included.
    window_days: i64,
    window: TotalsView,
    last_30_days: TotalsView,
    /// The last 30 days that had any sending, oldest first.
    days: Vec<PeriodView>,
    /// The last 12 months that had any sending, oldest first.
    months: Vec<PeriodView>,
}

impl From<Shown> for BreakerView {
    fn from(s: Shown) -> Self {
        let state = match s.breaker.state.as_str() {
            "halted" => BreakerState::Halted,
            "warned" => BreakerState::Warned,
            _ => BreakerState::Clear,
        };
        Self {
            state,
            reason: s.breaker.reason,
            changed_at: s.breaker.changed_at,
            min_sent: s.breaker.min_sent,
            hard_bounce_limit: s.breaker.hard_bounce_limit,
            warn_complaints_at: WARN_BP,
            halt_complaints_at: HALT_BP,
            window_days: WINDOW_DAYS,
            window: s.window.into(),
            last_30_days: s.counts.last_30_days.into(),
            days: s.counts.days.into_iter().map(Into::into).collect(),
            months: s.counts.months.into_iter().map(Into::into).collect(),
        }
    }
}

/// The organization's complaint-rate breaker: where it stands, its settings, and the counts it
/// judges (docs/sending.md, "Complaint-rate breaker").
#[utoipa::path(get, path = "/v1/orgs/{slug}/sending-breaker", tag = "campaigns",
    params(("slug" = String, Path)),
    responses((status = 200, body = BreakerView)))]
async fn get_breaker(
    State(state): State<AppState>,
    mut auth: Authorized<ReadOrganization>,
) -> Result<Json<BreakerView>, ApiError> {
    let shown = app::get(&state, &mut auth).await?;
    auth.commit().await?;
    Ok(Json(shown.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerChange {
    /// Messages handed over in the window before a rate counts: 100 to 1,000,000.
    #[schema(minimum = 100, maximum = 1000000, example = 1000)]
    min_sent: Option<i32>,
    /// The hard-bounce rate that halts sending, in basis points: 50 (0.5%) to 2000 (20%).
    #[schema(minimum = 50, maximum = 2000, example = 500)]
    hard_bounce_limit: Option<i32>,
}

/// Set the breaker's minimum volume and hard-bounce limit. An organization policy: an ADMIN
/// with a recent sign-in; audited.
#[utoipa::path(patch, path = "/v1/orgs/{slug}/sending-breaker", tag = "campaigns", request_body = BreakerChange,
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = BreakerView),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 422, description = "A setting out of its range (`field` names it)"),
    ))]
async fn configure_breaker(
    State(state): State<AppState>,
    auth: Authorized<ManageOrganization>,
    ApiJson(body): ApiJson<BreakerChange>,
) -> Result<Json<BreakerView>, ApiError> {
    Ok(Json(app::configure(&state, auth, body.min_sent, body.hard_bounce_limit).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct ResumedView {
    /// The campaigns the breaker had paused, sending again.
    resumed: Vec<uuid::Uuid>,
    breaker: BreakerView,
}

/// Resume the organization's sending after the breaker halted it: the campaigns it paused send
/// again (a campaign a member paused stays paused). An ADMIN with a recent sign-in; audited
/// with the rates at that moment. The breaker stays armed: while a rate is still over its
/// line, the next complaint or hard bounce halts sending again.
#[utoipa::path(post, path = "/v1/orgs/{slug}/sending-breaker/resume", tag = "campaigns",
    params(("slug" = String, Path)),
    responses(
        (status = 200, body = ResumedView),
        (status = 403, description = "Not allowed, or reauthenticate first"),
        (status = 409, description = "The organization's sending is not halted"),
    ))]
async fn resume_sending(
    State(state): State<AppState>,
    auth: Authorized<ManageOrganization>,
) -> Result<Json<ResumedView>, ApiError> {
    let (resumed, shown) = app::resume(&state, auth).await?;
    Ok(Json(ResumedView { resumed: resumed.campaigns.iter().map(|c| c.as_uuid()).collect(), breaker: shown.into() }))
}

/// The CSV of an organization's sending: one line per day of the last 30 and per month of the
/// last 12 that had any, as the breaker counts them.
const CSV_HEADER: &str =
    "period,starts,sent,refused,hard_bounces,soft_bounces,delivered,complaints,complaint_rate,hard_bounce_rate\r\n";

fn csv_line(period: &str, p: &Period) -> String {
    let t = &p.totals;
    let rate = |r: Option<String>| r.unwrap_or_default();
    format!(
        "{period},{},{},{},{},{},{},{},{},{}\r\n",
        p.starts,
        t.sent,
        t.refused,
        t.hard_bounces,
        t.soft_bounces,
        t.delivered,
        t.complaints,
        rate(t.complaint_rate()),
        rate(t.hard_bounce_rate())
    )
}

/// The organization's sending per day (the last 30) and month (the last 12), as CSV.
///
/// The same counts as `GET /v1/orgs/{slug}/sending-breaker`, every row a period that had any
/// sending or feedback: `period` is `day` or `month`, `starts` its first day (UTC).
#[utoipa::path(get, path = "/v1/orgs/{slug}/reports/sending.csv", tag = "campaigns",
    params(("slug" = String, Path)),
    responses((status = 200, description = "text/csv, one line per period", content_type = "text/csv", body = String)))]
async fn sending_csv(
    State(state): State<AppState>,
    mut auth: Authorized<ReadOrganization>,
) -> Result<impl IntoResponse, ApiError> {
    let shown = app::get(&state, &mut auth).await?;
    auth.commit().await?;
    let mut csv = String::from(CSV_HEADER);
    shown.counts.days.iter().for_each(|p| csv.push_str(&csv_line("day", p)));
    shown.counts.months.iter().for_each(|p| csv.push_str(&csv_line("month", p)));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"sending.csv\"".to_owned()),
        ],
        csv,
    ))
}
