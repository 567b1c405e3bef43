//! Signing up and in: the pages the emailed links land on, and the forms of the sign-in steps
//! (`app::signin`, `app::registration`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use super::{
    alert, field, hidden, local_path, passkey_button, redirect_setting, render, Console, NoFields, Posted, Visit,
    FORM_FIELD,
};
use crate::app::session;
use crate::app::signin::{self, PasswordStep};
use crate::app::{registration, signin::SignedIn};
use crate::ApiError;

pub fn router() -> Router<Console> {
    Router::new()
        .route("/sign-up", get(sign_up_page).post(sign_up))
        .route("/verify-email", get(verify_page).post(verify))
        .route("/verify-email/resend", post(resend))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-in/two-factor", post(second_step))
        .route("/sign-out", post(sign_out))
        .route("/forgot-password", get(forgot_page).post(forgot))
        .route("/reset-password", get(reset_page).post(reset))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
    /// Where to go once signed in (a page of this site), e.g. back to an invitation.
    next: Option<String>,
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

#[derive(Deserialize)]
struct TokenLink {
    token: Option<String>,
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

fn sign_up_form(token: &str, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action="/sign-up" {
            (hidden(FORM_FIELD, token))
            (field("Email", "email", "email", "email"))
            (field("Password (12 to 256 characters)", "password", "password", "new-password"))
            button type="submit" { "Create account" }
        }
        p { "Already have an account? " a href="/sign-in" { "Sign in" } }
    }
}

async fn sign_up_page(State(console): State<Console>, visit: Visit) -> impl IntoResponse {
    render(&console, &visit, StatusCode::OK, "Create your account", |t| sign_up_form(t, None))
}

async fn sign_up(State(console): State<Console>, Posted { visit, form }: Posted<Credentials>) -> impl IntoResponse {
    let password = SecretString::from(form.password);
    match registration::register(&console.app, &visit.source, &form.email, password).await {
        Ok(()) => render(&console, &visit, StatusCode::OK, "Check your email", |_| {
            html! { p { "We sent a link to " strong { (form.email) } ". Open it within 24 hours to confirm your address." } }
        }),
        Err(error) => {
            let problem = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Create your account", |t| sign_up_form(t, Some(&problem)))
        }
    }
}

/// A page that a link with a token lands on: one button that spends it. Opening the link
/// changes nothing (mail scanners open links too); the button does.
fn confirm_form(token: &str, action: &str, link_token: &str, button: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            (hidden(FORM_FIELD, token))
            (hidden("token", link_token))
            button type="submit" { (button) }
        }
    }
}

async fn verify_page(State(console): State<Console>, visit: Visit, Query(link): Query<TokenLink>) -> impl IntoResponse {
    let link_token = link.token.unwrap_or_default();
    render(&console, &visit, StatusCode::OK, "Confirm your email address", |t| {
        confirm_form(t, "/verify-email", &link_token, "Confirm my address")
    })
}

async fn verify(State(console): State<Console>, Posted { visit, form }: Posted<TokenForm>) -> impl IntoResponse {
    let token = SecretString::from(form.token);
    match registration::verify_email(&console.app, &visit.source, &token).await {
        Ok(()) => render(&console, &visit, StatusCode::OK, "Address confirmed", |_| {
            html! { p { "Your address is confirmed. " a href="/sign-in" { "Sign in" } "." } }
        }),
        Err(error) => render(&console, &visit, error.status(), "Confirm your email address", |t| {
            html! {
                (alert(&error.shown(&console.app.readiness)))
                p { "Sign in if you already confirmed your address; otherwise ask for a new link:" }
                (resend_form(t))
            }
        }),
    }
}

fn sign_in_form(token: &str, next: &str, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action="/sign-in" {
            (hidden(FORM_FIELD, token))
            (hidden("next", next))
            (field("Email", "email", "email", "username"))
            (field("Password", "password", "password", "current-password"))
            button type="submit" { "Sign in" }
        }
        (passkey_button("sign-in", "Sign in with a passkey", next, None))
        p { a href="/forgot-password" { "Forgot your password?" } }
        p { "New here? " a href="/sign-up" { "Create an account" } }
    }
}

fn second_step_form(token: &str, challenge: &str, next: &str, passkey: bool, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        @if passkey { (passkey_button("second-factor", "Use a passkey", next, Some(("challenge", challenge)))) }
        form method="post" action="/sign-in/two-factor" {
            (hidden(FORM_FIELD, token))
            (hidden("challenge", challenge))
            (hidden("next", next))
            (hidden("passkey", if passkey { "true" } else { "false" }))
            p {
                label for="code" { "Code from your authenticator app" }
                input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}";
            }
            p {
                label for="recovery_code" { "Or one of your recovery codes" }
                input id="recovery_code" name="recovery_code" type="text" autocomplete="off";
            }
            button type="submit" { "Continue" }
        }
    }
}

async fn sign_in_page(State(console): State<Console>, visit: Visit, Query(next): Query<Next>) -> impl IntoResponse {
    let next = next_page(next.next.as_deref());
    render(&console, &visit, StatusCode::OK, "Sign in", |t| sign_in_form(t, &next, None))
}

/// Where a completed sign-in goes: where the user was headed, or to the organizations.
fn next_page(next: Option<&str>) -> String {
    local_path(next.unwrap_or("/orgs"))
}

async fn sign_in(State(console): State<Console>, Posted { visit, form }: Posted<Credentials>) -> Response {
    let next = next_page(form.next.as_deref());
    let password = SecretString::from(form.password);
    match signin::password(&console.app, &visit.source, &form.email, password, visit.device_token()).await {
        Ok(PasswordStep::TwoFactorRequired { challenge, passkey, .. }) => {
            render(&console, &visit, StatusCode::OK, "Two-factor authentication", |t| {
                second_step_form(t, &challenge, &next, passkey, None)
            })
            .into_response()
        }
        Ok(PasswordStep::SignedIn(signed)) => signed_in(&next, &signed),
        Err(error) => {
            let problem = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Sign in", |t| sign_in_form(t, &next, Some(&problem)))
                .into_response()
        }
    }
}

/// To the page the user was headed to, holding the new session and device token.
fn signed_in(next: &str, signed: &SignedIn) -> Response {
    redirect_setting(next, signed.cookies())
}

#[derive(Deserialize)]
struct SecondStep {
    challenge: String,
    /// Whether the account has a passkey to offer, as the first step said.
    passkey: Option<bool>,
    next: Option<String>,
    code: Option<String>,
    recovery_code: Option<String>,
}

async fn second_step(State(console): State<Console>, Posted { visit, form }: Posted<SecondStep>) -> Response {
    let next = next_page(form.next.as_deref());
    let filled = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let (code, recovery) = match (filled(form.code), filled(form.recovery_code)) {
        (_, Some(recovery)) => (None, Some(SecretString::from(recovery))),
        (code, None) => (Some(code.unwrap_or_default()), None),
    };
    let challenge = SecretString::from(form.challenge.clone());
    let error = match signin::second_factor(&console.app, &visit.source, &challenge, code.as_deref(), recovery.as_ref())
        .await
    {
        Ok(signed) => return signed_in(&next, &signed),
        Err(error) => error,
    };
    let problem = error.shown(&console.app.readiness);
    if matches!(error, ApiError::InvalidChallenge) {
        return render(&console, &visit, error.status(), "Sign in", |t| sign_in_form(t, &next, Some(&problem)))
            .into_response();
    }
    render(&console, &visit, error.status(), "Two-factor authentication", |t| {
        second_step_form(t, &form.challenge, &next, form.passkey.unwrap_or(false), Some(&problem))
    })
    .into_response()
}

async fn sign_out(State(console): State<Console>, Posted { visit, .. }: Posted<NoFields>) -> Response {
    // Without a live session there is nothing to end; the cookie is cleared all the same.
    if let Ok(auth) = visit.user(&console).await {
        if let Err(error) = signin::sign_out(&console.app, auth, &visit.source).await {
            return super::refused(&console, &visit, &error, "/account");
        }
    }
    redirect_setting("/sign-in", [session::clear_cookie().1])
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
}

async fn forgot_page(State(console): State<Console>, visit: Visit) -> impl IntoResponse {
    render(&console, &visit, StatusCode::OK, "Reset your password", |t| {
        html! {
            form method="post" action="/forgot-password" {
                (hidden(FORM_FIELD, t))
                (field("Email", "email", "email", "email"))
                button type="submit" { "Send a reset link" }
            }
        }
    })
}

async fn forgot(State(console): State<Console>, Posted { visit, form }: Posted<EmailForm>) -> impl IntoResponse {
    match registration::request_password_reset(&console.app, &visit.source, &form.email).await {
        Ok(()) => render(&console, &visit, StatusCode::OK, "Check your email", |_| {
            html! { p { "If " strong { (form.email) } " has an account, a reset link valid for one hour is on its way." } }
        }),
        Err(error) => render(&console, &visit, error.status(), "Reset your password", |_| {
            alert(&error.shown(&console.app.readiness))
        }),
    }
}

fn reset_form(token: &str, link_token: &str, problem: Option<&str>) -> Markup {
    html! {
        @if let Some(problem) = problem { (alert(problem)) }
        form method="post" action="/reset-password" {
            (hidden(FORM_FIELD, token))
            (hidden("token", link_token))
            (field("New password (12 to 256 characters)", "new_password", "password", "new-password"))
            button type="submit" { "Set the new password" }
        }
    }
}

async fn reset_page(State(console): State<Console>, visit: Visit, Query(link): Query<TokenLink>) -> Response {
    match link.token.filter(|t| !t.is_empty()) {
        Some(link_token) => {
            render(&console, &visit, StatusCode::OK, "Choose a new password", |t| reset_form(t, &link_token, None))
                .into_response()
        }
        // Opened from a security notice rather than a reset mail: ask for a link first.
        None => forgot_page(State(console), visit).await.into_response(),
    }
}

#[derive(Deserialize)]
struct ResetForm {
    token: String,
    new_password: String,
}

async fn reset(State(console): State<Console>, Posted { visit, form }: Posted<ResetForm>) -> impl IntoResponse {
    let token = SecretString::from(form.token.clone());
    match registration::reset_password(&console.app, &visit.source, &token, SecretString::from(form.new_password)).await
    {
        Ok(()) => render(&console, &visit, StatusCode::OK, "Password changed", |_| {
            html! { p { "Your password is changed and every session was signed out. " a href="/sign-in" { "Sign in" } "." } }
        }),
        Err(error) => {
            let problem = error.shown(&console.app.readiness);
            render(&console, &visit, error.status(), "Choose a new password", |t| {
                reset_form(t, &form.token, Some(&problem))
            })
        }
    }
}

fn resend_form(token: &str) -> Markup {
    html! {
        form method="post" action="/verify-email/resend" {
            (hidden(FORM_FIELD, token))
            (field("Email", "email", "email", "email"))
            button type="submit" class="secondary" { "Send a new link" }
        }
    }
}

async fn resend(State(console): State<Console>, Posted { visit, form }: Posted<EmailForm>) -> impl IntoResponse {
    match registration::resend_verification(&console.app, &visit.source, &form.email).await {
        Ok(()) => render(&console, &visit, StatusCode::OK, "Check your email", |_| {
            html! { p { "If " strong { (form.email) } " still needs confirming, a new link is on its way; older links no longer work." } }
        }),
        Err(error) => render(&console, &visit, error.status(), "Confirm your email address", |t| {
            html! { (alert(&error.shown(&console.app.readiness))) (resend_form(t)) }
        }),
    }
}
