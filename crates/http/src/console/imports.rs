//! The import pages: the list of imports, the upload form, the mapping page (a select per
//! column, the provenance, the first rows) and the progress page (refreshing itself while the
//! import runs, with a cancel button and the problems as CSV). Pages call `app::imports`, as
//! the API does; showing the first rows is recorded there.
//!
//! A plain form cannot send a file without multipart, which this server does not parse: the
//! upload form's small script (`import.js`) sends the file as the body of the API's upload,
//! with the session's cookie from this origin, and opens the mapping page it answers. Without
//! the script the page says so.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::html;
use mos_db::audiences::import::Target;
use mos_db::audiences::import_views::Status;
use serde::Deserialize;

use super::{failed, hidden, plain, refused, render, when, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::{Authorized, ManageContacts};
use crate::app::imports::{self as app, ProvenanceInput};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/import.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }))
        .route("/orgs/{slug}/imports", get(list))
        .route("/orgs/{slug}/imports/new", get(new))
        .route("/orgs/{slug}/imports/{id}", get(import))
        .route("/orgs/{slug}/imports/{id}/start", post(start))
        .route("/orgs/{slug}/imports/{id}/cancel", post(cancel))
        .route("/orgs/{slug}/imports/{id}/problems.csv", get(problems))
}

const SCRIPT: &str = include_str!("import.js");

/// Seconds between the progress page's refreshes while the import runs.
const REFRESH_SECS: u32 = 2;

fn state_of(s: &Status) -> &str {
    s.job_state.as_deref().unwrap_or("uploaded")
}

fn running(s: &Status) -> bool {
    matches!(state_of(s), "queued" | "running")
}

#[derive(Deserialize, Default)]
struct PageQuery {
    cursor: Option<String>,
}

async fn list(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let slug = plain(&slug);
    let read = visit.read(&console, &slug, "Imports", async |auth: &mut Authorized<ManageContacts>| {
        let page = app::list(auth, query.cursor.as_deref(), Some(50)).await?;
        Ok(page)
    });
    let (rows, next) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    let now = console.app.clock.now();
    render(&console, &visit, StatusCode::OK, "Imports", |_| {
        html! {
            nav aria-label="Imports" class="filters" {
                a href={ "/orgs/" (slug) "/contacts" } { "Contacts" } " · "
                a href={ "/orgs/" (slug) "/imports/new" } { "Upload a file" }
            }
            @if rows.is_empty() { p { "No imports yet." } }
            @else {
                div class="scroll" { table {
                    caption { "Imports, newest first" }
                    thead { tr {
                        th scope="col" { "File" } th scope="col" { "Uploaded" } th scope="col" { "State" }
                        th scope="col" { "Rows read" } th scope="col" { "Imported" } th scope="col" { "Invalid rows" }
                    } }
                    tbody {
                        @for s in &rows {
                            tr {
                                td { a href={ "/orgs/" (slug) "/imports/" (s.import.id) } { (s.import.file_name) } }
                                td { (when(now, s.import.created_at)) }
                                td { (state_of(s)) }
                                td { (rows_read(s)) }
                                td { (s.import.imported) }
                                td { (s.import.invalid) }
                            }
                        }
                    }
                } }
            }
            @if let Some(next) = next {
                p { a href={ "/orgs/" (slug) "/imports?cursor=" (plain(&next)) } { "Older imports" } }
            }
        }
    })
    .into_response()
}

async fn new(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let allowed = visit.read(&console, &slug, "Upload a file", async |_: &mut Authorized<ManageContacts>| Ok(()));
    if let Err(page) = allowed.await {
        return page;
    }
    let max_mib = console.app.settings.import_max_bytes / (1024 * 1024);
    render(&console, &visit, StatusCode::OK, "Upload a file", |_| {
        html! {
            p { "A CSV file with a header row, in UTF-8 (with or without a byte order mark), separated by commas or semicolons; at most " (max_mib) " MiB. The next page shows its first rows and lets you say what each column is before anything is imported." }
            form id="import-upload" data-slug=(slug) {
                p {
                    label for="file" { "CSV file" }
                    input id="file" name="file" type="file" accept=".csv,text/csv" required;
                }
                button type="submit" { "Upload" }
                " " span id="import-status" class="note" role="status" {}
            }
            noscript { p class="alert" role="alert" { "Uploading a file from this page needs JavaScript. Without it, send the file to the API: POST /v1/orgs/" (slug) "/imports with the file as the body." } }
            script src="/import.js" defer {}
        }
    })
    .into_response()
}

/// What a column fills, as the mapping form's select names it.
fn option_value(target: &Target) -> String {
    match target {
        Target::Address => "address".into(),
        Target::Name => "name".into(),
        Target::Locale => "locale".into(),
        Target::TimeZone => "time_zone".into(),
        Target::Tags => "tags".into(),
        Target::Attribute(name) => format!("attribute:{name}"),
    }
}

async fn import(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = visit.read(&console, &slug, "Import", async |auth: &mut Authorized<ManageContacts>| {
        let status = app::status(auth, &id).await?;
        let mapping = if status.import.job_id.is_none() {
            Some((app::preview(auth, &id).await?, app::consent_choices(auth).await?))
        } else {
            None
        };
        Ok((status, mapping))
    });
    let (status, mapping) = match read.await {
        Ok(read) => read,
        Err(page) => return page,
    };
    match mapping {
        Some((m, choices)) => render(&console, &visit, StatusCode::OK, "Map the columns", |t| {
            html! {
                p { a href={ "/orgs/" (slug) "/imports" } { "All imports" } }
                p { "File " strong { (m.status.import.file_name) } ", separated by " code { (char::from(m.preview.delimiter)) } ". Nothing is imported until you start." }
                form method="post" action={ "/orgs/" (slug) "/imports/" (id) "/start" } {
                    (hidden(FORM_FIELD, t))
                    fieldset {
                        legend { "What each column is" }
                        @for (i, name) in m.preview.header.iter().enumerate() {
                            @let suggested = m.suggested.get(i).cloned().flatten().map(|t| option_value(&t));
                            p {
                                label for={ "column_" (i) } { "Column " (i + 1) ": " (name) }
                                select id={ "column_" (i) } name={ "column_" (i) } {
                                    option value="" selected[suggested.is_none()] { "Leave out" }
                                    @for (value, label) in [("address", "Email address"), ("name", "Name"), ("locale", "Language"), ("time_zone", "Time zone"), ("tags", "Tags (separated by |)")] {
                                        option value=(value) selected[suggested.as_deref() == Some(value)] { (label) }
                                    }
                                    @for a in &m.attributes {
                                        @let value = format!("attribute:{}", a.name);
                                        option value=(value) selected[suggested.as_deref() == Some(value.as_str())] { "Attribute " (a.name) }
                                    }
                                }
                            }
                        }
                    }
                    fieldset {
                        legend { "Where the consent comes from" }
                        p class="note" { "Without a purpose, the contacts are imported without consent and cannot be mailed." }
                        p {
                            label for="consent" { "Purpose and the notice people saw" }
                            select id="consent" name="consent" {
                                option value="" { "No consent: import the contacts only" }
                                @for (purpose, notices) in &choices {
                                    @for n in notices {
                                        option value={ (purpose.id) ":" (n.sha256) } { (purpose.name) " — notice of " (n.created_at.format("%Y-%m-%d %H:%M UTC")) " (" (n.sha256.to_string().get(..12).unwrap_or_default()) ")" }
                                    }
                                }
                            }
                        }
                        p {
                            label for="lawful_basis" { "Lawful basis" }
                            select id="lawful_basis" name="lawful_basis" {
                                option value="consent" { "Consent" }
                                option value="exemption" { "A documented exemption" }
                            }
                        }
                        p {
                            label for="exemption" { "The exemption and why it applies (for an exemption only)" }
                            textarea id="exemption" name="exemption" rows="2" maxlength="2000" {}
                        }
                        p {
                            label for="description" { "Where the list came from" }
                            textarea id="description" name="description" rows="2" maxlength="2000" {}
                        }
                    }
                    button type="submit" { "Start the import" }
                }
                div class="scroll" { table {
                    caption { "The first " (m.preview.rows.len()) " rows of the file" }
                    thead { tr { @for name in &m.preview.header { th scope="col" { (name) } } } }
                    tbody {
                        @for row in &m.preview.rows {
                            tr { @for cell in row { td { (cell) } } }
                        }
                    }
                } }
            }
        })
        .into_response(),
        None => progress(&console, &visit, &slug, &id, &status).into_response(),
    }
}

fn progress(console: &Console, visit: &Visit, slug: &str, id: &str, s: &Status) -> super::Page {
    let now = console.app.clock.now();
    let live = running(s);
    render(console, visit, StatusCode::OK, "Import", |t| {
        html! {
            @if live {
                // Refreshes itself while the import runs; a browser without the refresh shows the
                // state as of loading.
                meta http-equiv="refresh" content=(REFRESH_SECS);
            }
            p { a href={ "/orgs/" (slug) "/imports" } { "All imports" } }
            dl {
                dt { "File" } dd { (s.import.file_name) }
                dt { "Uploaded" } dd { (when(now, s.import.created_at)) }
                dt { "State" } dd { span role="status" { (state_of(s)) @if s.job_cancel_requested_at.is_some() && live { " (cancelling)" } } }
                dt { "Rows read" } dd { (rows_read(s)) }
                dt { "Rows per second" } dd { @match s.rows_per_second() { Some(r) => (format!("{r:.0}")), None => "—" } }
                dt { "Imported" } dd { (s.import.imported) }
                dt { "Already contacts (left unchanged)" } dd { (s.import.existing) }
                dt { "Suppressed (imported without consent)" } dd { (s.import.suppressed) }
                dt { "Invalid rows" } dd { (s.import.invalid) }
                dt { "Consent" } dd { @if s.import.provenance.is_some() { "recorded, with the provenance given" } @else { "none: imported without consent" } }
                @if let Some(error) = &s.job_last_error { dt { "Last error" } dd { (error) } }
            }
            p { a href={ "/orgs/" (slug) "/imports/" (id) "/problems.csv" } download { "Download the problems so far (CSV)" } }
            @if live {
                form method="post" action={ "/orgs/" (slug) "/imports/" (id) "/cancel" } {
                    (hidden(FORM_FIELD, t))
                    button type="submit" class="secondary" { "Cancel the import" }
                }
            }
        }
    })
}

/// The mapping form: a select per column (`column_0`, ...), the consent's purpose and notice
/// (`purpose:sha256`, or nothing), its basis and descriptions.
#[derive(Deserialize)]
#[serde(transparent)]
struct StartForm {
    fields: Vec<(String, String)>,
}

async fn start(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    posted: Posted<StartForm>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/imports/{id}");
    let fields = posted.form.fields;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut columns: Vec<(usize, Option<Target>)> = Vec::new();
    for (key, value) in &fields {
        let Some(i) = key.strip_prefix("column_").and_then(|n| n.parse::<usize>().ok()) else { continue };
        let target = match value.split_once(':') {
            _ if value.is_empty() => Ok(None),
            Some(("attribute", name)) => app::target("attribute", Some(name)).map(Some),
            _ => app::target(value, None).map(Some),
        };
        match target {
            Ok(t) => columns.push((i, t)),
            Err(m) => {
                let error = ApiError::Invalid { field: "mapping", message: m };
                return refused(&console, &posted.visit, &error, &back);
            }
        }
    }
    columns.sort_by_key(|(i, _)| *i);
    let mapping: Vec<Option<Target>> = columns.into_iter().map(|(_, t)| t).collect();
    let consent = field("consent").filter(|c| !c.is_empty()).and_then(|c| c.split_once(':'));
    let provenance = consent.map(|(purpose, notice)| ProvenanceInput {
        purpose,
        lawful_basis: field("lawful_basis").unwrap_or("consent"),
        exemption: field("exemption"),
        notice_sha256: notice,
        description: field("description").unwrap_or_default(),
    });
    let result = async {
        let auth = posted.visit.member::<ManageContacts>(&console, &slug).await?;
        app::start(&console.app, auth, &id, &mapping, provenance.as_ref()).await
    };
    match result.await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(error) => refused(&console, &posted.visit, &error, &back),
    }
}

async fn cancel(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    posted: Posted<NoFields>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let back = format!("/orgs/{slug}/imports/{id}");
    let result = async {
        let auth = posted.visit.member::<ManageContacts>(&console, &slug).await?;
        app::cancel(&console.app, auth, &id).await
    };
    match result.await {
        Ok(_) => Redirect::to(&back).into_response(),
        Err(error) => refused(&console, &posted.visit, &error, &back),
    }
}

async fn problems(State(console): State<Console>, visit: Visit, Path((slug, id)): Path<(String, String)>) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let read = async {
        let auth = visit.member::<ManageContacts>(&console, &slug).await?;
        app::problems_csv(&console.app, auth, &id).await
    };
    match read.await {
        Ok(stream) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"import-{id}-problems.csv\"")),
            ],
            Body::from_stream(stream),
        )
            .into_response(),
        Err(error) => failed(&console, &visit, error, "Problems"),
    }
}

/// The rows read, and of how many when the file's rows were counted.
fn rows_read(s: &Status) -> String {
    let done = s.job_done.unwrap_or(0);
    match s.job_total {
        Some(total) => format!("{done} of {total}"),
        None => done.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::option_value;
    use crate::app::imports::target;

    #[test]
    fn a_select_value_names_the_target_the_start_reads_back() {
        for (field, name) in [("address", None), ("tags", None), ("attribute", Some("clinic"))] {
            let t = target(field, name).unwrap();
            let value = option_value(&t);
            let back = match value.split_once(':') {
                Some((f, n)) => target(f, Some(n)),
                None => target(&value, None),
            };
            assert_eq!(back.unwrap(), t);
        }
    }
}
