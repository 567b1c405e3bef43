//! `mos consent verify`: a consent receipt fetched from a running `mos serve` verifies offline
//! with the organization's public key alone, and each tampered copy is refused with its reason;
//! an implementation of docs/consent.md that shares no code with `mos` agrees.

use ed25519_dalek::{Signer, SigningKey};
use mos_auth::{AddressKeys, OneTimeToken};
use mos_db::audiences::consent::{self, Basis, Provenance, Record};
use mos_db::audiences::{contacts, purposes};
use mos_db::testing::TestDb;
use mos_domain::audiences::{ConsentKind, NoticeText};
use mos_domain::{ContactId, Email, OrgId, OrgName, RequestSource, Role, Slug, UserId};
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::{data_dir, http_get_with, import, mos, serve, serve_command, text};

/// The installation's audit signing key, as MOS_AUDIT_SIGNING_KEY gives it.
const SEED: [u8; 32] = [9; 32];

/// An organization whose ADMIN has a session, and a contact with three consent events for one
/// purpose (granted, withdrawn, granted again) and one for another: the contact and the
/// session's token.
async fn audience(db: &TestDb) -> (ContactId, String) {
    let pool = db.app_pool(2).await;
    let source = RequestSource::default();
    let now = chrono::Utc::now();
    let admin = UserId::new();
    let mut tx = pool.begin_user(admin).await.unwrap();
    let hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA";
    mos_db::users::insert(&mut tx, &Email::parse("admin@acme.example").unwrap(), hash, Some(now)).await.unwrap();
    let token = OneTimeToken::generate(&mut rand::thread_rng());
    mos_db::sessions::create(&mut tx, &token.hash, now, now + chrono::Duration::hours(1), &source, false)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let org = OrgId::new();
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    mos_db::orgs::insert(&mut tx, &Slug::parse("acme").unwrap(), &OrgName::parse("Acme").unwrap()).await.unwrap();
    mos_db::orgs::add_member(&mut tx, admin, Role::Admin).await.unwrap();
    let keys = AddressKeys::derive(b"any key: receipts do not name addresses");
    let address = Email::parse("ana@patients.example").unwrap();
    let contact =
        contacts::create(&mut tx, &keys, &address, &Default::default(), Some(admin), now, &source).await.unwrap();
    let mut events = Vec::new();
    for (name, kinds) in [
        ("Newsletter", &[ConsentKind::Grant, ConsentKind::Revoke, ConsentKind::Grant][..]),
        ("Reminders", &[ConsentKind::Grant][..]),
    ] {
        let purpose = purposes::create(&mut tx, name, false, admin, now, &source).await.unwrap();
        let text = NoticeText::parse(&format!("{name}: we write to you now and then. Stop any time.")).unwrap();
        let notice = purposes::publish_notice(&mut tx, purpose, &text, admin, now, &source).await.unwrap();
        for kind in kinds {
            events.push((purpose, notice, *kind));
        }
    }
    let evidence = consent::Evidence { ip: Some("192.0.2.7".parse().unwrap()), user_agent: Some("Mozilla/5.0".into()) };
    for (purpose, notice, kind) in events {
        let grant = kind == ConsentKind::Grant;
        let record = Record {
            contact,
            purpose,
            kind,
            basis: grant.then_some(&Basis::Consent),
            notice: grant.then_some(notice),
            provenance: Provenance::Api { by: admin },
            evidence: grant.then_some(&evidence),
            now: chrono::Utc::now(),
        };
        consent::append(&mut tx, &record, &source).await.unwrap();
    }
    tx.commit().await.unwrap();
    (contact, token.secret.expose_secret().to_owned())
}

/// Runs `mos consent verify` on `receipt`: whether it passed, and what it printed.
fn verify(dir: &tempfile::TempDir, name: &str, receipt: &Value, public_key: &str) -> (bool, String) {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(receipt).unwrap()).unwrap();
    let out = mos().args(["consent", "verify"]).arg(&path).args(["--public-key", public_key]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success() || out.status.code() == Some(2), "{stdout}{stderr}");
    (out.status.success(), stdout)
}

/// The independent verifier's answer.
fn python(dir: &tempfile::TempDir, name: &str, public_key: &str) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/verify_receipt.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir.path().join(name))
        .arg(public_key)
        .output()
        .expect("python3 runs tests/data/verify_receipt.py");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The receipt's events of the first purpose, in their order.
fn events_of_first_purpose(receipt: &Value) -> Vec<usize> {
    let events = receipt["events"].as_array().unwrap();
    let first = &events[0]["purpose_id"];
    (0..events.len()).filter(|i| &events[*i]["purpose_id"] == first).collect()
}

#[tokio::test]
async fn a_receipt_from_a_running_server_verifies_offline_and_each_tampered_copy_is_refused() {
    let db = TestDb::new().await;
    let (contact, token) = audience(&db).await;
    let dir = data_dir();
    let mut command = serve_command(&db.database_url(), dir.path());
    command.env("MOS_AUDIT_SIGNING_KEY", hex::encode(SEED));
    let (mut child, addr, log) = serve(command);
    let (status, body) = http_get_with(
        &addr,
        &format!("/v1/orgs/acme/contacts/{contact}/consent-receipt"),
        &format!("Authorization: Bearer {token}\r\n"),
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success(), "{}", log.lock().unwrap());
    assert_eq!(status, 200, "{body}");
    let receipt: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["events"].as_array().unwrap().len(), 4, "{receipt}");

    // The public key, as the installation prints it for whoever checks receipts.
    let out = mos().args(["audit", "public-key"]).env("MOS_AUDIT_SIGNING_KEY", hex::encode(SEED)).output().unwrap();
    let public_key = text(&out).0.trim().to_owned();
    assert_eq!(public_key, hex::encode(SigningKey::from_bytes(&SEED).verifying_key().as_bytes()));

    let (ok, said) = verify(&dir, "good.json", &receipt, &public_key);
    assert!(ok, "{said}");
    assert!(said.contains("4 consent event(s) of contact"), "{said}");
    assert!(said.contains("2 notice text(s) hash"), "{said}");
    let (ok, said) = python(&dir, "good.json", &public_key);
    assert!(ok, "the independent verifier accepts it too: {said}");

    let mut tampered: Vec<(&str, Value, &str)> = Vec::new();
    let mut notice = receipt.clone();
    let text = notice["notices"][0]["text"].as_str().unwrap().to_owned();
    notice["notices"][0]["text"] = Value::from(text.replace("Stop any time.", "We may share your address."));
    tampered.push(("notice", notice, "does not hash to its SHA-256"));
    let mut kind = receipt.clone();
    let first = events_of_first_purpose(&receipt);
    kind["events"][first[1]]["kind"] = Value::from("grant");
    kind["events"][first[1]]["basis"] = Value::from("consent");
    tampered.push(("kind", kind, "does not match its audit record: kind"));
    let mut dropped = receipt.clone();
    dropped["events"].as_array_mut().unwrap().remove(first[1]);
    tampered.push(("dropped", dropped, "has a gap"));
    let other = SigningKey::from_bytes(&[3; 32]);
    let mut resigned = receipt.clone();
    let checkpoint: mos_db::audiences::export::ReceiptCheckpoint =
        serde_json::from_value(receipt["checkpoint"].clone()).unwrap();
    let message = mos_db::chain::checkpoint_text(
        &checkpoint.created_at,
        checkpoint.heads.iter().map(|h| (h.organization_id, h.seq, h.hash.as_str())),
    );
    resigned["checkpoint"]["signature"] = Value::from(hex::encode(other.sign(&message).to_bytes()));
    let mut impostor = resigned.clone();
    tampered.push(("signature", resigned, "does not verify with the organization's public key"));
    impostor["checkpoint"]["public_key"] = Value::from(hex::encode(other.verifying_key().as_bytes()));
    tampered.push(("impostor", impostor, "signed with another key"));
    let mut record = receipt.clone();
    let records = record["chain"]["records"].as_array_mut().unwrap();
    let last = records.len() - 1;
    records[last]["fields"]["outcome"] = Value::from("denied");
    tampered.push(("record", record, "does not hash to its link"));

    for (name, copy, reason) in tampered {
        let file = format!("{name}.json");
        let (ok, said) = verify(&dir, &file, &copy, &public_key);
        assert!(!ok, "{name}: {said}");
        assert!(said.starts_with("refused: ") && said.contains(reason), "{name}: {said}");
        let (ok, said) = python(&dir, &file, &public_key);
        assert!(!ok, "the independent verifier refuses {name} too: {said}");
    }
}

/// A change to a receipt, given the id of the event it is about.
type Tamper = fn(&mut Value, &str);

/// Flips the first hex digit of a hash.
fn flipped(hash: &str) -> String {
    let first = if hash.starts_with('0') { '1' } else { '0' };
    format!("{first}{}", &hash[1..])
}

#[tokio::test]
async fn an_imported_grant_is_proven_by_its_batch_record_and_a_changed_event_or_proof_is_refused() {
    let db = TestDb::empty().await;
    let url = db.database_url();
    let password = import::migrate_and_seed(&url);
    let dir = data_dir();
    let mut command = serve_command(&url, dir.path());
    command.env("MOS_AUDIT_SIGNING_KEY", hex::encode(SEED));
    let (mut child, addr, log) = serve(command);
    let token = import::sign_in(&addr, &password);
    // Seven rows: a tree whose leaves sit at different depths.
    let csv: String = std::iter::once("email,name\n".to_owned())
        .chain((0..7).map(|n| format!("person{n}@example.com,Person {n}\n")))
        .collect();
    let id = import::upload_and_start(&addr, &token, &csv);
    let done = import::until(&addr, &token, &id, |b| b["state"] != "running" && b["state"] != "queued");
    assert_eq!(done["state"], "succeeded", "{done}; {}", log.lock().unwrap());
    let mut su = db.superuser().await;
    let contact: uuid::Uuid = sqlx::query_scalar("select id from app.contacts where address = 'person5@example.com'")
        .fetch_one(&mut su)
        .await
        .unwrap();
    let (status, body) = http_get_with(
        &addr,
        &format!("/v1/orgs/demo/contacts/{contact}/consent-receipt"),
        &format!("Authorization: Bearer {token}\r\n"),
    );
    import::kill(&mut child, nix::sys::signal::Signal::SIGTERM);
    assert_eq!(status, 200, "{body}");
    let receipt: Value = serde_json::from_str(&body).unwrap();
    let event = receipt["events"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(receipt["not_covered"], serde_json::json!([]), "{receipt}");
    let proof = &receipt["proofs"][&event];
    assert_eq!((&proof["index"], &proof["size"]), (&serde_json::json!(5), &serde_json::json!(7)), "{receipt}");
    assert_eq!(proof["path"].as_array().unwrap().len(), 3, "{receipt}");

    let public_key = hex::encode(SigningKey::from_bytes(&SEED).verifying_key().as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let (ok, said) = verify(&dir, "good.json", &receipt, &public_key);
    assert!(ok, "{said}");
    assert!(said.contains("1 consent event(s) of contact"), "{said}");
    let (ok, said) = python(&dir, "good.json", &public_key);
    assert!(ok, "the independent verifier accepts it too: {said}");

    // Each change to what the batch's record commits to, and each change to the proof.
    let tampered: [(&str, Tamper); 6] = [
        ("another row", |r, _| r["events"][0]["import_row"] = serde_json::json!(3)),
        ("an exemption added", |r, _| r["events"][0]["exemption"] = serde_json::json!("we asked them")),
        ("another time", |r, _| r["events"][0]["created_at"] = serde_json::json!("2020-01-01T00:00:00Z")),
        ("another place", |r, e| r["proofs"][e]["index"] = serde_json::json!(4)),
        ("another sibling", |r, e| {
            let first = r["proofs"][e]["path"][0].as_str().unwrap().to_owned();
            r["proofs"][e]["path"][0] = Value::String(flipped(&first));
        }),
        ("no proof", |r, _| r["proofs"] = serde_json::json!({})),
    ];
    for (what, change) in tampered {
        let mut copy = receipt.clone();
        change(&mut copy, &event);
        let name = format!("{}.json", what.replace(' ', "-"));
        let (ok, said) = verify(&dir, &name, &copy, &public_key);
        assert!(!ok && said.contains("refused"), "{what}: {said}");
        let (ok, said) = python(&dir, &name, &public_key);
        assert!(!ok, "{what}: the independent verifier refuses it too: {said}");
    }
}
