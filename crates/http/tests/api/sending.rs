//! A launched campaign sent by the server's own job runner through a real SMTP server on
//! loopback: every message to a contact with a live consent, DKIM-verified by dkimpy, with the
//! RFC 8058 headers; the ledger final and proven; a one-click unsubscribe stops the next one.

use std::time::Duration;

use chrono::Utc;
use mos_db::audiences::consent;
use mos_db::campaigns::{self, Launch};
use mos_db::testing::campaign::{self, approved, begin, grant, launch, new_campaign, Org};
use mos_db::{chain, senders};
use mos_domain::audiences::ConsentKind;
use mos_domain::ContentId;
use serde_json::Value;

use crate::TestApp;

/// The public address the test server's links carry: https, as RFC 8058 wants.
const PUBLIC_URL: &str = "https://mos.test";

async fn sending_app() -> (TestApp, Org) {
    let app = TestApp::spawn_with_jobs(|s| s.public_url = PUBLIC_URL.into()).await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    (app, o)
}

/// Launches an approved campaign of `o`'s definition, wakes the runner and waits for the run
/// to finish.
async fn sent(app: &TestApp, o: &Org) -> ContentId {
    let id = new_campaign(&app.pool, o, &o.definition).await;
    approved(&app.pool, o, id).await;
    assert!(matches!(launch(&app.pool, o, id).await, Launch::Done(_)));
    app.wake_jobs();
    for _ in 0..1200 {
        let mut tx = begin(&app.pool, o.org, o.admin).await;
        let run = campaigns::run(&mut tx, id).await.unwrap();
        drop(tx);
        if run.is_some_and(|r| r.state == "finished") {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the campaign {id} did not finish");
}

/// `python3 inspect_message.py` of the mail crate's tests: dkimpy and Python's email package.
fn inspect(args: &[&str], message: &str) -> (bool, Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data/inspect_message.py");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let path = file.path().to_str().unwrap();
    let mut command = std::process::Command::new("python3");
    command.arg(script).arg(args[0]).arg(path).args(&args[1..]);
    let output = command.output().expect("python3 runs inspect_message.py");
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap_or(Value::Null))
}

fn header<'a>(parsed: &'a Value, name: &str) -> Vec<&'a str> {
    parsed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_launched_campaign_reaches_exactly_the_consenting_signed_with_one_click_headers_and_is_proven() {
    let (app, o) = sending_app().await;
    let id = sent(&app, &o).await;

    // Ada has consent; Bea has none and Cy is suppressed: only Ada gets a message.
    let to_ada = app.inbox.all_to("ada@p.example");
    assert_eq!(to_ada.len(), 1, "{to_ada:?}");
    assert!(app.inbox.all_to("bea@p.example").is_empty());
    assert!(app.inbox.all_to("cy@p.example").is_empty());

    // dkimpy verifies it against the sender's published record.
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let (sender, keys) = senders::get(&mut tx, o.definition.sender).await.unwrap().unwrap();
    let record = keys[0].txt_record(&sender.dkim_domain);
    let public_key = record.value.rsplit_once("p=").unwrap().1.to_owned();
    let selector = keys[0].selector.as_str().to_owned();
    let (verified, tags) = inspect(&["verify", &selector, sender.dkim_domain.as_str(), &public_key], &to_ada[0]);
    assert!(verified, "{tags}");
    let signed: Vec<&str> = tags["signed"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert!(signed.contains(&"list-unsubscribe") && signed.contains(&"list-unsubscribe-post"), "{signed:?}");

    // RFC 8058: the one-click headers, an https link to this server; the stable Message-ID.
    let (_, parsed) = inspect(&["parse"], &to_ada[0]);
    let unsubscribe = header(&parsed, "List-Unsubscribe");
    assert_eq!(unsubscribe.len(), 1);
    let link = unsubscribe[0].trim_start_matches('<').split('>').next().unwrap();
    assert!(link.starts_with(&format!("{PUBLIC_URL}/u/")), "{link}");
    assert_eq!(header(&parsed, "List-Unsubscribe-Post"), ["List-Unsubscribe=One-Click"]);
    let message_id = format!("<{}>", campaigns::message_id(id, o.ada, sender.dkim_domain.as_str()));
    assert_eq!(header(&parsed, "Message-ID"), [message_id.as_str()]);

    // The ledger: Ada sent, the two others skipped with their reasons; the proof holds.
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    let progress: Vec<(&str, i64)> = progress.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(progress, [("sent", 1), ("skipped:no_consent", 1), ("skipped:suppressed", 1)]);
    drop(tx);
    chain::seal(&app.pool, None, chain::WINDOW).await.unwrap();
    let proofs = campaigns::evidence(&mut app.db.superuser().await, o.org.as_uuid()).await.unwrap();
    assert_eq!((proofs[0].sent, proofs[0].batches, &proofs[0].problems), (1, 1, &vec![]));

    // Ada uses the one-click link: the next campaign skips her.
    let path = link.trim_start_matches(PUBLIC_URL);
    let request = app.http.post(format!("{}{path}", app.base)).form(&[("List-Unsubscribe", "One-Click")]);
    assert_eq!(app.send(request).await.status, 200);
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    assert!(!consent::is_live(&mut tx, o.ada, o.purpose, Utc::now()).await.unwrap());
    // Bea consents meanwhile: she gets the next one, Ada does not.
    consent::append(&mut tx, &grant(&o, o.bea, ConsentKind::Grant), &campaign::src()).await.unwrap();
    tx.commit().await.unwrap();
    let second = sent(&app, &o).await;
    assert_eq!(app.inbox.all_to("ada@p.example").len(), 1, "nothing more to Ada");
    assert_eq!(app.inbox.all_to("bea@p.example").len(), 1);
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let progress = campaigns::progress(&mut tx, second).await.unwrap();
    assert_eq!(progress.get("skipped:no_consent"), Some(&1), "{progress:?}");
}
