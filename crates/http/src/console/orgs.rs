//! Organizations: mine, one organization's members and invitations, and accepting an
//! invitation. Controls are shown to the roles that may use them; the operation decides
//! regardless, so a forged form gets the same refusal as through the API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::orgs::{Invitation, Member, Mine, Organization};
use mos_domain::{url_component, Permission, Role};
use secrecy::SecretString;
use serde::Deserialize;

use super::words::confirmation;
use super::{alert, failed, field, hidden, plain, refused, render, Console, NoFields, Posted, Visit, FORM_FIELD};
use crate::access::{ChangeRoles, InviteMembers, Leave, ManageOrganization, ReadMembers, ReadOrganization};
use crate::app::orgs;
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/orgs", get(list).post(create))
        .route("/orgs/{slug}", get(organization))
        .route("/orgs/{slug}/invite", post(invite))
        .route("/orgs/{slug}/invitations/{id}/revoke", post(revoke_invitation))
        .route("/orgs/{slug}/members/{user}/role", post(change_role))
        .route("/orgs/{slug}/leave", post(leave))
        .route("/orgs/{slug}/policy", post(policy))
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

async fn list(State(console): State<Console>, visit: Visit, Query(query): Query<DoneQuery>) -> Response {
    match mine(&console, &visit).await {
        Ok(mine) => list_page(&console, &visit, &mine, confirmation(query.done.as_deref()), None),
        Err(error) => failed(&console, &visit, error, "Your organizations"),
    }
}

/// The organizations of the signed-in user, in one transaction.
async fn mine(console: &Console, visit: &Visit) -> Result<Vec<Mine>, ApiError> {
    let mut auth = visit.user(console).await?;
    let (mine, _) = orgs::mine(&mut auth, None, Some(crate::paging::PAGE_MAX)).await?;
    auth.tx.commit().await?;
    Ok(mine)
}

fn list_page(console: &Console, visit: &Visit, items: &[Mine], said: Markup, problem: Option<&str>) -> Response {
    render(console, visit, StatusCode::OK, "Your organizations", |t| {
        html! {
            (said)
            @if let Some(problem) = problem { (alert(problem)) }
            @if items.is_empty() { p { "You belong to no organization yet. Create one, or accept an invitation from your email." } }
            ul {
                @for org in items {
                    li { a href={ "/orgs/" (org.slug.as_str()) } { (org.name.as_str()) } " " span class="note" { "(" (org.role) ")" } }
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
    let created = match visit.user(&console).await {
        Ok(auth) => orgs::create(auth, &visit.source, &form.slug, &form.name).await,
        Err(error) => Err(error),
    };
    let problem = match created {
        Ok(org) => return Redirect::to(&format!("/orgs/{}?done=created", org.slug.as_str())).into_response(),
        Err(ApiError::Unauthenticated) => return Redirect::to("/sign-in").into_response(),
        Err(error) => error.shown(&console.app.readiness),
    };
    match mine(&console, &visit).await {
        Ok(mine) => list_page(&console, &visit, &mine, html! {}, Some(&problem)),
        Err(error) => failed(&console, &visit, error, "Your organizations"),
    }
}

#[derive(Deserialize)]
struct MembersQuery {
    /// Where the page of members starts.
    members: Option<String>,
    /// The change that led here, to confirm.
    done: Option<String>,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// The members shown on one page of the organization.
const MEMBERS_PAGE: i64 = 50;

/// What the organization's page shows, read in one transaction.
struct OrgPage {
    org: Organization,
    role: Role,
    members: Vec<Member>,
    more_members: Option<String>,
    /// For those who may invite.
    pending: Option<Vec<Invitation>>,
}

async fn org_page(console: &Console, visit: &Visit, slug: &str, cursor: Option<&str>) -> Result<OrgPage, ApiError> {
    let mut auth = visit.member::<ReadOrganization>(console, slug).await?;
    let org = orgs::get(&mut auth).await?;
    let role = auth.role;
    let mut auth = auth.also::<ReadMembers>().map_err(|_| ApiError::Forbidden(Permission::ReadMembers))?;
    let (members, more_members) = orgs::members_page(&mut auth, cursor, MEMBERS_PAGE).await?;
    let pending = match auth.also::<InviteMembers>() {
        Ok(mut admin) => {
            let pending = orgs::invitations(&console.app, &mut admin).await?;
            admin.commit().await?;
            Some(pending)
        }
        Err(reader) => {
            reader.commit().await?;
            None
        }
    };
    Ok(OrgPage { org, role, members, more_members, pending })
}

async fn organization(
    State(console): State<Console>,
    visit: Visit,
    Path(slug): Path<String>,
    Query(query): Query<MembersQuery>,
) -> Response {
    let slug = plain(&slug);
    let page = match org_page(&console, &visit, &slug, query.members.as_deref()).await {
        Ok(page) => page,
        Err(error) => return failed(&console, &visit, error, "Organization"),
    };
    let OrgPage { org, role, members, more_members, pending } = page;
    let manages = role.can(Permission::ManageOrganization);
    let changes_roles = role.can(Permission::ChangeRoles);
    render(&console, &visit, StatusCode::OK, org.name.as_str(), |t| {
        html! {
            (confirmation(query.done.as_deref()))
            p class="note" { "Your role: " (role) }
            p {
                a href={ "/orgs/" (slug) "/content" } { "Content" } " · "
                a href={ "/orgs/" (slug) "/content?mine=review" } { "Waiting for my review" } " · "
                a href={ "/orgs/" (slug) "/audience" } { "Audience" }
                @if role.can(Permission::ReadSenders) { " · " a href={ "/orgs/" (slug) "/senders" } { "Senders" } }
                " · " a href={ "/orgs/" (slug) "/sending" } { "Sending health" }
                @if role.can(Permission::ManageWebhooks) { " · " a href={ "/orgs/" (slug) "/webhooks" } { "Webhooks" } }
            }
            @if org.require_two_factor { p { "Members must use two-factor authentication." } }
            @if org.require_phishing_resistant { p { "Members must sign in with a passkey." } }
            @if role.can(Permission::ReadAuditLog) { p { a href={ "/orgs/" (slug) "/audit" } { "Audit trail" } } }
            @if manages {
                form method="post" action={ "/orgs/" (slug) "/policy" } {
                    (hidden(FORM_FIELD, t))
                    @if org.require_two_factor {
                        (hidden("require_two_factor", "false"))
                        button type="submit" class="secondary" { "Stop requiring two-factor authentication" }
                    } @else {
                        (hidden("require_two_factor", "true"))
                        button type="submit" class="secondary" { "Require two-factor authentication of every member" }
                    }
                }
                form method="post" action={ "/orgs/" (slug) "/policy" } {
                    (hidden(FORM_FIELD, t))
                    @if org.require_phishing_resistant {
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
                                td { (m.email) }
                                td {
                                    @if changes_roles {
                                        form method="post" action={ "/orgs/" (slug) "/members/" (m.user) "/role" } {
                                            (hidden(FORM_FIELD, t))
                                            label class="note" for={ "role-" (m.user) } { "Role of " (m.email) }
                                            (role_select(&format!("role-{}", m.user), m.role.as_str()))
                                            " " button type="submit" class="secondary" { "Change" }
                                        }
                                    } @else { (m.role) }
                                }
                                td { @if m.two_factor_enabled { "on" } @else { "off" } }
                            }
                        }
                    }
                }
            }
            @if let Some(cursor) = &more_members {
                p { a href={ "/orgs/" (slug) "?members=" (url_component(cursor)) } { "More members" } }
            }
            @if let Some(pending) = &pending {
                h2 { "Invite someone" }
                form method="post" action={ "/orgs/" (slug) "/invite" } {
                    (hidden(FORM_FIELD, t))
                    (field("Email", "email", "email", "off"))
                    p { label for="invite-role" { "Role" } (role_select("invite-role", "VIEWER")) }
                    button type="submit" { "Send invitation" }
                }
                h2 { "Pending invitations" }
                @if pending.is_empty() { p class="note" { "No invitation is waiting for an answer." } }
                ul {
                    @for i in pending {
                        li {
                            (i.email) " as " (i.role) " "
                            form method="post" action={ "/orgs/" (slug) "/invitations/" (i.id) "/revoke" } class="inline" {
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

/// Back to the organization's page after a change, which it confirms as `what`, or the
/// refusal.
fn done(console: &Console, visit: &Visit, slug: &str, what: &str, outcome: Result<(), ApiError>) -> Response {
    match outcome {
        Ok(()) => Redirect::to(&format!("/orgs/{slug}?done={what}")).into_response(),
        Err(error) => refused(console, visit, &error, &format!("/orgs/{slug}")),
    }
}

/// A role as a form names it.
fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse().map_err(|_| ApiError::Invalid { field: "role", message: format!("{role:?} is not a role") })
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
    let outcome = async {
        let auth = visit.member::<InviteMembers>(&console, &slug).await?;
        let role = parse_role(&form.role)?;
        orgs::invite(&console.app, auth, &form.email, role).await.map(drop)
    };
    done(&console, &visit, &slug, "invited", outcome.await)
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
    let change = orgs::Change {
        require_two_factor: form.require_two_factor,
        require_phishing_resistant: form.require_phishing_resistant,
        ..Default::default()
    };
    let outcome = async {
        let auth = visit.member::<ManageOrganization>(&console, &slug).await?;
        orgs::update(&console.app, auth, change).await.map(drop)
    };
    done(&console, &visit, &slug, "policy", outcome.await)
}

async fn revoke_invitation(
    State(console): State<Console>,
    Path((slug, id)): Path<(String, String)>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let slug = plain(&slug);
    let outcome = async {
        let auth = visit.member::<InviteMembers>(&console, &slug).await?;
        orgs::revoke_invitation(&console.app, auth, &id).await
    };
    done(&console, &visit, &slug, "invitation_revoked", outcome.await)
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
    let slug = plain(&slug);
    let outcome = async {
        let auth = visit.member::<ChangeRoles>(&console, &slug).await?;
        let role = parse_role(&form.role)?;
        orgs::change_role(&console.app, auth, &user, role).await
    };
    done(&console, &visit, &slug, "role_changed", outcome.await)
}

async fn leave(
    State(console): State<Console>,
    Path(slug): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let slug = plain(&slug);
    let outcome = async {
        let auth = visit.member::<Leave>(&console, &slug).await?;
        orgs::leave(auth).await
    };
    match outcome.await {
        Ok(()) => Redirect::to("/orgs?done=left").into_response(),
        Err(error) => {
            let detail = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Not done", |_| alert(&detail)).into_response()
        }
    }
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
    let token = SecretString::from(form.token);
    let outcome = async {
        let auth = visit.user(&console).await?;
        orgs::accept_invitation(&console.app, auth, &visit.source, &token).await
    };
    match outcome.await {
        Ok(joined) => Redirect::to(&format!("/orgs/{}?done=joined", joined.org.slug.as_str())).into_response(),
        Err(error) => {
            let detail = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Accept an invitation", |_| alert(&detail)).into_response()
        }
    }
}
