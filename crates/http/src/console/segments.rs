//! Segments in the console: the list of saved segments, a segment's page with its versions
//! and their hashes, and the editor. The editor writes a definition as rows (field, operator,
//! value) joined by "all" or "any", or as JSON for anything the rows cannot say (nested
//! groups); it counts the definition while it is being edited (`console.js` posts the form
//! to `/orgs/{slug}/segments/count` as it changes; without script the "Count" button posts it),
//! shows a preview to the roles that may read contacts, and saves it as a segment or as the
//! next version of one. Every action calls `app::segments`, as the API does.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::audiences::segments::Member;
use mos_domain::Permission;
use serde::Deserialize;

use super::words::confirmation;
use super::{failed, hidden, plain, refused, render, when, Console, Posted, Visit, FORM_FIELD};
use crate::access::{Authorized, ManageSegments, Needs, ReadAudience, ReadContacts};
use crate::app::segments::{self as app, Choices, Count, Counted, Definition, Draft, Row};
use crate::error::PartProblem;
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/segments", get(list))
        .route("/orgs/{slug}/segments/new", get(new).post(post_new))
        .route("/orgs/{slug}/segments/count", post(live_count))
        .route("/orgs/{slug}/segments/{id}", get(segment))
        .route("/orgs/{slug}/segments/{id}/edit", get(edit).post(post_edit))
}

/// The operators the rows offer, with what a person reads; which one fits which field is the
/// parser's to say, at the row's path.
const OPERATORS: &[(&str, &str)] = &[
    ("equals", "equals"),
    ("contains", "contains"),
    ("starts_with", "starts with"),
    ("lt", "is less than"),
    ("lte", "is at most"),
    ("gt", "is more than"),
    ("gte", "is at least"),
    ("between", "is between (two values, comma between)"),
    ("in", "is one of (comma between)"),
    ("is_set", "is set"),
    ("is_not_set", "is not set"),
    ("has", "has the tag"),
    ("has_any", "has any of the tags (comma between)"),
    ("has_all", "has all of the tags (comma between)"),
    ("live", "is live"),
    ("not_live", "is not live"),
    ("before", "before (YYYY-MM-DD or an instant)"),
    ("after", "after (YYYY-MM-DD or an instant)"),
];

/// Blank rows the editor offers after the conditions it has, so that a browser without script
/// can add conditions too.
const BLANK_ROWS: usize = 2;

/// The segment list's page size.
const PAGE: i64 = 50;

fn area(slug: &str) -> Markup {
    html! {
        nav aria-label="Segments" class="filters" {
            a href={ "/orgs/" (slug) "/audience" } { "Audience" } " · "
            a href={ "/orgs/" (slug) "/segments" } { "Segments" } " · "
            a href={ "/orgs/" (slug) "/segments/new" } { "New segment" }
        }
    }
}

fn short(hash: &impl ToString) -> String {
    hash.to_string().chars().take(12).collect()
}

#[derive(Deserialize, Default)]
struct ListQuery {
    cursor: Option<String>,
    done: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = visit.read(&console, &slug, "Segments", async |auth: &mut Authorized<ReadAudience>| {
        app::list(auth, query.cursor.as_deref(), Some(PAGE)).await
    });
    let (rows, next) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, "Segments", |_| {
        html! {
            (area(&slug))
            (confirmation(query.done.as_deref()))
            @if rows.is_empty() { p { "No saved segments yet." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Latest version" } th scope="col" { "Its SHA-256" } } }
                    tbody {
                        @for s in &rows {
                            tr {
                                td { a href={ "/orgs/" (slug) "/segments/" (s.id) } { (s.name) } }
                                td { (s.latest) }
                                td { code title=(s.sha256) { (short(&s.sha256)) } }
                            }
                        }
                    }
                } }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/segments?cursor=" (plain(&cursor)) } { "More" } }
            }
        }
    })
    .into_response()
}

async fn segment(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    axum::extract::Query(query): axum::extract::Query<ListQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let now = console.app.clock.now();
    let read = visit.read(&console, &slug, "Segment", async |auth: &mut Authorized<ReadAudience>| {
        let page = app::segment(auth, &id).await?;
        Ok(page)
    });
    let page = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    render(&console, &visit, StatusCode::OK, &page.name, |_| {
        html! {
            (area(&slug))
            (confirmation(query.done.as_deref()))
            p { a href={ "/orgs/" (slug) "/segments/" (page.id) "/edit" } { "Edit, count and preview" } }
            h2 { "Versions" }
            p class="note" { "Each version is immutable and named by the SHA-256 of its definition in canonical form." }
            div class="scroll" { table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "SHA-256" } th scope="col" { "Saved" } th scope="col" { "Definition" } } }
                tbody {
                    @for v in &page.versions {
                        tr {
                            td { (v.version) }
                            td { code { (v.sha256) } }
                            td { (when(now, v.created_at)) }
                            td { code { (v.definition) } }
                        }
                    }
                }
            } }
        }
    })
    .into_response()
}

/// The editor's form as posted: the rows are `field.N`, `op.N` and `value.N`.
#[derive(Deserialize, Default)]
struct EditorForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    joint: String,
    /// `json` when the textarea is the definition; else the rows are.
    #[serde(default)]
    mode: String,
    #[serde(default)]
    json: String,
    /// Which button: `count`, `preview` or `save`.
    #[serde(default, rename = "do")]
    action: String,
    #[serde(default)]
    cursor: String,
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl EditorForm {
    /// The rows that name a field, in the order of their numbers.
    fn draft(&self) -> Draft {
        let mut numbers: Vec<usize> =
            self.rest.keys().filter_map(|k| k.strip_prefix("field.")).filter_map(|n| n.parse().ok()).collect();
        numbers.sort_unstable();
        let get = |prefix: &str, n: usize| self.rest.get(&format!("{prefix}.{n}")).cloned().unwrap_or_default();
        let rows = numbers
            .into_iter()
            .map(|n| Row { field: get("field", n), op: get("op", n), value: get("value", n) })
            .filter(|r| !r.field.trim().is_empty())
            .collect();
        Draft { joint: self.joint.clone(), rows }
    }

    fn json_mode(&self) -> bool {
        self.mode == "json"
    }

    /// The definition's JSON text: the textarea's, or the rows'.
    fn definition(&self, choices: &Choices) -> String {
        if self.json_mode() {
            self.json.clone()
        } else {
            self.draft().definition(&choices.attributes)
        }
    }
}

/// What the editor shows besides its fields.
#[derive(Default)]
struct Outcome {
    counted: Option<Counted>,
    problems: Vec<PartProblem>,
    preview: Option<(Vec<Member>, Option<String>)>,
}

/// Where the editor stands: a new segment, or a saved one's next version.
struct Target<'a> {
    slug: &'a str,
    saved: Option<(&'a str, &'a str)>,
}

impl Target<'_> {
    fn action(&self) -> String {
        match self.saved {
            None => format!("/orgs/{}/segments/new", self.slug),
            Some((id, _)) => format!("/orgs/{}/segments/{id}/edit", self.slug),
        }
    }
}

/// What the member may do in the editor.
struct Powers {
    preview: bool,
    save: bool,
}

fn powers(auth: &Authorized<ReadAudience>) -> Powers {
    Powers { preview: auth.may::<ReadContacts>(), save: auth.may::<ManageSegments>() }
}

/// A problem as the editor says it: by condition number when it is in a row.
fn problem_words(problem: &PartProblem, rows: bool) -> String {
    let rest = problem.pointer.strip_prefix(&format!("/{}", app::DEFINITION)).unwrap_or(&problem.pointer);
    let mut parts = rest.split('/').filter(|p| !p.is_empty());
    if rows {
        if let (Some("all" | "any"), Some(n)) = (parts.next(), parts.next().and_then(|n| n.parse::<usize>().ok())) {
            return format!("Condition {}: {}", n + 1, problem.detail);
        }
    }
    if rest.is_empty() {
        return format!("The definition: {}", problem.detail);
    }
    format!("At {rest}: {}", problem.detail)
}

fn counted_words(count: Count) -> String {
    match count {
        Count::Exact(1) => "1 contact".to_owned(),
        Count::Exact(n) => format!("{n} contacts"),
        Count::FewerThan(n) => format!("fewer than {n} contacts"),
    }
}

#[allow(clippy::too_many_arguments)]
fn editor(
    target: &Target<'_>,
    token: &str,
    choices: &Choices,
    powers: &Powers,
    draft: &Draft,
    json: &str,
    json_mode: bool,
    outcome: &Outcome,
) -> Markup {
    let slug = target.slug;
    let blank = Row::default();
    let rows: Vec<&Row> = draft.rows.iter().chain(std::iter::repeat_n(&blank, BLANK_ROWS)).collect();
    let any = draft.joint == "any";
    html! {
        (area(slug))
        @if let Some((id, name)) = target.saved {
            p { "Editing " a href={ "/orgs/" (slug) "/segments/" (id) } { (name) } "; saving adds its next version." }
        }
        @if !outcome.problems.is_empty() {
            div class="alert" role="alert" {
                p { "The definition has problems:" }
                ul { @for p in &outcome.problems { li { (problem_words(p, !json_mode)) } } }
            }
        }
        form method="post" action=(target.action()) data-count-url={ "/orgs/" (slug) "/segments/count" } {
            (hidden(FORM_FIELD, token))
            @if target.saved.is_none() && powers.save {
                p { label for="name" { "Name (to save it)" } input id="name" name="name" type="text" autocomplete="off"; }
            }
            fieldset {
                legend { "Contacts who match" }
                p {
                    label for="joint" { "Match" }
                    select id="joint" name="joint" {
                        option value="all" selected[!any] { "all of the conditions" }
                        option value="any" selected[any] { "any of the conditions" }
                    }
                }
                @for (n, row) in rows.iter().enumerate() {
                    fieldset class="condition" {
                        legend { "Condition " (n + 1) }
                        label for={ "field." (n) } { "Field" }
                        select id={ "field." (n) } name={ "field." (n) } {
                            option value="" selected[row.field.is_empty()] { "(none)" }
                            @for a in &choices.attributes {
                                @let value = format!("attribute:{}", a.name);
                                option value=(value) selected[row.field == value] { "Attribute " (a.name) " (" (a.kind) ")" }
                            }
                            option value="tags" selected[row.field == "tags"] { "Tags" }
                            @for p in &choices.purposes {
                                @let value = format!("consent:{}", p.id);
                                option value=(value) selected[row.field == value] { "Consent for " (p.name) }
                            }
                            option value="created" selected[row.field == "created"] { "Added to the list" }
                        }
                        label for={ "op." (n) } { "Operator" }
                        select id={ "op." (n) } name={ "op." (n) } {
                            @for (op, words) in OPERATORS {
                                option value=(op) selected[row.op == *op] { (words) }
                            }
                        }
                        label for={ "value." (n) } { "Value" }
                        input id={ "value." (n) } name={ "value." (n) } type="text" autocomplete="off" value=(row.value);
                    }
                }
            }
            details open[json_mode] {
                summary { "As JSON (for nested groups)" }
                p class="check" {
                    input id="mode" name="mode" type="checkbox" value="json" checked[json_mode];
                    label for="mode" { "Use the JSON below instead of the conditions above" }
                }
                p {
                    label for="json" { "Definition (docs/segments.md describes it)" }
                    textarea id="json" name="json" rows="6" { (json) }
                }
            }
            p {
                "Count: "
                output id="segment-count" for="joint" aria-live="polite" {
                    @if let Some(c) = &outcome.counted { (counted_words(c.count)) }
                }
            }
            button type="submit" name="do" value="count" { "Count" }
            @if powers.preview { " " button type="submit" name="do" value="preview" { "Preview" } }
            @if powers.save { " " button type="submit" name="do" value="save" { "Save" } }
        }
        @if let Some((members, next)) = &outcome.preview {
            h2 { "Preview" }
            @if members.is_empty() { p { "Nobody matches." } }
            @else {
                div class="scroll" { table {
                    thead { tr { th scope="col" { "Address" } th scope="col" { "Name" } } }
                    tbody {
                        @for m in members {
                            tr {
                                td { a href={ "/orgs/" (slug) "/contacts/" (m.id) } { (m.address.as_deref().unwrap_or_default()) } }
                                td { (m.name.as_deref().unwrap_or_default()) }
                            }
                        }
                    }
                } }
                @if let Some(cursor) = next {
                    form method="post" action=(target.action()) {
                        (hidden(FORM_FIELD, token))
                        (hidden("joint", &draft.joint))
                        (hidden("mode", "json"))
                        (hidden("json", json))
                        (hidden("cursor", cursor))
                        button type="submit" name="do" value="preview" { "Next page" }
                    }
                }
            }
        }
    }
}

async fn new(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let read = visit.read(&console, &slug, "New segment", async |auth: &mut Authorized<ReadAudience>| {
        let choices = app::choices(auth).await?;
        let powers = powers(auth);
        Ok((choices, powers))
    });
    let (choices, powers) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let target = Target { slug: &slug, saved: None };
    render(&console, &visit, StatusCode::OK, "New segment", |t| {
        editor(&target, t, &choices, &powers, &Draft::default(), "", false, &Outcome::default())
    })
    .into_response()
}

async fn edit(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = visit.read(&console, &slug, "Segment", async |auth: &mut Authorized<ReadAudience>| {
        let page = app::segment(auth, &id).await?;
        let choices = app::choices(auth).await?;
        let latest = page.versions.first().map(|v| v.definition.clone()).unwrap_or_default();
        let counted = app::count(&console.app, auth, Definition::Text(&latest)).await?;
        let powers = powers(auth);
        Ok((page.name, latest, choices, counted, powers))
    });
    let (name, latest, choices, counted, powers) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let rows = Draft::from_definition(&latest);
    let json_mode = rows.is_none();
    let draft = rows.unwrap_or_default();
    let target = Target { slug: &slug, saved: Some((id.as_str(), name.as_str())) };
    let outcome = Outcome { counted: Some(counted), ..Outcome::default() };
    render(&console, &visit, StatusCode::OK, &format!("Edit {name}"), |t| {
        editor(&target, t, &choices, &powers, &draft, &latest, json_mode, &outcome)
    })
    .into_response()
}

async fn post_new(State(console): State<Console>, Path(slug): Path<String>, posted: Posted<EditorForm>) -> Response {
    let slug = plain(&slug);
    act(&console, Target { slug: &slug, saved: None }, posted).await
}

async fn post_edit(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    posted: Posted<EditorForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    // The name is shown again on the page; the page's own read gives it.
    let name = async {
        let mut auth = posted.visit.member::<ReadAudience>(&console, &slug).await?;
        let page = app::segment(&mut auth, &id).await?;
        auth.commit().await?;
        Ok::<_, ApiError>(page.name)
    };
    let name = match name.await {
        Ok(name) => name,
        Err(error) => return failed(&console, &posted.visit, error, "Segment"),
    };
    act(&console, Target { slug: &slug, saved: Some((id.as_str(), name.as_str())) }, posted).await
}

/// The member checked for `P` (which every role that holds it pairs with `audience.read`), as
/// the reader of the audience's definitions that the editor needs.
fn widen<P: Needs>(checked: Result<Authorized<P>, ApiError>) -> Result<Authorized<ReadAudience>, ApiError> {
    checked?.also::<ReadAudience>().map_err(|_| ApiError::Forbidden(Permission::ReadAudience))
}

/// Counts, previews or saves the posted definition, then shows the editor again with the
/// outcome, or the saved segment's page.
async fn act(console: &Console, target: Target<'_>, Posted { visit, form }: Posted<EditorForm>) -> Response {
    let slug = target.slug;
    // The check is of what the button does, so that a refusal is recorded as the API's is.
    let checked = match form.action.as_str() {
        "preview" => widen(visit.member::<ReadContacts>(console, slug).await),
        "save" => widen(visit.member::<ManageSegments>(console, slug).await),
        _ => visit.member::<ReadAudience>(console, slug).await,
    };
    let mut auth = match checked {
        Ok(auth) => auth,
        Err(error) => return failed(console, &visit, error, "Segment"),
    };
    let choices = match app::choices(&mut auth).await {
        Ok(choices) => choices,
        Err(error) => return failed(console, &visit, error, "Segment"),
    };
    let powers = powers(&auth);
    let text = form.definition(&choices);
    let mut outcome = Outcome::default();
    let result = run(console, &target, &form, auth, &text, &mut outcome).await;
    match result {
        Ok(Some(done)) => return done,
        Ok(None) => {}
        Err(ApiError::InvalidParts { errors, .. }) => outcome.problems = errors,
        Err(error) => return refused(console, &visit, &error, &target.action()),
    }
    // The JSON shown is the canonical text when the definition parsed, so that it reads back
    // as the same definition; else what was posted, to be corrected.
    let json = outcome.counted.as_ref().map_or_else(|| text.clone(), |c| c.canonical.clone());
    let json_mode = form.json_mode();
    let draft = if json_mode { Draft::from_definition(&json).unwrap_or_default() } else { form.draft() };
    let status = if outcome.problems.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let title = match target.saved {
        None => "New segment".to_owned(),
        Some((_, name)) => format!("Edit {name}"),
    };
    render(console, &visit, status, &title, |t| {
        editor(&target, t, &choices, &powers, &draft, &json, json_mode, &outcome)
    })
    .into_response()
}

/// Does what the form's button asks, in the page's one transaction: a redirect after a save,
/// else nothing (the outcome says what to show).
async fn run(
    console: &Console,
    target: &Target<'_>,
    form: &EditorForm,
    mut auth: Authorized<ReadAudience>,
    text: &str,
    outcome: &mut Outcome,
) -> Result<Option<Response>, ApiError> {
    let definition = Definition::Text(text);
    match form.action.as_str() {
        "save" => {
            let auth = auth.also::<ManageSegments>().map_err(|_| ApiError::Forbidden(Permission::ManageSegments))?;
            let (segment, done) = match target.saved {
                None => (app::create(&console.app, auth, &form.name, definition).await?.segment, "created"),
                Some((id, _)) => {
                    let (version, added) = app::add_version(&console.app, auth, id, definition).await?;
                    (version.segment, if added { "saved" } else { "unchanged" })
                }
            };
            let to = format!("/orgs/{}/segments/{segment}?done={done}", target.slug);
            Ok(Some(Redirect::to(&to).into_response()))
        }
        "preview" => {
            outcome.counted = Some(app::count(&console.app, &mut auth, definition).await?);
            let mut reader = auth.also::<ReadContacts>().map_err(|_| ApiError::Forbidden(Permission::ReadContacts))?;
            let cursor = Some(form.cursor.as_str()).filter(|c| !c.is_empty());
            outcome.preview = Some(app::preview(&console.app, &mut reader, definition, cursor, Some(20)).await?);
            reader.commit().await?;
            Ok(None)
        }
        _ => {
            outcome.counted = Some(app::count(&console.app, &mut auth, definition).await?);
            auth.commit().await?;
            Ok(None)
        }
    }
}

/// The count for the editor's script: the same form, answered with the count in words (or what
/// is wrong with the definition) as plain text.
async fn live_count(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<EditorForm>,
) -> Response {
    let slug = plain(&slug);
    let counted = async {
        let mut auth = visit.member::<ReadAudience>(&console, &slug).await?;
        let choices = app::choices(&mut auth).await?;
        let text = form.definition(&choices);
        let counted = app::count(&console.app, &mut auth, Definition::Text(&text)).await?;
        auth.commit().await?;
        Ok::<_, ApiError>(counted)
    };
    let plain_text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match counted.await {
        Ok(counted) => (StatusCode::OK, plain_text, counted_words(counted.count)).into_response(),
        Err(ApiError::InvalidParts { errors, .. }) => {
            let words: Vec<String> = errors.iter().map(|p| problem_words(p, !form.json_mode())).collect();
            (StatusCode::UNPROCESSABLE_ENTITY, plain_text, words.join("; ")).into_response()
        }
        Err(error) => {
            let detail = error.shown(&console.app.readiness);
            (error.status(), plain_text, detail).into_response()
        }
    }
}
