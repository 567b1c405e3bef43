-- Background jobs: one queue in PostgreSQL for everything that outlives a request (imports
-- first, sending later). A job belongs to one tenant and runs in a transaction scoped to it;
-- a runner claims it under a lease that it renews while it works, so a runner that dies
-- leaves a job that another claims again once the lease has run out.
--
-- The queue is a plain table on the coordinator (Citus never distributes it): a claim looks
-- across every tenant with `FOR UPDATE SKIP LOCKED`, which a distributed table does not
-- support, and the claim is the only query that spans tenants. Having no placement, it
-- carries no foreign key to `organizations` (a reference table), like `auth_throttles`.
--
-- Every other access (enqueue, progress, cancel, finish) is `app_user` in a transaction
-- scoped to the job's tenant, so RLS applies as to any tenant table; only the claim, which
-- has no tenant yet, is a definer function.

create type app.job_state as enum ('queued', 'running', 'succeeded', 'failed', 'cancelled');

create table app.jobs (
    organization_id     uuid not null,
    id                  uuid not null constraint jobs_id_v7 check (app.is_uuid_v7(id)),
    kind                text not null constraint jobs_kind check (kind ~ '^[a-z][a-z_]{0,39}$'),
    payload             jsonb not null default '{}'::jsonb,
    state               app.job_state not null default 'queued',
    attempts            integer not null default 0,
    max_attempts        integer not null constraint jobs_max_attempts check (max_attempts between 1 and 100),
    -- Not claimed before this moment: a new job's creation, a retry's backoff.
    run_after           timestamptz not null,
    -- The claim that holds the job: a token only that runner knows, and when it runs out.
    lease_token         uuid,
    lease_expires_at    timestamptz,
    last_claimed_at     timestamptz,
    cancel_requested_at timestamptz,
    -- Progress as the job reports it, committed with the work it counts.
    total               bigint constraint jobs_total check (total >= 0),
    done                bigint not null default 0 constraint jobs_done check (done >= 0),
    errors              bigint not null default 0 constraint jobs_errors check (errors >= 0),
    -- Milliseconds the job spent running, over all attempts: rows per second that leave out
    -- the pauses between attempts.
    busy_ms             bigint not null default 0 constraint jobs_busy check (busy_ms >= 0),
    last_error          text constraint jobs_last_error_length check (length(last_error) <= 1000),
    created_at          timestamptz not null,
    finished_at         timestamptz,
    primary key (organization_id, id),
    constraint jobs_attempts check (attempts between 0 and max_attempts),
    constraint jobs_lease check ((state = 'running') = (lease_token is not null and lease_expires_at is not null)),
    constraint jobs_finished check ((state in ('succeeded', 'failed', 'cancelled')) = (finished_at is not null))
);
-- What a claim scans: only jobs that may still run, oldest first.
create index jobs_claimable_idx on app.jobs (run_after, organization_id) where state in ('queued', 'running');
create index jobs_tenant_recent_idx on app.jobs (organization_id, created_at desc);
create index jobs_tenant_served_idx on app.jobs (organization_id, last_claimed_at desc) where last_claimed_at is not null;

alter table app.jobs enable row level security;
alter table app.jobs force row level security;
create policy tenant_isolation on app.jobs
    using (organization_id = app.current_tenant_id())
    with check (organization_id = app.current_tenant_id());
create policy definer_claim on app.jobs to mos_definer using (true) with check (true);

revoke all on app.jobs from public;
grant select, insert on app.jobs to app_user;
grant update (state, attempts, run_after, lease_token, lease_expires_at, cancel_requested_at, total, done, errors,
              busy_ms, last_error, finished_at) on app.jobs to app_user;
grant select, update on app.jobs to mos_definer;

set local citus.enable_ddl_propagation = off;
grant create on schema app to mos_definer;
set local role mos_definer;

-- Claims one job for `p_token` until `p_now + p_lease`, or returns nothing. Fair between
-- tenants: the tenant with the fewest running jobs goes first, then the one served least
-- recently, so one tenant's queue of long jobs cannot keep another's waiting for a free
-- runner. A running job whose lease ran out is claimable again (its runner died); one that
-- had used its last attempt fails instead, and one whose cancel was asked for is cancelled.
create function app.job_claim(p_token uuid, p_kinds text[], p_now timestamptz, p_lease interval)
    returns table (organization_id uuid, id uuid, kind text, payload jsonb, attempts integer)
    language plpgsql volatile security definer
    set search_path = pg_catalog, pg_temp
    as $$
declare
    v_org uuid;
begin
    update app.jobs j
       set state = case when j.cancel_requested_at is not null then 'cancelled'::app.job_state
                        else 'failed'::app.job_state end,
           last_error = case when j.cancel_requested_at is not null then j.last_error
                             else 'the runner stopped answering during its last attempt' end,
           lease_token = null, lease_expires_at = null, finished_at = p_now
     where j.state = 'running' and j.lease_expires_at <= p_now
       and (j.cancel_requested_at is not null or j.attempts >= j.max_attempts);
    for v_org in
        select c.organization_id
          from (select q.organization_id,
                       count(*) filter (where q.state = 'running' and q.lease_expires_at > p_now) as running,
                       min(q.run_after) filter (where q.state = 'queued' or q.lease_expires_at <= p_now) as due
                  from app.jobs q
                 where q.state in ('queued', 'running')
                 group by q.organization_id) c
          -- When the tenant was last served, finished jobs included: one index probe each.
          left join lateral (select s.last_claimed_at as served from app.jobs s
                              where s.organization_id = c.organization_id and s.last_claimed_at is not null
                              order by s.last_claimed_at desc limit 1) l on true
         where c.due <= p_now
         order by c.running, l.served nulls first, c.due
    loop
        return query
            update app.jobs j
               set state = 'running', attempts = j.attempts + 1, lease_token = p_token,
                   lease_expires_at = p_now + p_lease, last_claimed_at = p_now
             where (j.organization_id, j.id) = (
                       select n.organization_id, n.id from app.jobs n
                        where n.organization_id = v_org and n.kind = any (p_kinds) and n.run_after <= p_now
                          and (n.state = 'queued' or (n.state = 'running' and n.lease_expires_at <= p_now))
                        order by n.run_after, n.id
                        limit 1
                          for update skip locked)
            returning j.organization_id, j.id, j.kind, j.payload, j.attempts;
        if found then
            return;
        end if;
    end loop;
end
$$;
revoke all on function app.job_claim(uuid, text[], timestamptz, interval) from public;
grant execute on function app.job_claim(uuid, text[], timestamptz, interval) to app_user;

set local role mos_owner;
revoke create on schema app from mos_definer;
