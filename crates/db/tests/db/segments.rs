//! Segments compiled to SQL, checked against an independent evaluation in Python on random
//! data, and attacked as `app_user`: values and names that look like SQL, another tenant's
//! contacts, rewriting a saved version.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use mos_auth::AddressKeys;
use mos_db::audiences::attributes::{self, Value as AttributeValue};
use mos_db::audiences::consent::{self, Basis, Provenance, Record};
use mos_db::audiences::segments::{self, Member};
use mos_db::audiences::{contacts, purposes, suppression};
use mos_db::testing::{requires, Backend, TestDb};
use mos_db::{AppPool, DbError, TenantTx};
use mos_domain::audiences::{AttributeKind, AttributeName, ConsentKind, NoticeText, SuppressionReason};
use mos_domain::segments::{Catalog, Segment};
use mos_domain::{ContactId, Email, OrgId, PurposeId, RequestSource, UserId};
use serde_json::{json, Value};

use crate::{new_org, new_user, refused_for_privilege};

fn src() -> RequestSource {
    RequestSource::default()
}

/// Runs `tests/data/segments.py`, which draws an audience and definitions from `seed` and
/// computes, on its own, which contacts each definition selects.
fn python_cases(seed: u64, contacts: usize, definitions: usize) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/segments.py");
    let output = std::process::Command::new("python3")
        .args([script, &seed.to_string(), &contacts.to_string(), &definitions.to_string()])
        .output()
        .expect("python3 runs tests/data/segments.py");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the script writes JSON")
}

fn text(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn instant(v: &Value) -> DateTime<Utc> {
    text(v).parse().expect("an RFC 3339 instant")
}

/// An organization loaded with the script's audience through the repository, as `app_user`.
struct Loaded {
    org: OrgId,
    admin: UserId,
    purposes: HashMap<String, PurposeId>,
    contacts: Vec<ContactId>,
}

async fn load(pool: &AppPool, slug: &str, cases: &Value) -> Loaded {
    let admin = new_user(pool, &format!("admin@{slug}.example")).await;
    let org = new_org(pool, slug, admin).await;
    let mut tx = pool.begin_tenant(org, Some(admin)).await.unwrap();
    let now = Utc::now();
    let mut kinds = HashMap::new();
    for a in cases["attributes"].as_array().unwrap() {
        let kind = match text(&a["kind"]) {
            "text" => AttributeKind::text(i32::try_from(a["max_length"].as_i64().unwrap()).unwrap()).unwrap(),
            "number" => AttributeKind::Number,
            "date" => AttributeKind::Date,
            "boolean" => AttributeKind::Boolean,
            _ => {
                let choices: Vec<&str> = a["choices"].as_array().unwrap().iter().map(text).collect();
                AttributeKind::choice(&choices).unwrap()
            }
        };
        let name = AttributeName::parse(text(&a["name"])).unwrap();
        let id = attributes::define(&mut tx, &name, &kind, admin, now, &src()).await.unwrap();
        kinds.insert(text(&a["name"]).to_owned(), (id, text(&a["kind"]).to_owned()));
    }
    let mut purpose_ids = HashMap::new();
    let mut notices = HashMap::new();
    for name in cases["purposes"].as_array().unwrap().iter().map(text) {
        let id = purposes::create(&mut tx, name, false, admin, now, &src()).await.unwrap();
        let notice = NoticeText::parse(&format!("We write to you about {name}.")).unwrap();
        notices.insert(id, purposes::publish_notice(&mut tx, id, &notice, admin, now, &src()).await.unwrap());
        purpose_ids.insert(name.to_owned(), id);
    }
    let elements = json!({
        "information": "name and email address", "disclosers": "Acme Clinic", "recipients": "Acme Clinic",
        "purpose": "product information", "signature": "Ada Lovelace", "signed_on": "2026-01-01",
        "right_to_revoke": true, "conditioning": true, "redisclosure": true
    });
    let keys = AddressKeys::derive(b"the server's configured secret");
    let mut ids = Vec::new();
    for c in cases["contacts"].as_array().unwrap() {
        let tags: Vec<String> = c["tags"].as_array().unwrap().iter().map(|t| text(t).to_owned()).collect();
        let new = contacts::NewContact { tags: &tags, ..Default::default() };
        let address = Email::parse(text(&c["address"])).unwrap();
        let id = contacts::create(&mut tx, &keys, &address, &new, Some(admin), instant(&c["created_at"]), &src())
            .await
            .unwrap();
        for (name, value) in c["values"].as_object().unwrap() {
            let (attribute, kind) = &kinds[name];
            let value = match kind.as_str() {
                "text" => AttributeValue::Text(text(value).to_owned()),
                "number" => AttributeValue::Number(value.as_f64().unwrap()),
                "date" => AttributeValue::Date(text(value).parse::<NaiveDate>().unwrap()),
                "boolean" => AttributeValue::Boolean(value.as_bool().unwrap()),
                _ => AttributeValue::Choice(text(value).to_owned()),
            };
            attributes::set(&mut tx, id, *attribute, &value).await.unwrap();
        }
        for (purpose, events) in c["consent"].as_object().unwrap() {
            let purpose = purpose_ids[purpose];
            for e in events.as_array().unwrap() {
                let (kind, source, expires) = (text(&e[0]), text(&e[1]), e[2].as_str());
                let basis = match expires {
                    Some(t) => {
                        Basis::HipaaAuthorization { elements: elements.clone(), expires_at: Some(t.parse().unwrap()) }
                    }
                    None => Basis::Consent,
                };
                let provenance = match source {
                    "signup_form" => Provenance::SignupForm,
                    "console" => Provenance::Console { by: admin },
                    _ => Provenance::Api { by: admin },
                };
                let kind: ConsentKind = kind.parse().unwrap();
                let record = Record {
                    contact: id,
                    purpose,
                    kind,
                    basis: (kind == ConsentKind::Grant).then_some(&basis),
                    notice: (kind == ConsentKind::Grant).then_some(notices[&purpose]),
                    provenance: if kind == ConsentKind::Confirm { Provenance::SignupForm } else { provenance },
                    evidence: None,
                    now,
                };
                consent::append(&mut tx, &record, &src()).await.unwrap();
            }
        }
        if c["suppressed"].as_bool().unwrap_or(false) {
            suppression::suppress(&mut tx, &keys, &address, SuppressionReason::Unsubscribe, Some(admin), now, &src())
                .await
                .unwrap();
        }
        if c["erased"].as_bool().unwrap() {
            assert!(contacts::erase(&mut tx, id, admin, now, &src()).await.unwrap());
        }
        ids.push(id);
    }
    tx.commit().await.unwrap();
    Loaded { org, admin, purposes: purpose_ids, contacts: ids }
}

/// The script names purposes `purpose:<name>`; the database knows them by id.
fn with_purposes(definition: &Value, purposes: &HashMap<String, PurposeId>) -> Value {
    match definition {
        Value::String(s) => match s.strip_prefix("purpose:") {
            Some(name) => Value::String(purposes[name].to_string()),
            None => definition.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| with_purposes(v, purposes)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), with_purposes(v, purposes))).collect()),
        other => other.clone(),
    }
}

const PAGE: u16 = 40;

/// Every contact of the segment, page by page.
async fn all_pages(tx: &mut TenantTx, segment: &Segment, at: DateTime<Utc>, admin: UserId) -> Vec<Member> {
    let mut members: Vec<Member> = Vec::new();
    loop {
        let after = members.last().map(|m| m.id);
        let page = segments::preview(tx, segment, at, after, PAGE, admin, &src()).await.unwrap();
        if page.is_empty() {
            return members;
        }
        assert!(page.len() <= usize::from(PAGE));
        members.extend(page);
    }
}

#[tokio::test]
async fn segments_select_the_contacts_that_an_independent_python_evaluation_selects() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let cases = python_cases(20261206, 200, 100);
    let a = load(&pool, "acme", &cases).await;
    let at = instant(&cases["at"]);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let catalog = segments::catalog(&mut tx).await.unwrap();
    let mut nonempty = 0;
    for (n, case) in cases["definitions"].as_array().unwrap().iter().enumerate() {
        let definition = with_purposes(&case["definition"], &a.purposes);
        let segment = Segment::from_value(&definition, &catalog).unwrap_or_else(|e| panic!("case {n}: {e}"));
        let expected: BTreeSet<ContactId> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| a.contacts[usize::try_from(i.as_u64().unwrap()).unwrap()])
            .collect();
        let count = segments::count(&mut tx, &segment, at).await.unwrap();
        let members = all_pages(&mut tx, &segment, at, a.admin).await;
        let ids: Vec<ContactId> = members.iter().map(|m| m.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "case {n}: pages in id order without repeats");
        let found: BTreeSet<ContactId> = ids.into_iter().collect();
        assert_eq!(found, expected, "case {n}: {definition}");
        assert_eq!(count, i64::try_from(expected.len()).unwrap(), "case {n}: {definition}");
        nonempty += usize::from(!expected.is_empty() && expected.len() < a.contacts.len());
    }
    // The draw is not degenerate: most definitions select some contacts but not all.
    assert!(nonempty > 60, "{nonempty}");
}

/// A small audience: two contacts, one with a text attribute and a tag.
async fn small(pool: &AppPool, slug: &str) -> (Loaded, Catalog) {
    let cases = json!({
        "attributes": [{"name": "plan", "kind": "text", "max_length": 100}],
        "purposes": ["news"],
        "contacts": [
            {"address": "a@patients.example", "tags": ["vip", "'; drop table app.contacts; --"], "created_at": "2026-01-01T00:00:00Z",
             "values": {"plan": "x' or '1'='1"}, "consent": {}, "erased": false},
            {"address": "b@patients.example", "tags": [], "created_at": "2026-01-02T00:00:00Z",
             "values": {}, "consent": {}, "erased": false}
        ]
    });
    let loaded = load(pool, slug, &cases).await;
    let mut tx = pool.begin_tenant(loaded.org, Some(loaded.admin)).await.unwrap();
    let catalog = segments::catalog(&mut tx).await.unwrap();
    (loaded, catalog)
}

#[tokio::test]
async fn values_that_look_like_sql_are_compared_as_data_and_names_are_looked_up_not_spliced() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog) = small(&pool, "acme").await;
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    for (definition, expected) in [
        (json!({"attribute": "plan", "op": "equals", "value": "x' or '1'='1"}), 1),
        (json!({"attribute": "plan", "op": "equals", "value": "' or true --"}), 0),
        (json!({"attribute": "plan", "op": "contains", "value": "') or (true"}), 0),
        (json!({"tags": "has", "value": "'; drop table app.contacts; --"}), 1),
        (json!({"tags": "has_any", "value": ["vip') or ('1'='1", "$1"]}), 0),
    ] {
        let segment = Segment::from_value(&definition, &catalog).unwrap();
        assert_eq!(segments::count(&mut tx, &segment, Utc::now()).await.unwrap(), expected, "{definition}");
    }
    // Names are looked up in the catalog: one that is SQL is an unknown attribute, at its path.
    let refused = Segment::from_value(
        &json!({"any": [{"tags": "has", "value": "vip"}, {"attribute": "plan = plan or true; --", "op": "is_set"}]}),
        &catalog,
    )
    .unwrap_err();
    assert_eq!(refused.0.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(), ["any[1].attribute"]);
    // A value of the wrong type for the attribute is refused with its path.
    let refused =
        Segment::from_value(&json!({"all": [{"attribute": "plan", "op": "gt", "value": 3}]}), &catalog).unwrap_err();
    assert_eq!(refused.0[0].path, "all[0].op");
    let refused = Segment::from_value(&json!({"attribute": "plan", "op": "equals", "value": 3}), &catalog).unwrap_err();
    assert_eq!(refused.0[0].path, "value");
    // Both contacts are still there.
    let everyone = Segment::from_value(&json!({"all": []}), &catalog).unwrap();
    assert_eq!(segments::count(&mut tx, &everyone, Utc::now()).await.unwrap(), 2);
}

#[tokio::test]
async fn a_segment_never_counts_or_shows_another_tenants_contacts() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog_a) = small(&pool, "acme").await;
    let (b, _) = small(&pool, "globex").await;
    let everyone = Segment::from_value(&json!({"all": []}), &catalog_a).unwrap();
    let vip = Segment::from_value(&json!({"attribute": "plan", "op": "is_set"}), &catalog_a).unwrap();

    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(segments::count(&mut tx, &everyone, Utc::now()).await.unwrap(), 2);
    let shown: BTreeSet<ContactId> =
        all_pages(&mut tx, &everyone, Utc::now(), a.admin).await.into_iter().map(|m| m.id).collect();
    assert_eq!(shown, a.contacts.iter().copied().collect());
    drop(tx);
    // A's segment, which names A's attribute, run in B's transaction: B's contacts have a value
    // for B's own `plan` only, and row-level security hides A's rows.
    let mut tx = pool.begin_tenant(b.org, Some(b.admin)).await.unwrap();
    assert_eq!(segments::count(&mut tx, &vip, Utc::now()).await.unwrap(), 0);
    let shown: BTreeSet<ContactId> =
        all_pages(&mut tx, &everyone, Utc::now(), b.admin).await.into_iter().map(|m| m.id).collect();
    assert_eq!(shown, b.contacts.iter().copied().collect());
}

#[tokio::test]
async fn a_consent_condition_reads_one_state_row_per_contact_from_its_key_and_not_the_ledger() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog) = small(&pool, "acme").await;
    let definition = json!({"all": [{"consent": "live", "purpose": a.purposes["news"]}, {"tags": "has", "value": "vip"},
                                    {"attribute": "plan", "op": "is_set"}]});
    let segment = Segment::from_value(&definition, &catalog).unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    // The tables are tiny, so a sequential scan would win; what matters is which index the
    // consent condition can be answered from (on Citus, on the shard too).
    crate::each(tx.conn(), &["set local citus.propagate_set_commands = 'local'", "set local enable_seqscan = off"])
        .await;
    let plan = segments::explain_count(&mut tx, &segment, Utc::now()).await.unwrap().join("\n");
    // The current state comes from the state table's key, which includes what the live test
    // reads, without touching the table; the ledger's walk of the latest events is gone (the
    // ledger is read only for a suppression's lift, by the one contact's confirmations).
    assert!(plan.contains("Index Only Scan using consent_state_pkey"), "{plan}");
    assert!(!plan.contains("consent_events_current_idx"), "{plan}");
    // The one anti-join is the suppression list's, by its primary key.
    assert!(plan.matches("Anti Join").count() <= 1 && !plan.contains("Sort"), "{plan}");
    assert!(plan.contains("Index Only Scan using suppressions_pkey"), "{plan}");
    // The attribute's range is answered from its kind's covering index as well.
    assert!(plan.contains("Index Only Scan using contact_attribute_values_text_cover_idx"), "{plan}");
}

#[tokio::test]
async fn showing_a_preview_leaves_an_audit_record_naming_every_contact_shown() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog) = small(&pool, "acme").await;
    let everyone = Segment::from_value(&json!({"all": []}), &catalog).unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let shown = segments::preview(&mut tx, &everyone, Utc::now(), None, 1, a.admin, &src()).await.unwrap();
    assert_eq!(shown.len(), 1);
    let records = mos_db::audit::recent(&mut tx, 5).await.unwrap();
    let record = records.iter().find(|r| r.action == "segment.previewed").expect("a preview record");
    assert_eq!(record.actor, Some(a.admin.as_uuid()));
    assert_eq!(record.metadata["contacts"], json!([shown[0].id]));
    assert_eq!(record.metadata["fields"], json!(["address", "name", "created_at"]));
    assert_eq!(record.metadata["definition_sha256"], json!(everyone.hash().to_string()));
}

#[tokio::test]
async fn saved_versions_are_named_by_their_hash_and_never_change() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog) = small(&pool, "acme").await;
    let first = Segment::from_value(&json!({"tags": "has", "value": "vip"}), &catalog).unwrap();
    let second = Segment::from_value(&json!({"not": {"tags": "has", "value": "vip"}}), &catalog).unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let v1 = segments::create(&mut tx, "VIPs", &first, a.admin, Utc::now(), &src()).await.unwrap();
    let v2 = segments::add_version(&mut tx, v1.segment, &second, a.admin, Utc::now(), &src()).await.unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(v1.sha256, first.hash());
    let stored = segments::version(&mut tx, v1.segment, 1).await.unwrap().unwrap();
    assert_eq!(stored, v1);
    // The stored text parses back to the same segment.
    assert_eq!(Segment::parse(&stored.definition, &catalog).unwrap(), first);
    let listed = segments::list(&mut tx, None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].latest, listed[0].sha256), (2, second.hash()));
    tx.commit().await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let taken = segments::create(&mut tx, "VIPs", &first, a.admin, Utc::now(), &src()).await;
    assert!(
        matches!(taken, Err(DbError::Conflict { ref constraint }) if constraint == "segments_name_key"),
        "{taken:?}"
    );
    drop(tx);

    // A hash that does not match its text is refused by the database.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    let forged = sqlx::query(
        "insert into app.segment_versions (organization_id, segment_id, version, definition, sha256, created_by, created_at)
         values ($1, $2, 3, '{\"all\":[]}', $3, $4, now())",
    )
    .bind(a.org.as_uuid())
    .bind(v1.segment.as_uuid())
    .bind(first.hash().as_bytes())
    .bind(a.admin.as_uuid())
    .execute(tx.conn())
    .await
    .map_err(DbError::from);
    assert!(
        matches!(forged, Err(DbError::Invalid { ref constraint }) if constraint == "segment_versions_sha256"),
        "{forged:?}"
    );
    drop(tx);

    // Neither app_user nor the owner, even with its rights granted back, rewrites or deletes a
    // version.
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    rewrite_versions(tx.conn(), "app_user").await;
    drop(tx);
    let mut owner = db.owner().await;
    crate::each(
        &mut owner,
        &[
            "begin",
            "alter table app.segment_versions no force row level security",
            "grant update, delete, truncate on app.segment_versions to mos_owner",
            &format!("set local app.current_tenant_id = '{}'", a.org),
        ],
    )
    .await;
    rewrite_versions(&mut owner, "the owner with its rights back").await;
    sqlx::raw_sql("rollback").execute(&mut owner).await.unwrap();
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    assert_eq!(segments::version(&mut tx, v1.segment, 1).await.unwrap().unwrap(), v1);
}

/// Tries to change and remove saved versions; each attempt must be refused for privilege.
async fn rewrite_versions(conn: &mut sqlx::PgConnection, who: &str) {
    for sql in [
        "update app.segment_versions set definition = '{\"all\":[]}', sha256 = sha256('{\"all\":[]}')",
        "delete from app.segment_versions",
        "truncate app.segment_versions",
    ] {
        crate::each(conn, &["savepoint rewrite"]).await;
        let err = sqlx::query(sql).execute(&mut *conn).await.expect_err(sql);
        assert!(refused_for_privilege(&err), "{who}: {sql}: {err}");
        crate::each(conn, &["rollback to savepoint rewrite"]).await;
    }
}

#[tokio::test]
#[ignore = "needs the Citus cluster: MOS_TEST_BACKEND=citus cargo test -- --include-ignored"]
async fn counting_previewing_and_saving_a_segment_run_on_one_shard() {
    requires(Backend::Citus, "routing to shards is Citus's");
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let (a, catalog) = small(&pool, "acme").await;
    let cases = python_cases(7, 1, 40);
    let mut tx = pool.begin_tenant(a.org, Some(a.admin)).await.unwrap();
    // From here on, any statement that needs more than one shard is an error.
    crate::each(tx.conn(), &["set local citus.multi_task_query_log_level = 'error'"]).await;
    let purposes = HashMap::from([("news".to_owned(), a.purposes["news"]), ("offers".to_owned(), a.purposes["news"])]);
    let mut ran = 0;
    for case in cases["definitions"].as_array().unwrap() {
        let definition = with_purposes(&case["definition"], &purposes);
        // The script's attributes are not all this audience's; those it names are refused.
        let Ok(segment) = Segment::from_value(&definition, &catalog) else { continue };
        segments::count(&mut tx, &segment, Utc::now()).await.unwrap();
        segments::preview(&mut tx, &segment, Utc::now(), None, 5, a.admin, &src()).await.unwrap();
        ran += 1;
    }
    assert!(ran >= 10, "only {ran} definitions fit this audience");
    let segment = Segment::from_value(&json!({"tags": "has", "value": "vip"}), &catalog).unwrap();
    let saved = segments::create(&mut tx, "VIPs", &segment, a.admin, Utc::now(), &src()).await.unwrap();
    segments::add_version(&mut tx, saved.segment, &segment, a.admin, Utc::now(), &src()).await.unwrap();
    segments::version(&mut tx, saved.segment, 2).await.unwrap().unwrap();
    segments::list(&mut tx, None, 10).await.unwrap();
    let (_, versions) = segments::versions(&mut tx, saved.segment).await.unwrap().unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
    tx.commit().await.unwrap();
}
