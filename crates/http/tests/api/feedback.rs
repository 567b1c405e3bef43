//! Delivery feedback posted over HTTP, as relays and providers post it: a raw abuse report with
//! a bearer credential, Postmark's documented webhook with the credential as a Basic password,
//! and an Amazon SES notification inside an SNS message signed as SNS signs it. Each is matched
//! to the message by our own ids; a missing, wrong or revoked credential, a payload about no
//! message of ours, a forged SNS message and another topic are refused and change nothing.

use mos_auth::OneTimeToken;
use mos_db::campaigns::{self, Launch};
use mos_db::feedback::credentials::{self, Name};
use mos_db::testing::campaign::{self, approved, begin, launch, new_campaign, sent, Org};
use mos_domain::{ContactId, ContentId};
use mos_mail::feedback::postmark;
use mos_mail::testing::sns::{signed, signer, CERT_URL, TOPIC};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::breaker::complaint;
use crate::{Reply, TestApp};

/// A live feedback credential's token, made as `mos feedback credential create` makes it.
async fn credential(app: &TestApp, name: &str) -> String {
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut conn = app.db.superuser().await;
    let mut tx = credentials::operator(&mut conn).await.unwrap();
    assert!(credentials::create(&mut tx, &Name::parse(name).unwrap(), &token.hash, chrono::Utc::now()).await.unwrap());
    tx.commit().await.unwrap();
    token.secret.expose_secret().to_owned()
}

/// An organization whose campaign was handed over to `n` people.
async fn sent_to(app: &TestApp, n: usize) -> (Org, ContentId, Vec<ContactId>) {
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &o, &app.address_keys, n).await;
    let id = new_campaign(&app.pool, &o, &o.definition).await;
    approved(&app.pool, &o, id).await;
    assert!(matches!(launch(&app.pool, &o, id).await, Launch::Done(_)));
    let contacts = sent(&app.pool, &o, id, 100).await;
    (o, id, contacts)
}

/// What feedback the ledger holds about the message to `contact`, and whether its address is
/// suppressed.
async fn recorded(app: &TestApp, o: &Org, id: ContentId, contact: ContactId) -> (Vec<String>, bool) {
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let kinds: Vec<String> = sqlx::query_scalar(
        "select kind::text from app.delivery_feedback
          where organization_id = $1 and campaign_id = $2 and contact_id = $3 order by kind",
    )
    .bind(o.org.as_uuid())
    .bind(id.as_uuid())
    .bind(contact.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    let suppressed: bool = sqlx::query_scalar(
        "select exists (select from app.suppressions s join app.contacts c
                          on c.organization_id = $1 and c.address_key = s.address_key
                         where s.organization_id = $1 and c.id = $2)",
    )
    .bind(o.org.as_uuid())
    .bind(contact.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (kinds, suppressed)
}

async fn post(app: &TestApp, path: &str, auth: Option<(&str, &str)>, body: Vec<u8>) -> Reply {
    let mut request = app.http.post(format!("{}{path}", app.base)).body(body);
    request = match auth {
        Some(("bearer", token)) => request.bearer_auth(token),
        Some((user, password)) => request.basic_auth(user, Some(password)),
        None => request,
    };
    app.send(request).await
}

/// A delivery report about the campaign's message to `contact`, as a relay posts it.
fn delivery(id: ContentId, o: &Org, contact: ContactId, status: &str) -> Vec<u8> {
    let (action, message_id) =
        (if status.starts_with('2') { "delivered" } else { "failed" }, campaigns::message_id(id, contact, "x.example"));
    format!(
        "From: mailer-daemon@mx.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@p.example\r\nAction: {action}\r\nStatus: {status}\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\nFeedback-ID: {}\r\n\r\n--b--\r\n",
        campaigns::feedback_id(id, o.org)
    )
    .into_bytes()
}

#[tokio::test]
async fn reports_and_clicks_that_arrive_at_once_are_each_recorded_once_with_their_own_answers() {
    let app = TestApp::spawn().await;
    let (o, id, contacts) = sent_to(&app, 40).await;
    let token = credential(&app, "postfix").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // All at once (fewer than the server's 128 connections per client), so that the server
    // takes many of them in one transaction: every delivery reported twice, three hard bounces, a
    // report about a message never sent (Bea has no consent), two clicks of each of 20
    // recipients on the first link and one of every third on the second.
    let mut reports = Vec::new();
    for contact in &contacts[..20] {
        reports.extend([delivery(id, &o, *contact, "2.0.0"), delivery(id, &o, *contact, "2.0.0")]);
    }
    reports.extend(contacts[20..23].iter().map(|c| delivery(id, &o, *c, "5.1.1")));
    reports.push(delivery(id, &o, o.bea, "2.0.0"));
    let clicks: Vec<(ContactId, u16)> = [0, 1, 0]
        .into_iter()
        .flat_map(|link| contacts[..20].iter().enumerate().map(move |(n, c)| (*c, link, n)))
        .filter(|(_, link, n)| *link == 0 || n % 3 == 0)
        .map(|(c, link, _)| (c, link))
        .collect();
    let posted = reports.iter().map(|r| post(&app, "/v1/feedback/reports", Some(("bearer", &token)), r.clone()));
    let followed = clicks.iter().map(|(contact, link)| {
        let click = mos_auth::Click { organization: o.org, campaign: id, contact: *contact, link: *link };
        app.send(http.get(format!("{}/c/{}", app.base, app.sealer.click_tokens().issue(&click))))
    });
    let (posted, followed) =
        tokio::join!(futures_util::future::join_all(posted), futures_util::future::join_all(followed));

    for (n, pair) in posted[..40].chunks(2).enumerate() {
        let mut results: Vec<&Value> = pair.iter().map(|r| &r.body["result"]).collect();
        results.sort_by_key(|v| v.to_string());
        assert_eq!(results, [&json!("recorded"), &json!("recorded_before")], "the delivery to contact {n}");
    }
    for bounce in &posted[40..43] {
        assert_eq!((bounce.status, &bounce.body), (200, &json!({"result": "recorded"})));
    }
    assert_eq!(posted[43].status, 422, "{}", posted[43].body);
    assert!(followed.iter().all(|r| r.status == 302));
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let hours = campaigns::activity(&mut tx, id).await.unwrap();
    let total = campaigns::total(&hours);
    let (delivered, bounced, clicked, clickers) = (total.delivered, total.hard_bounces, total.clicks, total.clickers);
    assert_eq!((delivered, bounced, clicked, clickers), (20, 3, 47, 20));
    let tallies = mos_db::clicks::tallies(&mut tx, id).await.unwrap();
    let tallies: Vec<(u16, i64, i64)> = tallies.iter().map(|t| (t.link, t.unique, t.total)).collect();
    assert_eq!(tallies, [(0, 20, 40), (1, 7, 7)]);
    tx.commit().await.unwrap();
    for contact in &contacts[20..23] {
        assert_eq!(recorded(&app, &o, id, *contact).await, (vec!["hard_bounce".to_owned()], true));
    }
}

#[tokio::test]
async fn a_relay_posts_a_report_with_its_credential_and_without_a_live_one_nothing_is_taken() {
    let app = TestApp::spawn().await;
    let (o, id, contacts) = sent_to(&app, 3).await;
    let token = credential(&app, "postfix").await;
    let message_id = campaigns::message_id(id, contacts[0], "mail.acme.example");
    let report = complaint(&message_id, &campaigns::feedback_id(id, o.org)).into_bytes();

    // No credential, a made-up one, another scheme: 401 with both challenges, nothing recorded.
    let refused = post(&app, "/v1/feedback/reports", None, report.clone()).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.headers["www-authenticate"], "Basic realm=\"feedback\", Bearer");
    let made_up = OneTimeToken::generate(&mut rand::thread_rng());
    let made_up = made_up.secret.expose_secret().to_owned();
    assert_eq!(post(&app, "/v1/feedback/reports", Some(("bearer", &made_up)), report.clone()).await.status, 401);
    assert_eq!(post(&app, "/v1/feedback/reports", Some(("bearer", "short")), report.clone()).await.status, 401);
    assert_eq!(recorded(&app, &o, id, contacts[0]).await, (vec![], false));

    let taken = post(&app, "/v1/feedback/reports", Some(("bearer", &token)), report.clone()).await;
    assert_eq!((taken.status, &taken.body), (200, &json!({"result": "recorded"})));
    assert_eq!(recorded(&app, &o, id, contacts[0]).await, (vec!["complaint".to_owned()], true));
    let again = post(&app, "/v1/feedback/reports", Some(("bearer", &token)), report.clone()).await;
    assert_eq!(again.body, json!({"result": "recorded_before"}));

    // About a message never sent, or not a report at all: refused with the reason.
    let unsent = campaigns::message_id(id, ContactId::new(), "mail.acme.example");
    let stranger = complaint(&unsent, &campaigns::feedback_id(id, o.org)).into_bytes();
    let refused = post(&app, "/v1/feedback/reports", Some(("bearer", &token)), stranger).await;
    assert_eq!((refused.status, refused.problem_type()), (422, "urn:mos:problem:feedback_refused"));
    assert!(refused.body["detail"].as_str().unwrap().contains("sent no such message"), "{}", refused.body);
    // About a message being handed over, whose hand-over is not recorded yet (a relay that
    // bounces at once): 503 with Retry-After and nothing recorded, so that it is sent again.
    let later = new_campaign(&app.pool, &o, &o.definition).await;
    approved(&app.pool, &o, later).await;
    assert!(matches!(launch(&app.pool, &o, later).await, Launch::Done(_)));
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let claimed = campaigns::claim(&mut tx, later, 1, chrono::Duration::minutes(5), chrono::Utc::now()).await.unwrap();
    tx.commit().await.unwrap();
    let flying = claimed.messages[0].contact;
    let early =
        complaint(&campaigns::message_id(later, flying, "mail.acme.example"), &campaigns::feedback_id(later, o.org));
    let deferred = post(&app, "/v1/feedback/reports", Some(("bearer", &token)), early.into_bytes()).await;
    assert_eq!(
        (deferred.status, deferred.problem_type()),
        (503, "urn:mos:problem:feedback_early"),
        "{}",
        deferred.body
    );
    assert!(deferred.headers.contains_key("retry-after"));
    assert_eq!(recorded(&app, &o, later, flying).await, (vec![], false));
    let refused =
        post(&app, "/v1/feedback/reports", Some(("bearer", &token)), b"Subject: hi\r\n\r\nhello".to_vec()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body["detail"].as_str().unwrap().contains("multipart/report"), "{}", refused.body);

    // Revoked, the token is refused at once; the name may be given to a new one.
    let mut conn = app.db.superuser().await;
    let mut tx = credentials::operator(&mut conn).await.unwrap();
    assert!(credentials::revoke(&mut tx, &Name::parse("postfix").unwrap(), chrono::Utc::now()).await.unwrap());
    tx.commit().await.unwrap();
    let next =
        complaint(&campaigns::message_id(id, contacts[1], "mail.acme.example"), &campaigns::feedback_id(id, o.org));
    let refused = post(&app, "/v1/feedback/reports", Some(("bearer", &token)), next.clone().into_bytes()).await;
    assert_eq!(refused.status, 401);
    assert_eq!(recorded(&app, &o, id, contacts[1]).await, (vec![], false));
    let renewed = credential(&app, "postfix").await;
    let taken = post(&app, "/v1/feedback/reports", Some(("ses", &renewed)), next.into_bytes()).await;
    assert_eq!(taken.body, json!({"result": "recorded"}), "the token as a Basic password works too");
}

/// The SNS message around an SES notification about the message to `contact`, signed.
fn ses_notification(
    sample: &str,
    o: &Org,
    id: ContentId,
    contact: ContactId,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> Value {
    let path = format!("{}/../mail/tests/data/feedback/{sample}", env!("CARGO_MANIFEST_DIR"));
    let mut notification: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let headers = notification["mail"]["headers"].as_array_mut().unwrap();
    for header in headers.iter_mut().filter(|h| h["name"] == "Message-ID") {
        header["value"] = json!(format!("<{}>", campaigns::message_id(id, contact, "mail.acme.example")));
    }
    headers.push(json!({"name": "Feedback-ID", "value": campaigns::feedback_id(id, o.org)}));
    signed(key, "Notification", &notification.to_string(), 2)
}

#[tokio::test]
async fn postmark_and_ses_feedback_is_matched_by_our_ids_and_a_forged_or_foreign_sns_message_changes_nothing() {
    let now = chrono::Utc::now();
    let (key, cert) = signer("sns.amazonaws.com", now - chrono::Duration::days(1), 30);
    let pinned = tempfile::tempdir().unwrap();
    std::fs::write(pinned.path().join(CERT_URL.rsplit('/').next().unwrap()), &cert).unwrap();
    let dir = pinned.path().to_owned();
    let app = TestApp::spawn_on(mos_db::testing::TestDb::new().await, mos_auth::PasswordHasher::new(4), move |s| {
        s.feedback_ses_topics = vec![TOPIC.to_owned()];
        s.feedback_sns_certificates = Some(dir);
    })
    .await;
    let (o, id, contacts) = sent_to(&app, 4).await;
    let token = credential(&app, "providers").await;
    let auth = Some(("postmark", token.as_str()));

    // Postmark's documented bounce, with the metadata our messages carry: a hard bounce.
    let path = format!("{}/../mail/tests/data/feedback/postmark-bounce.json", env!("CARGO_MANIFEST_DIR"));
    let mut webhook: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let documented = serde_json::to_vec(&webhook).unwrap();
    let refused = post(&app, "/v1/feedback/postmark", auth, documented).await;
    assert_eq!(refused.status, 422, "the sample names no message of ours: {}", refused.body);
    let left = campaigns::message_id(id, contacts[0], "x");
    webhook["Metadata"] = json!({
        postmark::FEEDBACK_KEY: campaigns::feedback_id(id, o.org),
        postmark::MESSAGE_KEY: left.trim_end_matches("@x"),
    });
    let taken = post(&app, "/v1/feedback/postmark", auth, serde_json::to_vec(&webhook).unwrap()).await;
    assert_eq!((taken.status, &taken.body), (200, &json!({"result": "recorded"})));
    assert_eq!(recorded(&app, &o, id, contacts[0]).await, (vec!["hard_bounce".to_owned()], true));

    // SES's documented complaint through SNS, about the second message.
    let sns = ses_notification("ses-complaint.json", &o, id, contacts[1], &key);
    let taken = post(&app, "/v1/feedback/ses", auth, serde_json::to_vec(&sns).unwrap()).await;
    assert_eq!((taken.status, &taken.body), (200, &json!({"result": "recorded"})));
    assert_eq!(recorded(&app, &o, id, contacts[1]).await, (vec!["complaint".to_owned()], true));

    // Forged: the notification changed after signing (a complaint about the third message), or
    // signed by another key. Another topic, even signed, is refused too. Nothing is recorded.
    let mut forged = sns.clone();
    forged["Message"] = json!(ses_notification("ses-complaint.json", &o, id, contacts[2], &key)["Message"]);
    let refused = post(&app, "/v1/feedback/ses", auth, serde_json::to_vec(&forged).unwrap()).await;
    assert_eq!(
        (refused.status, refused.body["detail"].as_str()),
        (422, Some("the SNS message's signature does not verify"))
    );
    let (stranger, _) = signer("sns.amazonaws.com", now, 1);
    let other_key = ses_notification("ses-complaint.json", &o, id, contacts[2], &stranger);
    assert_eq!(post(&app, "/v1/feedback/ses", auth, serde_json::to_vec(&other_key).unwrap()).await.status, 422);
    let mut other_topic = ses_notification("ses-complaint.json", &o, id, contacts[2], &key);
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:666666666666:elsewhere");
    let refused = post(&app, "/v1/feedback/ses", auth, serde_json::to_vec(&other_topic).unwrap()).await;
    assert!(refused.body["detail"].as_str().unwrap().contains("MOS_FEEDBACK_SES_TOPICS"), "{}", refused.body);
    assert_eq!(recorded(&app, &o, id, contacts[2]).await, (vec![], false));
    // And without the credential, even a well-signed message is not read.
    let unauthenticated = ses_notification("ses-delivery.json", &o, id, contacts[3], &key);
    assert_eq!(post(&app, "/v1/feedback/ses", None, serde_json::to_vec(&unauthenticated).unwrap()).await.status, 401);

    // A delivery is recorded without suppressing anything.
    let taken = post(&app, "/v1/feedback/ses", auth, serde_json::to_vec(&unauthenticated).unwrap()).await;
    assert_eq!(taken.body, json!({"result": "recorded"}));
    assert_eq!(recorded(&app, &o, id, contacts[3]).await, (vec!["delivered".to_owned()], false));
}
