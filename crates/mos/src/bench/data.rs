//! The data a benchmark runs on, built in bulk by the administrator in SQL: organizations
//! `bench-0` .. `bench-{n-1}`, each with members (member 0 its ADMIN, with a live session whose
//! token anyone can derive from the organization's number, so that `pgbench` can present it
//! too), and audit records spread evenly over them, every one sealed into its chain before a
//! measurement starts.

use data_encoding::BASE64URL_NOPAD;
use mos_db::{chain, AppPool};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// UUIDv7 in SQL (PostgreSQL 15 has no generator): the millisecond clock, then random bits.
const UUID7: &str = "
create function public.bench_uuid7() returns uuid language sql volatile as $$
    select (lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0') || '7'
            || substr(md5(random()::text), 1, 3) || (array['8', '9', 'a', 'b'])[1 + floor(random() * 4)::int]
            || substr(md5(random()::text), 1, 15))::uuid
$$";

/// The raw bytes of organization `i`'s admin session token: anything that knows `i` can present
/// it, and its hash (`sha256` of these bytes) is what the database stores.
fn token_bytes(i: usize) -> [u8; 32] {
    Sha256::digest(format!("bench-session-{i}").as_bytes()).into()
}

/// The session token of organization `i`'s ADMIN, as a client presents it.
pub fn token(i: usize) -> String {
    BASE64URL_NOPAD.encode(&token_bytes(i))
}

/// The same hash as SQL, for `pgbench`, given an expression for the organization's number.
pub fn token_hash_sql(i: &str) -> String {
    format!("sha256(sha256(convert_to('bench-session-' || {i}, 'UTF8')))")
}

/// The SHA-256 of organization `i`'s session token, as the database stores it.
pub fn token_hash(i: usize) -> mos_domain::TokenHash {
    mos_domain::TokenHash(Sha256::digest(token_bytes(i)).into())
}

pub fn slug(i: usize) -> String {
    format!("bench-{i}")
}

/// The address of member `m` of organization `i`.
pub fn email(i: usize, m: usize) -> String {
    format!("m{m}@bench-{i}.example")
}

async fn run(conn: &mut PgConnection, sql: &str, args: &[i64]) -> anyhow::Result<()> {
    let mut query = sqlx::query(sql);
    for a in args {
        query = query.bind(a);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Builds `orgs` organizations of `members` members each (all with password `password_hash`)
/// and `records` audit records, then seals every chain.
pub async fn build(
    admin: &mut PgConnection,
    pool: &AppPool,
    orgs: usize,
    members: usize,
    records: usize,
    password_hash: &str,
) -> anyhow::Result<()> {
    sqlx::raw_sql(UUID7).execute(&mut *admin).await?;
    let (orgs, members, records) = (orgs as i64, members.max(1) as i64, records as i64);
    run(
        admin,
        "insert into app.organizations (id, slug, name)
         select public.bench_uuid7(), 'bench-' || i, 'Bench ' || i from generate_series(0, $1 - 1) i",
        &[orgs],
    )
    .await?;
    run(
        admin,
        "create table public.bench_people as
         select i, m, public.bench_uuid7() as user_id from generate_series(0, $1 - 1) i, generate_series(0, $2 - 1) m",
        &[orgs, members],
    )
    .await?;
    sqlx::query(
        "insert into app.users (id, email, password_hash, email_verified_at)
         select user_id, format('m%s@bench-%s.example', m, i), $1, now() from public.bench_people",
    )
    .bind(password_hash)
    .execute(&mut *admin)
    .await?;
    run(
        admin,
        "insert into app.user_organizations (organization_id, user_id, role)
         select o.id, p.user_id,
                (case when p.m = 0 then 'ADMIN' else (array['REVIEWER', 'CREATOR', 'VIEWER'])[1 + p.m % 3] end)::app.role
           from public.bench_people p join app.organizations o on o.slug = 'bench-' || p.i",
        &[],
    )
    .await?;
    let sessions = format!(
        "insert into app.sessions (id, user_id, token_hash, created_at, last_seen_at, authenticated_at, expires_at)
         select public.bench_uuid7(), p.user_id, {}, now(), now(), now(), now() + interval '12 hours'
           from public.bench_people p where p.m = 0",
        token_hash_sql("p.i")
    );
    run(admin, &sessions, &[]).await?;
    run(
        admin,
        "insert into app.audit_logs (organization_id, id, actor_user_id, action, resource_type, resource_id, outcome)
         select o.id, public.bench_uuid7(), p.user_id, 'document.updated', 'document', n::text, 'success'
           from generate_series(0, $1 - 1) n
           join public.bench_people p on p.i = n % $2 and p.m = 0
           join app.organizations o on o.slug = 'bench-' || p.i",
        &[records, orgs],
    )
    .await?;
    seal_all(pool).await?;
    // As autovacuum would have by the time such a log is read: statistics, and the visibility
    // map that lets index-only scans skip the heap.
    sqlx::raw_sql("vacuum analyze").execute(&mut *admin).await?;
    Ok(())
}

/// Adds organizations `scale-{from}` .. `scale-{to - 1}` with `rows` audit records each.
pub async fn add_scale_tenants(
    admin: &mut PgConnection,
    pool: &AppPool,
    from: usize,
    to: usize,
    rows: usize,
) -> anyhow::Result<()> {
    run(
        admin,
        "insert into app.organizations (id, slug, name)
         select public.bench_uuid7(), 'scale-' || i, 'Scale ' || i from generate_series($1, $2 - 1) i",
        &[from as i64, to as i64],
    )
    .await?;
    run(
        admin,
        "insert into app.audit_logs (organization_id, id, action, resource_type, resource_id, outcome)
         select o.id, public.bench_uuid7(), 'document.updated', 'document', n::text, 'success'
           from app.organizations o, generate_series(1, $3) n
          where o.slug in (select 'scale-' || i from generate_series($1, $2 - 1) i)",
        &[from as i64, to as i64, rows as i64],
    )
    .await?;
    seal_all(pool).await?;
    sqlx::raw_sql("vacuum analyze app.audit_logs").execute(&mut *admin).await?;
    Ok(())
}

/// Seals every record into its chain, as a running server would have.
pub async fn seal_all(pool: &AppPool) -> anyhow::Result<()> {
    while chain::seal(pool, None, chain::WINDOW).await?.sealed > 0 {}
    Ok(())
}
