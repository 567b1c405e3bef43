//! The signed-in user's own page: profile, sessions (this one marked, others revocable), and
//! their recent account events.

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::{
    alert, field, hidden, local_path, needs_session, passkey_button, plain, redirect_with, refused, render, text,
    Console, NoFields, Posted, Visit, FORM_FIELD,
};

pub fn router() -> Router<Console> {
    Router::new()
        .route("/account", get(account))
        .route("/account/sessions/{id}/revoke", post(revoke))
        .route("/account/reauthenticate", post(reauthenticate))
        .route("/account/password", post(change_password))
        .route("/account/two-factor/setup", post(two_factor_setup))
        .route("/account/two-factor/confirm", post(two_factor_confirm))
        .route("/account/two-factor/disable", post(two_factor_disable))
        .route("/account/passkeys/enrollment", post(mail_enrollment_link))
        .route("/account/passkeys/enroll", get(enroll_page))
        .route("/account/passkeys/{id}/rename", post(rename_passkey))
        .route("/account/passkeys/{id}/remove", post(remove_passkey))
}

async fn account(State(console): State<Console>, visit: Visit) -> Response {
    let me = visit.api(&console, Method::GET, "/v1/me", None).await;
    if let Some(to_sign_in) = needs_session(&me) {
        return to_sign_in;
    }
    let sessions = visit.api(&console, Method::GET, "/v1/me/sessions", None).await;
    let events = visit.api(&console, Method::GET, "/v1/me/events", None).await;
    let passkeys = visit.api(&console, Method::GET, "/v1/me/passkeys", None).await;
    let passkeys = passkeys.body.as_array().cloned().unwrap_or_default();
    let policy = visit.api(&console, Method::GET, "/v1/me/passkeys/policy", None).await.body;
    let sessions = sessions.body.as_array().cloned().unwrap_or_default();
    let events = events.body.as_array().cloned().unwrap_or_default();
    render(&console, &visit, StatusCode::OK, "Your account", |t| {
        html! {
            dl {
                dt { "Email" } dd { (text(&me.body, "email")) }
                dt { "Two-factor authentication" }
                dd { @if me.body["two_factor_enabled"] == true { "On" } @else { "Off" } }
            }
            h2 { "Two-factor authentication" }
            @if me.body["two_factor_enabled"] == true {
                p { "To turn it off, confirm with your password and a current code (or a recovery code)." }
                form method="post" action="/account/two-factor/disable" {
                    (hidden(FORM_FIELD, t))
                    (field("Password", "disable-password", "password", "current-password"))
                    p {
                        label for="disable-code" { "Code from your authenticator app, or a recovery code" }
                        input id="disable-code" name="code" type="text" autocomplete="one-time-code" required;
                    }
                    button type="submit" class="secondary" { "Turn two-factor off" }
                }
            } @else {
                p { "Protect your account with a code from an authenticator app at every sign-in." }
                form method="post" action="/account/two-factor/setup" {
                    (hidden(FORM_FIELD, t))
                    button type="submit" { "Set up two-factor authentication" }
                }
            }
            h2 { "Passkeys" }
            p { "A passkey signs you in with this device's lock (fingerprint, face or PIN) instead of a password, and cannot be phished. Adding or removing one signs out your other sessions." }
            @if !passkeys.is_empty() {
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { "Last used" } th scope="col" { span class="note" { "Actions" } } } }
                        tbody {
                            @for k in &passkeys {
                                tr {
                                    td { (text(k, "name")) @if k["backup_state"] == true { " " span class="note" { "(synced)" } } }
                                    td { (text(k, "created_at")) }
                                    td { (text(k, "last_used_at")) }
                                    td {
                                        form method="post" action={ "/account/passkeys/" (text(k, "id")) "/rename" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            label class="note" for={ "rename-" (text(k, "id")) } { "New name for " (text(k, "name")) }
                                            input id={ "rename-" (text(k, "id")) } name="name" type="text" required maxlength="100";
                                            " " button type="submit" class="secondary" { "Rename" }
                                        }
                                        " "
                                        form method="post" action={ "/account/passkeys/" (text(k, "id")) "/remove" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            button type="submit" class="secondary" { "Remove " (text(k, "name")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if policy["add"] == "emailed_link" {
                p { "Your organization requires passkeys, so your first passkey is added through a link we email to your address: a password and a code alone cannot add one. Its administrators are told when you have added it." }
                form method="post" action="/account/passkeys/enrollment" {
                    (hidden(FORM_FIELD, t))
                    button type="submit" { "Email me a link to add a passkey" }
                }
            } @else if policy["add"] == "passkey_session" && policy["session_is_phishing_resistant"] != true {
                p { "You signed in without a passkey. To add or remove passkeys, confirm with one of yours first." }
                (passkey_button("reauthenticate", "Confirm with a passkey", "/account", None))
            } @else {
                (new_passkey())
            }
            h2 { "Change your password" }
            form method="post" action="/account/password" {
                (hidden(FORM_FIELD, t))
                (field("Current password", "current_password", "password", "current-password"))
                (field("New password (12 to 256 characters)", "new_password", "password", "new-password"))
                button type="submit" { "Change password" }
            }
            h2 { "Sessions" }
            div class="scroll" {
                table {
                    caption class="note" { "Where you are signed in; end any you do not recognise." }
                    thead { tr { th scope="col" { "Signed in" } th scope="col" { "Last active" } th scope="col" { "From" } th scope="col" { span class="note" { "Action" } } } }
                    tbody {
                        @for s in &sessions {
                            tr {
                                td { (text(s, "created_at")) }
                                td { (text(s, "last_seen_at")) }
                                td { (text(s, "ip")) " " span class="note" { (text(s, "user_agent")) } }
                                td {
                                    @if s["current"] == true { "This session" } @else {
                                        form method="post" action={ "/account/sessions/" (text(s, "id")) "/revoke" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            button type="submit" class="secondary" { "Sign out this session" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Recent account events" }
            div class="scroll" {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th scope="col" { "Outcome" } th scope="col" { "From" } } }
                    tbody {
                        @for e in events.iter().take(20) {
                            tr { td { (text(e, "created_at")) } td { code { (text(e, "action")) } } td { (text(e, "outcome")) } td { (text(e, "ip")) } }
                        }
                    }
                }
            }
        }
    })
    .into_response()
}

async fn revoke(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let answer = visit.api(&console, Method::DELETE, &format!("/v1/me/sessions/{}", plain(&id)), None).await;
    if answer.ok() {
        Redirect::to("/account").into_response()
    } else {
        render(&console, &visit, answer.status, "Your account", |_| alert(&answer.detail())).into_response()
    }
}

#[derive(Deserialize)]
struct Reauthenticate {
    back: String,
    password: String,
    code: Option<String>,
}

async fn reauthenticate(State(console): State<Console>, Posted { visit, form }: Posted<Reauthenticate>) -> Response {
    let code = form.code.filter(|c| !c.trim().is_empty());
    let answer = visit
        .api(&console, Method::POST, "/v1/me/reauthenticate", Some(json!({ "password": form.password, "code": code })))
        .await;
    let back = local_path(&form.back);
    if answer.ok() {
        // The change itself is the user's to make again, now that it is allowed.
        return Redirect::to(&back).into_response();
    }
    refused(&console, &visit, &answer, &back)
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(State(console): State<Console>, Posted { visit, form }: Posted<PasswordChange>) -> Response {
    let body = json!({ "current_password": form.current_password, "new_password": form.new_password });
    let answer = visit.api(&console, Method::POST, "/v1/me/password", Some(body)).await;
    if answer.ok() {
        return redirect_with("/account", &answer);
    }
    refused(&console, &visit, &answer, "/account")
}

async fn two_factor_setup(State(console): State<Console>, Posted { visit, .. }: Posted<NoFields>) -> Response {
    let answer = visit.api(&console, Method::POST, "/v1/me/two-factor/setup", None).await;
    if !answer.ok() {
        return refused(&console, &visit, &answer, "/account");
    }
    let qr = data_encoding::BASE64.encode(text(&answer.body, "qr_svg").as_bytes());
    let secret = text(&answer.body, "secret").to_owned();
    render(&console, &visit, StatusCode::OK, "Set up two-factor authentication", |t| {
        html! {
            ol {
                li { "Scan this code with your authenticator app:" br;
                    img src={ "data:image/svg+xml;base64," (qr) } alt="QR code of your two-factor key" width="200" height="200"; }
                li { "Or type this key by hand: " code id="totp-key" { (secret) } }
                li { "Enter the 6-digit code the app shows:" }
            }
            (confirm_code_form(t, None))
        }
    })
    .into_response()
}

fn confirm_code_form(token: &str, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action="/account/two-factor/confirm" {
            (hidden(FORM_FIELD, token))
            p {
                label for="code" { "Code" }
                input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required;
            }
            button type="submit" { "Turn two-factor on" }
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn two_factor_confirm(State(console): State<Console>, Posted { visit, form }: Posted<CodeForm>) -> Response {
    let answer =
        visit.api(&console, Method::POST, "/v1/me/two-factor/confirm", Some(json!({ "code": form.code }))).await;
    if !answer.ok() {
        let problem = answer.detail();
        return render(&console, &visit, answer.status, "Set up two-factor authentication", |t| {
            confirm_code_form(t, Some(&problem))
        })
        .into_response();
    }
    let codes: Vec<String> = answer.body["recovery_codes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let download = data_encoding::BASE64.encode(format!("{}\n", codes.join("\n")).as_bytes());
    let mut page = render(&console, &visit, StatusCode::OK, "Two-factor authentication is on", |_| {
        html! {
            p { "Keep these recovery codes somewhere safe. Each signs you in once if you lose your authenticator. They are shown only now." }
            ul id="recovery-codes" { @for code in &codes { li { code { (code) } } } }
            p { a href={ "data:text/plain;base64," (download) } download="marketing-os-recovery-codes.txt" { "Download the codes" } }
            p { "Every other session was signed out. " a href="/account" { "Back to your account" } }
        }
    });
    page.cookies.extend(answer.set_cookies.iter().cloned());
    page.into_response()
}

#[derive(Deserialize)]
struct DisableForm {
    #[serde(rename = "disable-password")]
    password: String,
    code: String,
}

async fn two_factor_disable(State(console): State<Console>, Posted { visit, form }: Posted<DisableForm>) -> Response {
    let code = form.code.trim().to_owned();
    let body = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "password": form.password, "code": code })
    } else {
        json!({ "password": form.password, "recovery_code": code })
    };
    let answer = visit.api(&console, Method::POST, "/v1/me/two-factor/disable", Some(body)).await;
    if answer.ok() {
        return redirect_with("/account", &answer);
    }
    refused(&console, &visit, &answer, "/account")
}

#[derive(Deserialize)]
struct PasskeyName {
    name: String,
}

async fn rename_passkey(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { visit, form }: Posted<PasskeyName>,
) -> Response {
    let path = format!("/v1/me/passkeys/{}", plain(&id));
    let answer = visit.api(&console, Method::PATCH, &path, Some(json!({ "name": form.name }))).await;
    if answer.ok() {
        return Redirect::to("/account").into_response();
    }
    refused(&console, &visit, &answer, "/account")
}

async fn remove_passkey(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let answer = visit.api(&console, Method::DELETE, &format!("/v1/me/passkeys/{}", plain(&id)), None).await;
    if answer.ok() {
        return redirect_with("/account", &answer);
    }
    refused(&console, &visit, &answer, "/account")
}

/// The name field and the button that add a passkey (`passkey.js`).
fn new_passkey() -> Markup {
    html! {
        p {
            label for="passkey-name" { "Name for a new passkey (the device, say)" }
            input id="passkey-name" type="text" maxlength="100" autocomplete="off";
        }
        (passkey_button("register", "Add a passkey", "/account", Some(("name", "passkey-name"))))
    }
}

async fn mail_enrollment_link(State(console): State<Console>, Posted { visit, .. }: Posted<NoFields>) -> Response {
    let answer = visit.api(&console, Method::POST, "/v1/me/passkeys/enrollment", None).await;
    if !answer.ok() {
        return refused(&console, &visit, &answer, "/account");
    }
    render(&console, &visit, StatusCode::OK, "Check your email", |_| {
        html! {
            p { "We sent a link to your address. Open it in this browser, on the device that holds your passkey, within 30 minutes." }
            p { a href="/account" { "Back to your account" } }
        }
    })
    .into_response()
}

#[derive(Deserialize)]
struct EnrollmentLink {
    token: Option<String>,
}

/// Where the mailed link leads: the button that adds the first passkey with the link's token.
async fn enroll_page(State(console): State<Console>, visit: Visit, Query(link): Query<EnrollmentLink>) -> Response {
    let me = visit.api(&console, Method::GET, "/v1/me", None).await;
    if let Some(to_sign_in) = needs_session(&me) {
        return to_sign_in;
    }
    let token = link.token.unwrap_or_default();
    render(&console, &visit, StatusCode::OK, "Add your first passkey", |_| {
        html! {
            p { "Add a passkey to " (text(&me.body, "email")) ". It then signs you in, and your organization's administrators are told." }
            input id="passkey-enrollment" type="hidden" value=(token);
            (new_passkey())
        }
    })
    .into_response()
}
