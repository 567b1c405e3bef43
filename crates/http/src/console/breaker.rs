//! The organization's sending health in the console: where its complaint-rate breaker stands,
//! the counts it judges (the window, the last 30 days, the months), its settings, and the
//! ADMIN's resume of halted sending. Every action calls `app::breaker`, as the API does.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Duration, NaiveDate};
use maud::{html, Markup};
use mos_db::breaker::{Period, Totals, WINDOW_DAYS};
use mos_domain::Permission;
use serde::Deserialize;

use super::chart::{self, Series};
use super::words::confirmation;
use super::{alert, failed, hidden, plain, refused, render, when, Console, NoFields, Posted, FORM_FIELD};
use crate::access::{ManageOrganization, ReadOrganization};
use crate::app::breaker::{self as app, Shown};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/sending", get(page).post(post_settings))
        .route("/orgs/{slug}/sending/resume", post(resume))
}

#[derive(Deserialize, Default)]
struct PageQuery {
    done: Option<String>,
}

fn rate(r: Option<String>) -> String {
    r.unwrap_or_else(|| "–".into())
}

fn head() -> Markup {
    html! {
        thead { tr {
            th scope="col" { "Period" } th scope="col" { "Sent" } th scope="col" { "Refused" }
            th scope="col" { "Hard bounces" } th scope="col" { "Soft bounces" } th scope="col" { "Delivered" }
            th scope="col" { "Complaints" } th scope="col" { "Complaint rate" } th scope="col" { "Hard-bounce rate" }
        } }
    }
}

fn row(label: &str, t: &Totals) -> Markup {
    html! {
        tr {
            th scope="row" { (label) }
            td { (t.sent) } td { (t.refused) } td { (t.hard_bounces) } td { (t.soft_bounces) } td { (t.delivered) }
            td { (t.complaints) } td { (rate(t.complaint_rate())) } td { (rate(t.hard_bounce_rate())) }
        }
    }
}

fn periods(caption: &str, rows: &[Period], format: &str) -> Markup {
    html! {
        @if !rows.is_empty() {
            div class="scroll" { table {
                caption { (caption) }
                (head())
                tbody { @for p in rows { (row(&p.starts.format(format).to_string(), &p.totals)) } }
            } }
        }
    }
}

/// The last 30 days drawn: the volume, then what counts against it, every day (a day without a
/// row as zeros). The table after them holds the same numbers.
fn daily_charts(days: &[Period], today: NaiveDate) -> Markup {
    let dates: Vec<NaiveDate> = (0..30).rev().map(|n| today - Duration::days(n)).collect();
    let labels: Vec<String> = dates.iter().map(|d| d.format("%m-%d").to_string()).collect();
    let of = |count: fn(&Totals) -> i64| -> Vec<i64> {
        dates.iter().map(|d| days.iter().find(|p| p.starts == *d).map_or(0, |p| count(&p.totals))).collect()
    };
    html! {
        (chart::bars("Messages handed over each day", &labels, &[Series { name: "sent", values: of(|t| t.sent) }]))
        (chart::bars("Complaints and hard bounces each day", &labels, &[
            Series { name: "complaints", values: of(|t| t.complaints) },
            Series { name: "hard bounces", values: of(|t| t.hard_bounces) },
        ]))
    }
}

fn body(slug: &str, token: &str, shown: &Shown, manages: bool, now: chrono::DateTime<chrono::Utc>) -> Markup {
    let b = &shown.breaker;
    html! {
        nav aria-label="Sending" class="filters" {
            a href={ "/orgs/" (slug) } { "Organization" } " · "
            a href={ "/orgs/" (slug) "/campaigns" } { "Campaigns" }
        }
        @match b.state.as_str() {
            "halted" => {
                (alert(if b.reason.as_deref() == Some("hard_bounces") {
                    "Sending is halted: hard bounces reached the organization's limit. No campaign sends until an ADMIN resumes."
                } else {
                    "Sending is halted: spam complaints reached 0.3%. No campaign sends until an ADMIN resumes."
                }))
            }
            "warned" => {
                (alert("Spam complaints passed 0.1% of the messages sent. At 0.3% sending halts until an ADMIN resumes it."))
            }
            _ => { p { "Sending is not held back: complaints and hard bounces are under their lines." } }
        }
        @if let Some(at) = b.changed_at { p class="note" { "Last change: " (when(now, at)) } }
        p {
            "The breaker judges the last " (WINDOW_DAYS) " days once at least " (b.min_sent)
            " messages were handed over in them: a warning at 0.1% complaints, a halt at 0.3% complaints or at "
            (format!("{}.{:02}%", b.hard_bounce_limit / 100, b.hard_bounce_limit % 100)) " hard bounces."
        }
        div class="scroll" { table {
            caption { "The breaker's window and the last 30 days" }
            (head())
            tbody {
                (row(&format!("Last {WINDOW_DAYS} days"), &shown.window))
                (row("Last 30 days", &shown.counts.last_30_days))
            }
        } }
        (daily_charts(&shown.counts.days, now.date_naive()))
        p { a href={ "/v1/orgs/" (slug) "/reports/sending.csv" } download { "Download the days and months as CSV" } }
        (periods("Each day of the last 30 (UTC)", &shown.counts.days, "%Y-%m-%d"))
        (periods("Each month", &shown.counts.months, "%Y-%m"))
        @if manages && b.halted() {
            h2 { "Resume sending" }
            p { "The campaigns the breaker paused send again; a campaign a member paused stays paused. While a rate is still over its line, the next complaint or hard bounce halts sending again." }
            form method="post" action={ "/orgs/" (slug) "/sending/resume" } {
                (hidden(FORM_FIELD, token))
                button type="submit" { "Resume sending" }
            }
        }
        @if manages {
            h2 { "Settings" }
            form method="post" action={ "/orgs/" (slug) "/sending" } {
                (hidden(FORM_FIELD, token))
                p {
                    label for="min_sent" { "Messages handed over in the window before a rate counts" }
                    input id="min_sent" name="min_sent" type="number" min="100" max="1000000" required value=(b.min_sent);
                }
                p {
                    label for="hard_bounce_limit" { "Hard-bounce rate that halts sending, in basis points (500 = 5%)" }
                    input id="hard_bounce_limit" name="hard_bounce_limit" type="number" min="50" max="2000" required
                        value=(b.hard_bounce_limit);
                }
                button type="submit" { "Save" }
            }
        }
    }
}

async fn page(
    State(console): State<Console>,
    visit: super::Visit,
    Path(slug): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = async {
        let mut auth = visit.member::<ReadOrganization>(&console, &slug).await?;
        let shown = app::get(&console.app, &mut auth).await?;
        let manages = auth.role.can(Permission::ManageOrganization);
        auth.commit().await?;
        Ok::<_, ApiError>((shown, manages))
    };
    let (shown, manages) = match read.await {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Sending health"),
    };
    let now = console.app.clock.now();
    render(&console, &visit, StatusCode::OK, "Sending health", |t| {
        html! { (confirmation(query.done.as_deref())) (body(&slug, t, &shown, manages, now)) }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct SettingsForm {
    #[serde(default)]
    min_sent: String,
    #[serde(default)]
    hard_bounce_limit: String,
}

fn number(field: &'static str, text: &str) -> Result<i32, ApiError> {
    text.trim().parse().map_err(|_| ApiError::Invalid { field, message: format!("{field} must be a whole number") })
}

async fn post_settings(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<SettingsForm>,
) -> Response {
    let slug = plain(&slug);
    let done = async {
        let min_sent = number("min_sent", &form.min_sent)?;
        let limit = number("hard_bounce_limit", &form.hard_bounce_limit)?;
        let auth = visit.member::<ManageOrganization>(&console, &slug).await?;
        app::configure(&console.app, auth, Some(min_sent), Some(limit)).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/sending?done=breaker_saved")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/sending")),
    }
}

async fn resume(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let slug = plain(&slug);
    let done = async {
        let auth = visit.member::<ManageOrganization>(&console, &slug).await?;
        app::resume(&console.app, auth).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/sending?done=breaker_resumed")).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/sending")),
    }
}
