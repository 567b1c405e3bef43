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

fn credential(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    let out =
        mos().args(["feedback", "credential"]).args(args).env("DATABASE_URL", db.database_url()).output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[tokio::test]
async fn the_operator_makes_lists_and_revokes_feedback_credentials_and_the_application_sees_only_a_yes_or_no() {
    let db = TestDb::new().await;
    let (code, token, stderr) = credential(&db, &["create", "postfix"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("shown only now"), "{stderr}");
    let token = token.trim().to_owned();
    let hash = mos_auth::token::hash_presented(&secrecy::SecretString::from(token.clone())).expect("a token");

    // One live credential per name; a name is checked before anything is written.
    let (code, _, stderr) = credential(&db, &["create", "postfix"]);
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("revoke it first"), "{stderr}");
    let (code, _, stderr) = credential(&db, &["create", "Post Fix"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a credential name"), "{stderr}");

    // The list never shows a token, and the database keeps only its hash.
    let (code, list, _) = credential(&db, &["list"]);
    assert_eq!(code, Some(0));
    assert!(list.starts_with("postfix\tmade ") && list.trim_end().ends_with("\tlive"), "{list}");
    assert!(!list.contains(&token));
    let mut su = db.superuser().await;
    let kept: Vec<Vec<u8>> =
        sqlx::query_scalar("select token_hash from app.feedback_credentials").fetch_all(&mut su).await.unwrap();
    assert_eq!(kept, [hash.as_bytes().to_vec()]);

    // The application's role cannot read the table; its one question is answered by name.
    let pool = db.app_pool(1).await;
    let mut lookup = pool.begin_lookup().await.unwrap();
    let read = sqlx::query("select * from app.feedback_credentials").execute(lookup.conn()).await;
    assert!(read.unwrap_err().to_string().contains("permission denied"));
    lookup.rollback().await.unwrap();
    let mut lookup = pool.begin_lookup().await.unwrap();
    let answer = mos_db::feedback::credentials::authenticate(&mut lookup, &hash).await.unwrap();
    assert_eq!(answer.as_deref(), Some("postfix"));
    lookup.commit().await.unwrap();

    let (code, stdout, _) = credential(&db, &["revoke", "postfix"]);
    assert_eq!((code, stdout.trim()), (Some(0), "credential \"postfix\" revoked"));
    let (code, _, stderr) = credential(&db, &["revoke", "postfix"]);
    assert_eq!(code, Some(65), "{stderr}");
    let (_, list, _) = credential(&db, &["list"]);
    assert!(list.contains("\trevoked "), "{list}");
    let mut lookup = pool.begin_lookup().await.unwrap();
    assert_eq!(mos_db::feedback::credentials::authenticate(&mut lookup, &hash).await.unwrap(), None);
    lookup.commit().await.unwrap();
    // The name may be given again, to a new token.
    let (code, again, _) = credential(&db, &["create", "postfix"]);
    assert_eq!(code, Some(0));
    assert_ne!(again.trim(), token);
}
