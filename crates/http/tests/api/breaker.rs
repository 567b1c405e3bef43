//! The complaint-rate breaker through the doors: an abuse report taken in as `mos feedback
//! ingest` takes it halts the organization's sending mid-campaign and tells its ADMINs; only an
//! ADMIN with a recent sign-in resumes, through the API or the console, audited with the rates.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use mos_db::breaker;
use mos_db::campaigns::{self, Launch, Sent};
use mos_db::testing::campaign::{self, approved, begin, launch, new_campaign, src};
use mos_domain::OrgId;
use mos_http::feedback::{ingest, Ingested};
use serde_json::json;

use crate::segments::console_post;
use crate::{TestApp, PASSWORD};

/// The RFC 5965 sample abuse report, about the message `message_id` with `feedback_id`.
pub(crate) fn complaint(message_id: &str, feedback_id: &str) -> String {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data/feedback/rfc5965-b1.eml");
    let sample = std::fs::read_to_string(sample).unwrap();
    let lines: Vec<String> = sample
        .lines()
        .map(|line| match line {
            l if l.starts_with("Message-ID: ") => format!("Feedback-ID: {feedback_id}\nMessage-ID: <{message_id}>"),
            l => l.to_owned(),
        })
        .collect();
    lines.join("\n") + "\n"
}

#[tokio::test]
async fn an_abuse_report_past_the_line_halts_the_campaign_mid_send_and_tells_the_organizations_admins() {
    let app = TestApp::spawn().await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &o, &app.address_keys, 120).await;
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    breaker::configure(&mut tx, Some(100), None, o.admin, &src()).await.unwrap();
    tx.commit().await.unwrap();
    let id = new_campaign(&app.pool, &o, &o.definition).await;
    approved(&app.pool, &o, id).await;
    assert!(matches!(launch(&app.pool, &o, id).await, Launch::Done(_)));
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let claim = campaigns::claim(&mut tx, id, 110, Duration::minutes(5), Utc::now()).await.unwrap();
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent: Vec<Sent> =
        claim.messages.iter().map(|m| Sent { contact: m.contact, values: &values, reply: "250 Ok" }).collect();
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();

    // One complaint of 110 sent (0.9%) is past 0.3%: halted in the transaction that records it.
    let message_id = campaigns::message_id(id, claim.messages[0].contact, "mail.acme.example");
    let report = complaint(&message_id, &campaigns::feedback_id(id, o.org));
    let ingested = ingest(&app.pool, report.as_bytes(), Utc::now(), &src(), &app.public_url).await.unwrap();
    let Ingested::Recorded(Some(notice)) = ingested else { panic!("{ingested:?}") };
    assert_eq!(notice.to, ["admin@acme.example"], "the ADMINs, not the REVIEWER");
    assert!(notice.subject.contains("sending is halted"), "{}", notice.subject);
    assert!(notice.text.contains(&format!("{}/orgs/acme/sending", app.public_url)), "{}", notice.text);
    assert!(notice.text.contains("1 complaints (0.91%)"), "{}", notice.text);
    // The same report again changes nothing and tells nobody twice.
    let again = ingest(&app.pool, report.as_bytes(), Utc::now(), &src(), &app.public_url).await.unwrap();
    assert_eq!(again, Ingested::Again);

    // The campaign, mid-send, hands nothing more over at its next claim.
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    assert_eq!(campaigns::run(&mut tx, id).await.unwrap().unwrap().state, "paused");
    let next = campaigns::claim(&mut tx, id, 100, Duration::minutes(5), Utc::now()).await.unwrap();
    assert!(next.messages.is_empty(), "{next:?}");
    let queued = campaigns::progress(&mut tx, id).await.unwrap()["queued"];
    assert_eq!(queued, 11, "Ada and the ten not claimed wait");
}

pub(crate) async fn org_id(app: &TestApp, token: &str, slug: &str) -> OrgId {
    let org = app.get_as(token, &format!("/v1/orgs/{slug}")).await.body;
    OrgId::parse(org["id"].as_str().unwrap()).unwrap()
}

/// Halts the organization's breaker as a complaint past the line would have.
pub(crate) async fn halt(app: &TestApp, org: OrgId) {
    let mut tx = app.pool.begin_tenant(org, None).await.unwrap();
    sqlx::query(
        "insert into app.sending_breakers (organization_id, state, reason, changed_at)
         values ($1, 'halted', 'complaints', now())",
    )
    .bind(org.as_uuid())
    .execute(tx.conn())
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn only_an_admin_with_a_recent_sign_in_resumes_halted_sending_or_changes_the_settings_and_both_are_audited() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let id = org_id(&app, &org.admin, "acme").await;
    halt(&app, id).await;
    let path = "/v1/orgs/acme/sending-breaker";
    let shown = app.get_as(&org.viewer, path).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!((shown.body["state"].as_str(), shown.body["reason"].as_str()), (Some("halted"), Some("complaints")));
    assert_eq!(shown.body["min_sent"], 1000);
    assert_eq!(shown.body["hard_bounce_limit"], 500);

    for token in [&org.reviewer, &org.creator, &org.viewer] {
        assert_eq!(app.post_as(token, &format!("{path}/resume"), json!({})).await.status, 403);
        assert_eq!(app.call_as("patch", token, path, json!({ "min_sent": 500 })).await.status, 403);
    }
    // A sign-in older than ten minutes: the answer every recent-sign-in action gives.
    for _ in 0..2 {
        app.clock.advance(Duration::minutes(6));
        app.get_as(&org.admin, "/v1/me").await;
    }
    let stale = app.post_as(&org.admin, &format!("{path}/resume"), json!({})).await;
    assert_eq!((stale.status, stale.problem_type()), (403, "urn:mos:problem:reauthentication_required"));
    let stale = app.call_as("patch", &org.admin, path, json!({ "min_sent": 500 })).await;
    assert_eq!(stale.problem_type(), "urn:mos:problem:reauthentication_required");
    assert_eq!(app.get_as(&org.viewer, path).await.body["state"], "halted", "nothing changed");

    assert_eq!(app.post_as(&org.admin, "/v1/me/reauthenticate", json!({ "password": PASSWORD })).await.status, 204);
    let resumed = app.post_as(&org.admin, &format!("{path}/resume"), json!({})).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.body["breaker"]["state"], "clear");
    assert_eq!(resumed.body["resumed"], json!([]));
    let again = app.post_as(&org.admin, &format!("{path}/resume"), json!({})).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let records = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=sending.breaker_resumed").await.body;
    let records = records["items"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0]["actor"].is_string(), "{:?}", records[0]);
    assert_eq!(records[0]["metadata"]["window"]["sent"], 0);
    assert_eq!(records[0]["metadata"]["window_days"], 7);

    // The settings: validated, audited with before and after.
    for (body, field) in
        [(json!({ "min_sent": 99 }), "min_sent"), (json!({ "hard_bounce_limit": 2001 }), "hard_bounce_limit")]
    {
        let refused = app.call_as("patch", &org.admin, path, body).await;
        assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some(field)), "{}", refused.body);
    }
    let changed = app.call_as("patch", &org.admin, path, json!({ "min_sent": 500, "hard_bounce_limit": 200 })).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!((changed.body["min_sent"].as_i64(), changed.body["hard_bounce_limit"].as_i64()), (Some(500), Some(200)));
    let records = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?action=sending.breaker_configured").await.body;
    let changes = &records["items"][0]["changes"];
    assert_eq!(changes["hard_bounce_limit"], json!({ "before": 500, "after": 200 }), "{changes}");
}

#[tokio::test]
async fn the_console_shows_a_halt_on_the_campaigns_and_an_admins_button_resumes_it_while_a_viewer_gets_no_button() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let id = org_id(&app, &org.admin, "acme").await;
    halt(&app, id).await;
    let open = |token: &str, path: &str| {
        let cookie = format!("__Host-mos_session={token}");
        let request = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let page = |token: &str| open(token, "/orgs/acme/sending");
    let campaigns = open(&org.viewer, "/orgs/acme/campaigns").await;
    assert!(campaigns.contains("Sending is halted by the complaint-rate breaker"), "{campaigns}");
    let viewed = page(&org.viewer).await;
    assert!(viewed.contains("Sending is halted: spam complaints reached 0.3%"), "{viewed}");
    assert!(!viewed.contains("Resume sending</button>"), "a VIEWER gets no button");
    let seen = page(&org.admin).await;
    assert!(seen.contains("Resume sending</button>"), "{seen}");

    let session = format!("__Host-mos_session={}", org.admin);
    let form = app.console_form("/orgs/acme/sending", &session).await;
    let cookie = format!("{session}; {}", form.seed);
    let (status, after) =
        console_post(&app, "/orgs/acme/sending/resume", &cookie, &[("form_token", &form.token)]).await;
    assert_eq!(status, 200, "{after}");
    assert!(after.contains("the campaigns the breaker paused are sending again"), "{after}");
    assert!(after.contains("Sending is not held back"), "{after}");
    assert_eq!(app.get_as(&org.viewer, "/v1/orgs/acme/sending-breaker").await.body["state"], "clear");
    let campaigns = open(&org.viewer, "/orgs/acme/campaigns").await;
    assert!(!campaigns.contains("complaint-rate breaker"), "{campaigns}");
}
