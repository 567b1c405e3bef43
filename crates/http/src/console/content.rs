//! Content and its review: the list with its filters and "waiting for my review", a new piece,
//! a piece's page (its latest version, the editor, the review panel, its versions and history)
//! and the diff of two versions. Which buttons a page shows comes from the domain's one state
//! machine; the API decides regardless.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_domain::content::{Action, Actor, Approvals, Channel, State as ReviewState};
use mos_domain::{reveal, url_component, Role};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{alert, hidden, needs_session, plain, refused, render, text, Answer, Console, Posted, Visit, FORM_FIELD};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/content", get(list).post(create))
        .route("/orgs/{slug}/content/new", get(new_page))
        .route("/orgs/{slug}/content/{id}", get(item))
        .route("/orgs/{slug}/content/{id}/edit", post(edit))
        .route("/orgs/{slug}/content/{id}/step/{action}", post(step))
        .route("/orgs/{slug}/content/{id}/diff", get(diff))
}

/// Who is looking, as far as a page's controls care, and the members' addresses by id.
struct Viewer {
    id: String,
    role: Option<Role>,
    emails: HashMap<String, String>,
}

impl Viewer {
    /// A member's address, or their id once they have left.
    fn name<'a>(&'a self, id: &'a str) -> &'a str {
        self.emails.get(id).map_or(id, String::as_str)
    }
}

async fn viewer(console: &Console, visit: &Visit, slug: &str) -> Viewer {
    let me = visit.api(console, Method::GET, "/v1/me", None).await;
    let id = text(&me.body, "id").to_owned();
    let members = visit.api(console, Method::GET, &format!("/v1/orgs/{slug}/members"), None).await;
    let all = members.body.as_array().cloned().unwrap_or_default();
    let role = all
        .iter()
        .find(|m| m["user_id"].as_str() == Some(id.as_str()))
        .and_then(|m| m["role"].as_str())
        .and_then(|r| r.parse().ok());
    let emails = all.iter().map(|m| (text(m, "user_id").to_owned(), text(m, "email").to_owned())).collect();
    Viewer { id, role, emails }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    state: Option<String>,
    channel: Option<String>,
    tag: Option<String>,
    q: Option<String>,
    mine: Option<String>,
    cursor: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let slug = plain(&slug);
    let filters = [("state", &query.state), ("channel", &query.channel), ("tag", &query.tag), ("q", &query.q)];
    let encoded: String = filters
        .iter()
        .filter_map(|(name, value)| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(|v| (name, v)))
        .map(|(name, value)| format!("&{name}={}", url_component(value)))
        .collect();
    let waiting = query.mine.as_deref() == Some("review");
    let mut path = format!("/v1/orgs/{slug}/content?limit=50{encoded}");
    if waiting {
        path.push_str("&awaiting_my_review=true");
    }
    // The page's own filters, for the link to the next page.
    let again = if waiting { format!("{encoded}&mine=review") } else { encoded };
    if let Some(cursor) = &query.cursor {
        path.push_str(&format!("&cursor={}", plain(cursor)));
    }
    let page = visit.api(&console, Method::GET, &path, None).await;
    if let Some(to_sign_in) = needs_session(&page) {
        return to_sign_in;
    }
    if !page.ok() {
        return render(&console, &visit, page.status, "Content", |_| alert(&page.detail())).into_response();
    }
    let role = viewer(&console, &visit, &slug).await.role;
    let writes = role.is_some_and(|r| r.can(mos_domain::Permission::WriteContent));
    let items = page.body["items"].as_array().cloned().unwrap_or_default();
    let next = page.body["next_cursor"].as_str().map(plain);
    let title = if waiting { "Waiting for my review" } else { "Content" };
    render(&console, &visit, StatusCode::OK, title, |_| {
        html! {
            p {
                a href={ "/orgs/" (slug) } { "Organization" } " · "
                a href={ "/orgs/" (slug) "/content" } { "All content" } " · "
                a href={ "/orgs/" (slug) "/content?mine=review" } { "Waiting for my review" }
                @if writes { " · " a href={ "/orgs/" (slug) "/content/new" } { "New content" } }
            }
            form method="get" action={ "/orgs/" (slug) "/content" } class="filters" {
                @if waiting { (hidden("mine", "review")) }
                p {
                    label for="state" { "State" }
                    select id="state" name="state" {
                        option value="" { "any" }
                        @for s in ReviewState::ALL {
                            option value=(s.as_str()) selected[query.state.as_deref() == Some(s.as_str())] { (label(s.as_str())) }
                        }
                    }
                }
                p {
                    label for="channel" { "Channel" }
                    (channel_select("channel", query.channel.as_deref(), true))
                }
                p { label for="tag" { "Tag" } input id="tag" name="tag" type="text" value=[query.tag.as_deref()]; }
                p { label for="q" { "Words in title or text" } input id="q" name="q" type="search" value=[query.q.as_deref()]; }
                button type="submit" { "Filter" }
            }
            @if items.is_empty() { p { "Nothing here." } }
            @else {
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" { "Title" } th scope="col" { "State" } th scope="col" { "Channel" } th scope="col" { "Version" } th scope="col" { "Tags" } } }
                        tbody {
                            @for i in &items {
                                tr {
                                    td { a href={ "/orgs/" (slug) "/content/" (plain(text(i, "id"))) } { (text(i, "title")) } }
                                    td { (label(text(i, "state"))) }
                                    td { (label(text(i, "channel"))) }
                                    td { (i["version"]) }
                                    td { (tags(&i["tags"])) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/content?cursor=" (cursor) (again) } { "Older" } }
            }
        }
    })
    .into_response()
}

/// A label as people read it: `in_review` as "in review".
fn label(value: &str) -> String {
    value.replace('_', " ")
}

fn tags(value: &Value) -> String {
    value.as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

fn channel_select(id: &str, selected: Option<&str>, any: bool) -> Markup {
    html! {
        select id=(id) name="channel" {
            @if any { option value="" { "any" } }
            @for c in Channel::ALL {
                option value=(c.as_str()) selected[selected == Some(c.as_str())] { (label(c.as_str())) }
            }
        }
    }
}

/// The fields of a version's text, filled with `current` when editing.
fn text_fields(current: Option<&Value>) -> Markup {
    let value = |key: &str| current.map(|c| text(c, key).to_owned()).unwrap_or_default();
    html! {
        p { label for="title" { "Title" } input id="title" name="title" type="text" required maxlength="200" value=(value("title")); }
        p { label for="channel" { "Channel" } (channel_select("channel", current.map(|c| text(c, "channel")), false)) }
        p { label for="audience" { "Audience" } input id="audience" name="audience" type="text" maxlength="500" value=(value("audience")); }
        p { label for="tags" { "Tags (comma-separated)" } input id="tags" name="tags" type="text" value=(current.map(|c| tags(&c["tags"])).unwrap_or_default()); }
        p { label for="body" { "Text (Markdown)" } textarea id="body" name="body" rows="14" { (value("body")) } }
    }
}

async fn new_page(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    if !visit.signed_in() {
        return Redirect::to("/sign-in").into_response();
    }
    render(&console, &visit, StatusCode::OK, "New content", |t| {
        html! {
            form method="post" action={ "/orgs/" (slug) "/content" } {
                (hidden(FORM_FIELD, t))
                (text_fields(None))
                button type="submit" { "Create draft" }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct TextForm {
    title: String,
    channel: String,
    audience: String,
    tags: String,
    body: String,
    /// The revision the editor was opened at.
    revision: Option<i32>,
}

impl TextForm {
    fn json(&self) -> Value {
        let tags: Vec<&str> = self.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        json!({ "title": self.title, "channel": self.channel, "audience": self.audience, "body": self.body, "tags": tags })
    }
}

async fn create(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<TextForm>,
) -> Response {
    let slug = plain(&slug);
    let answer = visit.api(&console, Method::POST, &format!("/v1/orgs/{slug}/content"), Some(form.json())).await;
    if answer.ok() {
        return Redirect::to(&format!("/orgs/{slug}/content/{}", plain(text(&answer.body, "id")))).into_response();
    }
    refused(&console, &visit, &answer, &format!("/orgs/{slug}/content/new"))
}

async fn edit(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<TextForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let if_match = format!("\"{}\"", form.revision.unwrap_or_default());
    let answer = visit
        .api_with(
            &console,
            Method::PATCH,
            &format!("/v1/orgs/{slug}/content/{id}"),
            Some(form.json()),
            &[(header::IF_MATCH, if_match)],
        )
        .await;
    let back = format!("/orgs/{slug}/content/{id}");
    if answer.ok() {
        return Redirect::to(&back).into_response();
    }
    refused(&console, &visit, &answer, &back)
}

#[derive(Deserialize)]
struct StepForm {
    sha256: Option<String>,
    note: Option<String>,
    revision: Option<i32>,
}

/// The API route of each step the review panel offers.
const STEPS: [(Action, &str, &str); 7] = [
    (Action::Submit, "submit", "Submit for review"),
    (Action::Withdraw, "withdraw", "Withdraw from review"),
    (Action::Approve, "approve", "Approve this version"),
    (Action::RequestChanges, "request-changes", "Request changes"),
    (Action::Comment, "comments", "Comment"),
    (Action::Publish, "publish", "Publish the approved version"),
    (Action::Archive, "archive", "Archive"),
];

async fn step(
    State(console): State<Console>,
    Path((slug, id, action)): Path<(String, String, String)>,
    Posted { visit, form }: Posted<StepForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/content/{id}");
    let Some((_, route, _)) = STEPS.iter().find(|(_, route, _)| *route == action) else {
        return render(&console, &visit, StatusCode::NOT_FOUND, "Not found", |_| alert("There is no such step."))
            .into_response();
    };
    let body =
        json!({ "sha256": form.sha256.filter(|s| !s.is_empty()), "note": form.note.filter(|n| !n.trim().is_empty()) });
    let extra: Vec<(HeaderName, String)> =
        form.revision.map(|r| (header::IF_MATCH, format!("\"{r}\""))).into_iter().collect();
    let answer = visit
        .api_with(&console, Method::POST, &format!("/v1/orgs/{slug}/content/{id}/{route}"), Some(body), &extra)
        .await;
    if answer.ok() {
        return Redirect::to(&back).into_response();
    }
    refused(&console, &visit, &answer, &back)
}

async fn item(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let base = format!("/v1/orgs/{slug}/content/{id}");
    let found = visit.api(&console, Method::GET, &base, None).await;
    if let Some(to_sign_in) = needs_session(&found) {
        return to_sign_in;
    }
    if !found.ok() {
        return render(&console, &visit, found.status, "Content", |_| alert(&found.detail())).into_response();
    }
    let versions = visit.api(&console, Method::GET, &format!("{base}/versions"), None).await;
    let history = visit.api(&console, Method::GET, &format!("{base}/history"), None).await;
    let who = viewer(&console, &visit, &slug).await;
    let (role, me) = (who.role, who.id.clone());
    let body = &found.body;
    let version = &body["version"];
    let state: Option<ReviewState> = text(body, "state").parse().ok();
    let approvals = Approvals {
        given: u32::try_from(body["approvals"]["given"].as_u64().unwrap_or(0)).unwrap_or(0),
        required: u32::try_from(body["approvals"]["required"].as_u64().unwrap_or(1)).unwrap_or(1),
    };
    let approved_by_me = history.body.as_array().is_some_and(|h| {
        h.iter()
            .any(|e| e["kind"] == "approved" && e["actor"].as_str() == Some(&me) && e["version"] == version["number"])
    });
    let possible = |action: Action| match (state, role) {
        (Some(state), Some(role)) => {
            let actor = Actor {
                role,
                owns_item: text(body, "created_by") == me,
                wrote_version: text(version, "author") == me,
                approved_version: approved_by_me,
            };
            state.decide(action, actor, approvals).is_ok()
        }
        _ => false,
    };
    let revision = body["revision"].as_i64().unwrap_or_default().to_string();
    let sha = text(version, "sha256").to_owned();
    let all_versions = versions.body.as_array().cloned().unwrap_or_default();
    let events = history.body.as_array().cloned().unwrap_or_default();
    let title = text(version, "title").to_owned();
    render(&console, &visit, StatusCode::OK, &title, |t| {
        html! {
            p { a href={ "/orgs/" (slug) "/content" } { "All content" } }
            dl class="facts" {
                dt { "State" } dd {
                    (label(text(body, "state"))) " (approvals " (approvals.given) " of " (approvals.required)
                    @if let Some(lapsed) = body["approvals"]["lapsed"].as_u64().filter(|n| *n > 0) {
                        "; " (lapsed) " no longer counted: their members left or may no longer review"
                    }
                    ")"
                }
                dt { "Version" } dd { (version["number"]) " by " (who.name(text(version, "author"))) }
                dt { "SHA-256" } dd { code { (sha) } }
                dt { "Channel" } dd { (label(text(version, "channel"))) }
                dt { "Audience" } dd { (text(version, "audience")) }
                dt { "Tags" } dd { (tags(&version["tags"])) }
                @if let Some(published) = body["published_version"].as_i64() {
                    dt { "Published" } dd { "version " (published) ", " (text(body, "published_at")) }
                }
            }
            h2 { "Text" }
            // Characters that show nothing or reorder the text are written out, as in the diff:
            // what a reviewer reads here is what they approve. Its Markdown is rendered, its HTML not.
            div class="text" { (super::markdown::render(&reveal(text(version, "body")))) }
            h2 { "Review" }
            @for (action, route, caption) in STEPS {
                @if possible(action) {
                    form method="post" action={ "/orgs/" (slug) "/content/" (id) "/step/" (route) } class="step" {
                        (hidden(FORM_FIELD, t))
                        (hidden("sha256", &sha))
                        (hidden("revision", &revision))
                        @if matches!(action, Action::Comment | Action::RequestChanges | Action::Approve) {
                            p {
                                label for={ "note-" (route) } { "Note" @if action == Action::Approve { " (optional)" } }
                                textarea id={ "note-" (route) } name="note" rows="2" {}
                            }
                        }
                        button type="submit" class=[(!matches!(action, Action::Approve | Action::Publish | Action::Submit)).then_some("secondary")] { (caption) }
                    }
                }
            }
            @if possible(Action::Edit) {
                h2 { "Edit" }
                p class="note" { "Saving makes a new version; the earlier ones stay as they were." }
                form method="post" action={ "/orgs/" (slug) "/content/" (id) "/edit" } {
                    (hidden(FORM_FIELD, t))
                    (hidden("revision", &revision))
                    (text_fields(Some(version)))
                    button type="submit" { "Save as a new version" }
                }
            }
            h2 { "Versions" }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Version" } th scope="col" { "Author" } th scope="col" { "Written" } th scope="col" { "SHA-256" } } }
                    tbody {
                        @for v in &all_versions {
                            tr { td { (v["number"]) } td { (who.name(text(v, "author"))) } td { (text(v, "created_at")) } td { code { (&text(v, "sha256")[..16.min(text(v, "sha256").len())]) "…" } } }
                        }
                    }
                }
            }
            @if all_versions.len() > 1 {
                form method="get" action={ "/orgs/" (slug) "/content/" (id) "/diff" } {
                    p {
                        label for="from" { "Compare version" }
                        (version_select("from", &all_versions, all_versions.len() - 1))
                    }
                    p {
                        label for="to" { "with version" }
                        (version_select("to", &all_versions, all_versions.len()))
                    }
                    button type="submit" class="secondary" { "Show the differences" }
                }
            }
            h2 { "History" }
            ol class="history" {
                @for e in &events {
                    li {
                        (text(e, "created_at")) ": " strong { (label(text(e, "kind"))) } " of version " (e["version"]) " by " (who.name(text(e, "actor")))
                        @if let Some(note) = e["note"].as_str() { blockquote { (note) } }
                    }
                }
            }
        }
    })
    .into_response()
}

fn version_select(name: &str, versions: &[Value], selected: usize) -> Markup {
    html! {
        select id=(name) name=(name) {
            @for v in versions {
                @let n = v["number"].as_u64().unwrap_or_default();
                option value=(n) selected[n == selected as u64] { (n) }
            }
        }
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i32,
    to: i32,
}

async fn diff(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let path = format!("/v1/orgs/{slug}/content/{id}/diff?from={}&to={}", query.from, query.to);
    let answer: Answer = visit.api(&console, Method::GET, &path, None).await;
    if let Some(to_sign_in) = needs_session(&answer) {
        return to_sign_in;
    }
    if !answer.ok() {
        return render(&console, &visit, answer.status, "Differences", |_| alert(&answer.detail())).into_response();
    }
    let fields = answer.body["fields"].as_array().cloned().unwrap_or_default();
    let lines: Vec<String> = text(&answer.body, "body").lines().map(str::to_owned).collect();
    let coarse = answer.body["deadline_reached"].as_bool() == Some(true);
    let title = format!("Version {} to {}", query.from, query.to);
    render(&console, &visit, StatusCode::OK, &title, |_| {
        html! {
            p { a href={ "/orgs/" (slug) "/content/" (id) } { "Back to the content" } }
            @if fields.is_empty() && lines.is_empty() { p { "The two versions say the same." } }
            @if coarse {
                p class="note" role="status" {
                    "These bodies took too long to compare line by line, so the comparison stopped early: "
                    "every change is shown, but some blocks may appear removed and added again where they share lines."
                }
            }
            @if !fields.is_empty() {
                table {
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody { @for f in &fields { tr { td { (text(f, "field")) } td { (text(f, "before")) } td { (text(f, "after")) } } } }
                }
            }
            @if !lines.is_empty() {
                pre class="diff" {
                    @for line in &lines {
                        @if line.starts_with('+') && !line.starts_with("+++") { ins { (line) } "\n" }
                        @else if line.starts_with('-') && !line.starts_with("---") { del { (line) } "\n" }
                        @else { (line) "\n" }
                    }
                }
            }
        }
    })
    .into_response()
}
