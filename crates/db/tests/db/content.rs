//! Content under attack as `app_user`: other tenants' items, versions and review events cannot
//! be read or written with or without a tenant set, history cannot be rewritten, and the
//! database refuses what the review forbids even when the application would let it through.

use chrono::Utc;
use mos_db::content::{self, Request, Step};
use mos_db::testing::{backend, Backend, TestDb};
use mos_db::{AppPool, TenantTx};
use mos_domain::content::{Action, Channel, State, Text};
use mos_domain::{ContentId, OrgId, RequestSource, Role, UserId};
use uuid::Uuid;

use crate::{new_org, new_user, sqlstate};

const TABLES: [&str; 3] = ["app.content_items", "app.content_versions", "app.content_events"];
const RLS_VIOLATION: &str = "42501";
const CHECK_VIOLATION: &str = "23514";

fn text(title: &str) -> Text {
    Text::parse(title, Channel::Email, "patients", "Book your flu shot.", &["flu".into()]).unwrap()
}

async fn item(pool: &AppPool, org: OrgId, author: UserId, title: &str) -> ContentId {
    let mut tx = pool.begin_tenant(org, Some(author)).await.unwrap();
    let created = content::create(&mut tx, &text(title), author, Utc::now(), &RequestSource::default()).await.unwrap();
    tx.commit().await.unwrap();
    created.id
}

struct Tenants {
    pool: AppPool,
    a: OrgId,
    alice: UserId,
    a_item: ContentId,
    b: OrgId,
    b_item: ContentId,
}

async fn two_tenants_with_content(db: &TestDb) -> Tenants {
    let pool = db.app_pool(4).await;
    let alice = new_user(&pool, "alice@a.example").await;
    let bob = new_user(&pool, "bob@b.example").await;
    let a = new_org(&pool, "tenant-a", alice).await;
    let b = new_org(&pool, "tenant-b", bob).await;
    let a_item = item(&pool, a, alice, "A's campaign").await;
    let b_item = item(&pool, b, bob, "B's campaign").await;
    Tenants { pool, a, alice, a_item, b, b_item }
}

async fn count(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn a_tenant_sees_and_changes_only_its_own_content_and_nobody_without_a_tenant_sees_any() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;

    let mut bare = db.app_user().await;
    for table in TABLES {
        assert_eq!(count(&mut bare, table).await, 0, "{table} without a tenant");
    }

    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    for table in TABLES {
        let seen: Vec<Uuid> =
            sqlx::query_scalar(&format!("select organization_id from {table}")).fetch_all(tx.conn()).await.unwrap();
        assert!(!seen.is_empty() && seen.iter().all(|o| *o == t.a.as_uuid()), "{table}: {seen:?}");
    }
    assert!(content::get(&mut tx, t.b_item).await.unwrap().is_none(), "B's item by its id");
    let updated = sqlx::query("update app.content_items set revision = revision + 1 where id = $1")
        .bind(t.b_item.as_uuid())
        .execute(tx.conn())
        .await
        .unwrap();
    assert_eq!(updated.rows_affected(), 0);
    tx.rollback().await.unwrap();

    // Writing into B while scoped to A: the policy's WITH CHECK refuses it.
    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    let forged = sqlx::query(
        "insert into app.content_items (organization_id, id, created_by, created_at, updated_at, state, revision, current_version)
         values ($1, $2, $3, now(), now(), 'draft', 1, 1)",
    )
    .bind(t.b.as_uuid())
    .bind(Uuid::now_v7())
    .bind(t.alice.as_uuid())
    .execute(tx.conn())
    .await;
    assert_eq!(sqlstate(forged), RLS_VIOLATION);
    tx.rollback().await.unwrap();

    // Acting on B's item through A's transaction finds nothing to act on.
    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    let step = content::act(&mut tx, t.b_item, request(Action::Submit, t.alice, Role::Admin)).await.unwrap();
    assert_eq!(step, Step::NotFound);
    tx.rollback().await.unwrap();

    let mut su = db.superuser().await;
    for table in TABLES {
        assert_eq!(count(&mut su, table).await, 2, "{table}: one row per tenant, nothing added");
    }
}

fn request(action: Action, actor: UserId, role: Role) -> Request<'static> {
    static SOURCE: std::sync::OnceLock<RequestSource> = std::sync::OnceLock::new();
    Request {
        action,
        text: None,
        note: None,
        actor,
        role,
        revisions: None,
        sha256: None,
        now: Utc::now(),
        source: SOURCE.get_or_init(RequestSource::default),
    }
}

#[tokio::test]
async fn versions_and_review_events_are_never_changed_deleted_or_truncated() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    for statement in [
        "update app.content_versions set body = 'rewritten'",
        "delete from app.content_versions",
        "update app.content_events set note = 'rewritten'",
        "delete from app.content_events",
        "delete from app.content_items",
        "truncate app.content_items cascade",
        "truncate app.content_versions cascade",
        "truncate app.content_events",
    ] {
        let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
        let err = sqlx::query(statement).execute(tx.conn()).await.expect_err(statement);
        assert!(crate::refused_for_privilege(&err), "{statement}: {err}");
    }
    let mut su = db.superuser().await;
    for table in TABLES {
        assert_eq!(count(&mut su, table).await, 2, "{table}: every row of both tenants is still there");
    }
    let body: String = sqlx::query_scalar("select body from app.content_versions where item_id = $1")
        .bind(t.a_item.as_uuid())
        .fetch_one(&mut su)
        .await
        .unwrap();
    assert_eq!(body, "Book your flu shot.");
}

/// An approval of version 1 of an item, written by hand: organization, item, event id, hash,
/// the version's author, the approver.
const APPROVAL: &str =
    "insert into app.content_events (organization_id, item_id, id, kind, version, sha256, version_author,
                                                        actor_id, from_state, to_state, created_at)
                        values ($1, $2, $3, 'approved', 1, $4, $5, $6, 'in_review', 'in_review', now())";

/// Moves A's item to `to` by a bare UPDATE, as a buggy application could.
async fn force_state(tx: &mut TenantTx, item: ContentId, to: State) -> Result<(), String> {
    let approved = matches!(to, State::Approved | State::Published | State::Archived);
    let published = to == State::Published;
    sqlx::query(
        "update app.content_items
            set state = $3::text::app.content_state, revision = revision + 1,
                approved_version = case when $4 then current_version end,
                published_version = case when $5 then current_version else published_version end,
                published_at = case when $5 then $6 else published_at end
          where organization_id = $1 and id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(item.as_uuid())
    .bind(to.as_str())
    .bind(approved)
    .bind(published)
    .bind(Utc::now())
    .execute(tx.conn())
    .await
    .map(|_| ())
    .map_err(|e| e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()).unwrap_or_default())
}

#[tokio::test]
async fn the_database_allows_exactly_the_state_changes_of_the_review_table() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    let allowed = State::edges();
    for from in State::ALL {
        for to in State::ALL {
            if from == to {
                continue;
            }
            let id = item(&t.pool, t.a, t.alice, "Probe").await;
            // Into `from` by allowed steps (the guard runs on every shard, so it cannot be
            // switched off for the arrangement on a cluster).
            let path: &[State] = match from {
                State::Draft => &[],
                State::InReview => &[State::InReview],
                State::ChangesRequested => &[State::InReview, State::ChangesRequested],
                State::Approved => &[State::InReview, State::Approved],
                State::Published => &[State::InReview, State::Approved, State::Published],
                State::Archived => &[State::Archived],
            };
            let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
            for step in path {
                force_state(&mut tx, id, *step).await.unwrap();
            }
            tx.commit().await.unwrap();
            let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
            let outcome = force_state(&mut tx, id, *to).await;
            tx.rollback().await.unwrap();
            if allowed.contains(&(*from, *to)) {
                assert_eq!(outcome, Ok(()), "{from} -> {to} is in the table");
            } else {
                assert_eq!(outcome, Err(CHECK_VIOLATION.into()), "{from} -> {to} is not in the table");
            }
        }
    }
}

#[tokio::test]
async fn the_database_refuses_an_approval_by_the_versions_author_or_of_a_hash_that_is_not_the_versions() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    let insert = APPROVAL;
    let hash = text("A's campaign").hash();
    let someone = UserId::new();
    let cases = [
        ("the author approving", hash.0, t.alice, t.alice, CHECK_VIOLATION),
        ("another hash", [7; 32], t.alice, someone, "23503"),
        ("a made-up author", hash.0, someone, UserId::new(), "23503"),
    ];
    for (case, sha, author, actor, code) in cases {
        let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
        let refused = sqlx::query(insert)
            .bind(t.a.as_uuid())
            .bind(t.a_item.as_uuid())
            .bind(Uuid::now_v7())
            .bind(&sha[..])
            .bind(author.as_uuid())
            .bind(actor.as_uuid())
            .execute(tx.conn())
            .await;
        assert_eq!(sqlstate(refused), code, "{case}");
    }
}

/// Asserts that `result` was refused with `code` by `constraint`. On Citus the coordinator
/// relays a worker's error without the constraint's name; there its message must say `says`
/// (each guard rule has a message of its own, and a shard's constraint is named after the
/// table's).
fn assert_refused_by<T: std::fmt::Debug>(result: Result<T, sqlx::Error>, code: &str, constraint: &str, says: &str) {
    let err = result.expect_err(constraint);
    let db = err.as_database_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().as_deref(), Some(code), "{constraint}: {err}");
    match (db.constraint(), backend()) {
        (Some(named), _) => assert_eq!(named, constraint, "{err}"),
        (None, Backend::Citus) => assert!(db.message().contains(says), "{constraint}: {err}"),
        (None, Backend::Postgres) => panic!("{constraint}: no constraint named: {err}"),
    }
}

#[tokio::test]
async fn the_database_keeps_one_approval_per_reviewer_and_version() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    let reviewer = new_user(&t.pool, "reviewer@a.example").await;
    let hash = text("A's campaign").hash();
    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let approved = sqlx::query(APPROVAL)
            .bind(t.a.as_uuid())
            .bind(t.a_item.as_uuid())
            .bind(Uuid::now_v7())
            .bind(&hash.0[..])
            .bind(t.alice.as_uuid())
            .bind(reviewer.as_uuid())
            .execute(tx.conn())
            .await;
        outcomes.push(approved);
    }
    let again = outcomes.pop().unwrap();
    outcomes.pop().unwrap().expect("the first approval");
    assert_refused_by(again, "23505", "content_events_one_approval", "content_events_one_approval");
}

#[tokio::test]
async fn the_database_keeps_the_required_approvals_between_one_and_five() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    for (required, allowed) in [(0, false), (1, true), (5, true), (6, false), (-1, false)] {
        let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
        let set = sqlx::query("update app.organizations set required_approvals = $2 where id = $1")
            .bind(t.a.as_uuid())
            .bind(required)
            .execute(tx.conn())
            .await;
        if allowed {
            assert_eq!(set.unwrap().rows_affected(), 1, "{required}");
        } else {
            let bound = "organizations_required_approvals";
            assert_refused_by(set, CHECK_VIOLATION, bound, bound);
        }
    }
}

#[tokio::test]
async fn an_item_starts_as_a_draft_keeps_its_identity_moves_one_revision_at_a_time_and_stays_published() {
    let db = TestDb::new().await;
    let t = two_tenants_with_content(&db).await;
    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    let started_approved = sqlx::query(
        "insert into app.content_items (organization_id, id, created_by, created_at, updated_at, state, revision, current_version)
         values ($1, $2, $3, now(), now(), 'approved', 1, 1)",
    )
    .bind(t.a.as_uuid())
    .bind(Uuid::now_v7())
    .bind(t.alice.as_uuid())
    .execute(tx.conn())
    .await;
    assert_refused_by(started_approved, CHECK_VIOLATION, "content_items_start", "starts as a draft");
    tx.rollback().await.unwrap();

    // Values are bound: Citus plans no volatile function in an UPDATE of a distributed table.
    for (statement, rule, says) in [
        (
            "update app.content_items set created_by = $1, revision = revision + 1, updated_at = $2",
            "content_items_identity",
            "keeps its identity",
        ),
        (
            "update app.content_items set updated_at = $2 where created_by <> $1",
            "content_items_revision",
            "moves its revision on by one",
        ),
    ] {
        let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
        let refused = sqlx::query(statement).bind(Uuid::now_v7()).bind(Utc::now()).execute(tx.conn()).await;
        assert_refused_by(refused, CHECK_VIOLATION, rule, says);
    }

    // Published by allowed steps, its published version neither goes nor changes.
    let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
    for step in [State::InReview, State::Approved, State::Published] {
        force_state(&mut tx, t.a_item, step).await.unwrap();
    }
    tx.commit().await.unwrap();
    for published_version in ["null", "published_version + 1"] {
        let mut tx = t.pool.begin_tenant(t.a, Some(t.alice)).await.unwrap();
        let refused = sqlx::query(&format!(
            "update app.content_items set published_version = {published_version}, revision = revision + 1
              where organization_id = $1 and id = $2"
        ))
        .bind(t.a.as_uuid())
        .bind(t.a_item.as_uuid())
        .execute(tx.conn())
        .await;
        assert_refused_by(refused, CHECK_VIOLATION, "content_items_published_once", "stays published");
    }
}

#[tokio::test]
async fn a_word_search_past_its_deadline_is_cancelled_and_one_within_it_finds_every_match() {
    let db = TestDb::new().await;
    let pool = db.app_pool(2).await;
    let alice = new_user(&pool, "alice@a.example").await;
    let org = new_org(&pool, "tenant-a", alice).await;
    // Long bodies, and a search for an excluded word only, which the word index cannot serve:
    // every body is read.
    let body = "flu shot ".repeat(11_000);
    let mut tx = pool.begin_tenant(org, Some(alice)).await.unwrap();
    for i in 0..20 {
        let text = Text::parse(&format!("Item {i}"), Channel::Email, "", &body, &[]).unwrap();
        content::create(&mut tx, &text, alice, Utc::now(), &RequestSource::default()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let search = |within| content::Filter {
        state: None,
        channel: None,
        tag: None,
        author: None,
        text: Some("-vaccine".into()),
        text_within: within,
        awaiting: None,
        before: None,
    };

    let mut tx = pool.begin_tenant(org, Some(alice)).await.unwrap();
    let cut = content::list(&mut tx, &search(std::time::Duration::from_millis(1)), 50).await;
    assert!(matches!(cut, Err(mos_db::DbError::Cancelled)), "{:?}", cut.map(|items| items.len()));
    drop(tx);

    let mut tx = pool.begin_tenant(org, Some(alice)).await.unwrap();
    let found = content::list(&mut tx, &search(std::time::Duration::from_secs(60)), 50).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(found.len(), 20);
}
