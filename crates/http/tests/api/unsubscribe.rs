//! A message's unsubscribe link, end to end: the one-click unsubscribe of RFC 8058 (a POST with
//! no login, no cookie and no form token), the page that opening the link shows (which changes
//! no consent: link scanners open links), the preference centre's choices, and what forged,
//! altered, foreign and repeated links do. The ledger and suppressions are read as `app_user`
//! in the organization's own transaction; whole-database counts as the superuser.

use mos_auth::Unsubscribe;
use mos_db::audiences::{consent, suppression};
use mos_domain::audiences::{ConsentKind, ConsentSource, SuppressionReason};
use mos_domain::{ContactId, Email, OrgId, PurposeId};
use serde_json::{json, Value};

use crate::audiences::{purpose_with_notice, records};
use crate::erasure::{consenting, org_id};
use crate::signup::{added, footprint};
use crate::{Members, TestApp};

const ADDRESS: &str = "ana@example.com";

/// An organization whose contact consented (through the API) to a purpose, and the link of a
/// campaign's message to it.
pub(crate) struct Subscribed {
    org: Members,
    id: OrgId,
    contact: ContactId,
    pub(crate) purpose: PurposeId,
    campaign: uuid::Uuid,
    /// The path of the link, `/u/<token>`.
    pub(crate) link: String,
}

pub(crate) async fn subscribed(app: &TestApp) -> Subscribed {
    let org = app.org_with_every_role("acme").await;
    let id = org_id(app, "acme").await;
    let (contact, purpose, _) = consenting(app, &org, ADDRESS).await;
    let contact = ContactId::parse(&contact).unwrap();
    let purpose = PurposeId::parse(&purpose).unwrap();
    let campaign = uuid::Uuid::now_v7();
    let link = path(app, &Unsubscribe { organization: id, contact, purpose, campaign });
    Subscribed { org, id, contact, purpose, campaign, link }
}

/// The path of the link a message would carry, made as the sender makes it.
fn path(app: &TestApp, link: &Unsubscribe) -> String {
    let url = app.sealer.unsubscribe_tokens().url(&app.public_url, link);
    url.strip_prefix(&app.public_url).expect("a link to the public URL").to_owned()
}

/// RFC 8058's POST, as a mail client sends it: no cookie, no page, the one field.
async fn one_click(app: &TestApp, link: &str) -> u16 {
    let request = app.http.post(format!("{}{link}", app.base)).form(&[("List-Unsubscribe", "One-Click")]);
    app.send(request).await.status
}

/// May the organization write to the contact for the purpose now?
async fn live(app: &TestApp, s: &Subscribed, purpose: PurposeId) -> bool {
    let mut tx = app.pool.begin_tenant(s.id, None).await.unwrap();
    consent::is_live(&mut tx, s.contact, purpose, mos_auth::Clock::now(&app.clock)).await.unwrap()
}

async fn suppressed(app: &TestApp, s: &Subscribed) -> Vec<SuppressionReason> {
    let mut tx = app.pool.begin_tenant(s.id, None).await.unwrap();
    suppression::reasons(&mut tx, &app.address_keys, &Email::parse(ADDRESS).unwrap()).await.unwrap()
}

/// The contact's events: purpose, kind, source, whether a member recorded it.
async fn events(app: &TestApp, s: &Subscribed) -> Vec<(PurposeId, ConsentKind, ConsentSource, bool)> {
    let mut tx = app.pool.begin_tenant(s.id, None).await.unwrap();
    let history = consent::history(&mut tx, s.contact).await.unwrap();
    history.into_iter().map(|e| (e.purpose_id, e.kind, e.source, e.recorded_by.is_some())).collect()
}

/// The preference centre's form, posted from its own page with this browser's form token.
async fn choose(app: &TestApp, link: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let page = app.console_form(link, "").await;
    let mut body: Vec<(&str, &str)> = vec![("form_token", &page.token)];
    body.extend_from_slice(fields);
    let request = app
        .http
        .post(format!("{}{link}/preferences", app.base))
        .header("cookie", &page.seed)
        .header("origin", &app.public_url)
        .form(&body);
    let reply = app.send(request).await;
    (reply.status, reply.body.as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_one_click_unsubscribe_revokes_and_suppresses_at_once_and_a_repeat_records_nothing() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    assert!(live(&app, &s, s.purpose).await);

    assert_eq!(one_click(&app, &s.link).await, 200);
    // Committed before the answer: the next message's check is refused now.
    assert!(!live(&app, &s, s.purpose).await);
    assert_eq!(suppressed(&app, &s).await, [SuppressionReason::Unsubscribe]);
    let last = events(&app, &s).await.pop().unwrap();
    assert_eq!(last, (s.purpose, ConsentKind::Revoke, ConsentSource::Unsubscribe, false), "the person's own act");
    let revoked = records(&app, &s.org, "consent.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["actor_id"], Value::Null);
    assert_eq!(revoked[0]["metadata"]["campaign"], json!(s.campaign));
    assert_eq!(revoked[0]["metadata"]["source"], "unsubscribe");
    assert_eq!(records(&app, &s.org, "suppression.added").await.len(), 1);

    // Mail clients retry: the same answer, and nothing new anywhere.
    let before = footprint(&app).await;
    assert_eq!(one_click(&app, &s.link).await, 200);
    assert_eq!(added(&before, &footprint(&app).await), []);

    // The contact's export and consent receipt show the revocation.
    let id = s.contact.as_uuid();
    let export = app.get_as(&s.org.admin, &format!("/v1/orgs/acme/contacts/{id}/export")).await;
    assert_eq!(export.status, 200, "{}", export.body);
    let kinds: Vec<(&str, &str)> = export.body["consent_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("grant", "api"), ("revoke", "unsubscribe")], "{}", export.body);
    let receipt = app.get_as(&s.org.admin, &format!("/v1/orgs/acme/contacts/{id}/consent-receipt")).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["events"].as_array().unwrap().last().unwrap()["kind"], "revoke", "{}", receipt.body);
}

#[tokio::test]
async fn opening_the_link_changes_no_consent_and_shows_the_address_masked() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let before = footprint(&app).await;

    let page = app.send(app.http.get(format!("{}{}", app.base, s.link))).await;
    assert_eq!(page.status, 200);
    let html = page.body.as_str().unwrap();
    assert!(html.contains("a***@example.com") && !html.contains(ADDRESS), "{html}");
    assert!(html.contains("Unsubscribe from everything") && html.contains("News"), "{html}");

    // The page's read is audited; nothing else changed, and the person may still be written to.
    assert_eq!(added(&before, &footprint(&app).await), [("audit_logs".to_owned(), 1)]);
    assert!(live(&app, &s, s.purpose).await);
    assert!(suppressed(&app, &s).await.is_empty());
    let viewed = records(&app, &s.org, "contact.viewed").await;
    assert_eq!(viewed[0]["metadata"]["via"], "preference_centre", "{viewed:?}");
}

#[tokio::test]
async fn forged_altered_foreign_and_other_tenants_links_are_refused_alike_and_change_nothing() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let other = app.org_with_every_role("other").await;
    let other_id = org_id(&app, &other.slug).await;
    let token = s.link.strip_prefix("/u/").unwrap();
    let mut altered = token.as_bytes().to_vec();
    altered[40] = if altered[40] == b'A' { b'B' } else { b'A' };
    let foreign = mos_auth::Sealer::from_base64(&mos_auth::Sealer::generate_key_base64(&mut rand::thread_rng()))
        .unwrap()
        .unsubscribe_tokens()
        .issue(&Unsubscribe { organization: s.id, contact: s.contact, purpose: s.purpose, campaign: s.campaign });
    // Signed by this server, but naming this contact under another organization.
    let crossed = path(
        &app,
        &Unsubscribe { organization: other_id, contact: s.contact, purpose: s.purpose, campaign: s.campaign },
    );
    let before = footprint(&app).await;
    for link in [
        format!("/u/{}", String::from_utf8(altered).unwrap()),
        format!("/u/{foreign}"),
        format!("/u/{}", &token[..token.len() - 1]),
        "/u/not-a-token".to_owned(),
        crossed,
    ] {
        assert_eq!(one_click(&app, &link).await, 404, "{link}");
        let page = app.send(app.http.get(format!("{}{link}", app.base))).await;
        assert_eq!(page.status, 404, "{link}");
        assert!(page.body.as_str().unwrap().contains("This link does not work"));
    }
    assert_eq!(added(&before, &footprint(&app).await), []);
    assert!(live(&app, &s, s.purpose).await);
}

#[tokio::test]
async fn the_link_takes_no_other_post_without_its_pages_form_token() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let before = footprint(&app).await;
    let url = format!("{}{}", app.base, s.link);
    for request in [
        app.http.post(&url).form(&[("List-Unsubscribe", "One-Click-Later")]),
        app.http.post(&url).form(&[("everything", "yes")]),
        app.http.post(&url).json(&json!({ "List-Unsubscribe": "One-Click" })),
        app.http.post(&url).body("List-Unsubscribe=One-Click"),
    ] {
        assert_eq!(app.send(request).await.status, 422);
    }
    // The preference centre's own form, without the token of its page.
    let forged = app.http.post(format!("{url}/preferences")).form(&[("everything", "yes")]);
    assert_eq!(app.send(forged).await.status, 403);
    assert_eq!(added(&before, &footprint(&app).await), []);

    // The multipart form that RFC 8058 prefers is the one-click body too.
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    let multipart =
        app.http.post(&url).header("content-type", format!("multipart/form-data; boundary={boundary}")).body(body);
    assert_eq!(app.send(multipart).await.status, 200);
    assert!(!live(&app, &s, s.purpose).await);
}

#[tokio::test]
async fn the_preference_centre_turns_purposes_on_and_off_as_the_persons_own_consent_events() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let (offers, offers_notice) = purpose_with_notice(&app, &s.org, "Offers", false).await;
    let offers = PurposeId::parse(&offers).unwrap();
    let (hipaa, _) = purpose_with_notice(&app, &s.org, "Care reminders", true).await;
    let hipaa = PurposeId::parse(&hipaa).unwrap();

    // The page shows the notice a purpose is turned on against, and sends its hash back.
    let page = app.send(app.http.get(format!("{}{}", app.base, s.link))).await;
    let html = page.body.as_str().unwrap();
    assert!(html.contains("What you agree to by ticking Offers") && html.contains(&offers_notice), "{html}");

    // A notice that is not the purpose's latest turns nothing on.
    let (box_, notice) = (format!("purpose-{offers}"), format!("notice-{offers}"));
    let before = footprint(&app).await;
    let stale = "00".repeat(32);
    let (status, html) =
        choose(&app, &s.link, &[(&box_, "on"), (&notice, &stale), (&format!("purpose-{}", s.purpose), "on")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Offers was not turned on: what you agree to has changed"), "{html}");
    let changed: Vec<_> = added(&before, &footprint(&app).await).into_iter().map(|(t, _)| t).collect();
    assert!(!changed.iter().any(|t| t.starts_with("consent")), "{changed:?}");

    // Offers on and News off (its box left empty); the HIPAA purpose cannot be turned on here.
    let (status, html) =
        choose(&app, &s.link, &[(&box_, "on"), (&notice, &offers_notice), (&format!("purpose-{hipaa}"), "on")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Care reminders cannot be turned on here"), "{html}");
    assert!(!live(&app, &s, s.purpose).await);
    assert!(live(&app, &s, offers).await);
    assert!(!live(&app, &s, hipaa).await);
    let events = events(&app, &s).await;
    assert!(events.contains(&(s.purpose, ConsentKind::Revoke, ConsentSource::PreferenceCentre, false)), "{events:?}");
    assert!(events.contains(&(offers, ConsentKind::Grant, ConsentSource::PreferenceCentre, false)), "{events:?}");
    assert_eq!(events.len(), 3, "{events:?}");
    // The grant names the notice the person agreed to: the purpose's latest.
    let granted = records(&app, &s.org, "consent.granted").await;
    assert_eq!(granted[0]["metadata"]["notice_sha256"], json!(offers_notice));
    assert_eq!(granted[0]["metadata"]["campaign"], json!(s.campaign));
    assert!(suppressed(&app, &s).await.is_empty(), "choosing purposes suppresses nothing");

    // Saved again as they are: nothing new.
    let before = footprint(&app).await;
    let (status, _) = choose(&app, &s.link, &[(&box_, "on"), (&notice, &offers_notice)]).await;
    assert_eq!(status, 200);
    let changed: Vec<_> = added(&before, &footprint(&app).await).into_iter().map(|(t, _)| t).collect();
    assert!(!changed.iter().any(|t| t.starts_with("consent") || t == "suppressions"), "{changed:?}");
}

#[tokio::test]
async fn unsubscribing_from_everything_revokes_each_purpose_and_a_suppressed_address_is_not_granted_again_here() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let (offers, offers_notice) = purpose_with_notice(&app, &s.org, "Offers", false).await;
    let offers = PurposeId::parse(&offers).unwrap();
    let (box_, notice) = (format!("purpose-{offers}"), format!("notice-{offers}"));
    let fields = [(box_.as_str(), "on"), (&notice, &offers_notice), (&format!("purpose-{}", s.purpose), "on")];
    assert_eq!(choose(&app, &s.link, &fields).await.0, 200);
    assert!(live(&app, &s, offers).await);

    let (status, html) = choose(&app, &s.link, &[("everything", "yes")]).await;
    assert_eq!(status, 200, "{html}");
    assert!(!live(&app, &s, s.purpose).await && !live(&app, &s, offers).await);
    assert_eq!(suppressed(&app, &s).await, [SuppressionReason::Unsubscribe]);
    let revocations = events(&app, &s).await.into_iter().filter(|e| e.1 == ConsentKind::Revoke).count();
    assert_eq!(revocations, 2);

    // Turning a purpose back on from here is refused with words, not an error: only the
    // person's confirmed double opt-in lifts the suppression.
    let before = footprint(&app).await;
    let (status, html) = choose(&app, &s.link, &[(&box_, "on"), (&notice, &offers_notice)]).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Offers was not turned on: this address unsubscribed"), "{html}");
    assert!(!live(&app, &s, offers).await);
    let changed: Vec<_> = added(&before, &footprint(&app).await).into_iter().map(|(t, _)| t).collect();
    assert!(!changed.iter().any(|t| t.starts_with("consent") || t == "suppressions"), "{changed:?}");
}

#[tokio::test]
async fn an_erased_contacts_link_answers_alike_reveals_nothing_and_its_suppression_stays() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    assert_eq!(one_click(&app, &s.link).await, 200);
    let id = s.contact.as_uuid();
    let erased = app.post_as(&s.org.admin, &format!("/v1/orgs/acme/contacts/{id}/erase"), json!({})).await;
    assert_eq!(erased.status, 204, "{}", erased.body);

    let before = footprint(&app).await;
    assert_eq!(one_click(&app, &s.link).await, 200);
    let page = app.send(app.http.get(format!("{}{}", app.base, s.link))).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.as_str().unwrap().contains("example.com"), "{}", page.body);
    assert_eq!(added(&before, &footprint(&app).await), []);
    assert_eq!(suppressed(&app, &s).await, [SuppressionReason::Unsubscribe], "the address stays suppressed");
}

#[tokio::test]
async fn a_link_clicked_many_times_at_once_records_one_revocation_and_one_suppression() {
    let app = TestApp::spawn().await;
    let s = subscribed(&app).await;
    let clicks: Vec<_> = (0..6).map(|_| one_click(&app, &s.link)).collect();
    for status in futures_util::future::join_all(clicks).await {
        assert_eq!(status, 200);
    }
    let revocations = events(&app, &s).await.into_iter().filter(|e| e.1 == ConsentKind::Revoke).count();
    assert_eq!(revocations, 1);
    assert_eq!(records(&app, &s.org, "suppression.added").await.len(), 1);
}
