//! `mos audit bench`: what hash-chaining costs. In a scratch database on the configured server,
//! it appends the same audit records to `app.audit_logs` with a sealer chaining them as `serve`
//! does, and to a plain copy of the table under the same RLS policies with nothing chaining
//! it, for one tenant with many writers and for many tenants with one writer each; it prints
//! the ratios and how far sealing lagged. It measures; nothing asserts a time.

use std::time::{Duration, Instant};

use anyhow::Context;
use mos_db::{audit, chain, migrate, orgs, users, AppPool};
use mos_domain::{AuditAction, AuditEvent, Email, OrgId, OrgName, ResourceType, Slug, UserId};
use sqlx::{ConnectOptions, Connection};

use crate::database::Database;

const PLAIN_TABLE: &str = "
create table public.bench_plain (like app.audit_logs including defaults including constraints including indexes);
alter table public.bench_plain enable row level security;
alter table public.bench_plain force row level security;
create policy tenant_read on public.bench_plain for select using (organization_id = app.current_tenant_id());
create policy tenant_append on public.bench_plain for insert with check (organization_id = app.current_tenant_id());
grant select, insert on public.bench_plain to app_user;
";

const PLAIN_INSERT: &str = "insert into public.bench_plain
    (organization_id, id, actor_user_id, action, resource_type, resource_id, outcome, changes, metadata)
    values ($1, $2, $3, $4, $5, $6, 'success', '{}', $7)";

/// Pre-hashed: the benchmark measures appends, not password hashing.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$YmVuY2hzYWx0$YmVuY2hoYXNoYmVuY2hoYXNo";

pub async fn run(db: &Database, seconds: u64, writers: usize) -> anyhow::Result<()> {
    let name = format!("mos_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = db.admin().await?;
    sqlx::raw_sql(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .context("creating the scratch database")?;
    let result = measure(db, &name, Duration::from_secs(seconds), writers.max(1)).await;
    sqlx::raw_sql(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await
        .context("dropping the scratch database")?;
    result
}

async fn measure(db: &Database, name: &str, duration: Duration, writers: usize) -> anyhow::Result<()> {
    let mut conn = db.admin_options().database(name).connect().await?;
    migrate::run(&mut conn).await?;
    sqlx::raw_sql(PLAIN_TABLE).execute(&mut conn).await?;
    let pool = db.app_pool_on(Some(name), writers as u32 + 2).await?;

    let actor = UserId::new();
    let mut tx = pool.begin_user(actor).await?;
    users::insert(&mut tx, &Email::parse("bench@example.com")?, HASH, None).await?;
    tx.commit().await?;
    let mut tenants = Vec::new();
    for i in 0..writers {
        let org = OrgId::new();
        let mut tx = pool.begin_tenant(org, Some(actor)).await?;
        orgs::insert(&mut tx, &Slug::parse(&format!("bench-{i}"))?, &OrgName::parse("Bench")?).await?;
        tx.commit().await?;
        tenants.push(org);
    }

    println!("{writers} writers, {} s per run, each append its own transaction", duration.as_secs());
    let one = &tenants[..1];
    // Interleaved, with a warm-up run, so that drift on a noisy machine hits both sides alike.
    phase(&pool, one, writers, false, Duration::from_secs(1), actor).await?;
    let plain_one = phase(&pool, one, writers, false, duration, actor).await?;
    let (chained_one, lag_one) = sealed_phase(&pool, one, writers, duration, actor).await?;
    let plain_many = phase(&pool, &tenants, writers, false, duration, actor).await?;
    let (chained_many, lag_many) = sealed_phase(&pool, &tenants, writers, duration, actor).await?;
    let broken =
        chain::verify(&mut conn, None, chrono::Utc::now()).await?.into_iter().filter(|r| r.broken.is_some()).count();
    pool.close().await;
    conn.close().await?;

    let rate = |n: u64| n as f64 / duration.as_secs_f64();
    let report = |label: &str, plain: u64, chained: u64, target: f64| {
        let ratio = chained as f64 / plain.max(1) as f64;
        println!(
            "{label:<28} plain {:>8.0}/s  chained {:>8.0}/s  ratio {ratio:.2} (target {target:.1}): {}",
            rate(plain),
            rate(chained),
            if ratio >= target { "met" } else { "NOT met" }
        );
    };
    report(&format!("1 tenant, {writers} writers"), plain_one, chained_one, 0.5);
    report(&format!("{writers} tenants, 1 writer each"), plain_many, chained_many, 0.8);
    println!(
        "sealing: every record chained within {} ms of the end of its run ({} ms with many tenants); chains verified, {broken} broken",
        lag_one.as_millis(),
        lag_many.as_millis()
    );
    Ok(())
}

/// A chained run: appends with a sealer sweeping every second as in `serve`, then how long the
/// sealer needs after the run to have chained everything.
async fn sealed_phase(
    pool: &AppPool,
    tenants: &[OrgId],
    writers: usize,
    duration: Duration,
    actor: UserId,
) -> anyhow::Result<(u64, Duration)> {
    let sealer = tokio::spawn(crate::audit_cmd::sealer(pool.clone()));
    let appended = phase(pool, tenants, writers, true, duration, actor).await?;
    sealer.abort();
    let ended = Instant::now();
    while chain::seal(pool, None, chain::WINDOW).await?.sealed > 0 {}
    Ok((appended, ended.elapsed()))
}

/// Appends for `duration` with `writers` tasks, writer `w` writing to `tenants[w % len]`.
async fn phase(
    pool: &AppPool,
    tenants: &[OrgId],
    writers: usize,
    chained: bool,
    duration: Duration,
    actor: UserId,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let pool = pool.clone();
            let org = tenants[w % tenants.len()];
            tokio::spawn(async move {
                let mut appended = 0u64;
                while Instant::now() < deadline {
                    append(&pool, org, actor, chained, appended).await?;
                    appended += 1;
                }
                anyhow::Ok(appended)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

async fn append(pool: &AppPool, org: OrgId, actor: UserId, chained: bool, n: u64) -> anyhow::Result<()> {
    const ACTION: AuditAction = AuditAction::known("bench.appended");
    const RESOURCE: ResourceType = ResourceType::known("document");
    let mut tx = pool.begin_tenant(org, Some(actor)).await?;
    if chained {
        let event = AuditEvent::new(ACTION, RESOURCE).actor(actor).resource_id(n).meta("n", serde_json::json!(n));
        audit::record(&mut tx, &event).await?;
    } else {
        sqlx::query(PLAIN_INSERT)
            .bind(org.as_uuid())
            .bind(uuid::Uuid::now_v7())
            .bind(actor.as_uuid())
            .bind(ACTION.as_str())
            .bind(RESOURCE.as_str())
            .bind(n.to_string())
            .bind(sqlx::types::Json(serde_json::json!({ "n": n })))
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
