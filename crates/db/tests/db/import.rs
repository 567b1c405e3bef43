//! Importing contacts from CSV as a job, as `app_user`: valid rows become contacts with their
//! attributes and consent, the others are reported by row, column and reason; suppressed
//! addresses are imported without consent; the import leaves one audit record; and an import
//! whose runner dies mid-way resumes after its last committed batch without importing any row
//! twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mos_auth::AddressKeys;
use mos_db::audiences::import::{self, Mapping, Provenance, Target, Upload, BATCH_ROWS, IMPORT_JOB};
use mos_db::audiences::{attributes, export};
use mos_db::audiences::{purposes, suppression};
use mos_db::jobs::runner::{Runner, RunnerConfig, Running, Work};
use mos_db::jobs::{self, JobState};
use mos_db::testing::TestDb;
use mos_db::AppPool;
use mos_domain::audiences::{AddressKeyer, AttributeKind, AttributeName, NoticeText, SuppressionReason};
use mos_domain::{merkle, Email, ImportId, JobId, OrgId, RequestSource, UserId};

use crate::{new_org, new_user};

fn keys() -> Arc<AddressKeys> {
    Arc::new(AddressKeys::derive(b"the server's configured secret"))
}

fn runner(pool: &AppPool, lease: Duration) -> Running {
    let keys = keys();
    let config = RunnerConfig { workers: 1, lease, poll: Duration::from_millis(20), ..RunnerConfig::default() };
    Runner::new(pool.clone(), config)
        .handle(
            IMPORT_JOB,
            Arc::new(move |work: Work| {
                let keys: Arc<dyn AddressKeyer> = keys.clone();
                Box::pin(import::run(work, keys))
            }),
        )
        .start()
}

struct Org {
    pool: AppPool,
    org: OrgId,
    admin: UserId,
}

async fn org(db: &TestDb) -> Org {
    let pool = db.app_pool(8).await;
    let admin = new_user(&pool, "admin@clinic.example").await;
    let org = new_org(&pool, "clinic", admin).await;
    Org { pool, org, admin }
}

/// Uploads `bytes` in pieces of odd sizes, as a streamed body arrives.
async fn upload(o: &Org, bytes: &[u8]) -> ImportId {
    let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let id = import::create(&mut tx, "patients.csv", o.admin, Utc::now()).await.unwrap();
    let mut up = Upload::new(id);
    for piece in bytes.chunks(7919) {
        up.push(&mut tx, piece).await.unwrap();
    }
    up.finish(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn start(o: &Org, id: ImportId, mapping: Mapping, provenance: Option<&Provenance>) -> JobId {
    let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let job = import::start(&mut tx, id, &mapping, provenance, Utc::now()).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    job
}

async fn job(o: &Org, id: JobId) -> jobs::Job {
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let job = jobs::get(&mut tx, id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    job
}

async fn until_finished(o: &Org, id: JobId) -> jobs::Job {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let job = job(o, id).await;
        if job.state.is_finished() {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "the import did not finish: {job:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn scalar(o: &Org, sql: &str) -> i64 {
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).bind(o.org.as_uuid()).fetch_one(tx.conn()).await.unwrap();
    tx.commit().await.unwrap();
    n
}

async fn purpose_with_notice(o: &Org) -> Provenance {
    let src = RequestSource::default();
    let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let purpose = purposes::create(&mut tx, "Newsletter", false, o.admin, Utc::now(), &src).await.unwrap();
    let text = NoticeText::parse("We send a monthly newsletter.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &text, o.admin, Utc::now(), &src).await.unwrap();
    tx.commit().await.unwrap();
    Provenance {
        purpose,
        exemption: None,
        notice_sha256: hex::encode(notice.as_bytes()),
        description: "Sign-up sheet at the front desk, 2025".into(),
    }
}

#[tokio::test]
async fn an_import_adds_the_valid_rows_reports_the_others_by_row_and_column_and_leaves_one_audit_record() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let src = RequestSource::default();
    let provenance = purpose_with_notice(&o).await;
    let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let visits = AttributeName::parse("visits").unwrap();
    attributes::define(&mut tx, &visits, &AttributeKind::Number, o.admin, Utc::now(), &src).await.unwrap();
    mos_db::audiences::contacts::create(
        &mut tx,
        keys().as_ref(),
        &Email::parse("known@patients.example").unwrap(),
        &Default::default(),
        Some(o.admin),
        Utc::now(),
        &src,
    )
    .await
    .unwrap();
    let gone = Email::parse("gone@patients.example").unwrap();
    suppression::suppress(&mut tx, keys().as_ref(), &gone, SuppressionReason::Unsubscribe, None, Utc::now(), &src)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A BOM, semicolons, a quoted field with the delimiter and a line break in it.
    let csv = "\u{FEFF}E-mail;Name;Visits;Tags;Notes\n\
               ada@patients.example;\"Lovelace; Ada\";3;vip|flu;x\n\
               not-an-address;Bob;2;;\n\
               cleo@patients.example;Cleo;many;;\n\
               known@patients.example;Known;1;;\n\
               gone@patients.example;Gone;1;;\n\
               ADA@patients.example;Ada again;1;;\n\
               dan@patients.example;Dan;;;\"a note\nover two lines\"\n";
    let id = upload(&o, csv.as_bytes()).await;
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let preview = import::preview(&mut tx, id, 5).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (preview.delimiter, preview.header.clone()),
        (b';', vec!["E-mail", "Name", "Visits", "Tags", "Notes"].into_iter().map(String::from).collect())
    );
    assert_eq!(preview.rows[0][1], "Lovelace; Ada");

    let mapping = vec![
        Some(Target::Address),
        Some(Target::Name),
        Some(Target::Attribute("visits".into())),
        Some(Target::Tags),
        None,
    ];
    let job_id = start(&o, id, mapping, Some(&provenance)).await;
    let running = runner(&o.pool, Duration::from_secs(60));
    let job = until_finished(&o, job_id).await;
    running.shutdown().await;

    assert_eq!((job.state, job.done, job.errors), (JobState::Succeeded, 7, 2));
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let problems: Vec<(i64, String, String)> = import::problems(&mut tx, id, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.row_number, p.column_name, p.reason))
        .collect();
    let summary = import::get(&mut tx, id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        problems,
        vec![
            (3, "E-mail".into(), "not an email address".into()),
            (4, "Visits".into(), "not a number".into()),
            (5, "address".into(), "already a contact: left unchanged".into()),
            (6, "address".into(), "suppressed: imported without consent".into()),
            (7, "address".into(), "same address as row 2".into()),
        ]
    );
    assert_eq!((summary.imported, summary.existing, summary.suppressed, summary.invalid), (3, 1, 1, 2));
    // Seven rows after the header, one of them over two lines inside quotes: the job's total.
    assert_eq!((summary.rows, job.total), (Some(7), Some(7)));
    let org = "organization_id = $1";
    assert_eq!(scalar(&o, &format!("select count(*) from app.contacts where {org}")).await, 4);
    assert_eq!(
        scalar(
            &o,
            &format!(
                "select count(*) from app.contacts where {org} and name = 'Lovelace; Ada' and tags = '{{vip,flu}}'"
            )
        )
        .await,
        1
    );
    assert_eq!(scalar(&o, &format!("select count(*) from app.contacts where {org} and name = 'Dan'")).await, 1);
    assert_eq!(
        scalar(&o, &format!("select count(*) from app.contact_attribute_values where {org} and number_value = 3"))
            .await,
        1
    );
    // Consent for the three new addresses that are not suppressed, each naming the job and row.
    assert_eq!(
        scalar(
            &o,
            &format!(
                "select count(*) from app.consent_events where {org} and source = 'import' and import_job = '{job_id}'
                   and import_row in (2, 8) and recorded_by is not null"
            )
        )
        .await,
        2
    );
    assert_eq!(scalar(&o, &format!("select count(*) from app.consent_events where {org}")).await, 2);
    assert_eq!(
        scalar(&o, &format!("select count(*) from app.audit_logs where {org} and action = 'contacts.imported'")).await,
        1
    );
    let meta = scalar(
        &o,
        &format!(
            "select count(*) from app.audit_logs where {org} and action = 'contacts.imported'
               and metadata->>'file_sha256' = '{}' and (metadata->>'imported')::int = 3
               and metadata::text not like '%patients.example%'",
            hex::encode(summary.file_sha256.unwrap())
        ),
    )
    .await;
    assert_eq!(meta, 1, "the audit record names the file's hash and the counts, and no address");
    // The batch's grants: one record whose Merkle root is that of the ledger's events as
    // stored, in row order (a root computed when writing from values other than those stored
    // would differ), and that names no address.
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let (root, first, last, events): (String, i64, i64, i64) = sqlx::query_as(
        "select metadata->>'merkle_root', (metadata->>'first_row')::bigint, (metadata->>'last_row')::bigint,
                (metadata->>'events')::bigint
           from app.audit_logs
          where organization_id = $1 and action = 'consent.imported' and resource_id = $2
            and metadata::text not like '%patients.example%'",
    )
    .bind(o.org.as_uuid())
    .bind(id.to_string())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let stored = export::batch_events(&mut tx, job_id.as_uuid(), first, last).await.unwrap();
    // A receipt of the contact of row 8 finds that record and proves the grant's place in it.
    let contact = mos_domain::ContactId::from_uuid(stored[1].contact_id).unwrap();
    let receipt = export::receipt(&mut tx, contact, Utc::now(), o.admin, &src, export::RECEIPT_MAX_RECORDS)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .receipt;
    let proof = &receipt.proofs[&stored[1].id];
    assert_eq!((proof.index, proof.size, proof.path.len()), (1, 2, 1));
    tx.commit().await.unwrap();
    let leaves: Vec<_> = stored.iter().map(|e| export::import_leaf(e).unwrap()).collect();
    assert_eq!((first, last, events), (2, 8, 2));
    assert_eq!(root, hex::encode(merkle::root(&leaves)));
}

#[tokio::test]
async fn an_import_whose_runner_dies_mid_way_resumes_after_its_last_batch_and_imports_no_row_twice() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let rows = BATCH_ROWS * 8 + 17;
    let mut csv = String::from("email,name\n");
    for i in 0..rows {
        csv.push_str(&format!("person{i}@patients.example,Person {i}\n"));
    }
    let provenance = purpose_with_notice(&o).await;
    let id = upload(&o, csv.as_bytes()).await;
    let job_id = start(&o, id, vec![Some(Target::Address), Some(Target::Name)], Some(&provenance)).await;
    let lease = Duration::from_secs(2);

    // The first runner stands for another process: it has connections of its own, which die
    // with it.
    let first = runner(&db.app_pool(2).await, lease);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while job(&o, job_id).await.done == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no batch was committed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Dropping the runner aborts its tasks mid-batch, as a killed process would: no release,
    // no heartbeat any more; the lease runs out and another runner takes over.
    drop(first);
    let at_kill = job(&o, job_id).await;
    assert!(at_kill.done < rows as i64, "the runner must die mid-way: {at_kill:?}");

    let second = runner(&o.pool, lease);
    let finished = until_finished(&o, job_id).await;
    second.shutdown().await;

    assert_eq!((finished.state, finished.done, finished.attempts), (JobState::Succeeded, rows as i64, 2));
    let org = "organization_id = $1";
    assert_eq!(scalar(&o, &format!("select count(*) from app.contacts where {org}")).await, rows as i64);
    assert_eq!(scalar(&o, &format!("select count(*) from app.consent_events where {org}")).await, rows as i64);
    assert_eq!(
        scalar(&o, &format!("select count(distinct import_row) from app.consent_events where {org}")).await,
        rows as i64
    );
    assert_eq!(scalar(&o, &format!("select count(*) from app.contact_import_problems where {org}")).await, 0);
    assert_eq!(
        scalar(&o, &format!("select count(*) from app.audit_logs where {org} and action = 'contacts.imported'")).await,
        1
    );
    let mut tx = o.pool.begin_tenant(o.org, None).await.unwrap();
    let summary = import::get(&mut tx, id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(summary.imported, rows as i64);
}

#[tokio::test]
async fn without_a_provenance_contacts_are_imported_without_consent() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let id = upload(&o, b"email\r\nada@patients.example\r\nbob@patients.example\r\n").await;
    let job_id = start(&o, id, vec![Some(Target::Address)], None).await;
    let running = runner(&o.pool, Duration::from_secs(60));
    assert_eq!(until_finished(&o, job_id).await.state, JobState::Succeeded);
    running.shutdown().await;
    assert_eq!(scalar(&o, "select count(*) from app.contacts where organization_id = $1").await, 2);
    assert_eq!(scalar(&o, "select count(*) from app.consent_events where organization_id = $1").await, 0);
}

/// A small deterministic generator, seeded per run and printed, so that a failing mix can be
/// replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

/// The rows of the state beside the ledger that the view derived from the ledger does not
/// have, and the view's that the state does not, as seen by `app_user` in the tenant.
async fn state_differences(o: &Org) -> (i64, i64) {
    let columns = "organization_id, purpose_id, contact_id, seq, kind, source, expires_at";
    let state = format!("select {columns} from app.consent_state where organization_id = $1");
    let derived = format!("select {columns} from app.consent_current where organization_id = $1");
    (
        scalar(o, &format!("select count(*) from ({state} except {derived}) d")).await,
        scalar(o, &format!("select count(*) from ({derived} except {state}) d")).await,
    )
}

#[tokio::test]
async fn the_consent_state_beside_the_ledger_is_what_the_ledger_derives_after_a_random_mix_of_events() {
    use mos_db::audiences::consent::{self, Basis, Record};
    use mos_db::audiences::contacts;
    use mos_domain::audiences::ConsentKind;

    let db = TestDb::new().await;
    let o = org(&db).await;
    let src = RequestSource::default();
    let provenance = purpose_with_notice(&o).await;
    let notice = mos_domain::content::ContentHash::try_from(hex::decode(&provenance.notice_sha256).unwrap()).unwrap();
    let seed = Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64;
    println!("seed {seed}");
    let mut rng = Lcg(seed);
    let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
    let reminders = purposes::create(&mut tx, "Reminders", false, o.admin, Utc::now(), &src).await.unwrap();
    // The same text as the newsletter's notice, so the same hash names both.
    let text = NoticeText::parse("We send a monthly newsletter.").unwrap();
    assert_eq!(purposes::publish_notice(&mut tx, reminders, &text, o.admin, Utc::now(), &src).await.unwrap(), notice);
    let mut people = Vec::new();
    for i in 0..10 {
        let address = Email::parse(&format!("p{i}@patients.example")).unwrap();
        let id = mos_db::audiences::contacts::create(
            &mut tx,
            keys().as_ref(),
            &address,
            &Default::default(),
            Some(o.admin),
            Utc::now(),
            &src,
        )
        .await
        .unwrap();
        people.push(id);
    }
    tx.commit().await.unwrap();
    let hipaa = |days: i64| Basis::HipaaAuthorization {
        elements: serde_json::json!({"information": "reminders", "disclosers": "the clinic", "recipients": "the clinic",
            "purpose": "marketing", "signature": "P", "signed_on": "2026-01-01", "right_to_revoke": true,
            "conditioning": false, "redisclosure": true}),
        expires_at: Some(Utc::now() + chrono::Duration::days(days)),
    };
    let running = runner(&o.pool, Duration::from_secs(60));
    let mut imports = 0;
    for step in 0..120 {
        let contact = people[rng.below(people.len())];
        let purpose = if rng.below(2) == 0 { provenance.purpose } else { reminders };
        let by = consent::Provenance::Console { by: o.admin };
        // The first nine steps take each action once, so that every run covers them all.
        let action = if step < 9 { step } else { rng.below(9) };
        let (kind, basis, via) = match action {
            0 => (ConsentKind::Grant, Some(Basis::Consent), by),
            1 => (ConsentKind::Grant, Some(hipaa(-1)), by),
            2 => (ConsentKind::Grant, Some(hipaa(30)), by),
            3 => (ConsentKind::Grant, Some(Basis::Consent), consent::Provenance::SignupForm),
            4 => (ConsentKind::Confirm, None, consent::Provenance::SignupForm),
            5 => (ConsentKind::Revoke, None, by),
            6 => (ConsentKind::Expire, None, by),
            // Erasure, rarer than the rest so that most contacts live through the mix: the
            // contact's events stay in the ledger, and so does its state.
            7 if step < 9 || rng.below(4) == 0 => {
                let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
                contacts::erase(&mut tx, contact, o.admin, Utc::now(), &src).await.unwrap();
                tx.commit().await.unwrap();
                continue;
            }
            7 => (ConsentKind::Grant, Some(Basis::Consent), consent::Provenance::Api { by: o.admin }),
            _ => {
                // An import of two new addresses and one that is already a contact.
                imports += 1;
                let csv =
                    format!("email\nnew{step}a@patients.example\nnew{step}b@patients.example\np0@patients.example\n");
                let id = upload(&o, csv.as_bytes()).await;
                let job_id = start(&o, id, vec![Some(Target::Address)], Some(&provenance)).await;
                assert_eq!(until_finished(&o, job_id).await.state, JobState::Succeeded);
                continue;
            }
        };
        // A step that the ledger refuses (a confirmation without a pending sign-up, anything for
        // an erased contact) is rolled back with its transaction; the state must not move.
        let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
        let record = Record {
            contact,
            purpose,
            kind,
            basis: basis.as_ref(),
            notice: basis.as_ref().map(|_| notice),
            provenance: via,
            evidence: None,
            now: Utc::now(),
        };
        if consent::append(&mut tx, &record, &src).await.is_ok() {
            // Half the sign-ups are confirmed at once, as a person clicking the mailed link.
            if kind == ConsentKind::Grant
                && matches!(via, consent::Provenance::SignupForm)
                && (step < 9 || rng.below(2) == 0)
            {
                let confirm = Record { kind: ConsentKind::Confirm, basis: None, notice: None, ..record };
                consent::append(&mut tx, &confirm, &src).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
    running.shutdown().await;
    // And an authorization that has expired by now is the last event of a live contact.
    let mut expired = false;
    for contact in &people {
        let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
        let basis = hipaa(-1);
        let record = Record {
            contact: *contact,
            purpose: reminders,
            kind: ConsentKind::Grant,
            basis: Some(&basis),
            notice: Some(notice),
            provenance: consent::Provenance::Console { by: o.admin },
            evidence: None,
            now: Utc::now(),
        };
        if consent::append(&mut tx, &record, &src).await.is_ok() {
            tx.commit().await.unwrap();
            expired = true;
            break;
        }
    }
    assert!(expired, "seed {seed}: some contact outlived the mix");

    assert_eq!(state_differences(&o).await, (0, 0), "seed {seed}");
    // The mix reached every kind of event, an import, an erasure and an expired authorization.
    let kinds =
        scalar(&o, "select count(distinct (kind, source)) from app.consent_events where organization_id = $1").await;
    assert!(kinds >= 6, "seed {seed}: {kinds} kinds and sources of event");
    assert!(imports > 0, "seed {seed}");
    assert!(
        scalar(&o, "select count(*) from app.contacts where organization_id = $1 and erased_at is not null").await > 0
    );
    assert!(
        scalar(&o, "select count(*) from app.consent_state where organization_id = $1 and expires_at < now()").await
            > 0,
        "seed {seed}"
    );
    assert!(scalar(&o, "select count(*) from app.consent_state where organization_id = $1").await >= 10);
}

#[tokio::test]
async fn app_user_cannot_write_the_consent_state_itself() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let provenance = purpose_with_notice(&o).await;
    let id = upload(&o, b"email\nada@patients.example\n").await;
    let job_id = start(&o, id, vec![Some(Target::Address)], Some(&provenance)).await;
    let running = runner(&o.pool, Duration::from_secs(60));
    assert_eq!(until_finished(&o, job_id).await.state, JobState::Succeeded);
    running.shutdown().await;
    assert_eq!(
        scalar(&o, "select count(*) from app.consent_state where organization_id = $1 and kind = 'grant'").await,
        1
    );

    let forged = [
        "update app.consent_state set kind = 'grant', source = 'api', expires_at = null",
        "delete from app.consent_state",
        "insert into app.consent_state (organization_id, purpose_id, contact_id, seq, kind, source)
         select organization_id, purpose_id, contact_id, seq + 1, 'revoke', 'api' from app.consent_state",
        "truncate app.consent_state",
    ];
    for sql in forged {
        let mut tx = o.pool.begin_tenant(o.org, Some(o.admin)).await.unwrap();
        let err = sqlx::raw_sql(sql).execute(tx.conn()).await.expect_err(sql);
        let code = err.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
    }
    assert_eq!(state_differences(&o).await, (0, 0), "the state is still the ledger's");
}
