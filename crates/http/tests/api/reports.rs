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
    let token = session(&app, o.admin).await;

    let (status, kind, csv) = text(&app, &token, "/v1/orgs/acme/reports/sending.csv").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"), "{csv}");
    let today = Utc::now().date_naive();
    let month = today.format("%Y-%m-01").to_string();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "period,starts,sent,refused,hard_bounces,soft_bounces,delivered,complaints,complaint_rate,hard_bounce_rate",
            &format!("day,{today},15,0,0,0,0,1,6.67%,0.00%"),
            &format!("month,{month},15,0,0,0,0,1,6.67%,0.00%"),
        ]
    );

    let (status, _, csv) = text(&app, &token, &format!("/v1/orgs/acme/campaigns/{id}/report.csv")).await;
    assert_eq!(status, 200, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    let expected = [
        "measure,link,count",
        "recipients,,23",
        "queued,,6",
        "sent,,15",
        "skipped:no_consent,,1",
        "skipped:suppressed,,1",
    ];
    assert_eq!(lines[..6], expected, "Bea has no consent, Cy is suppressed: {csv}");
    let links: Vec<&str> = lines[6..].to_vec();
    assert_eq!(links.len(), 4, "two links, two lines each: {csv}");
    assert!(links.iter().all(|l| l.starts_with("link_") && l.contains(",https://") && l.ends_with(",0")), "{csv}");

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
    assert!(shown.contains("<title>link 1: 0 recipients</title>"), "{shown}");
    assert!(shown.contains(&format!("href=\"/v1/orgs/acme/campaigns/{id}/report.csv\"")), "{shown}");

    // Another organization's member gets neither.
    let other = campaign::org(&app.pool, "globex", &app.sealer, &app.address_keys).await;
    let stranger = session(&app, other.admin).await;
    assert_eq!(text(&app, &stranger, "/v1/orgs/acme/reports/sending.csv").await.0, 404);
    assert_eq!(text(&app, &stranger, &format!("/v1/orgs/acme/campaigns/{id}/report.csv")).await.0, 404);
}
