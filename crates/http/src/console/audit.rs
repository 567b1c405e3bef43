//! An organization's audit trail for its ADMINs: filtered pages of records, the export links,
//! and the verification of its hash chain on request.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, NaiveTime};
use maud::html;
use mos_db::audit::AuditRecord;
use mos_db::chain::Report;
use mos_domain::{url_component, Permission, UserId};
use serde::Deserialize;

use super::words::action_cell;
use super::{failed, plain, render, when, Console, Visit};
use crate::access::{ReadAuditLog, ReadMembers};
use crate::app::audit::{self, Search};
use crate::app::orgs;
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new().route("/orgs/{slug}/audit", get(trail))
}

#[derive(Deserialize)]
struct AuditQuery {
    cursor: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    /// Days, as the date inputs send them.
    from: Option<String>,
    to: Option<String>,
    /// Verify the chain on this view (a pass over the whole trail, so only when asked).
    verify: Option<bool>,
}

/// The audit page's filters: query name, label, input type.
const AUDIT_FILTERS: [(&str, &str, &str); 6] = [
    ("action", "Action (for example member.added)", "text"),
    ("actor", "Who", "text"),
    ("resource_type", "Resource type (for example membership)", "text"),
    ("resource_id", "Resource id", "text"),
    ("from", "From (day)", "date"),
    ("to", "To (day, included)", "date"),
];

/// What the filters ask for, as the operation takes it. Days run from their first moment to
/// their last.
fn search_of(asked: &[(&str, String)]) -> Result<Search, ApiError> {
    let mut search = Search::default();
    for (name, value) in asked.iter().filter(|(_, value)| !value.is_empty()) {
        let day = || {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| ApiError::InvalidParameter {
                name: (*name).to_owned(),
                message: format!("{name} must be a day such as 2026-01-31"),
            })
        };
        match *name {
            "action" => search.action = Some(value.clone()),
            "actor" => {
                let actor = uuid::Uuid::try_parse(value).map_err(|_| ApiError::InvalidParameter {
                    name: "actor".into(),
                    message: "actor must be a user id".into(),
                })?;
                search.actor = Some(actor);
            }
            "resource_type" => search.resource_type = Some(value.clone()),
            "resource_id" => search.resource_id = Some(value.clone()),
            "from" => search.from = Some(day()?.and_time(NaiveTime::MIN).and_utc()),
            "to" => search.to = Some(day()?.succ_opt().unwrap_or(NaiveDate::MAX).and_time(NaiveTime::MIN).and_utc()),
            _ => {}
        }
    }
    Ok(search)
}

/// The members the actor filter offers: the first of them, by when they joined.
const MEMBERS_OFFERED: i64 = 200;

/// What the trail's page shows, read in one transaction.
struct Trail {
    records: Vec<AuditRecord>,
    next: Option<String>,
    chain: Option<Report>,
    /// The members to filter by: id and address.
    members: Vec<(UserId, String)>,
    /// The actors of the records, by id (someone who left is not among them).
    people: HashMap<UserId, String>,
}

/// One page of records, the people in it and to filter by, and, when asked, the state of the
/// chain: one transaction.
async fn read(
    console: &Console,
    visit: &Visit,
    slug: &str,
    search: &Search,
    cursor: Option<&str>,
    verify: bool,
) -> Result<Trail, ApiError> {
    let mut auth = visit.member::<ReadAuditLog>(console, slug).await?;
    let (records, next) = audit::page(&mut auth, search, cursor, Some(50)).await?;
    let chain = if verify { Some(audit::verify_chain(&console.app, &mut auth).await?) } else { None };
    let mut reader = auth.also::<ReadMembers>().map_err(|_| ApiError::Forbidden(Permission::ReadMembers))?;
    let (members, _) = orgs::members_page(&mut reader, None, MEMBERS_OFFERED).await?;
    let mut actors: Vec<UserId> =
        records.iter().filter_map(|r| r.actor).filter_map(|a| UserId::from_uuid(a).ok()).collect();
    actors.sort();
    actors.dedup();
    let people = orgs::addresses(&mut reader, &actors).await?;
    reader.commit().await?;
    let members = members.into_iter().map(|m| (m.user, m.email)).collect();
    Ok(Trail { records, next, chain, members, people })
}

async fn trail(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Response {
    let slug = plain(&slug);
    // What was typed into each filter, in the order of the form.
    let asked: Vec<(&str, String)> = AUDIT_FILTERS
        .iter()
        .zip([&query.action, &query.actor, &query.resource_type, &query.resource_id, &query.from, &query.to])
        .map(|((name, ..), value)| (*name, value.as_deref().unwrap_or_default().trim().to_owned()))
        .collect();
    let read = match search_of(&asked) {
        Ok(search) => read(&console, &visit, &slug, &search, query.cursor.as_deref(), query.verify == Some(true)).await,
        Err(error) => Err(error),
    };
    let Trail { records: items, next, chain, members, people } = match read {
        Ok(read) => read,
        Err(error) => return failed(&console, &visit, error, "Audit trail"),
    };
    let actor_asked = query.actor.as_deref().map(str::trim).unwrap_or_default();
    let name = |actor: Option<uuid::Uuid>| {
        let id = actor.and_then(|a| UserId::from_uuid(a).ok());
        id.and_then(|id| people.get(&id).cloned())
    };
    let now = console.app.clock.now();
    let kept: String = asked
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("&{name}={}", url_component(value)))
        .collect();
    render(&console, &visit, StatusCode::OK, "Audit trail", |_| {
        html! {
            p { a href={ "/orgs/" (slug) } { "Back to the organization" } }
            form method="get" action={ "/orgs/" (slug) "/audit" } {
                @for ((field, label, kind), (_, value)) in AUDIT_FILTERS.iter().zip(&asked) {
                    @if *field == "actor" {
                        p {
                            label for="actor" { "Who" }
                            select id="actor" name="actor" {
                                option value="" { "anyone" }
                                @for (id, email) in &members {
                                    option value=(id) selected[id.to_string() == actor_asked] { (email) }
                                }
                                @if !actor_asked.is_empty() && !members.iter().any(|(id, _)| id.to_string() == actor_asked) {
                                    option value=(actor_asked) selected { (actor_asked) " (no longer a member)" }
                                }
                            }
                        }
                    } @else {
                        p { label for=(field) { (label) } input id=(field) name=(field) type=(kind) value=(value); }
                    }
                }
                button type="submit" class="secondary" { "Filter" }
            }
            h2 { "Chain" }
            @match &chain {
                None => p { a href={ "/orgs/" (slug) "/audit?verify=true" } { "Verify the chain now" } " " span class="note" { "(recomputes every sealed record, as " code { "mos audit verify" } " does)" } },
                Some(c) => @match &c.broken {
                    None => p id="chain-state" {
                        "Intact: " (c.records) " sealed records, the last at link " (c.head.0)
                        " (" code { (hex::encode(&c.head.1[..8])) } "…); "
                        (c.pending.0) " awaiting their seal."
                    },
                    Some(broken) => p id="chain-state" class="alert" role="alert" {
                        "Broken at link " (broken.seq) ": " (broken.reason) ". " (broken.detail)
                    },
                },
            }
            h2 { "Records" }
            p {
                "Export everything: "
                a href={ "/v1/orgs/" (slug) "/audit-logs/export?format=ndjson" } { "NDJSON" } " · "
                a href={ "/v1/orgs/" (slug) "/audit-logs/export?format=csv" } { "CSV" }
            }
            @if items.is_empty() { p { "No record matches." } }
            @else {
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Actor" } th scope="col" { "Outcome" } th scope="col" { "Resource" } } }
                        tbody {
                            @for r in &items {
                                tr {
                                    td { (when(now, r.created_at)) }
                                    td { (action_cell(&r.action)) }
                                    td {
                                        @match (name(r.actor), r.actor) {
                                            (Some(email), _) => (email),
                                            (None, Some(id)) => code { (id) },
                                            (None, None) => span class="note" { "nobody signed in" },
                                        }
                                    }
                                    td { (r.outcome) }
                                    td { (r.resource_type) " " code { (r.resource_id.as_deref().unwrap_or_default()) } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &next {
                p { a href={ "/orgs/" (slug) "/audit?cursor=" (url_component(next)) (kept) } { "Older records" } }
            }
        }
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::search_of;

    #[test]
    fn a_day_filter_covers_the_whole_day() {
        let asked = [("from", "2026-03-01".to_owned()), ("to", "2026-03-01".to_owned())];
        let search = search_of(&asked).unwrap();
        assert_eq!(search.from.unwrap().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert_eq!(search.to.unwrap().to_rfc3339(), "2026-03-02T00:00:00+00:00", "the end is exclusive");
        assert!(search_of(&[("to", "yesterday".to_owned())]).is_err());
        assert!(search_of(&[("actor", "not-a-user".to_owned())]).is_err());
    }
}
