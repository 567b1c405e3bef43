//! Contacts, attributes, purposes, notices, the consent ledger and suppressions, attacked as
//! `app_user` (and as the owner where the owner's powers matter).

use chrono::{DateTime, Utc};
use mos_auth::AddressKeys;
use mos_db::audiences::attributes::{self, Value};
use mos_db::audiences::consent::{self, Basis, Evidence, Provenance, Record};
use mos_db::audiences::unsubscribe::{self, Change, Intent};
use mos_db::audiences::{contacts, purposes, suppression};
use mos_db::testing::{Backend, TestDb};
use mos_db::{chain, AppPool, DbError, TenantTx};
use mos_domain::audiences::{
    AddressKeyer, AttributeKind, AttributeName, ConsentKind, ConsentState, NoticeText, SuppressionReason,
};
use mos_domain::content::ContentHash;
use mos_domain::{AttributeId, ContactId, Email, OrgId, PurposeId, RequestSource, UserId};
use serde_json::json;
use sqlx::PgConnection;

use crate::{new_org, new_user};

/// Every table of the feature.
const TABLES: [&str; 10] = [
    "app.contacts",
    "app.contact_attributes",
    "app.contact_attribute_choices",
    "app.contact_attribute_values",
    "app.purposes",
    "app.notices",
    "app.consent_events",
    "app.consent_state",
    "app.consent_evidence",
    "app.suppressions",
];

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn src() -> RequestSource {
    RequestSource::default()
}

/// The server's address keys, derived from a configured secret as `Sealer::address_keys` does.
fn keys() -> AddressKeys {
    AddressKeys::derive(b"the server's configured secret")
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// One organization's audience: a contact with a value for each of two attributes, a purpose
/// with a notice, and a consent grant with evidence.
struct Audience {
    org: OrgId,
    admin: UserId,
    contact: ContactId,
    plan: AttributeId,
    tier: AttributeId,
    purpose: PurposeId,
    notice: ContentHash,
}

async fn audience(pool: &AppPool, slug: &str) -> Audience {
    let admin = new_user(pool, &format!("admin@{slug}.example")).await;
    let org = new_org(pool, slug, admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let tags = vec!["vip".to_owned()];
    let new = contacts::NewContact {
        name: Some("Ada"),
        locale: Some("en-GB"),
        time_zone: Some("Europe/London"),
        tags: &tags,
    };
    let contact = contacts::create(&mut tx, &keys(), &email("ada@patients.example"), &new, Some(admin), now(), &src())
        .await
        .unwrap();
    let plan_name = AttributeName::parse("plan").unwrap();
    let plan =
        attributes::define(&mut tx, &plan_name, &AttributeKind::text(10).unwrap(), admin, now(), &src()).await.unwrap();
    let tier_name = AttributeName::parse("tier").unwrap();
    let tier_kind = AttributeKind::choice(&["gold", "silver"]).unwrap();
    let tier = attributes::define(&mut tx, &tier_name, &tier_kind, admin, now(), &src()).await.unwrap();
    attributes::set(&mut tx, contact, plan, &Value::Text("basic".into())).await.unwrap();
    attributes::set(&mut tx, contact, tier, &Value::Choice("gold".into())).await.unwrap();
    let purpose = purposes::create(&mut tx, "Newsletter", false, admin, now(), &src()).await.unwrap();
    let text = NoticeText::parse("We will send you our monthly newsletter.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &text, admin, now(), &src()).await.unwrap();
    let evidence = Evidence { ip: Some("192.0.2.7".parse().unwrap()), user_agent: Some("Mozilla/5.0".into()) };
    let record = Record {
        contact,
        purpose,
        kind: ConsentKind::Grant,
        basis: Some(&Basis::Consent),
        notice: Some(notice),
        provenance: Provenance::Api { by: admin },
        evidence: Some(&evidence),
        now: now(),
    };
    consent::append(&mut tx, &record, &src()).await.unwrap();
    suppression::suppress(
        &mut tx,
        &keys(),
        &email("gone@patients.example"),
        SuppressionReason::Complaint,
        Some(admin),
        now(),
        &src(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    Audience { org, admin, contact, plan, tier, purpose, notice }
}

fn grant<'a>(a: &Audience, contact: ContactId, provenance: Provenance, basis: &'a Basis) -> Record<'a> {
    Record {
        contact,
        purpose: a.purpose,
        kind: ConsentKind::Grant,
        basis: Some(basis),
        notice: Some(a.notice),
        provenance,
        evidence: None,
        now: now(),
    }
}

fn invalid(result: Result<impl std::fmt::Debug, DbError>) -> String {
    match result {
        Err(DbError::Invalid { constraint }) => constraint,
        other => panic!("expected a refusal by a constraint, got {other:?}"),
    }
}

async fn rows(su: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(su).await.unwrap()
}

/// Runs `sql` in a savepoint and answers its SQLSTATE, or "ok:<rows>" when it ran.
async fn attempt(conn: &mut PgConnection, sql: &str, bind: Option<serde_json::Value>) -> String {
    sqlx::raw_sql("savepoint attempt").execute(&mut *conn).await.unwrap();
    let query = sqlx::query(sql);
    let query = match bind {
        Some(value) => query.bind(value),
        None => query,
    };
    let answer = match query.execute(&mut *conn).await {
        Ok(done) => format!("ok:{}", done.rows_affected()),
        Err(e) => e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()).unwrap_or_else(|| e.to_string()),
    };
    sqlx::raw_sql("rollback to savepoint attempt").execute(&mut *conn).await.unwrap();
    answer
}

/// Inserts one event by hand, past the repository, as `app_user` in a savepoint: `kind` and
/// `source` as the ledger spells them, with the audience's purpose and notice and the basis
/// `consent` for a grant or confirmation. Answers the rule that refused it, or "ok" (and keeps
/// the event).
async fn raw_event(
    conn: &mut PgConnection,
    a: &Audience,
    contact: ContactId,
    seq: i32,
    kind: &str,
    source: &str,
) -> String {
    sqlx::raw_sql("savepoint raw").execute(&mut *conn).await.unwrap();
    let done = sqlx::query(
        "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                         source, notice_sha256, recorded_by, created_at)
         values ($1, $2, $3, $4, $5, 'email', $6::text::app.consent_kind,
                 case when $6 in ('grant', 'confirm') then 'consent'::app.lawful_basis end,
                 $7::text::app.consent_source, case when $6 in ('grant', 'confirm') then $8::bytea end,
                 case when $7 <> 'signup_form' then $9::uuid end, now())",
    )
    .bind(a.org.as_uuid())
    .bind(contact.as_uuid())
    .bind(a.purpose.as_uuid())
    .bind(seq)
    .bind(uuid::Uuid::now_v7())
    .bind(kind)
    .bind(source)
    .bind(a.notice.as_bytes())
    .bind(a.admin.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(DbError::from);
    let (answer, end) = match done {
        Ok(_) => ("ok".to_owned(), "release savepoint raw"),
        Err(DbError::Invalid { constraint }) => (constraint, "rollback to savepoint raw"),
        Err(other) => (format!("{other:?}"), "rollback to savepoint raw"),
    };
    sqlx::raw_sql(end).execute(&mut *conn).await.unwrap();
    answer
}

/// Runs `sql` in a savepoint that is rolled back, and answers the rule (constraint) that
/// refused it, or "ok:<rows>".
async fn refusal(conn: &mut PgConnection, sql: &str) -> String {
    sqlx::raw_sql("savepoint refusal").execute(&mut *conn).await.unwrap();
    let answer = match sqlx::raw_sql(sql).execute(&mut *conn).await.map_err(DbError::from) {
        Ok(done) => format!("ok:{}", done.rows_affected()),
        Err(DbError::Invalid { constraint }) => constraint,
        Err(other) => format!("{other:?}"),
    };
    sqlx::raw_sql("rollback to savepoint refusal").execute(&mut *conn).await.unwrap();
    answer
}

/// Tries to read, insert a copy of tenant A's row, update and delete every table: nothing
/// may be seen, and nothing may change.
async fn attack_every_table(conn: &mut PgConnection, su: &mut PgConnection, a: OrgId, context: &str) {
    for table in TABLES {
        let row: serde_json::Value =
            sqlx::query_scalar(&format!("select to_jsonb(t) from {table} t where organization_id = $1 limit 1"))
                .bind(a.as_uuid())
                .fetch_one(&mut *su)
                .await
                .unwrap_or_else(|e| panic!("{table} has a row of tenant A: {e}"));
        let mine = format!("where organization_id = '{a}'");
        let read = attempt(conn, &format!("select * from {table} {mine}"), None).await;
        assert!(read == "ok:0" || read == "42501", "{context}: {table} read: {read}");
        let insert = attempt(
            conn,
            // VALUES, not INSERT .. SELECT: Citus would run a SELECT that reads no table as a
            // COPY and refuse that before row-level security has its say.
            &format!("insert into {table} values ((jsonb_populate_record(null::{table}, $1)).*)"),
            Some(row),
        )
        .await;
        assert_eq!(insert, "42501", "{context}: {table} insert of tenant A's row");
        let update = attempt(conn, &format!("update {table} set organization_id = organization_id {mine}"), None).await;
        assert!(update == "ok:0" || update == "42501", "{context}: {table} update: {update}");
        let delete = attempt(conn, &format!("delete from {table} {mine}"), None).await;
        assert!(delete == "ok:0" || delete == "42501", "{context}: {table} delete: {delete}");
    }
}

#[tokio::test]
async fn no_tenant_reads_or_changes_another_tenants_contacts_consent_or_suppressions() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "tenant-a").await;
    let b = audience(&pool, "tenant-b").await;
    let mut su = db.superuser().await;
    let before: Vec<i64> = {
        let mut counts = Vec::new();
        for table in TABLES {
            counts.push(rows(&mut su, table).await);
        }
        counts
    };
    assert!(before.iter().all(|n| *n >= 2), "both tenants have rows everywhere: {before:?}");

    let mut tx = pool.begin_tenant(b.org, Some(b.admin)).await.unwrap();
    attack_every_table(tx.conn(), &mut su, a.org, "as tenant B").await;
    let seen: i64 = sqlx::query_scalar("select count(*) from app.consent_current where organization_id = $1")
        .bind(a.org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(seen, 0, "tenant B sees none of tenant A's consent state");
    drop(tx);

    let mut bare = db.app_user().await;
    sqlx::raw_sql("begin").execute(&mut bare).await.unwrap();
    attack_every_table(&mut bare, &mut su, a.org, "without a tenant").await;
    sqlx::raw_sql("rollback").execute(&mut bare).await.unwrap();

    for (table, was) in TABLES.iter().zip(before) {
        assert_eq!(rows(&mut su, table).await, was, "{table} unchanged");
    }
}

/// UPDATE, DELETE and TRUNCATE on the ledger and the suppressions; the SQLSTATE of each.
async fn tamper(conn: &mut PgConnection) -> Vec<String> {
    let mut codes = Vec::new();
    for table in ["app.consent_events", "app.suppressions"] {
        for sql in [
            format!("update {table} set created_at = created_at"),
            format!("delete from {table}"),
            format!("truncate {table} cascade"),
        ] {
            codes.push(attempt(conn, &sql, None).await);
        }
    }
    codes
}

#[tokio::test]
async fn the_ledger_and_the_suppressions_are_append_only_for_app_user_and_the_owner() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let denied = vec!["42501"; 6];

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(tamper(tx.conn()).await, denied, "app_user");
    drop(tx);

    let mut owner = db.owner().await;
    crate::each(&mut owner, &["begin", &format!("set local app.current_tenant_id = '{}'", a.org)]).await;
    assert_eq!(tamper(&mut owner).await, denied, "the owner");
    sqlx::raw_sql("rollback").execute(&mut owner).await.unwrap();
    // Even with FORCE lifted and the privileges granted back, the ALWAYS triggers hold.
    crate::each(
        &mut owner,
        &[
            "begin",
            "alter table app.consent_events no force row level security",
            "alter table app.suppressions no force row level security",
            "grant update, delete, truncate on app.consent_events, app.suppressions to mos_owner",
            &format!("set local app.current_tenant_id = '{}'", a.org),
        ],
    )
    .await;
    assert_eq!(tamper(&mut owner).await, denied, "the owner with its rights back");
    sqlx::raw_sql("rollback").execute(&mut owner).await.unwrap();

    let mut su = db.superuser().await;
    assert_eq!(rows(&mut su, "app.consent_events").await, 1);
    assert_eq!(rows(&mut su, "app.suppressions").await, 1);
}

#[tokio::test]
async fn the_current_state_is_derived_and_cannot_be_written() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let state = [
        "update app.consent_current set kind = 'revoke'",
        "delete from app.consent_current",
        "insert into app.consent_current (organization_id) values (app.current_tenant_id())",
    ];
    for sql in state {
        // Refused by privilege, or as a view that cannot be written at all.
        let answer = attempt(tx.conn(), sql, None).await;
        assert!(answer == "42501" || answer == "55000", "{sql}: {answer}");
    }
    let current = consent::current(&mut tx, a.contact, a.purpose).await.unwrap().unwrap();
    assert_eq!((current.state, current.seq), (ConsentState::Granted, 1));
}

#[tokio::test]
async fn the_current_state_is_the_latest_event_of_each_contact_and_purpose() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let bea =
        contacts::create(&mut tx, &keys(), &email("bea@patients.example"), &Default::default(), None, now(), &src())
            .await
            .unwrap();
    let steps = [
        (a.contact, ConsentKind::Revoke, Provenance::Console { by: a.admin }, ConsentState::Revoked, 2),
        (a.contact, ConsentKind::Grant, Provenance::SignupForm, ConsentState::Pending, 3),
        (a.contact, ConsentKind::Confirm, Provenance::SignupForm, ConsentState::Granted, 4),
        (bea, ConsentKind::Grant, Provenance::SignupForm, ConsentState::Pending, 1),
        (a.contact, ConsentKind::Expire, Provenance::Api { by: a.admin }, ConsentState::Expired, 5),
    ];
    for (contact, kind, provenance, expected, seq) in steps {
        let basis = (kind == ConsentKind::Grant).then_some(&Basis::Consent);
        let record =
            Record { kind, basis, notice: basis.map(|_| a.notice), ..grant(&a, contact, provenance, &Basis::Consent) };
        let (_, got) = consent::append(&mut tx, &record, &src()).await.unwrap();
        assert_eq!(got, seq);
        let current = consent::current(&mut tx, contact, a.purpose).await.unwrap().unwrap();
        assert_eq!((current.state, current.seq), (expected, seq), "{kind:?}");
    }
    // The view agrees with the history for every contact: its state is that of the last event.
    for contact in [a.contact, bea] {
        let history = consent::history(&mut tx, contact).await.unwrap();
        let last = history.last().unwrap();
        let current = consent::current(&mut tx, contact, a.purpose).await.unwrap().unwrap();
        assert_eq!((current.event_id, current.seq), (last.id, last.seq));
    }
    tx.commit().await.unwrap();
    // A confirmation that follows no pending sign-up is refused.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let confirm = Record {
        kind: ConsentKind::Confirm,
        basis: None,
        ..grant(&a, a.contact, Provenance::SignupForm, &Basis::Consent)
    };
    assert_eq!(invalid(consent::append(&mut tx, &confirm, &src()).await), "consent_events_confirm_pending");
    drop(tx);
    // Each event left an audit record in the same transaction.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from app.audit_logs where organization_id = $1 and resource_type = 'consent'",
    )
    .bind(a.org.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    let events: i64 = sqlx::query_scalar("select count(*) from app.consent_events where organization_id = $1")
        .bind(a.org.as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!((audited, events), (6, 6));
}

#[tokio::test]
async fn a_suppressed_address_gets_consent_again_only_by_the_persons_confirmed_double_opt_in_which_lifts_it() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    // Suppressed before it was ever a contact, spelled differently: one normalised address.
    suppression::suppress(
        &mut tx,
        &keys(),
        &email("Cleo@Patients.Example"),
        SuppressionReason::Unsubscribe,
        None,
        now(),
        &src(),
    )
    .await
    .unwrap();
    let cleo =
        contacts::create(&mut tx, &keys(), &email("cleo@patients.example"), &Default::default(), None, now(), &src())
            .await
            .unwrap();
    tx.commit().await.unwrap();

    let import = Provenance::Import { job: uuid::Uuid::now_v7(), row: 7, by: a.admin };
    for provenance in [import, Provenance::Api { by: a.admin }, Provenance::Console { by: a.admin }] {
        let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
        let refused = consent::append(&mut tx, &grant(&a, cleo, provenance, &Basis::Consent), &src()).await;
        assert_eq!(invalid(refused), "consent_events_suppressed", "{provenance:?}");
    }
    // Not only the repository: the database refuses the same event inserted by hand.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let by_hand = raw_event(tx.conn(), &a, cleo, 1, "grant", "api").await;
    assert_eq!(by_hand, "consent_events_suppressed");
    drop(tx);

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    consent::append(&mut tx, &grant(&a, cleo, Provenance::SignupForm, &Basis::Consent), &src()).await.unwrap();
    assert_eq!(consent::current(&mut tx, cleo, a.purpose).await.unwrap().unwrap().state, ConsentState::Pending);
    let confirm = Record {
        kind: ConsentKind::Confirm,
        basis: None,
        notice: None,
        ..grant(&a, cleo, Provenance::SignupForm, &Basis::Consent)
    };
    consent::append(&mut tx, &confirm, &src()).await.unwrap();
    let current = consent::current(&mut tx, cleo, a.purpose).await.unwrap().unwrap();
    assert_eq!(current.state, ConsentState::Granted);
    assert_eq!(
        current.notice_sha256.as_deref(),
        Some(a.notice.as_bytes()),
        "the confirmation carries the sign-up's notice"
    );
    tx.commit().await.unwrap();

    // The person's own confirmation lifted the unsubscribe: nothing is suppressed now, and the
    // organization may record consent for the address again.
    let cleo_address = email("cleo@patients.example");
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert!(suppression::reasons(&mut tx, &keys(), &cleo_address).await.unwrap().is_empty(), "lifted");
    assert!(consent::is_live(&mut tx, cleo, a.purpose, now()).await.unwrap(), "a sender may write to them again");
    let api = grant(&a, cleo, Provenance::Api { by: a.admin }, &Basis::Consent);
    consent::append(&mut tx, &api, &src()).await.unwrap();
    // Unsubscribing again suppresses again, and the grant is refused again.
    suppression::suppress(&mut tx, &keys(), &cleo_address, SuppressionReason::Unsubscribe, None, now(), &src())
        .await
        .unwrap();
    assert_eq!(suppression::reasons(&mut tx, &keys(), &cleo_address).await.unwrap(), [SuppressionReason::Unsubscribe]);
    assert!(!consent::is_live(&mut tx, cleo, a.purpose, now()).await.unwrap(), "and no longer");
    tx.commit().await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let again = grant(&a, cleo, Provenance::Api { by: a.admin }, &Basis::Consent);
    assert_eq!(invalid(consent::append(&mut tx, &again, &src()).await), "consent_events_suppressed");
}

#[tokio::test]
async fn a_manual_block_stays_after_the_persons_confirmed_double_opt_in() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let address = email("dora@patients.example");
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let dora = contacts::create(&mut tx, &keys(), &address, &Default::default(), None, now(), &src()).await.unwrap();
    for reason in [SuppressionReason::Manual, SuppressionReason::Complaint] {
        suppression::suppress(&mut tx, &keys(), &address, reason, Some(a.admin), now(), &src()).await.unwrap();
    }
    consent::append(&mut tx, &grant(&a, dora, Provenance::SignupForm, &Basis::Consent), &src()).await.unwrap();
    let confirm = Record {
        kind: ConsentKind::Confirm,
        basis: None,
        notice: None,
        ..grant(&a, dora, Provenance::SignupForm, &Basis::Consent)
    };
    consent::append(&mut tx, &confirm, &src()).await.unwrap();
    assert_eq!(
        suppression::reasons(&mut tx, &keys(), &address).await.unwrap(),
        [SuppressionReason::Manual],
        "the complaint is lifted, the organization's own block is not"
    );
    tx.commit().await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let api = grant(&a, dora, Provenance::Api { by: a.admin }, &Basis::Consent);
    assert_eq!(invalid(consent::append(&mut tx, &api, &src()).await), "consent_events_suppressed");
}

/// The person's own double opt-in for `contact` (a sign-up grant, then its confirmation), both
/// at `at`.
async fn signed_up_and_confirmed(tx: &mut TenantTx, a: &Audience, contact: ContactId, at: DateTime<Utc>) {
    let signup = Record { now: at, ..grant(a, contact, Provenance::SignupForm, &Basis::Consent) };
    consent::append(tx, &signup, &src()).await.unwrap();
    let confirm = Record { kind: ConsentKind::Confirm, basis: None, notice: None, ..signup };
    consent::append(tx, &confirm, &src()).await.unwrap();
}

#[tokio::test]
async fn a_suppression_and_a_confirmation_of_the_same_instant_keep_the_suppression() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let address = email("eve@patients.example");
    let at = now();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let eve = contacts::create(&mut tx, &keys(), &address, &Default::default(), None, at, &src()).await.unwrap();
    suppression::suppress(&mut tx, &keys(), &address, SuppressionReason::Unsubscribe, None, at, &src()).await.unwrap();
    signed_up_and_confirmed(&mut tx, &a, eve, at).await;
    tx.commit().await.unwrap();

    // The repository's list and the sender's check keep the entry...
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap(), [SuppressionReason::Unsubscribe]);
    assert!(!consent::is_live(&mut tx, eve, a.purpose, at).await.unwrap());
    // ...and so does the ledger's trigger: the organization may not record consent for it.
    let api = Record { now: at, ..grant(&a, eve, Provenance::Api { by: a.admin }, &Basis::Consent) };
    assert_eq!(invalid(consent::append(&mut tx, &api, &src()).await), "consent_events_suppressed");
    drop(tx);
    // A confirmation a microsecond later lifts it.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    signed_up_and_confirmed(&mut tx, &a, eve, at + chrono::Duration::microseconds(1)).await;
    assert!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_erased_contacts_lifted_suppression_is_in_force_again_for_a_new_contact_of_the_address() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let address = email("fay@patients.example");
    let at = now();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let fay = contacts::create(&mut tx, &keys(), &address, &Default::default(), None, at, &src()).await.unwrap();
    suppression::suppress(&mut tx, &keys(), &address, SuppressionReason::Unsubscribe, None, at, &src()).await.unwrap();
    signed_up_and_confirmed(&mut tx, &a, fay, at + chrono::Duration::seconds(1)).await;
    assert!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap().is_empty(), "lifted by the person");
    assert!(contacts::erase(&mut tx, fay, a.admin, at + chrono::Duration::seconds(2), &src()).await.unwrap());
    tx.commit().await.unwrap();

    // The lift was the erased contact's confirmation, read through its address key, which
    // erasure cleared: the entry is in force again.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap(), [SuppressionReason::Unsubscribe]);
    let again = contacts::create(&mut tx, &keys(), &address, &Default::default(), None, at, &src()).await.unwrap();
    tx.commit().await.unwrap();
    let import = Provenance::Import { job: uuid::Uuid::now_v7(), row: 1, by: a.admin };
    for provenance in [import, Provenance::Api { by: a.admin }] {
        let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
        let refused = consent::append(&mut tx, &grant(&a, again, provenance, &Basis::Consent), &src()).await;
        assert_eq!(invalid(refused), "consent_events_suppressed", "{provenance:?}");
    }
}

#[tokio::test]
async fn the_senders_consent_check_is_live_only_for_granted_or_confirmed_unexpired_unsuppressed_contacts() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let b = audience(&pool, "globex").await;
    let t = now();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert!(consent::is_live(&mut tx, a.contact, a.purpose, t).await.unwrap(), "granted through the API");
    // Nothing recorded, then a sign-up that waits for its confirmation, then the confirmation.
    let bea = contacts::create(&mut tx, &keys(), &email("bea@patients.example"), &Default::default(), None, t, &src())
        .await
        .unwrap();
    assert!(!consent::is_live(&mut tx, bea, a.purpose, t).await.unwrap(), "nothing recorded");
    consent::append(&mut tx, &grant(&a, bea, Provenance::SignupForm, &Basis::Consent), &src()).await.unwrap();
    assert!(!consent::is_live(&mut tx, bea, a.purpose, t).await.unwrap(), "pending");
    let confirm = Record {
        kind: ConsentKind::Confirm,
        basis: None,
        notice: None,
        ..grant(&a, bea, Provenance::SignupForm, &Basis::Consent)
    };
    consent::append(&mut tx, &confirm, &src()).await.unwrap();
    assert!(consent::is_live(&mut tx, bea, a.purpose, t).await.unwrap(), "confirmed");
    // A revocation ends it, and only the latest event counts: a grant after it is live again.
    let revoke = Record {
        kind: ConsentKind::Revoke,
        basis: None,
        notice: None,
        ..grant(&a, bea, Provenance::Console { by: a.admin }, &Basis::Consent)
    };
    consent::append(&mut tx, &revoke, &src()).await.unwrap();
    assert!(!consent::is_live(&mut tx, bea, a.purpose, t).await.unwrap(), "revoked");
    // An authorization is live until its expiry and not at or after it.
    let expires_at = t + chrono::Duration::days(30);
    let elements = json!({"information": "appointment reminders", "disclosers": "the clinic", "recipients": "the clinic",
                          "purpose": "marketing", "signature": "Bea", "signed_on": "2026-01-01", "right_to_revoke": true,
                          "conditioning": false, "redisclosure": true});
    let hipaa = Basis::HipaaAuthorization { elements, expires_at: Some(expires_at) };
    consent::append(&mut tx, &grant(&a, bea, Provenance::Console { by: a.admin }, &hipaa), &src()).await.unwrap();
    let second = chrono::Duration::seconds(1);
    assert!(consent::is_live(&mut tx, bea, a.purpose, expires_at - second).await.unwrap(), "before its expiry");
    assert!(!consent::is_live(&mut tx, bea, a.purpose, expires_at).await.unwrap(), "at its expiry");
    // Another tenant's check never sees this tenant's ledger, even with its ids.
    let mut other = pool.begin_tenant(b.org, Some(b.admin)).await.unwrap();
    assert!(consent::is_live(&mut other, b.contact, b.purpose, t).await.unwrap());
    assert!(!consent::is_live(&mut other, a.contact, a.purpose, t).await.unwrap(), "another tenant's contact");
    drop(other);
    // A suppressed address is not written to, whatever its ledger says; nor an erased contact.
    suppression::suppress(
        &mut tx,
        &keys(),
        &email("ada@patients.example"),
        SuppressionReason::HardBounce,
        None,
        t,
        &src(),
    )
    .await
    .unwrap();
    assert_eq!(consent::current(&mut tx, a.contact, a.purpose).await.unwrap().unwrap().state, ConsentState::Granted);
    assert!(!consent::is_live(&mut tx, a.contact, a.purpose, t).await.unwrap(), "suppressed");
    assert!(contacts::erase(&mut tx, bea, a.admin, t, &src()).await.unwrap());
    assert!(!consent::is_live(&mut tx, bea, a.purpose, expires_at - second).await.unwrap(), "erased");
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn attribute_values_are_checked_against_their_definitions_by_the_database() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let too_long = attributes::set(&mut tx, a.contact, a.plan, &Value::Text("premium plus".into())).await;
    assert_eq!(invalid(too_long), "contact_attribute_values_text_length");
    drop(tx);
    let cases = [
        (a.plan, Value::Number(3.0), "contact_attribute_values_kind_fkey"),
        (a.tier, Value::Choice("bronze".into()), "contact_attribute_values_choice_fkey"),
        (AttributeId::new(), Value::Boolean(true), "contact_attribute_values_kind_fkey"),
    ];
    for (attribute, value, constraint) in cases {
        let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
        assert_eq!(invalid(attributes::set(&mut tx, a.contact, attribute, &value).await), constraint, "{value:?}");
    }

    // By hand, past the repository: a forged length, a value in the wrong column, a kind the
    // attribute does not have.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    sqlx::query("delete from app.contact_attribute_values where organization_id = $1")
        .bind(a.org.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
    let forged = [
        ("'text', 1000, 'a much longer value', null", "contact_attribute_values_length_fkey"),
        ("'text', 10, null, 'gold'", "contact_attribute_values_one_value"),
        // A kind the attribute does not have, whose value is no choice of it either: whichever
        // foreign key is checked first refuses it (Citus checks them in another order).
        ("'choice', null, null, 'gold'", "contact_attribute_values_kind_fkey|contact_attribute_values_choice_fkey"),
    ];
    for (values, constraint) in forged {
        let sql = format!(
            "insert into app.contact_attribute_values
                    (organization_id, contact_id, attribute_id, kind, max_length, text_value, choice_value)
             values ('{}', '{}', '{}', {values})",
            a.org, a.contact, a.plan
        );
        sqlx::raw_sql("savepoint attempt").execute(tx.conn()).await.unwrap();
        let err = sqlx::raw_sql(&sql).execute(tx.conn()).await.map_err(DbError::from);
        let refused_by = invalid(err);
        assert!(constraint.split('|').any(|c| c == refused_by), "{values}: {refused_by}");
        sqlx::raw_sql("rollback to savepoint attempt").execute(tx.conn()).await.unwrap();
    }
    attributes::set(&mut tx, a.contact, a.plan, &Value::Text("premium".into())).await.unwrap();
    let stored: String = sqlx::query_scalar(
        "select text_value from app.contact_attribute_values where organization_id = $1 and contact_id = $2 and attribute_id = $3",
    )
    .bind(a.org.as_uuid())
    .bind(a.contact.as_uuid())
    .bind(a.plan.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(stored, "premium");
}

#[tokio::test]
async fn a_notice_is_named_by_the_hash_of_its_text_and_never_changes() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let same = NoticeText::parse("We will send you our monthly newsletter.\r\n").unwrap();
    assert_eq!(purposes::publish_notice(&mut tx, a.purpose, &same, a.admin, now(), &src()).await.unwrap(), a.notice);
    assert_eq!(
        purposes::notice(&mut tx, a.purpose, &a.notice).await.unwrap().as_deref(),
        Some("We will send you our monthly newsletter.")
    );
    let forged = sqlx::query(
        "insert into app.notices (organization_id, purpose_id, sha256, body, created_by, created_at)
         values ($1, $2, $3, 'Another text', $4, now())",
    )
    .bind(a.org.as_uuid())
    .bind(a.purpose.as_uuid())
    .bind(vec![7u8; 32])
    .bind(a.admin.as_uuid())
    .execute(tx.conn())
    .await
    .map_err(DbError::from);
    assert_eq!(invalid(forged), "notices_sha256");
    drop(tx);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(attempt(tx.conn(), "update app.notices set body = 'changed'", None).await, "42501");
    assert_eq!(attempt(tx.conn(), "delete from app.notices", None).await, "42501");
    // A grant names a notice of its purpose, or none at all.
    let mut unknown = grant(&a, a.contact, Provenance::Api { by: a.admin }, &Basis::Consent);
    unknown.notice = Some(ContentHash([9; 32]));
    assert_eq!(invalid(consent::append(&mut tx, &unknown, &src()).await), "consent_events_notice_fkey");
}

#[tokio::test]
async fn a_purpose_that_needs_a_hipaa_authorization_takes_one_with_its_elements() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let mut a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    a.purpose = purposes::create(&mut tx, "Product information", true, a.admin, now(), &src()).await.unwrap();
    let text = NoticeText::parse("Authorization for marketing communications.").unwrap();
    a.notice = purposes::publish_notice(&mut tx, a.purpose, &text, a.admin, now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    let by = Provenance::Console { by: a.admin };

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let consent_only = consent::append(&mut tx, &grant(&a, a.contact, by, &Basis::Consent), &src()).await;
    assert_eq!(invalid(consent_only), "consent_events_hipaa_required");
    drop(tx);
    let mut elements = json!({
        "information": "name and email address", "disclosers": "Acme Clinic", "recipients": "Acme Clinic",
        "purpose": "product information", "signature": "Ada Lovelace", "signed_on": "2026-12-01",
        "right_to_revoke": true, "conditioning": true, "redisclosure": true
    });
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let no_expiry = Basis::HipaaAuthorization { elements: elements.clone(), expires_at: None };
    assert_eq!(
        invalid(consent::append(&mut tx, &grant(&a, a.contact, by, &no_expiry), &src()).await),
        "consent_events_hipaa"
    );
    drop(tx);
    elements["expiry_event"] = json!("end of the treatment programme");
    let authorized = Basis::HipaaAuthorization { elements, expires_at: None };
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    consent::append(&mut tx, &grant(&a, a.contact, by, &authorized), &src()).await.unwrap();
    let current = consent::current(&mut tx, a.contact, a.purpose).await.unwrap().unwrap();
    assert_eq!((current.state, current.basis.as_deref()), (ConsentState::Granted, Some("hipaa_authorization")));
}

#[tokio::test]
async fn the_address_key_is_the_servers_hmac_and_the_database_holds_no_key() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("select address_key from app.contacts where organization_id = $1 and id = $2")
            .bind(a.org.as_uuid())
            .bind(a.contact.as_uuid())
            .fetch_one(tx.conn())
            .await
            .unwrap();
    let ada = email("ada@patients.example");
    assert_eq!(stored, keys().key(&ada).as_bytes());
    let gone = email("gone@patients.example");
    assert_eq!(suppression::reasons(&mut tx, &keys(), &gone).await.unwrap(), [SuppressionReason::Complaint]);
    // Under another server secret the same address has another key: the entries do not match.
    let other = AddressKeys::derive(b"another secret");
    assert!(suppression::reasons(&mut tx, &other, &gone).await.unwrap().is_empty());
    drop(tx);
    // No column of the schema holds a key to compute them with.
    let mut su = db.superuser().await;
    let keyish: Vec<String> = sqlx::query_scalar(
        "select table_name || '.' || column_name from information_schema.columns
          where table_schema = 'app' and (column_name like '%hmac%' or table_name = 'audience_keys')",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert!(keyish.is_empty(), "{keyish:?}");
}

async fn contact_count(tx: &mut TenantTx, column: &str) -> i64 {
    sqlx::query_scalar(&format!("select count({column}) from app.contacts where organization_id = $1"))
        .bind(tx.org().as_uuid())
        .fetch_one(tx.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn erasing_a_contact_keeps_its_suppression_its_consent_events_and_a_verifying_chain() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let address = email("ada@patients.example");
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let event = consent::history(&mut tx, a.contact).await.unwrap()[0].id;
    assert_eq!(consent::evidence_matches(&mut tx, event).await.unwrap(), Some(true), "the evidence matches its hash");
    suppression::suppress(&mut tx, &keys(), &address, SuppressionReason::Unsubscribe, Some(a.admin), now(), &src())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    chain::seal(&pool, None, chain::WINDOW).await.unwrap();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert!(contacts::erase(&mut tx, a.contact, a.admin, now(), &src()).await.unwrap());
    assert!(!contacts::erase(&mut tx, a.contact, a.admin, now(), &src()).await.unwrap(), "once is enough");
    tx.commit().await.unwrap();
    chain::seal(&pool, None, chain::WINDOW).await.unwrap();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let tombstone = contacts::get(&mut tx, a.contact).await.unwrap().unwrap();
    assert_eq!((tombstone.address, tombstone.name, tombstone.locale, tombstone.time_zone), (None, None, None, None));
    assert!(tombstone.tags.is_empty() && tombstone.erased_at.is_some());
    assert_eq!(consent::evidence_matches(&mut tx, event).await.unwrap(), None, "the evidence is gone");
    assert_eq!(consent::history(&mut tx, a.contact).await.unwrap().len(), 1, "the events stay");
    let values: i64 =
        sqlx::query_scalar("select count(*) from app.contact_attribute_values where organization_id = $1")
            .bind(a.org.as_uuid())
            .fetch_one(tx.conn())
            .await
            .unwrap();
    assert_eq!(values, 0, "the attribute values are gone");
    assert_eq!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap(), [SuppressionReason::Unsubscribe]);
    // Nobody fills the tombstone in again, and nothing is recorded for it.
    let refill =
        sqlx::query("update app.contacts set address = 'ada@patients.example' where organization_id = $1 and id = $2")
            .bind(a.org.as_uuid())
            .bind(a.contact.as_uuid())
            .execute(tx.conn())
            .await
            .map_err(DbError::from);
    assert_eq!(invalid(refill), "contacts_erased_stays");
    drop(tx);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let revoke = Record {
        kind: ConsentKind::Revoke,
        basis: None,
        notice: None,
        ..grant(&a, a.contact, Provenance::Api { by: a.admin }, &Basis::Consent)
    };
    assert_eq!(invalid(consent::append(&mut tx, &revoke, &src()).await), "consent_events_contact_erased");
    drop(tx);

    // The person re-imported: a new contact, the same suppression.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let again =
        contacts::create(&mut tx, &keys(), &address, &Default::default(), Some(a.admin), now(), &src()).await.unwrap();
    let import = Provenance::Import { job: uuid::Uuid::now_v7(), row: 1, by: a.admin };
    assert_eq!(
        invalid(consent::append(&mut tx, &grant(&a, again, import, &Basis::Consent), &src()).await),
        "consent_events_suppressed"
    );
    drop(tx);

    // No personal data of the erased contact is left in its rows, and the chain verifies.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(contact_count(&mut tx, "address").await, 0);
    let leaked: i64 = sqlx::query_scalar(
        "select count(*) from app.audit_logs where organization_id = $1 and (changes::text || metadata::text) like '%ada@%'",
    )
    .bind(a.org.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(leaked, 0, "audit records name contacts by id only");
    let report = chain::verify_tenant(&mut tx, now()).await.unwrap();
    assert!(report.broken.is_none(), "{report:?}");
    assert!(report.records >= 8 && report.pending.0 == 0, "{report:?}");
}

#[tokio::test]
async fn evidence_is_kept_only_beside_its_event_and_goes_only_with_its_contact() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let event = consent::history(&mut tx, a.contact).await.unwrap()[0].id;
    drop(tx);
    let mut su = db.superuser().await;
    sqlx::query("update app.consent_evidence set user_agent = 'curl/8'").execute(&mut su).await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(consent::evidence_matches(&mut tx, event).await.unwrap(), Some(false));
    assert_eq!(attempt(tx.conn(), "update app.consent_evidence set user_agent = 'x'", None).await, "42501");
    // Evidence goes only with its contact's erasure.
    assert_eq!(refusal(tx.conn(), "delete from app.consent_evidence").await, "consent_evidence_erased_only");
    // Evidence its event did not commit to is refused: for an event without any, or another
    // event's evidence put beside an event of another contact.
    let revoke = Record {
        kind: ConsentKind::Revoke,
        basis: None,
        notice: None,
        ..grant(&a, a.contact, Provenance::Api { by: a.admin }, &Basis::Consent)
    };
    let (bare, _) = consent::append(&mut tx, &revoke, &src()).await.unwrap();
    let forged = format!(
        "insert into app.consent_evidence (organization_id, event_id, contact_id, salt, ip)
         values ('{}', '{bare}', '{}', '\\x{}', '192.0.2.7')",
        a.org,
        a.contact,
        "00".repeat(16)
    );
    assert_eq!(refusal(tx.conn(), &forged).await, "consent_evidence_committed");
    let bea =
        contacts::create(&mut tx, &keys(), &email("bea@patients.example"), &Default::default(), None, now(), &src())
            .await
            .unwrap();
    let moved = format!(
        "insert into app.consent_evidence (organization_id, event_id, contact_id, salt, ip, user_agent)
         select organization_id, '{bare}', '{bea}', salt, ip, user_agent from app.consent_evidence
          where organization_id = '{}' and event_id = '{event}'",
        a.org
    );
    assert_eq!(refusal(tx.conn(), &moved).await, "consent_evidence_committed");
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn on_citus_a_contact_its_consent_and_their_audit_records_change_in_one_transaction_on_one_shard() {
    mos_db::testing::requires(Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let admin = new_user(&pool, "admin@acme.example").await;
    let org = new_org(&pool, "acme", admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    // From here on, any statement that needs more than one shard is an error.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    let address = email("ada@patients.example");
    let ada =
        contacts::create(&mut tx, &keys(), &address, &Default::default(), Some(admin), now(), &src()).await.unwrap();
    let plan = attributes::define(
        &mut tx,
        &AttributeName::parse("plan").unwrap(),
        &AttributeKind::choice(&["basic", "plus"]).unwrap(),
        admin,
        now(),
        &src(),
    )
    .await
    .unwrap();
    attributes::set(&mut tx, ada, plan, &Value::Choice("plus".into())).await.unwrap();
    let purpose = purposes::create(&mut tx, "Newsletter", false, admin, now(), &src()).await.unwrap();
    let text = NoticeText::parse("We will send you our monthly newsletter.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &text, admin, now(), &src()).await.unwrap();
    let a = Audience { org, admin, contact: ada, plan, tier: plan, purpose, notice };
    let evidence = Evidence { ip: Some("2001:db8::7".parse().unwrap()), user_agent: Some("Mozilla/5.0".into()) };
    let signup = Record { evidence: Some(&evidence), ..grant(&a, ada, Provenance::SignupForm, &Basis::Consent) };
    let (event, _) = consent::append(&mut tx, &signup, &src()).await.unwrap();
    let confirm = Record { kind: ConsentKind::Confirm, basis: None, notice: None, ..signup };
    consent::append(&mut tx, &confirm, &src()).await.unwrap();
    // Eight more on the same connection: past the fifth run PostgreSQL may plan the triggers'
    // statements generically, which Citus must still route to this one shard.
    let again = grant(&a, ada, Provenance::Api { by: admin }, &Basis::Consent);
    let revoke = Record { kind: ConsentKind::Revoke, basis: None, notice: None, evidence: None, ..again };
    for n in 0..8 {
        consent::append(&mut tx, if n % 2 == 0 { &revoke } else { &again }, &src()).await.unwrap();
    }
    assert_eq!(consent::current(&mut tx, ada, purpose).await.unwrap().unwrap().state, ConsentState::Granted);
    assert_eq!(consent::evidence_matches(&mut tx, event).await.unwrap(), Some(true));
    assert_eq!(consent::history(&mut tx, ada).await.unwrap().len(), 10);
    suppression::suppress(&mut tx, &keys(), &address, SuppressionReason::Unsubscribe, Some(admin), now(), &src())
        .await
        .unwrap();
    let api = grant(&a, ada, Provenance::Api { by: admin }, &Basis::Consent);
    sqlx::raw_sql("savepoint refused").execute(tx.conn()).await.unwrap();
    assert_eq!(invalid(consent::append(&mut tx, &api, &src()).await), "consent_events_suppressed");
    sqlx::raw_sql("rollback to savepoint refused").execute(tx.conn()).await.unwrap();
    assert!(contacts::erase(&mut tx, ada, admin, now(), &src()).await.unwrap());
    assert_eq!(suppression::reasons(&mut tx, &keys(), &address).await.unwrap(), [SuppressionReason::Unsubscribe]);
    tx.commit().await.unwrap();

    chain::seal(&pool, None, chain::WINDOW).await.unwrap();
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    assert_eq!(consent::history(&mut tx, ada).await.unwrap().len(), 10, "the events stay");
    assert_eq!(consent::evidence_matches(&mut tx, event).await.unwrap(), None, "the evidence is gone");
    let report = chain::verify_tenant(&mut tx, now()).await.unwrap();
    assert!(report.broken.is_none() && report.pending.0 == 0, "{report:?}");
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn on_citus_an_unsubscribe_links_reads_and_changes_run_on_one_shard() {
    mos_db::testing::requires(Backend::Citus, "run with MOS_TEST_BACKEND=citus");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let offers = purposes::create(&mut tx, "Offers", false, a.admin, now(), &src()).await.unwrap();
    let text = NoticeText::parse("We will send you our offers.").unwrap();
    let offers_notice = purposes::publish_notice(&mut tx, offers, &text, a.admin, now(), &src()).await.unwrap();
    tx.commit().await.unwrap();

    // As the link's requests run: no member, the tenant the token names.
    let mut tx = pool.begin_tenant(a.org, None).await.unwrap();
    // From here on, any statement that needs more than one shard is an error.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    let person = unsubscribe::person(&mut tx, a.contact, Intent::Change).await.unwrap().unwrap();
    let choices = unsubscribe::choices(&mut tx, a.contact).await.unwrap();
    assert_eq!(
        choices.iter().map(|c| (c.name.as_str(), c.on())).collect::<Vec<_>>(),
        [("Newsletter", true), ("Offers", false)]
    );
    unsubscribe::shown(&mut tx, a.contact, &src()).await.unwrap();
    let evidence = Evidence::default();
    let change =
        Change { contact: a.contact, campaign: uuid::Uuid::now_v7(), evidence: &evidence, now: now(), source: &src() };
    let refused = unsubscribe::set(&mut tx, &person, &[(offers, Some(offers_notice))], &change).await.unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(consent::is_live(&mut tx, a.contact, offers, now()).await.unwrap());
    assert!(!consent::is_live(&mut tx, a.contact, a.purpose, now()).await.unwrap());
    assert!(unsubscribe::unsubscribe(&mut tx, &person, &[a.purpose, offers], &change).await.unwrap());
    assert!(!unsubscribe::unsubscribe(&mut tx, &person, &[a.purpose, offers], &change).await.unwrap(), "nothing new");
    assert!(!consent::is_live(&mut tx, a.contact, offers, now()).await.unwrap());
    assert_eq!(
        suppression::reasons(&mut tx, &keys(), &email("ada@patients.example")).await.unwrap(),
        [SuppressionReason::Unsubscribe]
    );
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn each_rule_of_the_ledger_refuses_an_event_inserted_by_hand() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let dan =
        contacts::create(&mut tx, &keys(), &email("dan@patients.example"), &Default::default(), None, now(), &src())
            .await
            .unwrap();
    let conn = tx.conn();
    // The sequence has no gaps and no two events claim one place.
    assert_eq!(raw_event(conn, &a, dan, 2, "revoke", "api").await, "consent_events_seq");
    assert_eq!(raw_event(conn, &a, dan, 1, "revoke", "api").await, "ok");
    assert!(raw_event(conn, &a, dan, 1, "revoke", "api").await.contains("consent_events_pkey"));
    assert_eq!(raw_event(conn, &a, dan, 3, "revoke", "api").await, "consent_events_seq");
    // A confirmation follows a pending sign-up, nothing else.
    assert_eq!(raw_event(conn, &a, dan, 2, "confirm", "signup_form").await, "consent_events_confirm_pending");
    assert_eq!(raw_event(conn, &a, dan, 2, "grant", "signup_form").await, "ok");
    assert_eq!(raw_event(conn, &a, dan, 3, "confirm", "signup_form").await, "ok");
    assert_eq!(raw_event(conn, &a, dan, 4, "confirm", "signup_form").await, "consent_events_confirm_pending");
    // ... and carries the sign-up's terms: here, another basis than the sign-up's.
    assert_eq!(raw_event(conn, &a, dan, 4, "grant", "signup_form").await, "ok");
    let other_terms = refusal(
        conn,
        &format!(
            "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                             exemption, notice_sha256, source, created_at)
             select organization_id, contact_id, purpose_id, 5, '{}', channel, 'confirm', 'exemption', 'treatment',
                    notice_sha256, source, now()
               from app.consent_events where organization_id = '{}' and contact_id = '{dan}' and seq = 4",
            uuid::Uuid::now_v7(),
            a.org
        ),
    )
    .await;
    assert_eq!(other_terms, "consent_events_confirm_pending");
    assert_eq!(consent::current(&mut tx, dan, a.purpose).await.unwrap().unwrap().state, ConsentState::Pending);

    // Anything for an erased contact.
    assert!(contacts::erase(&mut tx, dan, a.admin, now(), &src()).await.unwrap());
    assert_eq!(raw_event(tx.conn(), &a, dan, 5, "revoke", "api").await, "consent_events_contact_erased");

    // A purpose that needs a HIPAA authorization, granted on consent.
    let purpose = purposes::create(&mut tx, "Product information", true, a.admin, now(), &src()).await.unwrap();
    let text = NoticeText::parse("Authorization for marketing communications.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &text, a.admin, now(), &src()).await.unwrap();
    let hipaa = Audience { purpose, notice, ..a };
    assert_eq!(
        raw_event(tx.conn(), &hipaa, hipaa.contact, 1, "grant", "console").await,
        "consent_events_hipaa_required"
    );
}

/// Adds `n` contacts in one statement, as an import would, and answers their ids.
async fn many_contacts(tx: &mut TenantTx, n: usize) -> Vec<ContactId> {
    let ids: Vec<ContactId> = (0..n).map(|_| ContactId::new()).collect();
    let rows: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let address = email(&format!("p{i}@patients.example"));
            let key = keys().key(&address).to_hex();
            format!("('{}', '{id}', '{}', '\\x{key}', now())", tx.org(), address.as_str())
        })
        .collect();
    let sql = format!(
        "insert into app.contacts (organization_id, id, address, address_key, created_at) values {}",
        rows.join(", ")
    );
    sqlx::raw_sql(&sql).execute(tx.conn()).await.unwrap();
    ids
}

/// Grants `purpose` for every contact of the tenant but `except` and the audience's own (which
/// has its grant already), in one INSERT ..
/// SELECT (each event's id is its contact's: one event per contact here).
async fn grant_all(conn: &mut PgConnection, a: &Audience, source: &str, except: ContactId) -> String {
    let recorded_by = if source == "signup_form" { "null".to_owned() } else { format!("'{}'", a.admin) };
    refusal(
        conn,
        &format!(
            "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                             notice_sha256, source, recorded_by, created_at)
             select c.organization_id, c.id, '{}', 1, c.id, 'email', 'grant', 'consent', '\\x{}', '{source}',
                    {recorded_by}, now()
               from app.contacts c where c.organization_id = '{}' and c.id <> all(array['{}', '{except}']::uuid[])",
            a.purpose, a.notice, a.org, a.contact
        ),
    )
    .await
}

#[tokio::test]
async fn one_insert_of_many_events_is_checked_as_a_whole_and_one_suppressed_address_refuses_it() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let ids = many_contacts(&mut tx, 500).await;
    suppression::suppress(
        &mut tx,
        &keys(),
        &email("p321@patients.example"),
        SuppressionReason::HardBounce,
        None,
        now(),
        &src(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    // From an import, the API or the console, the one suppressed address refuses all 500.
    for source in ["api", "console"] {
        assert_eq!(grant_all(tx.conn(), &a, source, a.contact).await, "consent_events_suppressed", "{source}");
    }
    // The people's own sign-ups are accepted, pending, all of them in one statement.
    assert_eq!(grant_all(tx.conn(), &a, "signup_form", a.contact).await, "ok:500");
    assert_eq!(grant_all(tx.conn(), &a, "api", ids[321]).await, "ok:499");
}

#[tokio::test]
async fn the_consent_of_one_contact_for_one_purpose_is_read_by_one_descent_of_the_ledgers_key() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    for kind in ["revoke", "grant"] {
        let seq = consent::current(&mut tx, a.contact, a.purpose).await.unwrap().unwrap().seq + 1;
        assert_eq!(raw_event(tx.conn(), &a, a.contact, seq, kind, "signup_form").await, "ok");
    }
    // The tables are tiny, so a sequential scan would win; what matters is that the index
    // answers the latest event without a sort (on Citus, on the shard too).
    crate::each(tx.conn(), &["set local citus.propagate_set_commands = 'local'", "set local enable_seqscan = off"])
        .await;
    // What consent::current asks: the view, for one contact and purpose.
    let plan: Vec<String> = sqlx::query_scalar(
        "explain (costs off) select state from app.consent_current
          where organization_id = $1 and contact_id = $2 and purpose_id = $3",
    )
    .bind(a.org.as_uuid())
    .bind(a.contact.as_uuid())
    .bind(a.purpose.as_uuid())
    .fetch_all(tx.conn())
    .await
    .unwrap();
    let plan = plan.join("\n");
    // Either key ordered by seq within a contact and purpose will do: the primary key read
    // backwards, or the current-state index (organization, purpose, contact, seq desc) forwards.
    let by_key = [
        "Index Scan Backward using consent_events_pkey",
        "Index Scan using consent_events_current_idx",
        "Index Only Scan using consent_events_current_idx",
    ];
    assert!(by_key.iter().any(|k| plan.contains(k)), "{plan}");
    assert!(!plan.contains("Sort") && !plan.contains("Bitmap"), "{plan}");
    assert_eq!(consent::current(&mut tx, a.contact, a.purpose).await.unwrap().unwrap().seq, 3);
    // The sender's check: the same descent, then the contact and its suppressions by their keys.
    let plan: Vec<String> = sqlx::query_scalar(&format!("explain (costs off) {}", consent::IS_LIVE))
        .bind(a.org.as_uuid())
        .bind(a.contact.as_uuid())
        .bind(a.purpose.as_uuid())
        .bind(now())
        .fetch_all(tx.conn())
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(by_key.iter().any(|k| plan.contains(k)), "{plan}");
    for key in ["contacts_pkey", "suppressions_pkey"] {
        assert!(plan.contains(key), "{plan}");
    }
    assert!(!plan.contains("Sort") && !plan.contains("Bitmap") && !plan.contains("Seq Scan"), "{plan}");
}

#[tokio::test]
async fn no_attribute_value_is_written_for_an_erased_contact_by_the_repository_or_by_hand() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let a = audience(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert!(contacts::erase(&mut tx, a.contact, a.admin, now(), &src()).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(
        invalid(attributes::set(&mut tx, a.contact, a.plan, &Value::Text("premium".into())).await),
        "contact_attribute_values_contact_erased"
    );
    drop(tx);
    // Past the repository, as app_user: a plain insert among values for a live contact, and an
    // upsert, are refused whole.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let live = contacts::create(
        &mut tx,
        &keys(),
        &email("bob@patients.example"),
        &Default::default(),
        Some(a.admin),
        now(),
        &src(),
    )
    .await
    .unwrap();
    let (org, plan, tier) = (a.org, a.plan, a.tier);
    let insert = format!(
        "insert into app.contact_attribute_values (organization_id, contact_id, attribute_id, kind, max_length, text_value)
         values ('{org}', '{live}', '{plan}', 'text', 10, 'basic'), ('{org}', '{}', '{plan}', 'text', 10, 'basic')",
        a.contact
    );
    assert_eq!(refusal(tx.conn(), &insert).await, "contact_attribute_values_contact_erased");
    let upsert = format!(
        "insert into app.contact_attribute_values (organization_id, contact_id, attribute_id, kind, choice_value)
         values ('{org}', '{}', '{tier}', 'choice', 'gold')
         on conflict (organization_id, contact_id, attribute_id) do update set choice_value = excluded.choice_value",
        a.contact
    );
    assert_eq!(refusal(tx.conn(), &upsert).await, "contact_attribute_values_contact_erased");
    // The live contact still takes its values.
    attributes::set(&mut tx, live, a.plan, &Value::Text("basic".into())).await.unwrap();
    attributes::set(&mut tx, live, a.plan, &Value::Text("premium".into())).await.unwrap();
    let values: i64 = sqlx::query_scalar(
        "select count(*) from app.contact_attribute_values where organization_id = $1 and contact_id = $2",
    )
    .bind(a.org.as_uuid())
    .bind(a.contact.as_uuid())
    .fetch_one(tx.conn())
    .await
    .unwrap();
    assert_eq!(values, 0, "the erased contact has no values");
}
