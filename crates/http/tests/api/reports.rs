//! The reports as a member downloads and sees them: the organization's sending per day and
//! month, and a campaign's messages by outcome and its links, as CSV equal to the counts, and as
//! SVG charts in the console beside the tables that hold the same numbers.

use chrono::{Duration, Utc};
use mos_auth::{Clock, OneTimeToken};
use mos_db::campaigns::{self, Launch};
use mos_db::testing::campaign::{self, approved, launch, new_campaign, sent, src};
use mos_http::feedback::{ingest, Ingested};
use secrecy::ExposeSecret;

use crate::breaker::complaint;
use crate::TestApp;

/// A session of a fixture's user, as a sign-in would have made it.
async fn session(app: &TestApp, user: mos_domain::UserId) -> String {
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    let mut tx = app.pool.begin_user(user).await.unwrap();
    let now = app.clock.now();
    mos_db::sessions::create(&mut tx, &token.hash, now, now + Duration::hours(1), &src(), false).await.unwrap();
    tx.commit().await.unwrap();
    token.secret.expose_secret().to_owned()
}

/// RFC 3464's sample report, made a report about our message: its action and status changed, and
/// the returned headers naming the message by our ids, as a relay returns them.
fn dsn(message_id: &str, feedback_id: &str, action: &str, status: &str) -> String {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data/feedback/rfc3464-timeout.eml");
    std::fs::read_to_string(sample)
        .unwrap()
        .replace("Action: failed", &format!("Action: {action}"))
        .replace("Status: 4.0.0", &format!("Status: {status}"))
        .replace("[original message goes here]", &format!("Message-ID: <{message_id}>\nFeedback-ID: {feedback_id}\n"))
}

async fn text(app: &TestApp, token: &str, path: &str) -> (u16, String, String) {
    let request = app.http.get(format!("{}{path}", app.base)).bearer_auth(token);
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn the_sending_and_campaign_reports_are_their_counts_as_csv_and_as_charts_beside_the_tables() {
    let app = TestApp::spawn().await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &o, &app.address_keys, 20).await;
    let id = new_campaign(&app.pool, &o, &o.definition).await;
    approved(&app.pool, &o, id).await;
    assert!(matches!(launch(&app.pool, &o, id).await, Launch::Done(_)));
    let contacts = sent(&app.pool, &o, id, 15).await;
    let report = complaint(&campaigns::message_id(id, contacts[0], "x.example"), &campaigns::feedback_id(id, o.org));
    let ingested = ingest(&app.pool, report.as_bytes(), Utc::now(), &src(), &app.public_url).await.unwrap();
    assert!(matches!(ingested, Ingested::Recorded(_)), "{ingested:?}");
    // After it: three deliveries, a delay, a hard bounce; two clicks of one recipient on one link
    // and one of another; one one-click unsubscribe, sent twice.
    let feedback_id = campaigns::feedback_id(id, o.org);
    for (n, action, status) in [
        (1, "delivered", "2.0.0"),
        (2, "delivered", "2.0.0"),
        (3, "delivered", "2.0.0"),
        (4, "delayed", "4.4.7"),
        (5, "failed", "5.1.1"),
    ] {
        let report = dsn(&campaigns::message_id(id, contacts[n], "x.example"), &feedback_id, action, status);
        let ingested = ingest(&app.pool, report.as_bytes(), Utc::now(), &src(), &app.public_url).await.unwrap();
        assert!(matches!(ingested, Ingested::Recorded(_)), "{action}: {ingested:?}");
    }
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for n in [1, 1, 2] {
        let click = mos_auth::Click { organization: o.org, campaign: id, contact: contacts[n], link: 0 };
        let link = format!("{}/c/{}", app.base, app.sealer.click_tokens().issue(&click));
        assert_eq!(app.send(http.get(link)).await.status, 302);
    }
    let unsubscribe =
        mos_auth::Unsubscribe { organization: o.org, contact: contacts[6], purpose: o.purpose, campaign: id.as_uuid() };
    let link = format!("{}/u/{}", app.base, app.sealer.unsubscribe_tokens().issue(&unsubscribe));
    for _ in 0..2 {
        let one_click = http.post(&link).header("content-type", "application/x-www-form-urlencoded");
        assert!(app.send(one_click.body("List-Unsubscribe=One-Click")).await.status < 300);
    }
    let token = session(&app, o.admin).await;

    let (status, kind, csv) = text(&app, &token, "/v1/orgs/acme/reports/sending.csv").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"), "{csv}");
    let today = Utc::now().date_naive();
    let month = today.format("%Y-%m-01").to_string();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "period,starts,sent,refused,hard_bounces,soft_bounces,delivered,complaints,complaint_rate,hard_bounce_rate",
            &format!("day,{today},15,0,1,0,3,1,6.67%,6.67%"),
            &format!("month,{month},15,0,1,0,3,1,6.67%,6.67%"),
        ]
    );

    let (status, _, csv) = text(&app, &token, &format!("/v1/orgs/acme/campaigns/{id}/report.csv")).await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    let expected = [
        "measure,link,hour,count",
        "recipients,,,23",
        "queued,,,6",
        "sent,,,15",
        "skipped:no_consent,,,1",
        "skipped:suppressed,,,1",
        "delivered,,,3",
        "deferred,,,1",
        "hard_bounces,,,1",
        "soft_bounces,,,0",
        "complaints,,,1",
        "unsubscribes,,,1",
        "clicks,,,3",
        "clickers,,,2",
    ];
    assert_eq!(lines[..14], expected, "Bea has no consent, Cy is suppressed: {csv}");
    let links: Vec<&str> = lines[14..18].to_vec();
    assert!(links[0].starts_with("link_recipients,https://") && links[0].ends_with(",,2"), "{csv}");
    assert!(links[1].starts_with("link_clicks,https://") && links[1].ends_with(",,3"), "{csv}");
    assert!(links[2..].iter().all(|l| l.starts_with("link_") && l.ends_with(",,0")), "{csv}");
    // Per hour, the same counts: every event of this test fell in one or two hours.
    let mut hourly = std::collections::BTreeMap::<&str, i64>::new();
    for line in &lines[18..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert!(fields[1].is_empty() && chrono::DateTime::parse_from_rfc3339(fields[2]).is_ok(), "{line}");
        *hourly.entry(fields[0]).or_default() += fields[3].parse::<i64>().unwrap();
    }
    let totals = [
        ("clickers", 2),
        ("clicks", 3),
        ("complaints", 1),
        ("deferred", 1),
        ("delivered", 3),
        ("hard_bounces", 1),
        ("sent", 15),
        ("unsubscribes", 1),
    ];
    assert_eq!(hourly.into_iter().collect::<Vec<_>>(), totals, "{csv}");

    let page = |path: String| {
        let request =
            app.http.get(format!("{}{path}", app.base)).header("cookie", format!("__Host-mos_session={token}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let sending = page("/orgs/acme/sending".into()).await;
    let day = today.format("%m-%d");
    assert!(sending.contains("<svg role=\"img\" aria-label=\"Messages handed over each day, "), "{sending}");
    assert!(sending.contains(&format!("<title>{day}: 15 sent</title>")), "{sending}");
    assert!(sending.contains(&format!("<title>{day}: 1 complaints</title>")), "{sending}");
    assert!(sending.contains("href=\"/v1/orgs/acme/reports/sending.csv\""), "{sending}");
    let shown = page(format!("/orgs/acme/campaigns/{id}")).await;
    assert!(shown.contains("<title>sent: 15 messages</title>"), "{shown}");
    assert!(shown.contains("<title>link 1: 2 recipients</title>"), "{shown}");
    assert!(shown.contains("<dt>Delivered</dt><dd>3</dd>"), "{shown}");
    assert!(shown.contains("<dt>Unsubscribed</dt><dd>1</dd>"), "{shown}");
    assert!(shown.contains("<dt>Recipients who clicked</dt><dd>2</dd>"), "{shown}");
    assert!(shown.contains("aria-label=\"Messages handed over and delivered each hour (UTC), "), "{shown}");
    assert!(shown.contains("<caption>Each hour (UTC) with any activity</caption>"), "{shown}");
    assert!(shown.contains(&format!("href=\"/v1/orgs/acme/campaigns/{id}/report.csv\"")), "{shown}");

    // Another organization's member gets neither.
    let other = campaign::org(&app.pool, "globex", &app.sealer, &app.address_keys).await;
    let stranger = session(&app, other.admin).await;
    assert_eq!(text(&app, &stranger, "/v1/orgs/acme/reports/sending.csv").await.0, 404);
    assert_eq!(text(&app, &stranger, &format!("/v1/orgs/acme/campaigns/{id}/report.csv")).await.0, 404);
}
