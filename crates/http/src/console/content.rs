//! Content and its review: the list with its filters and "waiting for my review", a new piece,
//! a piece's page (its latest version, the editor, the review panel, its versions and history)
//! and the diff of two versions. Which buttons a page shows comes from the domain's one state
//! machine; the operation decides regardless.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped};
use mos_db::content::{Event, Version};
use mos_domain::content::{Action, Actor, Approvals, Channel, State as ReviewState};
use mos_domain::{reveal, url_component, Permission, UserId};
use mos_mail::markdown::{self, Headings};
use serde::Deserialize;

use super::words::confirmation;
use super::{alert, failed, hidden, plain, refused, render, when, Console, Posted, Visit, FORM_FIELD};
use crate::access::{Needs, PublishContent, ReadContent, ReadMembers, ReviewContent, WriteContent};
use crate::app::campaigns;
use crate::app::content::{self, Draft, Listing, Precondition, Shown};
use crate::app::orgs;
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs/{slug}/content", get(list).post(create))
        .route("/orgs/{slug}/content/new", get(new_page))
        .route("/orgs/{slug}/content/{id}", get(item))
        .route("/orgs/{slug}/content/{id}/edit", post(edit))
        .route("/orgs/{slug}/content/{id}/step/{action}", post(step))
        .route("/orgs/{slug}/content/{id}/diff", get(diff))
        .route("/orgs/{slug}/content/{id}/first-use", get(first_use))
}

/// The people a page names, by id: their addresses, or their ids once they have left.
struct People(HashMap<UserId, String>);

impl People {
    fn name(&self, id: UserId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }
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
        .filter_map(|(name, value)| given(value).map(|v| (name, v)))
        .map(|(name, value)| format!("&{name}={}", url_component(value)))
        .collect();
    let waiting = query.mine.as_deref() == Some("review");
    // The page's own filters, for the link to the next page.
    let again = if waiting { format!("{encoded}&mine=review") } else { encoded };
    let listing = Listing {
        state: given(&query.state),
        channel: given(&query.channel),
        tag: given(&query.tag),
        author: None,
        text: given(&query.q),
        awaiting_my_review: waiting,
    };
    let read = async {
        let mut auth = visit.member::<ReadContent>(&console, &slug).await?;
        let page = content::list(&console.app, &mut auth, &listing, query.cursor.as_deref(), Some(50)).await?;
        let writes = auth.role.can(Permission::WriteContent);
        auth.commit().await?;
        Ok::<_, ApiError>((page, writes))
    };
    let ((items, next), writes) = match read.await {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Content"),
    };
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
                                    td { a href={ "/orgs/" (slug) "/content/" (i.id) } { (i.version.title) } }
                                    td { (label(i.state.as_str())) }
                                    td { (label(i.version.channel.as_str())) }
                                    td { (i.version.number) }
                                    td { (i.version.tags.join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = next {
                p { a href={ "/orgs/" (slug) "/content?cursor=" (plain(&cursor)) (again) } { "Older" } }
            }
        }
    })
    .into_response()
}

/// A filter's value, when one was typed.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A label as people read it: `in_review` as "in review".
fn label(value: &str) -> String {
    value.replace('_', " ")
}

fn channel_select(id: &str, selected: Option<&str>, any: bool) -> Markup {
    html! {
        select id=(id) name="channel" {
            @if any { option value="" { "any" } }
            @for c in Channel::ALL.iter().filter(|c| any || c.authored()) {
                option value=(c.as_str()) selected[selected == Some(c.as_str())] { (label(c.as_str())) }
            }
        }
    }
}

/// The fields of a version's text, filled with `current` when editing.
fn text_fields(current: Option<&Version>) -> Markup {
    html! {
        p { label for="title" { "Title" } input id="title" name="title" type="text" required maxlength="200" value=(current.map_or("", |c| &c.title)); }
        p { label for="channel" { "Channel" } (channel_select("channel", current.map(|c| c.channel.as_str()), false)) }
        p { label for="audience" { "Audience" } input id="audience" name="audience" type="text" maxlength="500" value=(current.map_or("", |c| &c.audience)); }
        p { label for="tags" { "Tags (comma-separated)" } input id="tags" name="tags" type="text" value=(current.map(|c| c.tags.join(", ")).unwrap_or_default()); }
        p { label for="body" { "Text (Markdown)" } textarea id="body" name="body" rows="14" { (current.map_or("", |c| &c.body)) } }
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
    /// The tags, as the comma-separated field lists them.
    fn tags(&self) -> Vec<String> {
        self.tags.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
    }

    fn draft<'a>(&'a self, tags: &'a [String]) -> Draft<'a> {
        Draft { title: &self.title, channel: &self.channel, audience: &self.audience, body: &self.body, tags }
    }
}

async fn create(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<TextForm>,
) -> Response {
    let slug = plain(&slug);
    let created = async {
        let auth = visit.member::<WriteContent>(&console, &slug).await?;
        let tags = form.tags();
        let text = form.draft(&tags).parse()?;
        content::create(&console.app, auth, &text).await
    };
    match created.await {
        Ok(shown) => Redirect::to(&format!("/orgs/{slug}/content/{}?done=created", shown.item.id)).into_response(),
        Err(error) => refused(&console, &visit, &error, &format!("/orgs/{slug}/content/new")),
    }
}

async fn edit(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, form }: Posted<TextForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/content/{}", plain(&id));
    let edited = async {
        let auth = visit.member::<WriteContent>(&console, &slug).await?;
        let tags = form.tags();
        let text = form.draft(&tags).parse()?;
        let pre = Precondition {
            revisions: Some(vec![form.revision.unwrap_or_default()]),
            text: Some(&text),
            ..Default::default()
        };
        content::act(&console.app, auth, &id, Action::Edit, pre).await
    };
    match edited.await {
        Ok(_) => Redirect::to(&format!("{back}?done=saved")).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

#[derive(Deserialize)]
struct StepForm {
    sha256: Option<String>,
    note: Option<String>,
    revision: Option<i32>,
}

/// Each step the review panel offers: its action, the segment of its form's address, and
/// its button.
const STEPS: [(Action, &str, &str); 7] = [
    (Action::Submit, "submit", "Submit for review"),
    (Action::Withdraw, "withdraw", "Withdraw from review"),
    (Action::Approve, "approve", "Approve this version"),
    (Action::RequestChanges, "request-changes", "Request changes"),
    (Action::Comment, "comments", "Comment"),
    (Action::Publish, "publish", "Publish the approved version"),
    (Action::Archive, "archive", "Archive"),
];

/// Takes a step as the member allowed `P`, the permission the step needs.
async fn take<P: Needs>(
    console: &Console,
    visit: &Visit,
    slug: &str,
    id: &str,
    action: Action,
    pre: Precondition<'_>,
) -> Result<Shown, ApiError> {
    let auth = visit.member::<P>(console, slug).await?;
    content::act(&console.app, auth, id, action, pre).await
}

async fn step(
    State(console): State<Console>,
    Path((slug, id, action)): Path<(String, String, String)>,
    Posted { visit, form }: Posted<StepForm>,
) -> Response {
    let slug = plain(&slug);
    let back = format!("/orgs/{slug}/content/{}", plain(&id));
    let Some((action, _, _)) = STEPS.iter().copied().find(|(_, route, _)| *route == action) else {
        return render(&console, &visit, StatusCode::NOT_FOUND, "Not found", |_| alert("There is no such step."))
            .into_response();
    };
    let sha256 = form.sha256.filter(|s| !s.is_empty());
    let taken = async {
        let pre = Precondition::stated(form.revision.map(|r| vec![r]), sha256.as_deref(), form.note)?;
        match action.permission() {
            Permission::WriteContent => take::<WriteContent>(&console, &visit, &slug, &id, action, pre).await,
            Permission::ReviewContent => take::<ReviewContent>(&console, &visit, &slug, &id, action, pre).await,
            _ => take::<PublishContent>(&console, &visit, &slug, &id, action, pre).await,
        }
    };
    match taken.await {
        Ok(_) => Redirect::to(&format!("{back}?done={}", action.event())).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

/// What a piece's page shows, read in one transaction.
struct ItemPage {
    shown: Shown,
    role: mos_domain::Role,
    me: UserId,
    versions: Vec<Version>,
    events: Vec<Event>,
    people: People,
    /// A campaign's definition, which its page shows as a table instead of its canonical text.
    campaign: Option<campaigns::Described>,
}

async fn item_page(console: &Console, visit: &Visit, slug: &str, id: &str) -> Result<ItemPage, ApiError> {
    let mut auth = visit.member::<ReadContent>(console, slug).await?;
    let shown = content::get(&mut auth, id).await?;
    let versions = content::versions(&mut auth, id).await?;
    let events = content::history(&mut auth, id).await?;
    let campaign = match shown.item.version.channel {
        Channel::Campaign => Some(campaigns::describe(&mut auth.tx, &shown.item.version).await?),
        _ => None,
    };
    let (role, me) = (auth.role, auth.session.user);
    let mut ids: Vec<UserId> = versions.iter().map(|v| v.author).chain(events.iter().map(|e| e.actor)).collect();
    ids.sort();
    ids.dedup();
    let people = match auth.also::<ReadMembers>() {
        Ok(mut reader) => {
            let people = orgs::addresses(&mut reader, &ids).await?;
            reader.commit().await?;
            People(people)
        }
        Err(auth) => {
            auth.commit().await?;
            People(HashMap::new())
        }
    };
    Ok(ItemPage { shown, role, me, versions, events, people, campaign })
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn item(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<DoneQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let page = match item_page(&console, &visit, &slug, &id).await {
        Ok(page) => page,
        Err(error) => return failed(&console, &visit, error, "Content"),
    };
    let ItemPage { shown: Shown { item, approvals: tally }, role, me, versions, events, people, campaign } = page;
    let version = &item.version;
    let approvals = Approvals {
        given: u32::try_from(tally.given).unwrap_or(0),
        required: u32::try_from(tally.required).unwrap_or(1),
    };
    let actor = Actor {
        role,
        owns_item: item.created_by == me,
        wrote_version: version.author == me,
        approved_version: tally.mine,
    };
    let possible = |action: Action| item.state.decide(action, actor, approvals).is_ok();
    let revision = item.revision.to_string();
    let sha = version.sha256.to_string();
    let now = console.app.clock.now();
    render(&console, &visit, StatusCode::OK, &version.title, |t| {
        html! {
            (confirmation(query.done.as_deref()))
            p { a href={ "/orgs/" (slug) "/content" } { "All content" } }
            dl class="facts" {
                dt { "State" } dd {
                    (label(item.state.as_str())) " (approvals " (approvals.given) " of " (approvals.required)
                    @if tally.lapsed > 0 {
                        "; " (tally.lapsed) " no longer counted: their members left or may no longer review"
                    }
                    ")"
                }
                dt { "Version" } dd { (version.number) " by " (people.name(version.author)) }
                dt { "SHA-256" } dd { code { (sha) } }
                dt { "Channel" } dd { (label(version.channel.as_str())) }
                dt { "Audience" } dd { (version.audience) }
                dt { "Tags" } dd { (version.tags.join(", ")) }
                @if let (Some(published), Some(at)) = (item.published_version, item.published_at) {
                    dt { "Published" } dd { "version " (published) ", " (when(now, at)) }
                }
            }
            @if let Some(described) = &campaign {
                // A campaign's text is its canonical definition: a table says the same to people,
                // each hash shown in full, as the campaign's hash covers it.
                h2 { "Definition" }
                (super::campaigns::definition_table(&slug, described))
                p { a href={ "/orgs/" (slug) "/campaigns/" (id) } { "The campaign: edit, preview, launch" } }
            } @else {
                h2 { "Text" }
                // Characters that show nothing or reorder the text are written out, as in the diff:
                // what a reviewer reads here is what they approve. Its Markdown is rendered, its HTML not.
                div class="text" { (PreEscaped(markdown::html(&reveal(&version.body), Headings::FromH3))) }
            }
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
            // A campaign's definition is edited in the campaign's own editor (the review's edit refuses it).
            @if possible(Action::Edit) && campaign.is_none() {
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
                        @for v in &versions {
                            tr { td { (v.number) } td { (people.name(v.author)) } td { (when(now, v.created_at)) } td { code { (v.sha256.to_string().get(..16).unwrap_or_default()) "…" } } }
                        }
                    }
                }
            }
            @if versions.len() > 1 {
                form method="get" action={ "/orgs/" (slug) "/content/" (id) "/diff" } {
                    p {
                        label for="from" { "Compare version" }
                        (version_select("from", &versions, versions.len() - 1))
                    }
                    p {
                        label for="to" { "with version" }
                        (version_select("to", &versions, versions.len()))
                    }
                    button type="submit" class="secondary" { "Show the differences" }
                }
            }
            @if item.version.channel != Channel::Campaign {
                p { a href={ "/orgs/" (slug) "/content/" (id) "/first-use" } { "When each version was first sent (evidence for Form FDA 2253)" } }
            }
            h2 { "History" }
            ol class="history" {
                @for e in &events {
                    li {
                        (when(now, e.created_at)) ": " strong { (label(&e.kind)) } " of version " (e.version) " by " (people.name(e.actor))
                        @if let Some(note) = &e.note { blockquote { (note) } }
                    }
                }
            }
        }
    })
    .into_response()
}

fn version_select(name: &str, versions: &[Version], selected: usize) -> Markup {
    html! {
        select id=(name) name=(name) {
            @for v in versions {
                option value=(v.number) selected[usize::try_from(v.number).is_ok_and(|n| n == selected)] { (v.number) }
            }
        }
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    from: i32,
    to: i32,
}

/// The evidence of each version's first use (Form FDA 2253), to print: the approved text, when
/// and by which campaign it was first sent, to which audience, and the audit records behind it
/// with their places in the sealed chain; the same document as JSON to keep beside it.
async fn first_use(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let evidence = async {
        let mut auth = visit.member::<ReadContent>(&console, &slug).await?;
        let evidence = content::first_use_evidence(&console.app, &mut auth, &id).await?;
        auth.commit().await?;
        Ok::<_, ApiError>(evidence)
    };
    let evidence = match evidence.await {
        Ok(evidence) => evidence,
        Err(error) => return failed(&console, &visit, error, "First use"),
    };
    render(&console, &visit, StatusCode::OK, "First use", |_| {
        html! {
            p {
                a href={ "/orgs/" (slug) "/content/" (id) } { "Back to the content" } " · "
                a href={ "/v1/orgs/" (slug) "/content/" (id) "/first-use/evidence" } download { "The evidence as JSON" }
            }
            p {
                "Made " (evidence.generated_at.format("%Y-%m-%d %H:%M:%S UTC")) ". "
                code { "mos audit verify --evidence <file>" } " checks the JSON against the database and its sealed audit chain."
            }
            @if evidence.versions.is_empty() { p { "No version of this content has been sent." } }
            @for v in &evidence.versions {
                section class="first-use" {
                    h2 { "Version " (v.version) ": " (v.title) }
                    dl class="facts" {
                        dt { "First sent" } dd { (v.first_sent_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                        dt { "SHA-256" } dd { code { (v.sha256) } }
                        dt { "Channel" } dd { (v.channel) }
                        dt { "Intended audience" } dd { (v.audience) }
                        dt { "Campaign" } dd { (v.campaign.name) ", version " (v.campaign.version) ", SHA-256 " code { (v.campaign.sha256) } }
                        dt { "Audience" } dd {
                            "segment " code { (v.campaign.segment_id) } " version " (v.campaign.segment_version)
                            ", " (v.campaign.recipients) " contacts in the snapshot"
                        }
                        dt { "First batch" } dd { code { (v.batch) } }
                    }
                    h3 { "The approved text" }
                    pre class="body" { (v.body) }
                    h3 { "Audit records" }
                    table {
                        thead { tr {
                            th scope="col" { "Record" } th scope="col" { "What" } th scope="col" { "By" }
                            th scope="col" { "When" } th scope="col" { "Place in the chain" }
                        } }
                        tbody { @for r in &v.records { tr {
                            td { code { (r.id) } }
                            td { (super::words::action_cell(&r.action)) }
                            td { @if let Some(by) = r.actor_user_id { code { (by) } } @else { "the system" } }
                            td { (r.created_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                            td {
                                @match (r.seq, &r.hash) {
                                    (Some(seq), Some(hash)) => { "record " (seq) ", " code { (hash) } },
                                    _ => "not sealed yet",
                                }
                            }
                        } } }
                    }
                }
            }
        }
    })
    .into_response()
}

async fn diff(
    State(console): State<Console>,
    visit: Visit,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let compared = async {
        let auth = visit.member::<ReadContent>(&console, &slug).await?;
        content::diff(&console.app, auth, &id, query.from, query.to).await
    };
    let compared = match compared.await {
        Ok(compared) => compared,
        Err(error) => return failed(&console, &visit, error, "Differences"),
    };
    let diff = compared.diff;
    let fields = diff.fields;
    let body = reveal(&diff.body);
    let lines: Vec<&str> = body.lines().collect();
    let coarse = diff.deadline_reached;
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
                    tbody { @for f in &fields { tr { td { (f.field) } td { (reveal(&f.before)) } td { (reveal(&f.after)) } } } }
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
