//! Campaigns in the console: the list, the editor (new and edit), a campaign's page (its
//! definition as a table, its review state, launch, pause, resume and cancel, and the progress
//! of its sending), the preview of one message with its exact headers, and the send ledger.
//! Every page calls `app::campaigns` (and the review is the content page's), as the API does.
//! Progress needs no script: the page shows where the sending stood when it was read, with a
//! link that reads it again (a timed refresh would move the page under a reader's eyes).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, NaiveTime, Utc};
use maud::{html, Markup};
use mos_db::campaigns::{self, Activity, Control, Hour, Run, MESSAGE_STATES};
use mos_db::content::Item;
use mos_domain::campaigns::Schedule;
use mos_domain::{url_component, Permission};
use serde::Deserialize;

use super::chart::{self, Series};
use super::words::confirmation;
use super::{alert, hidden, plain, refused, render, when, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::{ReadContacts, ReadContent, SendCampaigns, WriteContent};
use crate::app::breaker;
use crate::app::campaigns::{
    self as app, CampaignInput, Choices, Described, Pace, Preview, ScheduleInput, VersionInput,
};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/campaigns", get(list))
        .route("/orgs/{slug}/campaigns/new", get(new).post(post_new))
        .route("/orgs/{slug}/campaigns/{id}", get(campaign))
        .route("/orgs/{slug}/campaigns/{id}/edit", get(edit).post(post_edit))
        .route("/orgs/{slug}/campaigns/{id}/preview", get(preview))
        .route("/orgs/{slug}/campaigns/{id}/messages", get(messages))
        .route("/orgs/{slug}/campaigns/{id}/step/{step}", post(step))
}

/// The list's and the ledger's page size.
const PAGE: i64 = 50;

fn area(slug: &str, writes: bool) -> Markup {
    html! {
        nav aria-label="Campaigns" class="filters" {
            a href={ "/orgs/" (slug) } { "Organization" } " · "
            a href={ "/orgs/" (slug) "/campaigns" } { "Campaigns" }
            @if writes { " · " a href={ "/orgs/" (slug) "/campaigns/new" } { "New campaign" } }
        }
    }
}

/// A label as people read it: `local_hour` as "local hour".
fn label(value: &str) -> String {
    value.replace('_', " ")
}

#[derive(Deserialize, Default)]
struct ListQuery {
    cursor: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = visit
        .read::<ReadContent, _>(&console, &slug, "Campaigns", async |auth| {
            let (items, next) = app::list(auth, query.cursor.as_deref(), Some(PAGE)).await?;
            let runs = app::runs(auth, &items).await?;
            let breaker = breaker::standing(auth).await?;
            Ok((items, next, runs, auth.role.can(Permission::WriteContent), breaker))
        })
        .await;
    let (items, next, runs, writes, breaker) = match read {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Campaigns", |_| {
        html! {
            (area(&slug, writes))
            @if breaker.halted() {
                (alert("Sending is halted by the complaint-rate breaker: no campaign sends until an ADMIN resumes it."))
                p { a href={ "/orgs/" (slug) "/sending" } { "Sending health" } }
            } @else if breaker.state == "warned" {
                p class="note" role="status" {
                    "Spam complaints passed 0.1%; at 0.3% sending halts. "
                    a href={ "/orgs/" (slug) "/sending" } { "Sending health" }
                }
            }
            @if items.is_empty() { p { "No campaigns yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr {
                        th scope="col" { "Campaign" } th scope="col" { "Review" } th scope="col" { "Version" }
                        th scope="col" { "Sending" } th scope="col" { "Recipients" }
                    } }
                    tbody {
                        @for i in &items {
                            @let run = runs.get(&i.id);
                            tr {
                                td { a href={ "/orgs/" (slug) "/campaigns/" (i.id) } { (i.version.title) } }
                                td { (label(i.state.as_str())) }
                                td { (i.version.number) }
                                td { (run.map_or("not launched".to_owned(), |r| label(&r.state))) }
                                td { @if let Some(r) = run { (r.recipients) } @else { "—" } }
                            }
                        }
                    }
                } }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/campaigns?cursor=" (plain(&cursor)) } { "Older" } }
            }
        }
    })
    .into_response()
}

/// The editor's fields, as a browser posts them. A version is chosen as `id:number`.
#[derive(Deserialize, Default)]
struct CampaignForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    template: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    schedule: String,
    /// For `at`: a moment in UTC, as a `datetime-local` input writes it.
    #[serde(default)]
    at: String,
    /// For `local_hour`: the day and the hour.
    #[serde(default)]
    date: String,
    #[serde(default)]
    hour: String,
    /// `name:max` pairs, separated by commas.
    #[serde(default)]
    fields: String,
    /// The revision the editor was opened at.
    revision: Option<i32>,
}

/// `id:number` as a version input; anything else names no version, which the operation says.
fn version_of(choice: &str) -> VersionInput<'_> {
    let (id, number) = choice.split_once(':').unwrap_or((choice, ""));
    VersionInput { id, version: number.trim().parse().unwrap_or(0) }
}

impl CampaignForm {
    /// A blank field of the form is absent; one that does not parse is left to the operation
    /// to refuse, naming the schedule.
    fn input(&self) -> Result<CampaignInput<'_>, ApiError> {
        let wrong = |message: &str| ApiError::Invalid { field: "schedule", message: message.to_owned() };
        fn given(s: &str) -> Option<&str> {
            Some(s.trim()).filter(|s| !s.is_empty())
        }
        let at = given(&self.at)
            .map(|at| {
                chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S"))
                    .map(|t| t.and_utc())
                    .map_err(|_| wrong("the moment is written 2026-12-08T09:00 (UTC)"))
            })
            .transpose()?;
        let date = given(&self.date)
            .map(|d| {
                chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| wrong("the day is written 2026-12-08"))
            })
            .transpose()?;
        let hour =
            given(&self.hour).map(|h| h.parse::<i64>().map_err(|_| wrong("a local hour is 0 to 23"))).transpose()?;
        // Only what the chosen kind uses: the others' inputs stay on the form, unused.
        let kind = self.schedule.as_str();
        let schedule = ScheduleInput {
            kind,
            at: at.filter(|_| kind == "at"),
            date: date.filter(|_| kind == "local_hour"),
            hour: hour.filter(|_| kind == "local_hour"),
        };
        let mut fields = Vec::new();
        for pair in self.fields.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, max) = pair.split_once(':').unwrap_or((pair, "40"));
            let max = max.trim().parse().map_err(|_| ApiError::Invalid {
                field: "fields",
                message: format!("`{pair}` is not name:length, such as name:40"),
            })?;
            fields.push((name.trim(), max));
        }
        Ok(CampaignInput {
            name: &self.name,
            content: version_of(&self.content),
            template: version_of(&self.template),
            segment: version_of(&self.segment),
            sender: &self.sender,
            purpose: &self.purpose,
            schedule,
            fields,
        })
    }

    /// The editor filled with a stored definition.
    fn of(item: &Item, described: &Described) -> Self {
        let d = &described.definition;
        let (schedule, at, date, hour) = match d.schedule {
            Schedule::Now => ("now", String::new(), String::new(), String::new()),
            Schedule::At(at) => ("at", at.format("%Y-%m-%dT%H:%M:%S").to_string(), String::new(), String::new()),
            Schedule::LocalHour { date, hour } => {
                ("local_hour", String::new(), date.format("%Y-%m-%d").to_string(), hour.to_string())
            }
        };
        Self {
            name: item.version.title.clone(),
            content: format!("{}:{}", d.content.item, d.content.version),
            template: format!("{}:{}", d.template.item, d.template.version),
            segment: format!("{}:{}", d.segment.segment, d.segment.version),
            sender: d.sender.to_string(),
            purpose: d.purpose.to_string(),
            schedule: schedule.to_owned(),
            at,
            date,
            hour,
            fields: d.fields().iter().map(|f| format!("{}:{}", f.name(), f.max())).collect::<Vec<_>>().join(", "),
            revision: Some(item.revision),
        }
    }
}

/// A choice among `options` (value, words), the current one selected; a current value no
/// longer offered (a piece archived since) stays selectable, so an edit does not change it
/// unseen.
fn select(label_text: &str, name: &str, current: &str, options: &[(String, String)]) -> Markup {
    let offered = options.iter().any(|(value, _)| value == current);
    html! {
        p {
            label for=(name) { (label_text) }
            select id=(name) name=(name) required {
                @if current.is_empty() { option value="" { "Choose…" } }
                @else if !offered { option value=(current) selected { (current) " (no longer offered)" } }
                @for (value, words) in options {
                    option value=(value) selected[value == current] { (words) }
                }
            }
        }
    }
}

fn editor(
    slug: &str,
    token: &str,
    action: &str,
    form: &CampaignForm,
    choices: &Choices,
    problem: Option<&str>,
) -> Markup {
    let versions = |list: &[(mos_domain::ContentId, i32, String)]| -> Vec<(String, String)> {
        list.iter().map(|(id, n, title)| (format!("{id}:{n}"), format!("{title} (version {n})"))).collect()
    };
    let segments: Vec<(String, String)> = choices
        .segments
        .iter()
        .map(|s| (format!("{}:{}", s.id, s.latest), format!("{} (version {})", s.name, s.latest)))
        .collect();
    let senders: Vec<(String, String)> = choices
        .senders
        .iter()
        .map(|s| (s.id.to_string(), format!("{} <{}>", s.from_name.as_str(), s.from_address)))
        .collect();
    let purposes: Vec<(String, String)> = choices.purposes.iter().map(|p| (p.id.to_string(), p.name.clone())).collect();
    let kinds = [
        ("now", "As soon as it is launched"),
        ("at", "At a moment (UTC)"),
        ("local_hour", "At an hour of each recipient's own time zone"),
    ];
    let attributes = if choices.attributes.is_empty() { "none".to_owned() } else { choices.attributes.join(", ") };
    html! {
        (area(slug, true))
        @if let Some(problem) = problem { (alert(problem)) }
        p class="note" { "Saving makes a new version of the campaign; its approvals are void and its review starts over." }
        form method="post" action=(action) {
            (hidden(FORM_FIELD, token))
            @if let Some(revision) = form.revision { (hidden("revision", &revision.to_string())) }
            p {
                label for="name" { "Name" }
                input id="name" name="name" type="text" required maxlength="200" value=(form.name);
            }
            (select("Content (an approved or published email)", "content", &form.content, &versions(&choices.pieces)))
            (select("Template (an approved or published email template)", "template", &form.template, &versions(&choices.templates)))
            (select("Segment", "segment", &form.segment, &segments))
            (select("Sender", "sender", &form.sender, &senders))
            (select("Purpose (its consent is what each recipient must have)", "purpose", &form.purpose, &purposes))
            fieldset {
                legend { "When" }
                @for (kind, words) in kinds {
                    p {
                        input id={ "schedule-" (kind) } name="schedule" type="radio" value=(kind)
                            checked[form.schedule == kind || (form.schedule.is_empty() && kind == "now")];
                        " " label for={ "schedule-" (kind) } { (words) }
                    }
                }
                p { label for="at" { "Moment (UTC), for “at a moment”" } input id="at" name="at" type="datetime-local" step="1" value=(form.at); }
                p { label for="date" { "Day, for “at an hour”" } input id="date" name="date" type="date" value=(form.date); }
                p { label for="hour" { "Hour (0 to 23), for “at an hour”" } input id="hour" name="hour" type="number" min="0" max="23" value=(form.hour); }
            }
            p {
                label for="fields" { "Personalisation fields" }
                input id="fields" name="fields" type="text" value=(form.fields) aria-describedby="fields-hint";
                span id="fields-hint" class="note" {
                    "name:most characters, separated by commas, such as name:40. Only these are read of a contact to render a message. "
                    "A field is name or one of this organization's text or choice attributes: " (attributes) "."
                }
            }
            button type="submit" { "Save" }
        }
    }
}

async fn new(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let read =
        visit.read::<WriteContent, _>(&console, &slug, "New campaign", async |auth| app::choices(auth).await).await;
    let choices = match read {
        Ok(choices) => choices,
        Err(page) => return page,
    };
    let action = format!("/orgs/{slug}/campaigns/new");
    let form = CampaignForm::default();
    render(&console, &visit, StatusCode::OK, "New campaign", |t| editor(&slug, t, &action, &form, &choices, None))
        .into_response()
}

/// The editor again with what was typed and the problem, after a refusal that names a field;
/// any other refusal gets the page that says why.
async fn again(
    console: &Console,
    visit: &Visit,
    slug: &str,
    title: &str,
    action: &str,
    form: &CampaignForm,
    error: ApiError,
) -> Response {
    let ApiError::Invalid { .. } = error else { return refused(console, visit, &error, action) };
    let problem = error.to_string();
    let read = visit.read::<WriteContent, _>(console, slug, title, async |auth| app::choices(auth).await).await;
    match read {
        Ok(choices) => render(console, visit, StatusCode::UNPROCESSABLE_ENTITY, title, |t| {
            editor(slug, t, action, form, &choices, Some(&problem))
        })
        .into_response(),
        Err(page) => page,
    }
}

async fn post_new(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<CampaignForm>,
) -> Response {
    let slug = plain(&slug);
    let done = async {
        let auth = visit.member::<WriteContent>(&console, &slug).await?;
        app::create(&console.app, auth, &form.input()?).await
    };
    match done.await {
        Ok(created) => {
            Redirect::to(&format!("/orgs/{slug}/campaigns/{}?done=campaign_created", created.item.id)).into_response()
        }
        Err(error) => {
            let action = format!("/orgs/{slug}/campaigns/new");
            again(&console, &visit, &slug, "New campaign", &action, &form, error).await
        }
    }
}

async fn edit(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = visit
        .read::<WriteContent, _>(&console, &slug, "Edit the campaign", async |auth| {
            let shown = app::editable(auth, &id).await?;
            Ok((shown, app::choices(auth).await?))
        })
        .await;
    let ((item, described), choices) = match read {
        Ok(read) => read,
        Err(page) => return page,
    };
    let action = format!("/orgs/{slug}/campaigns/{id}/edit");
    let form = CampaignForm::of(&item, &described);
    render(&console, &visit, StatusCode::OK, "Edit the campaign", |t| editor(&slug, t, &action, &form, &choices, None))
        .into_response()
}

async fn post_edit(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<CampaignForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let done = async {
        let auth = visit.member::<WriteContent>(&console, &slug).await?;
        let revisions = [form.revision.unwrap_or_default()];
        app::edit(&console.app, auth, &id, &revisions, &form.input()?).await
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("/orgs/{slug}/campaigns/{id}?done=campaign_saved")).into_response(),
        Err(error) => {
            let action = format!("/orgs/{slug}/campaigns/{id}/edit");
            again(&console, &visit, &slug, "Edit the campaign", &action, &form, error).await
        }
    }
}

/// A definition as a table: what each part is, with its version and hash, so a reviewer reads
/// what the campaign's hash covers. The content review's page shows it too.
pub(super) fn definition_table(slug: &str, described: &Described) -> Markup {
    let d = &described.definition;
    let named = |name: &Option<String>| name.clone().unwrap_or_else(|| "(no longer in this organization)".to_owned());
    let schedule = match d.schedule {
        Schedule::Now => "as soon as it is launched".to_owned(),
        Schedule::At(at) => format!("at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
        Schedule::LocalHour { date, hour } => {
            format!("on {} at {hour}:00 in each recipient's own time zone", date.format("%Y-%m-%d"))
        }
    };
    html! {
        div class="scroll" { table {
            thead { tr { th scope="col" { "Part" } th scope="col" { "What" } th scope="col" { "Version" } th scope="col" { "SHA-256" } } }
            tbody {
                tr {
                    th scope="row" { "Content" }
                    td { a href={ "/orgs/" (slug) "/content/" (d.content.item) } { (named(&described.content)) } }
                    td { (d.content.version) } td { code { (d.content.sha256.to_string()) } }
                }
                tr {
                    th scope="row" { "Template" }
                    td { a href={ "/orgs/" (slug) "/content/" (d.template.item) } { (named(&described.template)) } }
                    td { (d.template.version) } td { code { (d.template.sha256.to_string()) } }
                }
                tr {
                    th scope="row" { "Segment" }
                    td { a href={ "/orgs/" (slug) "/segments/" (d.segment.segment) } { (named(&described.segment)) } }
                    td { (d.segment.version) } td { code { (d.segment.sha256.to_string()) } }
                }
                tr { th scope="row" { "Sender" } td colspan="3" { (named(&described.sender)) } }
                tr { th scope="row" { "Purpose" } td colspan="3" { (named(&described.purpose)) } }
                tr { th scope="row" { "When" } td colspan="3" { (schedule) } }
                tr {
                    th scope="row" { "Personalisation" }
                    td colspan="3" {
                        @if d.fields().is_empty() { "none" }
                        @for (n, f) in d.fields().iter().enumerate() {
                            @if n > 0 { ", " }
                            code { (f.name()) } " (at most " (f.max()) " characters)"
                        }
                    }
                }
            }
        } }
    }
}

/// Each control of the sending: its step, its form's address segment, and its button.
const STEPS: [(Step, &str, &str); 4] = [
    (Step::Launch, "launch", "Launch: snapshot the audience and start sending"),
    (Step::Control(Control::Pause), "pause", "Pause sending"),
    (Step::Control(Control::Resume), "resume", "Resume sending"),
    (Step::Control(Control::Cancel), "cancel", "Cancel the rest of the sending"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Launch,
    Control(Control),
}

impl Step {
    /// Whether the step applies to a campaign with this run (the operation decides regardless).
    fn applies(self, run: Option<&Run>) -> bool {
        matches!(
            (self, run.map(|r| r.state.as_str())),
            (Step::Launch, None)
                | (Step::Control(Control::Pause), Some("sending"))
                | (Step::Control(Control::Resume), Some("paused"))
                | (Step::Control(Control::Cancel), Some("sending" | "paused"))
        )
    }
}

/// What a campaign's page shows, read in one transaction.
struct CampaignPage {
    campaign: app::Campaign,
    described: Described,
    role: mos_domain::Role,
}

async fn campaign(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = visit
        .read::<ReadContent, _>(&console, &slug, "Campaign", async |auth| {
            let campaign = app::get(auth, &id).await?;
            let described = app::describe(&mut auth.tx, &campaign.item.version).await?;
            Ok(CampaignPage { campaign, described, role: auth.role })
        })
        .await;
    let CampaignPage { campaign, described, role } = match read {
        Ok(read) => read,
        Err(page) => return page,
    };
    let app::Campaign { item, approvals, run, links, hours } = campaign;
    let now = console.app.clock.now();
    let base = format!("/orgs/{slug}/campaigns/{id}");
    let sends = role.can(Permission::SendCampaigns);
    let title = format!("Campaign: {}", item.version.title);
    render(&console, &visit, StatusCode::OK, &title, |t| {
        html! {
            (area(&slug, role.can(Permission::WriteContent)))
            (confirmation(query.done.as_deref()))
            dl class="facts" {
                dt { "Review" } dd {
                    (label(item.state.as_str())) " (approvals " (approvals.given) " of " (approvals.required) "): "
                    a href={ "/orgs/" (slug) "/content/" (id) } { "its review" }
                }
                dt { "Version" } dd { (item.version.number) }
                dt { "SHA-256" } dd { code { (item.version.sha256.to_string()) } }
            }
            h2 { "Definition" }
            (definition_table(&slug, &described))
            @let previews = role.can(Permission::ReadContacts);
            @let edits = role.can(Permission::WriteContent) && run.is_none();
            @if previews || edits {
                p {
                    @if previews { a href={ (base) "/preview" } { "Preview a message" } }
                    @if previews && edits { " · " }
                    @if edits { a href={ (base) "/edit" } { "Edit" } }
                }
            }
            h2 { "Sending" }
            @match &run {
                None => p { "Not launched. A campaign is launched once its latest version is approved." },
                Some((run, counts)) => {
                    @let pace = Pace::of(run, counts, now);
                    dl class="facts" {
                        dt { "State" } dd { (label(&run.state)) }
                        dt { "Launched" } dd { "version " (run.version) ", " (when(now, run.launched_at)) }
                        dt { "Recipients" } dd { (run.recipients) }
                        dt { "Sent" } dd { (pace.sent) }
                        dt { "Per second" } dd { (pace.per_second.map_or("—".to_owned(), |r| format!("{r:.1}"))) }
                        dt { "Remaining" } dd { (pace.remaining) }
                        dt { "Bounced" } dd { (pace.bounced) }
                        dt { "Failed" } dd { (pace.failed) }
                        dt { "Skipped" } dd {
                            @if pace.skipped.is_empty() { "none" }
                            @for (n, (reason, count)) in pace.skipped.iter().enumerate() {
                                @if n > 0 { ", " }
                                (count) " " (label(reason))
                            }
                        }
                        dt { "Done" } dd {
                            @if let Some(at) = run.finished_at { "finished " (when(now, at)) }
                            @else if let Some(eta) = pace.eta { "expected " (when(now, eta)) " at this pace" }
                            @else { "—" }
                        }
                    }
                    (outcomes_chart(run.recipients, counts))
                    (after_the_send(&hours))
                    @if !links.is_empty() {
                        h3 { "Links" }
                        (chart::bars("Each link: recipients who followed it, and times followed",
                            &(1..=links.len()).map(|n| format!("link {n}")).collect::<Vec<_>>(), &[
                                Series { name: "recipients", values: links.iter().map(|l| l.unique).collect() },
                                Series { name: "times followed", values: links.iter().map(|l| l.total).collect() },
                            ]))
                        table {
                            thead { tr { th scope="col" { "Link" } th scope="col" { "Leads to" } th scope="col" { "Recipients who followed it" } th scope="col" { "Times followed" } } }
                            tbody {
                                @for (n, link) in links.iter().enumerate() {
                                    tr { th scope="row" { "link " (n + 1) } td { code { (link.address) } } td { (link.unique) } td { (link.total) } }
                                }
                            }
                        }
                    }
                    p {
                        a href=(base) { "Read the progress again" } " · "
                        a href={ (base) "/messages" } { "The send ledger" } " · "
                        a href={ "/v1/orgs/" (slug) "/campaigns/" (id) "/report.csv" } download { "Download the report as CSV" }
                    }
                }
            }
            @if sends {
                @for (step, route, caption) in STEPS {
                    @if step.applies(run.as_ref().map(|(r, _)| r)) {
                        form method="post" action={ (base) "/step/" (route) } class="step" {
                            (hidden(FORM_FIELD, t))
                            button type="submit" class=[(route != "launch" && route != "resume").then_some("secondary")] { (caption) }
                        }
                    }
                }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

async fn step(
    State(console): State<Console>,
    Path((slug, id, route)): Path<(String, String, String)>,
    Posted { visit, form: NoFields {} }: Posted<NoFields>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/campaigns/{id}");
    let Some((step, _, _)) = STEPS.iter().copied().find(|(_, r, _)| *r == route) else {
        return render(&console, &visit, StatusCode::NOT_FOUND, "Not found", |_| alert("There is no such step."))
            .into_response();
    };
    let done = async {
        let auth = visit.member::<SendCampaigns>(&console, &slug).await?;
        match step {
            Step::Launch => app::launch(&console.app, auth, &id).await,
            Step::Control(control) => app::control(&console.app, auth, &id, control).await,
        }
    };
    match done.await {
        Ok(_) => Redirect::to(&format!("{back}?done=campaign_{route}")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

async fn preview(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = visit
        .read::<ReadContacts, _>(&console, &slug, "Preview", async |auth| app::preview(&console.app, auth, &id).await)
        .await;
    let preview: Preview = match read {
        Ok(preview) => preview,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Preview", |_| {
        html! {
            p { a href={ "/orgs/" (slug) "/campaigns/" (id) } { "Back to the campaign" } }
            p class="note" {
                @match preview.sample {
                    Some(contact) => { "Rendered for the segment's first contact, " a href={ "/orgs/" (slug) "/contacts/" (contact) } { "this one" } "; opening it is recorded as a read of their data." }
                    None => { "The segment holds nobody now: rendered for a made-up recipient, each field showing its own name." }
                }
                " Its unsubscribe link carries no token; each real message carries its recipient's own."
            }
            h2 { "Headers" }
            div class="scroll" { table {
                thead { tr { th scope="col" { "Header" } th scope="col" { "Value" } } }
                tbody {
                    @for (name, value) in &preview.headers { tr { th scope="row" { (name) } td { code { (value) } } } }
                    tr { th scope="row" { "DKIM-Signature h=" } td { code { (preview.signed.join(":")) } } }
                }
            } }
            h2 { "Plain text" }
            // In `code`, whose long words (a link, an encoded line) wrap at a phone's width.
            pre class="diff" { code { (preview.text) } }
            h2 { "HTML" }
            p class="note" { "The HTML part's source, as the renderer sanitised it: shown as text, never run." }
            pre class="diff" { code { (preview.html) } }
        }
    })
    .into_response()
}

#[derive(Deserialize, Default)]
struct LedgerQuery {
    state: Option<String>,
    cursor: Option<String>,
    /// Rows a page, 1 to 500 (the API's rule); 50 when not given.
    limit: Option<i64>,
}

async fn messages(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<LedgerQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let state = query.state.as_deref().filter(|s| !s.is_empty());
    let read = visit
        .read::<ReadContent, _>(&console, &slug, "Send ledger", async |auth| {
            app::messages(auth, &id, state, query.cursor.as_deref(), Some(query.limit.unwrap_or(PAGE))).await
        })
        .await;
    let (rows, next) = match read {
        Ok(read) => read,
        Err(page) => return page,
    };
    let now = console.app.clock.now();
    let base = format!("/orgs/{slug}/campaigns/{id}/messages");
    // The page's own filter and size, for the link to the next page.
    let mut again = state.map(|s| format!("&state={}", url_component(s))).unwrap_or_default();
    if let Some(limit) = query.limit {
        again.push_str(&format!("&limit={limit}"));
    }
    render(&console, &visit, StatusCode::OK, "Send ledger", |_| {
        html! {
            p { a href={ "/orgs/" (slug) "/campaigns/" (id) } { "Back to the campaign" } }
            p class="note" { "One row per contact the audience held, by contact id: no address or name." }
            form method="get" action=(base) class="filters" {
                p {
                    label for="state" { "State" }
                    select id="state" name="state" {
                        option value="" { "any" }
                        @for s in MESSAGE_STATES { option value=(s) selected[state == Some(s)] { (s) } }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if rows.is_empty() { p { "Nothing here." } }
            @else {
                div class="scroll" { table {
                    thead { tr {
                        th scope="col" { "Contact" } th scope="col" { "State" } th scope="col" { "Attempts" }
                        th scope="col" { "Not before" } th scope="col" { "Sent" } th scope="col" { "Last reply" }
                    } }
                    tbody {
                        @for m in &rows {
                            tr {
                                td { code { (m.contact) } }
                                td { (m.state) @if let Some(reason) = &m.skip_reason { " (" (label(reason)) ")" } }
                                td { (m.attempts) }
                                td { (when(now, m.not_before)) }
                                td { @if let Some(at) = m.sent_at { (when(now, at)) } @else { "—" } }
                                td { (m.reply.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                } }
            }
            @if let Some(cursor) = next {
                p { a href={ (base) "?cursor=" (plain(&cursor)) (again) } { "Next" } }
            }
        }
    })
    .into_response()
}

/// A run's activity grouped for the eye: by hour while it spans three days at most, by day
/// after. Answers the unit's name and every period from the first to the last, empty ones too.
fn periods(hours: &[Hour]) -> (&'static str, Vec<(DateTime<Utc>, Activity)>) {
    let (Some(first), Some(last)) = (hours.first(), hours.last()) else { return ("hour", Vec::new()) };
    let by_day = last.starts - first.starts > Duration::hours(72);
    let (unit, step, start) = if by_day {
        ("day", Duration::days(1), first.starts.date_naive().and_time(NaiveTime::MIN).and_utc())
    } else {
        ("hour", Duration::hours(1), first.starts)
    };
    // Each hour is added to its period in one pass: a campaign read for a year is 8,760 hours.
    let period = |at: DateTime<Utc>| usize::try_from((at - start).num_seconds() / step.num_seconds()).unwrap_or(0);
    let mut grouped: Vec<(DateTime<Utc>, Activity)> = (0..=period(last.starts))
        .map(|n| (start + step * i32::try_from(n).unwrap_or(i32::MAX), Activity::default()))
        .collect();
    for h in hours {
        if let Some((_, sum)) = grouped.get_mut(period(h.starts)) {
            *sum += h.activity;
        }
    }
    (unit, grouped)
}

/// What came back after the send and what the recipients did: the totals, the volume and the
/// responses drawn per hour (or day), and a table of every period that had any.
fn after_the_send(hours: &[Hour]) -> Markup {
    let total = campaigns::total(hours);
    let (unit, grouped) = periods(hours);
    let format = if unit == "hour" { "%m-%d %H:00" } else { "%Y-%m-%d" };
    let labels: Vec<String> = grouped.iter().map(|(at, _)| at.format(format).to_string()).collect();
    let of = |count: fn(&Activity) -> i64| -> Vec<i64> { grouped.iter().map(|(_, a)| count(a)).collect() };
    html! {
        h3 { "After the send" }
        dl class="facts" {
            dt { "Delivered" } dd { (total.delivered) }
            dt { "Deferred" } dd { (total.deferred) }
            dt { "Hard bounces" } dd { (total.hard_bounces) }
            dt { "Soft bounces" } dd { (total.soft_bounces) }
            dt { "Complaints" } dd { (total.complaints) }
            dt { "Unsubscribed" } dd { (total.unsubscribes) }
            dt { "Recipients who clicked" } dd { (total.clickers) }
            dt { "Clicks" } dd { (total.clicks) }
        }
        @if !grouped.is_empty() {
            (chart::bars(&format!("Messages handed over and delivered each {unit} (UTC)"), &labels, &[
                Series { name: "sent", values: of(|a| a.sent) },
                Series { name: "delivered", values: of(|a| a.delivered) },
            ]))
            (chart::bars(&format!("Clicks, bounces, complaints and unsubscribes each {unit} (UTC)"), &labels, &[
                Series { name: "clicks", values: of(|a| a.clicks) },
                Series { name: "bounces", values: of(|a| a.hard_bounces + a.soft_bounces) },
                Series { name: "complaints", values: of(|a| a.complaints) },
                Series { name: "unsubscribes", values: of(|a| a.unsubscribes) },
            ]))
            div class="scroll" { table {
                caption { "Each " (unit) " (UTC) with any activity" }
                thead { tr {
                    th scope="col" { (if unit == "hour" { "Hour" } else { "Day" }) } th scope="col" { "Sent" }
                    th scope="col" { "Delivered" } th scope="col" { "Deferred" } th scope="col" { "Hard bounces" }
                    th scope="col" { "Soft bounces" } th scope="col" { "Complaints" } th scope="col" { "Unsubscribed" }
                    th scope="col" { "Clicks" } th scope="col" { "First clicks" }
                } }
                tbody {
                    @for ((_, a), label) in grouped.iter().zip(&labels).filter(|((_, a), _)| *a != Activity::default()) {
                        tr {
                            th scope="row" { (label) }
                            td { (a.sent) } td { (a.delivered) } td { (a.deferred) } td { (a.hard_bounces) }
                            td { (a.soft_bounces) } td { (a.complaints) } td { (a.unsubscribes) } td { (a.clicks) }
                            td { (a.clickers) }
                        }
                    }
                }
            } }
        }
    }
}

/// The run's messages by outcome, drawn; the facts above the chart hold the same numbers.
fn outcomes_chart(recipients: i64, counts: &std::collections::BTreeMap<String, i64>) -> Markup {
    let labels: Vec<String> = counts.keys().map(|outcome| label(outcome)).collect();
    let values = counts.values().copied().collect();
    html! {
        @if recipients > 0 {
            (chart::bars("The recipients' messages by outcome", &labels, &[Series { name: "messages", values }]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(at: &str, clicks: i64) -> Hour {
        let starts = DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc);
        Hour { starts, activity: Activity { clicks, ..Activity::default() } }
    }

    #[test]
    fn activity_is_drawn_per_hour_for_three_days_and_per_day_after_with_every_period_in_between() {
        let hours = [hour("2026-12-01T10:00:00Z", 1), hour("2026-12-01T12:00:00Z", 2)];
        let (unit, grouped) = periods(&hours);
        let clicks: Vec<i64> = grouped.iter().map(|(_, a)| a.clicks).collect();
        assert_eq!((unit, clicks), ("hour", vec![1, 0, 2]));
        let hours = [hour("2026-12-01T10:00:00Z", 1), hour("2026-12-01T23:00:00Z", 2), hour("2026-12-05T01:00:00Z", 4)];
        let (unit, grouped) = periods(&hours);
        let days: Vec<(String, i64)> = grouped.iter().map(|(at, a)| (at.format("%d").to_string(), a.clicks)).collect();
        let expected = [("01", 3), ("02", 0), ("03", 0), ("04", 0), ("05", 4)].map(|(d, n)| (d.to_owned(), n));
        assert_eq!((unit, days), ("day", expected.to_vec()));
    }
}
