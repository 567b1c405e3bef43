//! The signed-in user's own page: profile, sessions (this one marked, others revocable), and
//! their recent account events.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use mos_db::audit::AuditRecord;
use mos_db::passkeys::Stored;
use mos_db::sessions::Listed;
use mos_db::users::Profile;
use secrecy::SecretString;
use serde::Deserialize;

use super::words::confirmation;
use super::{
    alert, failed, field, hidden, local_path, passkey_button, redirect_setting, refused, render, when, Console,
    NoFields, Posted, Visit, FORM_FIELD,
};
use crate::app::passkeys::{self, Gate};
use crate::app::{account, session::Issued};
use crate::ApiError;

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

/// What the account page shows, read in one transaction.
struct AccountPage {
    me: Profile,
    sessions: Vec<Listed>,
    current: mos_domain::SessionId,
    events: Vec<AuditRecord>,
    passkeys: Vec<Stored>,
    gate: Gate,
    phishing_resistant: bool,
}

/// The account events the page shows.
const EVENTS_SHOWN: i64 = 20;

async fn account_page(console: &Console, visit: &Visit) -> Result<AccountPage, ApiError> {
    let mut auth = visit.user(console).await?;
    let me = account::me(&mut auth).await?;
    let sessions = account::sessions(&console.app, &mut auth).await?;
    let events = account::events(&mut auth, EVENTS_SHOWN).await?;
    let passkeys = passkeys::list(&mut auth).await?;
    let (gate, _) = passkeys::policy(&mut auth).await?;
    auth.tx.commit().await?;
    let (current, phishing_resistant) = (auth.session.id, auth.session.phishing_resistant);
    Ok(AccountPage { me, sessions, current, events, passkeys, gate, phishing_resistant })
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn account(State(console): State<Console>, visit: Visit, Query(query): Query<DoneQuery>) -> Response {
    let page = match account_page(&console, &visit).await {
        Ok(page) => page,
        Err(error) => return failed(&console, &visit, error, "Your account"),
    };
    let AccountPage { me, sessions, current, events, passkeys, gate, phishing_resistant } = page;
    let now = console.app.clock.now();
    render(&console, &visit, StatusCode::OK, "Your account", |t| {
        html! {
            (confirmation(query.done.as_deref()))
            dl {
                dt { "Email" } dd { (me.email) }
                dt { "Two-factor authentication" }
                dd { @if me.totp_enabled_at.is_some() { "On" } @else { "Off" } }
            }
            h2 { "Two-factor authentication" }
            @if me.totp_enabled_at.is_some() {
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
                                    td { (k.name) @if k.backup_state { " " span class="note" { "(synced)" } } }
                                    td { (when(now, k.created_at)) }
                                    td { @if let Some(used) = k.last_used_at { (when(now, used)) } @else { "never" } }
                                    td {
                                        form method="post" action={ "/account/passkeys/" (k.id) "/rename" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            label class="note" for={ "rename-" (k.id) } { "New name for " (k.name) }
                                            input id={ "rename-" (k.id) } name="name" type="text" required maxlength="100";
                                            " " button type="submit" class="secondary" { "Rename" }
                                        }
                                        " "
                                        form method="post" action={ "/account/passkeys/" (k.id) "/remove" } class="inline" {
                                            (hidden(FORM_FIELD, t))
                                            button type="submit" class="secondary" { "Remove " (k.name) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if matches!(gate, Gate::EmailedLink(_)) {
                p { "Your organization requires passkeys, so your first passkey is added through a link we email to your address: a password and a code alone cannot add one. Its administrators are told when you have added it." }
                form method="post" action="/account/passkeys/enrollment" {
                    (hidden(FORM_FIELD, t))
                    button type="submit" { "Email me a link to add a passkey" }
                }
            } @else if gate == Gate::PasskeySession && !phishing_resistant {
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
                                td { (when(now, s.created_at)) }
                                td { (when(now, s.last_seen_at)) }
                                td { (s.ip.map(|ip| ip.to_string()).unwrap_or_default()) " " span class="note" { (s.user_agent.as_deref().unwrap_or_default()) } }
                                td {
                                    @if s.id == current { "This session" } @else {
                                        form method="post" action={ "/account/sessions/" (s.id) "/revoke" } class="inline" {
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
                        @if events.is_empty() { tr { td colspan="4" { "No account events yet." } } }
                        @for e in &events {
                            tr { td { (when(now, e.created_at)) } td { code { (e.action) } } td { (e.outcome) } td { (e.ip.map(|ip| ip.to_string()).unwrap_or_default()) } }
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
    let revoked = async {
        let auth = visit.user(&console).await?;
        account::revoke_session(&console.app, auth, &visit.source, &id).await
    };
    match revoked.await {
        Ok(()) => Redirect::to("/account?done=session_ended").into_response(),
        Err(error) => {
            let detail = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Your account", |_| alert(&detail)).into_response()
        }
    }
}

/// Back to the account page holding the session that replaced the visit's, confirming the
/// change as `what`, or the refusal.
fn restarted(console: &Console, visit: &Visit, what: &str, outcome: Result<Issued, ApiError>) -> Response {
    match outcome {
        Ok(issued) => redirect_setting(&format!("/account?done={what}"), [issued.cookie()]),
        Err(error) => refused(console, visit, &error, "/account"),
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
    let proof = account::Proof { password: SecretString::from(form.password), code, recovery_code: None };
    let confirmed = async {
        let auth = visit.user(&console).await?;
        account::reauthenticate(&console.app, auth, &visit.source, proof).await
    };
    let back = local_path(&form.back);
    match confirmed.await {
        // The change itself is the user's to make again, now that it is allowed.
        Ok(()) => Redirect::to(&back).into_response(),
        Err(error) => refused(&console, &visit, &error, &back),
    }
}

#[derive(Deserialize)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

async fn change_password(State(console): State<Console>, Posted { visit, form }: Posted<PasswordChange>) -> Response {
    let (current, new) = (SecretString::from(form.current_password), SecretString::from(form.new_password));
    let changed = async {
        let auth = visit.user(&console).await?;
        account::change_password(&console.app, auth, &visit.source, current, new).await
    };
    restarted(&console, &visit, "password_changed", changed.await)
}

async fn two_factor_setup(State(console): State<Console>, Posted { visit, .. }: Posted<NoFields>) -> Response {
    let started = async {
        let auth = visit.user(&console).await?;
        account::start_two_factor(&console.app, auth, &visit.source).await
    };
    let enrollment = match started.await {
        Ok(enrollment) => enrollment,
        Err(error) => return refused(&console, &visit, &error, "/account"),
    };
    let qr = data_encoding::BASE64.encode(enrollment.qr_svg.as_bytes());
    let secret = enrollment.secret;
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
    let confirmed = async {
        let auth = visit.user(&console).await?;
        account::confirm_two_factor(&console.app, auth, &visit.source, &form.code).await
    };
    let enabled = match confirmed.await {
        Ok(enabled) => enabled,
        Err(error) => {
            let problem = error.shown(&console.app.readiness);
            return render(&console, &visit, error.status(), "Set up two-factor authentication", |t| {
                confirm_code_form(t, Some(&problem))
            })
            .into_response();
        }
    };
    // The page below is the first of the new session: its forms are signed for it.
    visit.renew(&enabled.issued);
    let codes = enabled.recovery_codes;
    let download = data_encoding::BASE64.encode(format!("{}\n", codes.join("\n")).as_bytes());
    let mut page = render(&console, &visit, StatusCode::OK, "Two-factor authentication is on", |_| {
        html! {
            p { "Keep these recovery codes somewhere safe. Each signs you in once if you lose your authenticator. They are shown only now." }
            ul id="recovery-codes" { @for code in &codes { li { code { (code) } } } }
            p { a href={ "data:text/plain;base64," (download) } download="marketing-os-recovery-codes.txt" { "Download the codes" } }
            p { "Every other session was signed out. " a href="/account" { "Back to your account" } }
        }
    });
    page.cookies.push(enabled.issued.cookie());
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
    let password = SecretString::from(form.password);
    let proof = if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        account::Proof { password, code: Some(code), recovery_code: None }
    } else {
        account::Proof { password, code: None, recovery_code: Some(SecretString::from(code)) }
    };
    let disabled = async {
        let auth = visit.user(&console).await?;
        account::disable_two_factor(&console.app, auth, &visit.source, proof).await
    };
    restarted(&console, &visit, "two_factor_off", disabled.await)
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
    let renamed = async {
        let auth = visit.user(&console).await?;
        passkeys::rename(auth, &visit.source, &id, &form.name).await
    };
    match renamed.await {
        Ok(()) => Redirect::to("/account?done=passkey_renamed").into_response(),
        Err(error) => refused(&console, &visit, &error, "/account"),
    }
}

async fn remove_passkey(
    State(console): State<Console>,
    Path(id): Path<String>,
    Posted { visit, .. }: Posted<NoFields>,
) -> Response {
    let removed = async {
        let auth = visit.user(&console).await?;
        passkeys::remove(&console.app, auth, &visit.source, &id).await
    };
    restarted(&console, &visit, "passkey_removed", removed.await)
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
    let mailed = async {
        let auth = visit.user(&console).await?;
        passkeys::mail_enrollment_link(&console.app, auth, &visit.source).await
    };
    if let Err(error) = mailed.await {
        return refused(&console, &visit, &error, "/account");
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
    let me = async {
        let mut auth = visit.user(&console).await?;
        let me = account::me(&mut auth).await?;
        auth.tx.commit().await?;
        Ok::<_, ApiError>(me)
    };
    let me = match me.await {
        Ok(me) => me,
        Err(error) => return failed(&console, &visit, error, "Add your first passkey"),
    };
    let token = link.token.unwrap_or_default();
    render(&console, &visit, StatusCode::OK, "Add your first passkey", |_| {
        html! {
            p { "Add a passkey to " (me.email) ". It then signs you in, and your organization's administrators are told." }
            input id="passkey-enrollment" type="hidden" value=(token);
            (new_passkey())
        }
    })
    .into_response()
}
