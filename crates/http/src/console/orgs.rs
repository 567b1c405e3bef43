//! Organizations: mine, one organization's members and invitations, accepting an invitation,
//! and the audit trail. Controls are shown to the roles that may use them; the API decides
//! regardless, so a forged form gets the API's 403.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_domain::url_component;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    alert, field, hidden, needs_session, plain, redirect_with, refused, render, text, Answer, Console, NoFields,
    Posted, Visit, FORM_FIELD,
};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs", get(list).post(create))
        .route("/orgs/{slug}", get(organization))
        .route("/orgs/{slug}/invite", post(invite))
        .route("/orgs/{slug}/invitations/{id}/revoke", post(revoke_invitation))
        .route("/orgs/{slug}/members/{user}/role", post(change_role))
        .route("/orgs/{slug}/leave", post(leave))
        .route("/orgs/{slug}/policy", post(policy))
        .route("/orgs/{slug}/audit", get(audit))
        .route("/accept-invitation", get(accept_page).post(accept))
}

const ROLES: [&str; 4] = ["ADMIN", "REVIEWER", "CREATOR", "VIEWER"];

fn role_select(id: &str, selected: &str) -> Markup {
    html! {
        select id=(id) name="role" {
            @for role in ROLES {
                option value=(role) selected[role == selected] { (role) }
            }
        }
    }
}

async fn list(State(console): State<Console>, visit: Visit) -> Response {
    let mine = visit.api(&console, Method::GET, "/v1/orgs?limit=500", None).await;
    if let Some(to_sign_in) = needs_session(&mine) {
        return to_sign_in;
    }
    list_page(&console, &visit, &mine, None)
}

fn list_page(console: &Console, visit: &Visit, mine: &Answer, problem: Option<&str>) -> Response {
    let items = mine.body["items"].as_array().cloned().unwrap_or_default();
    render(console, visit, StatusCode::OK, "Your organizations", |t| {
        html! {
            @if let Some(problem) = problem { (alert(problem)) }
            @if items.is_empty() { p { "You belong to no organization yet. Create one, or accept an invitation from your email." } }
            ul {
                @for org in &items {
                    li { a href={ "/orgs/" (text(org, "slug")) } { (text(org, "name")) } " " span class="note" { "(" (text(org, "role")) ")" } }
                }
            }
            h2 { "Create an organization" }
            form method="post" action="/orgs" {
                (hidden(FORM_FIELD, t))
                (field("Name", "name", "text", "organization"))
                p {
                    label for="slug" { "Address name (3 to 63 lowercase letters, digits and hyphens)" }
                    input id="slug" name="slug" type="text" required pattern="[a-z0-9]+(-[a-z0-9]+)*" autocomplete="off";
                }
                button type="submit" { "Create" }
            }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct NewOrg {
    name: String,
    slug: String,
}

async fn create(State(console): State<Console>, Posted { visit, form }: Posted<NewOrg>) -> Response {
    let answer =
        visit.api(&console, Method::POST, "/v1/orgs", Some(json!({ "slug": form.slug, "name": form.name }))).await;
    if answer.ok() {
        return Redirect::to(&format!("/orgs/{}", plain(text(&answer.body, "slug")))).into_response();
    }
    let mine = visit.api(&console, Method::GET, "/v1/orgs?limit=500", None).await;
    list_page(&console, &visit, &mine, Some(&answer.detail()))
}

async fn organization(State(console): State<Console>, visit: Visit, Path(slug): Path<String>) -> Response {
    let slug = plain(&slug);
    let org = visit.api(&console, Method::GET, &format!("/v1/orgs/{slug}"), None).await;
    if let Some(to_sign_in) = needs_session(&org) {
        return to_sign_in;
    }
    if !org.ok() {
        return render(&console, &visit, org.status, "Organization", |_| alert(&org.detail())).into_response();
    }
    let members = visit.api(&console, Method::GET, &format!("/v1/orgs/{slug}/members"), None).await;
    let me = visit.api(&console, Method::GET, "/v1/me", None).await;
    let members = members.body.as_array().cloned().unwrap_or_default();
    let my_role = members.iter().find(|m| m["user_id"] == me.body["id"]).map(|m| text(m, "role").to_owned());
    let admin = my_role.as_deref() == Some("ADMIN");
    let pending = if admin {
        let invitations = visit.api(&console, Method::GET, &format!("/v1/orgs/{slug}/invitations"), None).await;
        invitations.body.as_array().cloned().unwrap_or_default()
    } else {
        Vec::new()
    };
    let name = text(&org.body, "name").to_owned();
    render(&console, &visit, StatusCode::OK, &name, |t| {
        html! {
            p class="note" { "Your role: " (my_role.as_deref().unwrap_or("-")) }
            p {
                a href={ "/orgs/" (slug) "/content" } { "Content" } " · "
                a href={ "/orgs/" (slug) "/content?mine=review" } { "Waiting for my review" }
            }
            @if org.body["require_two_factor"] == true { p { "Members must use two-factor authentication." } }
            @if org.body["require_phishing_resistant"] == true { p { "Members must sign in with a passkey." } }
            @if admin {
                p { a href={ "/orgs/" (slug) "/audit" } { "Audit trail" } }
                form method="post" action={ "/orgs/" (slug) "/policy" } {
                    (hidden(FORM_FIELD, t))
                    @if org.body["require_two_factor"] == true {
                        (hidden("require_two_factor", "false"))
                        button type="submit" class="secondary" { "Stop requiring two-factor authentication" }
                    } @else {
                        (hidden("require_two_factor", "true"))
                        button type="submit" class="secondary" { "Require two-factor authentication of every member" }
                    }
                }
                form method="post" action={ "/orgs/" (slug) "/policy" } {
                    (hidden(FORM_FIELD, t))
                    @if org.body["require_phishing_resistant"] == true {
                        (hidden("require_phishing_resistant", "false"))
                        button type="submit" class="secondary" { "Stop requiring sign-in with a passkey" }
                    } @else {
                        (hidden("require_phishing_resistant", "true"))
                        button type="submit" class="secondary" { "Require sign-in with a passkey of every member" }
                    }
                }
            }
            h2 { "Members" }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Two-factor" } } }
                    tbody {
                        @for m in &members {
                            tr {
                                td { (text(m, "email")) }
                                td {
                                    @if admin {
                                        form method="post" action={ "/orgs/" (slug) "/members/" (text(m, "user_id")) "/role" } {
                                            (hidden(FORM_FIELD, t))
                                            label class="note" for={ "role-" (text(m, "user_id")) } { "Role of " (text(m, "email")) }
                                            (role_select(&format!("role-{}", text(m, "user_id")), text(m, "role")))
                                            " " button type="submit" class="secondary" { "Change" }
                                        }
                                    } @else { (text(m, "role")) }
                                }
                                td { @if m["two_factor_enabled"] == true { "on" } @else { "off" } }
                            }
                        }
                    }
                }
            }
            @if admin {
                h2 { "Invite someone" }
                form method="post" action={ "/orgs/" (slug) "/invite" } {
                    (hidden(FORM_FIELD, t))
                    (field("Email", "email", "email", "off"))
                    p { label for="invite-role" { "Role" } (role_select("invite-role", "VIEWER")) }
                    button type="submit" { "Send invitation" }
                }
                h2 { "Pending invitations" }
                ul {
                    @for i in &pending {
                        li {
                            (text(i, "email")) " as " (text(i, "role")) " "
                            form method="post" action={ "/orgs/" (slug) "/invitations/" (text(i, "id")) "/revoke" } class="inline" {
                                (hidden(FORM_FIELD, t))
                                button type="submit" class="secondary" { "Revoke" }
                            }
                        }
                    }
                }
            }
            h2 { "Leave" }
            form method="post" action={ "/orgs/" (slug) "/leave" } {
                (hidden(FORM_FIELD, t))
                button type="submit" class="secondary" { "Leave this organization" }
            }
        }
    })
    .into_response()
}

/// Runs a form's API call and returns to the organization's page, or shows the refusal.
async fn act(
    console: &Console,
    visit: &Visit,
    slug: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let answer = visit.api(console, method, path, body).await;
    if answer.ok() {
        Redirect::to(&format!("/orgs/{slug}")).into_response()
    } else {
        refused(console, visit, &answer, &format!("/orgs/{slug}"))
    }
}

#[derive(Deserialize)]
struct Invite {
    email: String,
    role: String,
}

async fn invite(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<Invite>,
) -> Response {
    let slug = plain(&slug);
    let path = format!("/v1/orgs/{slug}/invitations");
    let body = json!({ "email": form.email, "role": form.role });
    act(&console, &visit, &slug, Method::POST, &path, Some(body)).await
}

#[derive(Deserialize)]
struct PolicyForm {
    require_two_factor: Option<bool>,
    require_phishing_resistant: Option<bool>,
}

async fn policy(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, form }: Posted<PolicyForm>,
) -> Response {
    let slug = plain(&slug);
    let mut body = json!({});
    if let Some(required) = form.require_two_factor {
        body["require_two_factor"] = json!(required);
    }
    if let Some(required) = form.require_phishing_resistant {
        body["require_phishing_resistant"] = json!(required);
    }
    act(&console, &visit, &slug, Method::PATCH, &format!("/v1/orgs/{slug}"), Some(body)).await
}

async fn revoke_invitation(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let (slug, id) = (plain(&slug), plain(&id));
    let path = format!("/v1/orgs/{slug}/invitations/{id}");
    act(&console, &visit, &slug, Method::DELETE, &path, None).await
}

#[derive(Deserialize)]
struct RoleForm {
    role: String,
}

async fn change_role(
    State(console): State<Console>,
    Path((slug, user)): Path<(String, String)>,
    Posted { visit, form }: Posted<RoleForm>,
) -> Response {
    let (slug, user) = (plain(&slug), plain(&user));
    let path = format!("/v1/orgs/{slug}/members/{user}");
    act(&console, &visit, &slug, Method::PATCH, &path, Some(json!({ "role": form.role }))).await
}

async fn leave(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let slug = plain(&slug);
    let answer = visit.api(&console, Method::POST, &format!("/v1/orgs/{slug}/leave"), None).await;
    if answer.ok() {
        return Redirect::to("/orgs").into_response();
    }
    render(&console, &visit, answer.status, "Not done", |_| alert(&answer.detail())).into_response()
}

#[derive(Deserialize)]
struct TokenLink {
    token: Option<String>,
}

async fn accept_page(State(console): State<Console>, visit: Visit, Query(link): Query<TokenLink>) -> impl IntoResponse {
    let link_token = link.token.unwrap_or_default();
    let signed_in = visit.signed_in();
    render(&console, &visit, StatusCode::OK, "Accept an invitation", |t| {
        html! {
            @if signed_in {
                form method="post" action="/accept-invitation" {
                    (hidden(FORM_FIELD, t))
                    (hidden("token", &link_token))
                    button type="submit" { "Join the organization" }
                }
            } @else {
                p { "Sign in with the address the invitation was sent to (or create an account with it first, then open the link in your email again)." }
                p {
                    a href={ "/sign-in?next=" (url_component(&format!("/accept-invitation?token={link_token}"))) } { "Sign in" }
                    " · " a href="/sign-up" { "Create an account" }
                }
            }
        }
    })
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

async fn accept(State(console): State<Console>, Posted { visit, form }: Posted<TokenForm>) -> Response {
    let answer =
        visit.api(&console, Method::POST, "/v1/invitations/accept", Some(json!({ "token": form.token }))).await;
    if answer.ok() {
        return redirect_with(&format!("/orgs/{}", plain(text(&answer.body, "slug"))), &answer);
    }
    render(&console, &visit, answer.status, "Accept an invitation", |_| alert(&answer.detail())).into_response()
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

async fn audit(
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
    let given = || asked.iter().filter(|(_, value)| !value.is_empty());
    // Days as the API takes them: from the first moment of the first, to the last of the last.
    let in_api = |name: &str, value: &str| match name {
        "from" => format!("{value}T00:00:00Z"),
        "to" => format!("{value}T23:59:59.999999Z"),
        _ => value.to_owned(),
    };
    let encoded: String =
        given().map(|(name, value)| format!("&{name}={}", url_component(&in_api(name, value)))).collect();
    let mut path = format!("/v1/orgs/{slug}/audit-logs?limit=50{encoded}");
    if let Some(cursor) = &query.cursor {
        path.push_str(&format!("&cursor={}", plain_cursor(cursor)));
    }
    let page = visit.api(&console, Method::GET, &path, None).await;
    if let Some(to_sign_in) = needs_session(&page) {
        return to_sign_in;
    }
    if !page.ok() {
        return render(&console, &visit, page.status, "Audit trail", |_| alert(&page.detail())).into_response();
    }
    let items = page.body["items"].as_array().cloned().unwrap_or_default();
    let next = page.body["next_cursor"].as_str().map(str::to_owned);
    let chain = match query.verify {
        Some(true) => Some(visit.api(&console, Method::GET, &format!("/v1/orgs/{slug}/audit-logs/chain"), None).await),
        _ => None,
    };
    let kept: String = given().map(|(name, value)| format!("&{name}={}", url_component(value))).collect();
    render(&console, &visit, StatusCode::OK, "Audit trail", |_| {
        html! {
            p { a href={ "/orgs/" (slug) } { "Back to the organization" } }
            form method="get" action={ "/orgs/" (slug) "/audit" } {
                @for ((name, label, kind), (_, value)) in AUDIT_FILTERS.iter().zip(&asked) {
                    p { label for=(name) { (label) } input id=(name) name=(name) type=(kind) value=(value); }
                }
                button type="submit" class="secondary" { "Filter" }
            }
            h2 { "Chain" }
            @match &chain {
                None => p { a href={ "/orgs/" (slug) "/audit?verify=true" } { "Verify the chain now" } " " span class="note" { "(recomputes every sealed record, as " code { "mos audit verify" } " does)" } },
                Some(c) if !c.ok() => (alert(&c.detail())),
                Some(c) if c.body["intact"] == true => p id="chain-state" {
                    "Intact: " (c.body["records"]) " sealed records, the last at link " (c.body["head_seq"])
                    " (" code { (text(&c.body, "head_hash").get(..16).unwrap_or_default()) } "…); "
                    (c.body["pending"]) " awaiting their seal."
                },
                Some(c) => p id="chain-state" class="alert" role="alert" {
                    "Broken at link " (c.body["broken"]["seq"]) ": " (text(&c.body["broken"], "reason")) ". " (text(&c.body["broken"], "detail"))
                },
            }
            h2 { "Records" }
            p {
                "Export everything: "
                a href={ "/v1/orgs/" (slug) "/audit-logs/export?format=ndjson" } { "NDJSON" } " · "
                a href={ "/v1/orgs/" (slug) "/audit-logs/export?format=csv" } { "CSV" }
            }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Action" } th scope="col" { "Actor" } th scope="col" { "Outcome" } th scope="col" { "Resource" } } }
                    tbody {
                        @for r in &items {
                            tr {
                                td { (text(r, "created_at")) }
                                td { code { (text(r, "action")) } }
                                td { code { (text(r, "actor")) } }
                                td { (text(r, "outcome")) }
                                td { (text(r, "resource_type")) " " code { (text(r, "resource_id")) } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = &next {
                p { a href={ "/orgs/" (slug) "/audit?cursor=" (next) (kept) } { "Older records" } }
            }
        }
    })
    .into_response()
}

/// The audit page's filters: query name (the API's too), label, input type.
const AUDIT_FILTERS: [(&str, &str, &str); 6] = [
    ("action", "Action (for example member.added)", "text"),
    ("actor", "Actor (a user id)", "text"),
    ("resource_type", "Resource type (for example membership)", "text"),
    ("resource_id", "Resource id", "text"),
    ("from", "From (day)", "date"),
    ("to", "To (day, included)", "date"),
];

fn plain_cursor(cursor: &str) -> String {
    cursor.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}
