use mos_db::testing::TestDb;

use crate::{data_dir, mos, text};

/// A seeded database (an organization with two audit records), sealed, and its organization's id.
async fn seeded() -> (TestDb, tempfile::TempDir, uuid::Uuid) {
    let db = TestDb::new().await;
    let dir = data_dir();
    let out = mos().arg("seed").env("DATABASE_URL", db.database_url()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    let out = mos().args(["audit", "seal"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert_eq!(text(&out).0, "sealed 2 record(s) of 1 organization(s)\n");
    let demo = sqlx::query_scalar("select id from app.organizations where slug = 'demo'")
        .fetch_one(&mut db.superuser().await)
        .await
        .unwrap();
    (db, dir, demo)
}

fn audit(db: &TestDb, dir: &tempfile::TempDir, args: &[&str]) -> std::process::Output {
    mos()
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", db.database_url())
        .env("MOS_DATA_DIR", dir.path())
        .output()
        .unwrap()
}

#[tokio::test]
async fn verify_reports_an_intact_chain_and_the_first_broken_link_with_its_reason() {
    let (db, dir, demo) = seeded().await;
    let out = audit(&db, &dir, &["verify"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.starts_with("demo: 2 records, chain intact to 2 ("), "{:?}", text(&out));

    db.tamper(
        demo,
        &["audit_logs", "audit_blocks"],
        "update {audit_logs} set action = 'org.deleted' where id = (select audit_ids[1] from {audit_blocks} where first_seq = 1)",
    )
    .await;
    let out = audit(&db, &dir, &["verify", "--org", "demo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.starts_with("demo: broken at record 1: changed"), "{:?}", text(&out));
}

#[tokio::test]
async fn a_signed_checkpoint_proves_that_nothing_was_cut_from_the_end_since() {
    let (db, dir, demo) = seeded().await;
    let file = dir.path().join("checkpoint.json");
    let out = audit(&db, &dir, &["checkpoint", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(dir.path().join("audit-signing.key").exists());
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("demo: record 2 signed at"), "{:?}", text(&out));

    // The superuser cuts the last record and rewinds the head: the chain alone looks whole.
    db.tamper(
        demo,
        &["audit_logs", "audit_blocks", "audit_chain_heads"],
        "delete from {audit_logs} where id = (select audit_ids[2] from {audit_blocks} where first_seq = 1);
         update {audit_blocks} set audit_ids = audit_ids[1:1], hashes = hashes[1:1] where first_seq = 1;
         update {audit_chain_heads} set seq = 1, hash = (select hashes[1] from {audit_blocks} where first_seq = 1)",
    )
    .await;
    assert!(audit(&db, &dir, &["verify"]).status.success(), "without the checkpoint the cut goes unnoticed");
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).0.contains("demo: broken at record 2: deleted"), "{:?}", text(&out));
}

#[tokio::test]
async fn a_checkpoint_altered_after_signing_is_refused() {
    let (db, dir, _) = seeded().await;
    let file = dir.path().join("checkpoint.json");
    assert!(audit(&db, &dir, &["checkpoint", "--out", file.to_str().unwrap()]).status.success());
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, original.replace("\"seq\": 2", "\"seq\": 1")).unwrap();
    let out = audit(&db, &dir, &["verify", "--checkpoint", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("does not match its contents"), "{:?}", text(&out));
}

/// A checkpoint that an independent implementation of `docs/audit-chain.md` signed over records
/// with known link hashes: our verifier accepts it only while our sealer and our signed text
/// agree with the document, so neither can change with the suite green.
#[tokio::test]
async fn verify_accepts_a_checkpoint_signed_over_the_documented_text_by_another_implementation() {
    let db = TestDb::new().await;
    let vectors = db.insert_audit_vectors().await;
    let dir = data_dir();
    let out = mos().args(["audit", "seal"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert_eq!(text(&out).0, "sealed 3 record(s) of 1 organization(s)\n");
    let file = dir.path().join("checkpoint.json");
    std::fs::write(&file, vectors.checkpoint.to_string()).unwrap();
    let verify = |key: &str| {
        mos()
            .args(["audit", "verify", "--checkpoint", file.to_str().unwrap()])
            .env("DATABASE_URL", db.database_url())
            .env("MOS_DATA_DIR", dir.path())
            .env("MOS_AUDIT_SIGNING_KEY", key)
            .output()
            .unwrap()
    };
    let out = verify(&vectors.checkpoint_key);
    assert!(out.status.success(), "{:?}", text(&out));
    let expected = format!("{}: record 3 signed at 2026-01-02", mos_db::testing::AUDIT_VECTORS_SLUG);
    assert!(text(&out).0.contains(&expected), "{:?}", text(&out));
    let out = verify(&"11".repeat(32));
    assert_eq!(out.status.code(), Some(1), "another key's installation refuses it: {:?}", text(&out));
}

#[tokio::test]
async fn verify_refuses_a_connection_that_row_level_security_would_blind() {
    let (db, dir, _) = seeded().await;
    let url = db.database_url().replacen("postgres://postgres@", "postgres://app_user@", 1);
    let out =
        mos().args(["audit", "verify"]).env("DATABASE_URL", url).env("MOS_DATA_DIR", dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("row-level security hides from this role"), "{:?}", text(&out));
}

/// How the fixture's piece is published.
#[derive(Clone, Copy, PartialEq)]
enum Publication {
    /// Through the review.
    Reviewed,
    /// The rest: as app_user behind the review's back, after a reviewer's approval, with a
    /// publication record that says it counted the approval of a member who never gave one.
    CountingAStranger,
    /// With no publication record at all.
    Unrecorded,
    /// With a publication record that counted the one approval where two were required.
    ShortOfApprovals,
    /// With an approval record by the writer of the text beside the reviewer's, both counted.
    ApprovedByItsWriter,
}

/// An organization whose creator wrote a piece that a reviewer approved and the ADMIN
/// published, made through the application's repositories, sealed: its id.
async fn published(db: &TestDb) -> uuid::Uuid {
    published_by(db, Publication::Reviewed).await
}

async fn published_by(db: &TestDb, publication: Publication) -> uuid::Uuid {
    use mos_db::content::{self, Request, Step};
    use mos_domain::content::{Action, Channel, Text};
    use mos_domain::{Email, OrgId, OrgName, RequestSource, Role, Slug, UserId};

    let pool = db.app_pool(2).await;
    let source = RequestSource::default();
    let mut people = Vec::new();
    for email in ["admin@acme.example", "creator@acme.example", "reviewer@acme.example"] {
        let user = UserId::new();
        let mut tx = pool.begin_user(user).await.unwrap();
        mos_db::users::insert(&mut tx, &Email::parse(email).unwrap(), "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA", None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        people.push(user);
    }
    let (admin, creator, reviewer) = (people[0], people[1], people[2]);
    let org = OrgId::new();
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let name = OrgName::parse("Acme").unwrap();
    mos_db::orgs::create(&mut tx, &Slug::parse("acme").unwrap(), &name, admin, &source).await.unwrap();
    mos_db::orgs::add_member(&mut tx, creator, Role::Creator).await.unwrap();
    mos_db::orgs::add_member(&mut tx, reviewer, Role::Reviewer).await.unwrap();
    let draft = Text::parse("Flu shots", Channel::Email, "", "Book now.", &[]).unwrap();
    let item = content::create(&mut tx, &draft, creator, chrono::Utc::now(), &source).await.unwrap();
    let mut steps = vec![(Action::Submit, creator, Role::Creator), (Action::Approve, reviewer, Role::Reviewer)];
    if publication == Publication::Reviewed {
        steps.push((Action::Publish, admin, Role::Admin));
    }
    for (action, actor, role) in steps {
        let request = Request {
            action,
            text: None,
            note: None,
            actor,
            role,
            revisions: None,
            sha256: None,
            now: chrono::Utc::now(),
            source: &source,
        };
        assert!(matches!(content::act(&mut tx, item.id, request).await.unwrap(), Step::Done(_)), "{action}");
    }
    if publication != Publication::Reviewed {
        sqlx::query(
            "update app.content_items
                set state = 'published', revision = revision + 1, updated_at = now(),
                    published_version = current_version, published_at = now()
              where organization_id = $1 and id = $2",
        )
        .bind(org.as_uuid())
        .bind(item.id.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
        let publish = |approvers: &[UserId], required: usize| {
            mos_domain::AuditEvent::new(mos_domain::events::CONTENT_PUBLISHED, mos_domain::events::CONTENT)
                .actor(admin)
                .resource_id(item.id)
                .meta("sha256", serde_json::json!(draft.hash().to_string()))
                .meta(
                    "approvals",
                    serde_json::json!({
                        "given": approvers.len(),
                        "required": required,
                        "approvers": approvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                )
        };
        let records = match publication {
            Publication::Reviewed | Publication::Unrecorded => vec![],
            Publication::CountingAStranger => vec![publish(&[UserId::new()], 1)],
            Publication::ShortOfApprovals => vec![publish(&[reviewer], 2)],
            Publication::ApprovedByItsWriter => vec![
                mos_domain::AuditEvent::new(mos_domain::events::CONTENT_APPROVED, mos_domain::events::CONTENT)
                    .actor(creator)
                    .resource_id(item.id)
                    .meta("sha256", serde_json::json!(draft.hash().to_string())),
                publish(&[reviewer, creator], 2),
            ],
        };
        for record in records {
            mos_db::audit::record(&mut tx, &record).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
    let out = mos().args(["audit", "seal"]).env("DATABASE_URL", db.database_url()).output().unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    item.id.as_uuid()
}

#[tokio::test]
async fn verify_proves_who_approved_each_published_text_and_catches_a_text_changed_afterwards() {
    let db = TestDb::new().await;
    let dir = data_dir();
    let item = published(&db).await;
    let out = audit(&db, &dir, &["verify"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        text(&out).0.contains(
            "acme: 1 published content version(s), each approved in the chain by members other than its author"
        ),
        "{:?}",
        text(&out)
    );

    // The superuser rewrites the published text: the chain still holds, the proof does not.
    let mut su = db.superuser().await;
    sqlx::query("update app.content_versions set body = 'Book now. Side effects: none.' where item_id = $1")
        .bind(item)
        .execute(&mut su)
        .await
        .unwrap();
    let out = audit(&db, &dir, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).0.contains("is not proven: the stored text no longer has the hash it was published with"),
        "{:?}",
        text(&out)
    );
}

#[tokio::test]
async fn verify_catches_a_publication_that_counted_an_approval_nobody_gave() {
    let db = TestDb::new().await;
    let dir = data_dir();
    // A sealed approval of the text exists, but not by the member the publication counted.
    published_by(&db, Publication::CountingAStranger).await;
    let out = audit(&db, &dir, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out)
            .0
            .contains("is not proven: the publication counted an approval of this text that no sealed record holds"),
        "{:?}",
        text(&out)
    );
}

#[tokio::test]
async fn verify_catches_a_publication_without_its_record_short_of_approvals_or_approved_by_its_writer() {
    let mut missed = Vec::new();
    for (publication, problem) in [
        (Publication::Unrecorded, "is not proven: no sealed record of this publication"),
        (
            Publication::ShortOfApprovals,
            "is not proven: 1 sealed approval(s) of this text, 2 required when it was published",
        ),
        (Publication::ApprovedByItsWriter, "is not proven: an approval of this text is by the member who wrote it"),
    ] {
        let db = TestDb::new().await;
        let dir = data_dir();
        published_by(&db, publication).await;
        let out = audit(&db, &dir, &["verify"]);
        if out.status.code() != Some(2) || !text(&out).0.contains(problem) {
            missed.push(format!("{problem}: {:?}", text(&out)));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
}

#[tokio::test]
async fn verify_catches_a_publication_that_bypassed_the_review() {
    let db = TestDb::new().await;
    let dir = data_dir();
    let item = published(&db).await;
    // A second version, published behind the application's back: no record of who wrote it,
    // no approval of its hash.
    let forged = mos_domain::content::Text::parse(
        "Flu shots",
        mos_domain::content::Channel::Email,
        "",
        "Unreviewed claims.",
        &[],
    )
    .unwrap()
    .hash();
    let org: uuid::Uuid = sqlx::query_scalar("select organization_id from app.content_items where id = $1")
        .bind(item)
        .fetch_one(&mut db.superuser().await)
        .await
        .unwrap();
    let forged = hex::encode(forged.0);
    db.tamper(
        org,
        &["content_versions", "content_items"],
        &format!(
            "insert into {{content_versions}} (organization_id, item_id, number, author_id, created_at, title, channel,
                                              audience, body, tags, sha256)
             select organization_id, item_id, 2, author_id, now(), title, channel, audience, 'Unreviewed claims.', tags,
                    '\\x{forged}'::bytea
               from {{content_versions}} where item_id = '{item}';
             update {{content_items}} set current_version = 2, approved_version = 2, published_version = 2
              where id = '{item}'"
        ),
    )
    .await;
    let out = audit(&db, &dir, &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(
        text(&out).0.contains("version 2 (")
            && text(&out).0.contains("is not proven: no sealed record says who wrote this text"),
        "{:?}",
        text(&out)
    );
}

#[tokio::test]
async fn checking_a_checkpoint_without_the_signing_key_is_refused_and_makes_no_key() {
    let (db, dir, _) = seeded().await;
    let file = dir.path().join("checkpoint.json");
    assert!(audit(&db, &dir, &["checkpoint", "--out", file.to_str().unwrap()]).status.success());
    let elsewhere = data_dir();
    let out = mos()
        .args(["audit", "verify", "--checkpoint", file.to_str().unwrap()])
        .env("DATABASE_URL", db.database_url())
        .env("MOS_DATA_DIR", elsewhere.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("there is no checkpoint signing key to check the checkpoint with"), "{stderr}");
    assert!(!elsewhere.path().join("audit-signing.key").exists(), "a key that could only fail to match is not made");
}

#[tokio::test]
async fn a_first_use_evidence_document_is_backed_by_audit_verify_and_a_changed_one_is_not() {
    use std::collections::BTreeMap;

    use chrono::{Duration, Utc};
    use mos_auth::Sealer;
    use mos_db::campaigns::{self, Launch, Sent};
    use mos_db::chain;
    use mos_db::first_use::{self, Evidence};
    use mos_db::testing::campaign::{self, approved, begin, keys, launch, new_campaign, src};

    let db = TestDb::new().await;
    let dir = data_dir();
    let pool = db.app_pool(2).await;
    let sealer = Sealer::from_base64(&Sealer::generate_key_base64(&mut rand::thread_rng())).unwrap();
    let o = campaign::org(&pool, "acme", &sealer, &keys()).await;
    let id = new_campaign(&pool, &o, &o.definition).await;
    approved(&pool, &o, id).await;
    assert!(matches!(launch(&pool, &o, id).await, Launch::Done(_)));
    let mut tx = begin(&pool, o.org, o.admin).await;
    campaigns::claim(&mut tx, id, 10, Duration::minutes(5), Utc::now()).await.unwrap();
    let values = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
    let sent = [Sent { contact: o.ada, values: &values, reply: "250 Ok" }];
    campaigns::record_sent(&mut tx, id, &sent, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    let piece = o.definition.content.item;
    let exported = |pool: mos_db::AppPool| async move {
        let mut tx = begin(&pool, o.org, o.admin).await;
        first_use::evidence(&mut tx, piece, Utc::now()).await.unwrap()
    };
    let verify = |evidence: &Evidence| {
        let file = dir.path().join("first-use.json");
        std::fs::write(&file, serde_json::to_vec(evidence).unwrap()).unwrap();
        audit(&db, &dir, &["verify", "--evidence", file.to_str().unwrap()])
    };

    // Made before the records were sealed, it names no place in the chain: not backed.
    let early = exported(pool.clone()).await;
    assert!(early.versions[0].records.iter().all(|r| r.seq.is_none()));
    let out = verify(&early);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).0.contains("was not sealed when the document was made"), "{:?}", text(&out));

    chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    let evidence = exported(pool.clone()).await;
    let [version] = evidence.versions.as_slice() else { panic!("one version sent: {evidence:?}") };
    assert_eq!((version.version, version.campaign.id, version.campaign.recipients), (1, id.as_uuid(), 3));
    let actions: Vec<&str> = version.records.iter().map(|r| r.action.as_str()).collect();
    for needed in ["content.approved", "campaign.launched", "campaign.batch_sent"] {
        assert!(actions.contains(&needed), "{actions:?}");
    }
    let out = verify(&evidence);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(text(&out).0.contains("first-use.json: backed: the first use of 1 version(s)"), "{:?}", text(&out));

    // Each changed claim is caught, with what is wrong.
    type Change = fn(&mut Evidence);
    let changes: [(&str, Change); 5] = [
        ("first message of this version was not sent at", |e| e.versions[0].first_sent_at -= Duration::days(1)),
        ("is not the exported text and hash", |e| e.versions[0].body.push_str(" Now with fewer side effects.")),
        ("with that hash", |e| e.versions[0].records[0].hash = Some("00".repeat(32))),
        ("does not say what the document says it does", |e| e.versions[0].records[0].actor_user_id = None),
        ("names no content.approved record", |e| e.versions[0].records.retain(|r| r.action != "content.approved")),
    ];
    for (problem, change) in changes {
        let mut changed = evidence.clone();
        change(&mut changed);
        let out = verify(&changed);
        assert_eq!(out.status.code(), Some(2), "{problem}: {:?}", text(&out));
        assert!(text(&out).0.contains(problem), "{problem}: {:?}", text(&out));
    }
}
