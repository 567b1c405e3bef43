//! Senders over the API: the DKIM key's DNS record checked against the private key the server
//! opens for signing (a signature made with one verifies under the other), rotation and
//! retirement as the records show them, bad input refused naming its field with nothing
//! changed, another tenant's senders out of reach, and no private key material in any answer,
//! audit record or stored row.

use data_encoding::BASE64;
use mos_db::senders;
use mos_domain::SenderId;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::{Signer, Verifier};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::audiences::records;
use crate::erasure::org_id;
use crate::stored_secrets::everything_stored;
use crate::{Reply, TestApp};

pub(crate) fn new_sender() -> Value {
    json!({
        "from_name": "Acme Health",
        "from_address": "news@mail.acme.example",
        "reply_to": "care@acme.example",
        "postal_address": "Acme Health\n1 Main St\nSpringfield, IL 62701",
        "dkim_domain": "acme.example",
        "selector": "s1",
    })
}

/// The published records of a sender's answer: name and value, newest key first.
fn published(sender: &Value) -> Vec<(String, String)> {
    sender["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k["dns"].is_null())
        .map(|k| (k["dns"]["name"].as_str().unwrap().to_owned(), k["dns"]["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// The DER SubjectPublicKeyInfo a TXT record's value carries.
fn public_key_of(value: &str) -> PKey<openssl::pkey::Public> {
    let p = value.strip_prefix("v=DKIM1; k=rsa; p=").unwrap_or_else(|| panic!("{value}"));
    let der = BASE64.decode(p.as_bytes()).unwrap();
    PKey::public_key_from_der(&der).unwrap()
}

#[tokio::test]
async fn a_senders_dns_record_publishes_the_public_half_of_the_key_it_signs_with_through_rotation_and_retirement() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let mut answers: Vec<Reply> = Vec::new();

    let created = app.post_as(&org.admin, "/v1/orgs/acme/senders", new_sender()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["from_address"], "news@mail.acme.example");
    let first = published(&created.body);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, "s1._domainkey.acme.example");
    let public = public_key_of(&first[0].1);
    assert_eq!((public.id(), public.bits()), (openssl::pkey::Id::RSA, 2048));

    // The key the server opens for signing pairs with the record: its signature verifies there.
    let mut tx = app.pool.begin_tenant(org_id(&app, "acme").await, None).await.unwrap();
    let sender = SenderId::parse(&id).unwrap();
    let signing = senders::signing_key(&mut tx, &app.sealer, sender).await.unwrap().unwrap();
    drop(tx);
    assert_eq!((signing.selector.as_str(), signing.domain.as_str()), ("s1", "acme.example"));
    let pem = signing.private_key_pem.expose_secret().to_owned();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "PKCS#1, as lettre's DKIM signer reads it");
    let private = PKey::private_key_from_pem(pem.as_bytes()).unwrap();
    let mut signer = Signer::new(MessageDigest::sha256(), &private).unwrap();
    signer.update(b"From: news@mail.acme.example\r\nSubject: test\r\n").unwrap();
    let signature = signer.sign_to_vec().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier.update(b"From: news@mail.acme.example\r\nSubject: test\r\n").unwrap();
    assert!(verifier.verify(&signature).unwrap());
    answers.push(created);

    // A rotation publishes the new key beside the old one; the old one is still valid.
    let rotated =
        app.post_as(&org.admin, &format!("/v1/orgs/acme/senders/{id}/keys"), json!({ "selector": "s2" })).await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let names: Vec<String> = published(&rotated.body).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["s2._domainkey.acme.example", "s1._domainkey.acme.example"]);
    let states: Vec<&str> =
        rotated.body["keys"].as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active", "previous"]);
    let previous = rotated.body["keys"][1]["id"].as_str().unwrap().to_owned();
    let active = rotated.body["keys"][0]["id"].as_str().unwrap().to_owned();
    let mut tx = app.pool.begin_tenant(org_id(&app, "acme").await, None).await.unwrap();
    let now_signing = senders::signing_key(&mut tx, &app.sealer, sender).await.unwrap().unwrap();
    drop(tx);
    assert_eq!(now_signing.selector.as_str(), "s2", "the new key signs");
    answers.push(rotated);

    let reused =
        app.post_as(&org.admin, &format!("/v1/orgs/acme/senders/{id}/keys"), json!({ "selector": "s1" })).await;
    assert_eq!((reused.status, reused.body["field"].as_str()), (409, Some("selector")), "{}", reused.body);
    let active_retired =
        app.post_as(&org.admin, &format!("/v1/orgs/acme/senders/{id}/keys/{active}/retire"), json!({})).await;
    assert_eq!(active_retired.status, 409, "{}", active_retired.body);
    let retired =
        app.post_as(&org.admin, &format!("/v1/orgs/acme/senders/{id}/keys/{previous}/retire"), json!({})).await;
    assert_eq!(retired.status, 200, "{}", retired.body);
    let names: Vec<String> = published(&retired.body).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["s2._domainkey.acme.example"], "a retired key is no longer to be published");
    assert_eq!(retired.body["keys"][1]["state"], "retired");
    answers.push(retired);

    // A campaign author sees the sender; only an ADMIN changes it.
    let shown = app.get_as(&org.creator, &format!("/v1/orgs/acme/senders/{id}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let listed = app.get_as(&org.creator, "/v1/orgs/acme/senders").await;
    assert_eq!(listed.body["items"][0]["id"], json!(id), "{}", listed.body);
    let changed = app
        .call_as(
            "patch",
            &org.admin,
            &format!("/v1/orgs/acme/senders/{id}"),
            json!({ "reply_to": "", "from_name": "Acme" }),
        )
        .await;
    assert_eq!(
        (changed.status, &changed.body["reply_to"], &changed.body["from_name"]),
        (200, &Value::Null, &json!("Acme"))
    );
    answers.extend([shown, listed, changed]);

    let created = records(&app, &org, "sender.created").await;
    let rotated = records(&app, &org, "sender.key_rotated").await;
    let retired = records(&app, &org, "sender.key_retired").await;
    let updated = records(&app, &org, "sender.updated").await;
    assert_eq!((created.len(), rotated.len(), retired.len(), updated.len()), (1, 1, 1, 1));
    assert_eq!(rotated[0]["metadata"]["previous"], json!(previous), "{}", rotated[0]);
    assert_eq!(updated[0]["metadata"]["fields"], json!(["from_name", "reply_to"]), "{}", updated[0]);

    // No private key material anywhere: not in an answer, an audit record or any stored row,
    // in any case. The PEM also holds the public modulus, which the DNS record rightly shows, so
    // what is searched for is the PEM whole, its lines that the public key does not share, and
    // the private exponent and primes on their own, in hex (as bytea shows) and base64.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let public_b64 = BASE64.encode(&public.public_key_to_der().unwrap()).to_lowercase();
    let rsa = openssl::rsa::Rsa::private_key_from_pem(pem.as_bytes()).unwrap();
    let mut needles: Vec<String> = vec![body.to_lowercase()];
    // Full lines only: the last, short one could match anything by chance.
    needles.extend(
        pem.lines().filter(|l| l.len() == 64).map(str::to_lowercase).filter(|l| !public_b64.contains(l.as_str())),
    );
    for part in [rsa.d(), rsa.p().unwrap(), rsa.q().unwrap()] {
        let bytes = part.to_vec();
        needles.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        needles.push(BASE64.encode(&bytes).trim_end_matches('=').to_lowercase());
    }
    assert!(needles.len() > 20, "the private lines are searched for: {}", needles.len());
    let mut texts: Vec<String> = answers.iter().map(|a| a.body.to_string()).collect();
    let audit = app.get_as(&org.admin, "/v1/orgs/acme/audit-logs?limit=500").await;
    texts.push(audit.body.to_string());
    texts.push(everything_stored(&app).await);
    for text in &texts {
        assert!(!text.contains("PRIVATE KEY"), "a PEM header was shown");
        let lower = text.to_lowercase();
        for needle in &needles {
            assert!(!lower.contains(needle.as_str()), "private key material was shown");
        }
    }
}

async fn sender_rows(app: &TestApp) -> (i64, i64) {
    let mut su = app.db.superuser().await;
    let senders: i64 = sqlx::query_scalar("select count(*) from app.senders").fetch_one(&mut su).await.unwrap();
    let keys: i64 = sqlx::query_scalar("select count(*) from app.dkim_keys").fetch_one(&mut su).await.unwrap();
    (senders, keys)
}

#[tokio::test]
async fn bad_sender_input_is_refused_naming_the_field_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let cases = [
        ("from_name", json!("")),
        ("from_name", json!("Support <help@bank.example>")),
        ("from_address", json!("not an address")),
        ("reply_to", json!("nobody")),
        ("postal_address", json!("  \n ")),
        ("postal_address", json!("x".repeat(501))),
        ("dkim_domain", json!("localhost")),
        ("dkim_domain", json!("under_score.example")),
        ("selector", json!("s 1")),
        ("selector", json!("a".repeat(64))),
    ];
    for (field, value) in cases {
        let mut body = new_sender();
        body[field] = value.clone();
        let refused = app.post_as(&org.admin, "/v1/orgs/acme/senders", body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some(field)),
            "{field} = {value}: {}",
            refused.body
        );
    }
    // DMARC alignment: the from address outside the DKIM domain, or under a look-alike of it.
    for from in ["news@other.example", "news@notacme.example", "acme.example@evil.example"] {
        let mut body = new_sender();
        body["from_address"] = json!(from);
        let refused = app.post_as(&org.admin, "/v1/orgs/acme/senders", body).await;
        assert_eq!(
            (refused.status, refused.body["field"].as_str()),
            (422, Some("from_address")),
            "{from}: {}",
            refused.body
        );
        assert!(refused.body["detail"].as_str().unwrap().contains("acme.example"), "{}", refused.body);
    }
    assert_eq!(sender_rows(&app).await, (0, 0), "nothing was written");

    let created = app.post_as(&org.admin, "/v1/orgs/acme/senders", new_sender()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let before = app.get_as(&org.admin, &format!("/v1/orgs/acme/senders/{id}")).await.body;
    let path = format!("/v1/orgs/acme/senders/{id}");
    for (field, body) in [
        ("postal_address", json!({ "postal_address": "1 Main St\u{0007}" })),
        ("from_name", json!({ "from_name": "x".repeat(101) })),
        ("reply_to", json!({ "reply_to": "@" })),
    ] {
        let refused = app.call_as("patch", &org.admin, &path, body).await;
        assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some(field)), "{}", refused.body);
    }
    let refused = app.post_as(&org.admin, &format!("{path}/keys"), json!({ "selector": "bad_selector" })).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("selector")), "{}", refused.body);
    assert_eq!(app.get_as(&org.admin, &path).await.body, before, "nothing was changed");
    assert_eq!(sender_rows(&app).await, (1, 1));
    assert_eq!(records(&app, &org, "sender.updated").await.len(), 0);
}

#[tokio::test]
async fn another_organization_gets_404_for_a_senders_every_route() {
    let app = TestApp::spawn().await;
    let acme = app.org_with_every_role("acme").await;
    let created = app.post_as(&acme.admin, "/v1/orgs/acme/senders", new_sender()).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let key = created.body["keys"][0]["id"].as_str().unwrap().to_owned();
    let globex = app.signed_in("admin@globex.example").await;
    let made = app.post_as(&globex, "/v1/orgs", json!({ "slug": "globex", "name": "Globex" })).await;
    assert_eq!(made.status, 201, "{}", made.body);

    for slug in ["globex", "acme"] {
        let base = format!("/v1/orgs/{slug}/senders/{id}");
        let replies = [
            app.get_as(&globex, &base).await,
            app.call_as("patch", &globex, &base, json!({ "from_name": "Owned" })).await,
            app.post_as(&globex, &format!("{base}/keys"), json!({ "selector": "s9" })).await,
            app.post_as(&globex, &format!("{base}/keys/{key}/retire"), json!({})).await,
        ];
        for reply in replies {
            assert_eq!(reply.status, 404, "{slug}: {}", reply.body);
        }
    }
    let listed = app.get_as(&globex, "/v1/orgs/globex/senders").await;
    assert_eq!(listed.body["items"], json!([]), "{}", listed.body);
    let mine = app.get_as(&acme.admin, &format!("/v1/orgs/acme/senders/{id}")).await;
    assert_eq!(
        (mine.body["from_name"].as_str(), mine.body["keys"].as_array().map(Vec::len)),
        (Some("Acme Health"), Some(1))
    );
}
