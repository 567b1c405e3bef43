//! `mos feedback ingest` as Postfix's pipe transport runs it: a report on standard input, the
//! answer in the exit code (0 recorded, 65 refused, 75 try again later).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Output, Stdio};

use chrono::{Duration, Utc};
use mos_auth::Sealer;
use mos_db::audiences::consent;
use mos_db::campaigns::{self, Launch, Sent};
use mos_db::testing::campaign::{self, approved, begin, keys, launch, new_campaign, src};
use mos_db::testing::TestDb;
use mos_domain::{ContactId, ContentId, OrgId};

use crate::{mos, text};

/// The sample bounce of the mail crate's tests, about the message `message_id` with the
/// `Feedback-ID` `feedback_id`.
fn bounce(message_id: &str, feedback_id: &str) -> String {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data/feedback/hard-bounce-headers.eml");
    let sample = std::fs::read_to_string(sample).unwrap();
    let lines: Vec<String> = sample
        .lines()
        .map(|line| match line {
            l if l.starts_with("Message-ID: ") => format!("Message-ID: <{message_id}>"),
            l if l.starts_with("Feedback-ID: ") => format!("Feedback-ID: {feedback_id}"),
            l => l.to_owned(),
        })
        .collect();
    lines.join("\n") + "\n"
}

fn ingest(db: &TestDb, report: &str) -> Output {
    let mut child = mos()
        .args(["feedback", "ingest"])
        .env("DATABASE_URL", db.database_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(report.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn a_bounce_piped_in_is_recorded_once_and_suppresses_and_a_forged_one_is_refused() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
    let o = campaign::org(&pool, "acme", &sealer, &keys()).await;
    let id: ContentId = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, id).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let mut tx = begin(&pool, o.org, o.admin).await;
    let claim = campaigns::claim(&mut tx, id, 10, Duration::minutes(5), Utc::now()).await.unwrap();
    assert_eq!(claim.messages.iter().map(|m| m.contact).collect::<Vec<_>>(), [o.ada]);
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent = [Sent { contact: o.ada, values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();

    let to_ada = bounce(&campaigns::message_id(id, o.ada, "acme.example"), &campaigns::feedback_id(id, o.org));
    let out = ingest(&db, &to_ada);
    assert_eq!((out.status.code(), text(&out).0.as_str()), (Some(0), "recorded\n"), "{:?}", text(&out));
    let mut tx = begin(&pool, o.org, o.admin).await;
    assert!(!consent::is_live(&mut tx, o.ada, o.purpose, Utc::now()).await.unwrap(), "suppressed by the bounce");
    drop(tx);
    // Delivered again (the MTA retried after a lost answer): nothing more.
    let out = ingest(&db, &to_ada);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out).0, "recorded before; nothing changed\n");

    // Reports about messages that were not sent, or that are not ours, or no report at all.
    let forged: [(String, &str); 4] = [
        (
            bounce(&campaigns::message_id(id, o.bea, "acme.example"), &campaigns::feedback_id(id, o.org)),
            "the organization sent no such message",
        ),
        (
            bounce(&campaigns::message_id(id, o.ada, "acme.example"), &campaigns::feedback_id(id, OrgId::new())),
            "the organization sent no such message",
        ),
        (
            bounce(
                &campaigns::message_id(id, ContactId::new(), "acme.example"),
                &campaigns::feedback_id(ContentId::new(), o.org),
            ),
            "not one of ours",
        ),
        ("Subject: hello\n\nnot a report\n".to_owned(), "not a multipart/report"),
    ];
    for (report, says) in forged {
        let out = ingest(&db, &report);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(65), "{stdout} {stderr}");
        assert!(stderr.lines().any(|l| l.starts_with("refused: ") && l.contains(says)), "{stderr}");
    }
    let mut tx = begin(&pool, o.org, o.admin).await;
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from app.delivery_feedback").fetch_one(tx.conn()).await.unwrap();
    assert_eq!(recorded, 1);
}
