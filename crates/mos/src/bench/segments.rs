//! Segment counts and the per-message consent check on a large tenant among small ones: one
//! organization per size asked for (`bench-0` the first, `bench-1` the next, ...) gets that
//! many contacts, the others a thousand each, all with two attributes, tags, two purposes and
//! a consent ledger with sign-ups, confirmations and revocations. Built in bulk by the
//! administrator, one set-based statement per table.
//!
//! The count is measured as `app_user` through a [`mos_db::TenantTx`] against the same statement
//! as the administrator, whom row-level security does not apply to; the consent check against a
//! primary-key read of the contact in the same transaction shape.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use mos_db::audiences::{consent, segments};
use mos_db::AppPool;
use mos_domain::segments::Segment;
use mos_domain::{ContactId, OrgId, PurposeId};
use rand::Rng;
use sqlx::{Executor, PgConnection, PgPool};

use super::measure::{self, Run};
use super::{interleaved, throughput, Args, Case, Row, Target};

/// Contacts of each organization that is not one of the large ones.
const SMALL: i64 = 1000;

/// Consent checks in one transaction, as a sender checks a batch of messages.
pub const BATCH: usize = 50;

/// The data, statement by statement, over `bench_seg_people` (one row per contact to make, with
/// random numbers that decide its values). Every statement is set-based; the ledger's own
/// statement trigger checks each insert of events as a whole.
const BUILD: [&str; 9] = [
    "insert into app.contacts (organization_id, id, address, address_key, tags, created_at)
     select p.org, p.id, 'c' || p.i || '@' || p.slug || '.example', sha256(convert_to(p.slug || '/' || p.i, 'UTF8')),
            array_remove(array[case when p.s < 0.5 then 'patient' end, case when p.t1 < 0.2 then 'vip' end,
                               case when p.t2 < 0.05 then 'staff' end, case when p.t3 < 0.3 then 'lead' end], null),
            now() - p.r * interval '700 days'
       from public.bench_seg_people p",
    "insert into app.contact_attributes (organization_id, id, name, kind, created_at)
     select o.org, public.bench_uuid7(), a.name, a.kind::app.attribute_kind, now()
       from (select distinct org from public.bench_seg_people) o, (values ('age', 'number'), ('plan', 'choice')) a(name, kind)",
    "insert into app.contact_attribute_choices (organization_id, attribute_id, value)
     select a.organization_id, a.id, v
       from app.contact_attributes a, unnest(array['basic', 'plus', 'premium']) v
      where a.organization_id in (select distinct org from public.bench_seg_people) and a.name = 'plan'",
    "insert into app.contact_attribute_values (organization_id, contact_id, attribute_id, kind, number_value)
     select a.organization_id, p.id, a.id, 'number', 18 + floor(p.r * 72)
       from public.bench_seg_people p join app.contact_attributes a on a.organization_id = p.org and a.name = 'age'",
    "insert into app.contact_attribute_values (organization_id, contact_id, attribute_id, kind, choice_value)
     select a.organization_id, p.id, a.id, 'choice', (array['basic', 'plus', 'premium'])[1 + floor(p.u1 * 3)::int]
       from public.bench_seg_people p join app.contact_attributes a on a.organization_id = p.org and a.name = 'plan'
      where p.u2 < 0.8",
    "insert into app.purposes (organization_id, id, name, channel, needs_hipaa_authorization, created_at)
     select o.org, public.bench_uuid7(), n, 'email', false, now()
       from (select distinct org from public.bench_seg_people) o, unnest(array['newsletter', 'reminders']) n",
    "insert into app.notices (organization_id, purpose_id, sha256, body, created_by, created_at)
     select p.organization_id, p.id, sha256(convert_to('Notice ' || p.name, 'UTF8')), 'Notice ' || p.name, p.organization_id, now()
       from app.purposes p where p.organization_id in (select distinct org from public.bench_seg_people)",
    // The first events: grants through the API to 65% (newsletter) and 40% (reminders), and
    // sign-ups waiting for their confirmation from 5% (newsletter).
    "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis, notice_sha256,
                                     source, recorded_by, created_at)
     select p.org, p.id, u.id, 1, public.bench_uuid7(), 'email', 'grant', 'consent', n.sha256,
            (case when u.name = 'newsletter' and p.s >= 0.65 then 'signup_form' else 'api' end)::app.consent_source,
            case when u.name = 'newsletter' and p.s >= 0.65 then null else p.org end, now() - interval '30 days'
       from public.bench_seg_people p
       join app.purposes u on u.organization_id = p.org
       join app.notices n on n.organization_id = u.organization_id and n.purpose_id = u.id
      where (u.name = 'newsletter' and p.s < 0.70) or (u.name = 'reminders' and p.u3 < 0.4)",
    // The second: a tenth of the newsletter's grants revoked, half of its sign-ups confirmed.
    "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis, notice_sha256,
                                     source, recorded_by, created_at)
     select e.organization_id, e.contact_id, e.purpose_id, 2, public.bench_uuid7(), 'email',
            (case when e.source = 'signup_form' then 'confirm' else 'revoke' end)::app.consent_kind,
            case when e.source = 'signup_form' then e.basis end, case when e.source = 'signup_form' then e.notice_sha256 end,
            e.source, e.recorded_by, now() - interval '10 days'
       from app.consent_events e
       join public.bench_seg_people p on p.org = e.organization_id and p.id = e.contact_id
       join app.purposes u on u.organization_id = e.organization_id and u.id = e.purpose_id and u.name = 'newsletter'
      where (e.source = 'api' and p.s < 0.1) or (e.source = 'signup_form' and p.s >= 0.675)",
];

/// Gives organization `bench-{i}` `sizes[i]` contacts and every other one of the first `orgs`
/// [`SMALL`] contacts, with their attributes, tags and consent.
pub async fn build(admin: &mut PgConnection, orgs: usize, sizes: &[usize]) -> anyhow::Result<()> {
    let counts: Vec<i64> = (0..orgs.max(sizes.len())).map(|i| sizes.get(i).map_or(SMALL, |&n| n as i64)).collect();
    let slugs: Vec<String> = (0..counts.len()).map(super::data::slug).collect();
    sqlx::query(
        "create table public.bench_seg_people as
         select o.id as org, o.slug, public.bench_uuid7() as id, i, random() as r, random() as s, random() as t1,
                random() as t2, random() as t3, random() as u1, random() as u2, random() as u3
           from unnest($1::text[], $2::bigint[]) w(slug, n)
           join app.organizations o on o.slug = w.slug, generate_series(1, w.n) i",
    )
    .bind(&slugs)
    .bind(&counts)
    .execute(&mut *admin)
    .await?;
    for statement in BUILD {
        admin.execute(statement).await?;
    }
    admin.execute("drop table public.bench_seg_people").await?;
    // As autovacuum would have by the time such an audience is counted: statistics, and the
    // visibility map that lets index-only scans skip the heap. On its own: VACUUM refuses to
    // run in the transaction block that several statements in one string make.
    admin.execute("vacuum analyze").await?;
    Ok(())
}

/// A large tenant, the segment counted in it, and contacts to check consent for.
pub struct Fixture {
    pub org: OrgId,
    pub contacts: usize,
    segment: Segment,
    purpose: PurposeId,
    sample: Vec<ContactId>,
}

/// The fixture of organization `bench-{i}`, which has `contacts` contacts: the segment "aged 50
/// or more, tagged `patient`, with live consent to the newsletter".
pub async fn fixture(pool: &AppPool, admin: &PgPool, i: usize, contacts: usize) -> anyhow::Result<Fixture> {
    let org: uuid::Uuid = sqlx::query_scalar("select id from app.organizations where slug = $1")
        .bind(super::data::slug(i))
        .fetch_one(admin)
        .await?;
    let org = OrgId::from_uuid(org)?;
    let mut tx = pool.begin_tenant(org, None).await?;
    let catalog = segments::catalog(&mut tx).await?;
    let purpose: uuid::Uuid =
        sqlx::query_scalar("select id from app.purposes where organization_id = $1 and name = 'newsletter'")
            .bind(org.as_uuid())
            .fetch_one(tx.conn())
            .await?;
    let definition = serde_json::json!({"all": [
        {"attribute": "age", "op": "gte", "value": 50},
        {"tags": "has", "value": "patient"},
        {"consent": "live", "purpose": purpose},
    ]});
    let segment = Segment::from_value(&definition, &catalog).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let sample: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from app.contacts where organization_id = $1 order by id limit 10000")
            .bind(org.as_uuid())
            .fetch_all(tx.conn())
            .await?;
    tx.commit().await?;
    Ok(Fixture {
        org,
        contacts,
        segment,
        purpose: PurposeId::from_uuid(purpose)?,
        sample: sample.into_iter().map(ContactId::from_uuid).collect::<Result<_, _>>()?,
    })
}

/// The count as `app_user`, in the tenant's transaction, by one client.
pub async fn count_with_rls(pool: &AppPool, fx: Arc<Fixture>, duration: Duration) -> anyhow::Result<Run> {
    let pool = pool.clone();
    measure::drive(1, duration, None, move |_, _| {
        let (pool, fx) = (pool.clone(), fx.clone());
        async move {
            let mut tx = pool.begin_tenant(fx.org, None).await?;
            segments::count(&mut tx, &fx.segment, Utc::now()).await?;
            Ok(tx.commit().await?)
        }
    })
    .await
}

/// The same statement, sent the same way, as the administrator, past RLS.
pub async fn count_as_owner(admin: &PgPool, fx: Arc<Fixture>, duration: Duration) -> anyhow::Result<Run> {
    let admin = admin.clone();
    measure::drive(1, duration, None, move |_, _| {
        let (admin, fx) = (admin.clone(), fx.clone());
        async move {
            let mut tx = admin.begin().await?;
            tx.execute(format!("set local app.current_tenant_id = '{}'", fx.org).as_str()).await?;
            let mut query = segments::count_query(fx.org.as_uuid(), &fx.segment, Utc::now());
            query.build_query_scalar::<i64>().persistent(false).fetch_one(&mut *tx).await?;
            Ok(tx.commit().await?)
        }
    })
    .await
}

/// [`BATCH`] consent checks of random contacts in one tenant transaction, by `clients` clients;
/// with `by_key`, a primary-key read of each contact instead (the baseline).
pub async fn checks(
    pool: &AppPool,
    fx: Arc<Fixture>,
    clients: usize,
    duration: Duration,
    by_key: bool,
) -> anyhow::Result<Run> {
    let pool = pool.clone();
    measure::drive(clients, duration, None, move |_, _| {
        let (pool, fx) = (pool.clone(), fx.clone());
        async move {
            let contacts: Vec<ContactId> = {
                let mut rng = rand::thread_rng();
                (0..BATCH).map(|_| fx.sample[rng.gen_range(0..fx.sample.len())]).collect()
            };
            let mut tx = pool.begin_tenant(fx.org, None).await?;
            let now = Utc::now();
            for contact in contacts {
                if by_key {
                    sqlx::query("select id from app.contacts where organization_id = $1 and id = $2")
                        .bind(fx.org.as_uuid())
                        .bind(contact.as_uuid())
                        .fetch_optional(tx.conn())
                        .await?;
                } else {
                    consent::is_live(&mut tx, contact, fx.purpose, now).await?;
                }
            }
            Ok(tx.commit().await?)
        }
    })
    .await
}

/// The segment and consent cases that `args` asks for, on data built here.
pub(super) async fn measure(
    admin: &mut PgConnection,
    pool: &AppPool,
    admin_pool: &PgPool,
    args: &Args,
    warm_up: Duration,
    duration: Duration,
) -> anyhow::Result<Vec<Row>> {
    let sizes = &args.segment_contacts;
    eprintln!("segments: building {sizes:?} contacts in as many tenants, {SMALL} in each other...");
    let started = std::time::Instant::now();
    build(admin, args.orgs.max(1), sizes).await?;
    eprintln!("segments: built in {:.0} s", started.elapsed().as_secs_f64());
    let mut rows = Vec::new();
    for (i, &contacts) in sizes.iter().enumerate() {
        let fx = Arc::new(fixture(pool, admin_pool, i, contacts).await?);
        let tenants = args.orgs.max(sizes.len());
        if args.cases.contains(&Case::Segments) {
            count_with_rls(pool, fx.clone(), warm_up).await?;
            count_as_owner(admin_pool, fx.clone(), warm_up).await?;
            let (owner, rls) = interleaved(
                args.rounds,
                || count_as_owner(admin_pool, fx.clone(), duration),
                || count_with_rls(pool, fx.clone(), duration),
            )
            .await?;
            let mut row = throughput(
                &format!(
                    "Segment count (attribute, tag, consent), {} contacts in 1 of {tenants} tenants (cost: RLS off / on)",
                    fx.contacts
                ),
                &owner,
                &rls,
                Target::AtMost(1.10),
            );
            row.ratio = Some((owner.rate() / rls.rate().max(f64::EPSILON), Target::AtMost(1.10)));
            rows.push(row);
        }
        if args.cases.contains(&Case::Consent) {
            let clients = args.clients.max(1);
            checks(pool, fx.clone(), clients, warm_up, false).await?;
            let (by_key, live) = interleaved(
                args.rounds,
                || checks(pool, fx.clone(), clients, duration, true),
                || checks(pool, fx.clone(), clients, duration, false),
            )
            .await?;
            let mut row = throughput(
                &format!(
                    "Consent checks (is_live, {BATCH} a transaction), {} contacts, vs primary-key reads",
                    fx.contacts
                ),
                &by_key,
                &live,
                Target::AtLeast(0.5),
            );
            let per_check = |r: &Run| format!("{:.0} checks/s", r.rate() * BATCH as f64);
            row.baseline = per_check(&by_key);
            row.ours = per_check(&live);
            rows.push(row);
        }
    }
    Ok(rows)
}
