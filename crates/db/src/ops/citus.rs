//! Citus: where each table lives on a cluster, `mos db distribute`, and the checks that only a
//! cluster needs (placements as planned, and every shard as protected as its table).
//!
//! The plan is written once, here; `docs/scaling.md` renders it and a test keeps the two equal.

use std::fmt;

use sqlx::PgConnection;

use crate::ops::catalog::{is_coordinator, missing_functions, Problem, AUDIT_TABLES, RULE_TRIGGERS};
use crate::ops::{migrate, OpsError, Result};

/// How Citus holds a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// One copy on every node: small, read everywhere, joined with tenant tables.
    Reference,
    /// Sharded by `organization_id`, every such table colocated with `audit_logs`.
    Distributed,
    /// On the coordinator only, but known to Citus, so it may reference reference tables.
    CitusLocal,
    /// A plain table on the coordinator that Citus never touches.
    Local,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reference => "reference",
            Self::Distributed => "distributed by `organization_id`",
            Self::CitusLocal => "Citus-local (coordinator)",
            Self::Local => "local (coordinator)",
        })
    }
}

pub struct TablePlan {
    pub table: &'static str,
    pub placement: Placement,
    pub why: &'static str,
}

/// Every table of the schema, in the order `distribute` creates them: reference tables before
/// the tables whose foreign keys point at them, and `audit_logs` first among the distributed
/// ones, since the others are colocated with it.
pub const PLAN: &[TablePlan] = &[
    TablePlan {
        table: "organizations",
        placement: Placement::Reference,
        why: "one row per tenant; routing reads it by slug before the tenant is known, and slugs are unique across tenants",
    },
    TablePlan {
        table: "users",
        placement: Placement::Reference,
        why: "a user belongs to no tenant; member lists join it on every shard",
    },
    TablePlan {
        table: "email_verification_tokens",
        placement: Placement::Reference,
        why: "references `users`; redeemed together with the `users` row it verifies",
    },
    TablePlan {
        table: "totp_setups",
        placement: Placement::Reference,
        why: "references `users`; confirmed together with the `users` row it changes",
    },
    TablePlan {
        table: "audit_logs",
        placement: Placement::Distributed,
        why: "the largest tenant table; every read and append names its tenant",
    },
    TablePlan {
        table: "user_organizations",
        placement: Placement::Distributed,
        why: "a tenant's members; the membership check is a single-shard query",
    },
    TablePlan {
        table: "invitations",
        placement: Placement::Distributed,
        why: "tenant data; accepting one looks the token up on every shard, which is rare",
    },
    TablePlan {
        table: "audit_chain_heads",
        placement: Placement::Distributed,
        why: "locked per tenant while sealing; on the same shard as the records it seals",
    },
    TablePlan {
        table: "audit_blocks",
        placement: Placement::Distributed,
        why: "the sealed chain, beside the records it seals",
    },
    TablePlan {
        table: "content_items",
        placement: Placement::Distributed,
        why: "tenant content; every list and change names its tenant",
    },
    TablePlan {
        table: "content_versions",
        placement: Placement::Distributed,
        why: "an item's versions, on its shard: their foreign key to the item includes `organization_id`",
    },
    TablePlan {
        table: "content_events",
        placement: Placement::Distributed,
        why: "an item's review history, on its shard, with foreign keys to the version it names",
    },
    TablePlan {
        table: "segments",
        placement: Placement::Distributed,
        why: "a tenant's saved segments; written as `app_user` only, and every read names its tenant",
    },
    TablePlan {
        table: "segment_versions",
        placement: Placement::Distributed,
        why: "a segment's versions, on its shard: their foreign key to the segment includes `organization_id`; append-only by a statement trigger that reads nothing else",
    },
    TablePlan {
        table: "signup_confirmations",
        placement: Placement::Distributed,
        why: "a tenant's mailed sign-up links; the link names the organization's slug, so redeeming one reads a single shard, and only `app_user` writes it.",
    },
    TablePlan {
        table: "contacts",
        placement: Placement::Distributed,
        why: "a tenant's people; every read and write names its tenant, and the consent rules read them on the ledger's shard",
    },
    TablePlan {
        table: "contact_attributes",
        placement: Placement::Distributed,
        why: "a tenant's attribute definitions, on the shard of the values whose foreign keys check them",
    },
    TablePlan {
        table: "contact_attribute_choices",
        placement: Placement::Distributed,
        why: "a choice attribute's values, beside the values whose foreign key checks them",
    },
    TablePlan {
        table: "contact_attribute_values",
        placement: Placement::Distributed,
        why: "a contact's values, on its shard: segments range over them per tenant, and foreign keys reach the contact and the definition",
    },
    TablePlan {
        table: "purposes",
        placement: Placement::Distributed,
        why: "a tenant's purposes; the ledger's trigger reads whether one needs a HIPAA authorization on the same shard",
    },
    TablePlan {
        table: "notices",
        placement: Placement::Distributed,
        why: "a purpose's notice versions, named by the ledger's foreign key on the same shard",
    },
    TablePlan {
        table: "consent_events",
        placement: Placement::Distributed,
        why: "the consent ledger, appended by `app_user` in the transaction that changed the contact; its rules are statement triggers that read only colocated rows of the tenant",
    },
    TablePlan {
        table: "consent_state",
        placement: Placement::Distributed,
        why: "each contact's current consent per purpose, upserted by the ledger's statement trigger on the ledger's shard (a colocated write run locally there); segments read one tenant's purpose as a range",
    },
    TablePlan {
        table: "consent_evidence",
        placement: Placement::Distributed,
        why: "an event's erasable evidence, beside the event its trigger checks it against",
    },
    TablePlan {
        table: "suppressions",
        placement: Placement::Distributed,
        why: "a tenant's suppressed address keys, read by the ledger's trigger on the same shard",
    },
    TablePlan {
        table: "contact_imports",
        placement: Placement::Distributed,
        why: "a tenant's imports; each batch updates its counts beside the contacts it adds",
    },
    TablePlan {
        table: "contact_import_chunks",
        placement: Placement::Distributed,
        why: "an uploaded file in chunks, on its import's shard",
    },
    TablePlan {
        table: "contact_import_problems",
        placement: Placement::Distributed,
        why: "the rows an import refused, written by the batch that read them",
    },
    TablePlan {
        table: "senders",
        placement: Placement::Distributed,
        why: "a tenant's senders; every read and change names its tenant, and a campaign will name one on its shard",
    },
    TablePlan {
        table: "dkim_keys",
        placement: Placement::Distributed,
        why: "a sender's keys, on its shard: their foreign key to the sender includes `organization_id`; the state trigger reads only its row",
    },
    TablePlan {
        table: "campaign_versions",
        placement: Placement::Distributed,
        why: "a campaign's definitions, on the shard of the content versions, segment versions, sender and purpose their foreign keys name",
    },
    TablePlan {
        table: "campaign_runs",
        placement: Placement::Distributed,
        why: "a launched campaign and how its sending stands, beside its ledger",
    },
    TablePlan {
        table: "campaign_messages",
        placement: Placement::Distributed,
        why: "the send ledger, one row per campaign and contact; its statement triggers read the contact, the consent ledger, the suppressions and the content of the same tenant on the same shard",
    },
    TablePlan {
        table: "campaign_tallies",
        placement: Placement::Distributed,
        why: "each campaign's ledger counted by outcome, upserted by the ledger's statement triggers on the ledger's shard (a colocated write run locally there)",
    },
    TablePlan {
        table: "delivery_feedback",
        placement: Placement::Distributed,
        why: "what came back about a sent message, beside the ledger row its foreign key names",
    },
    TablePlan {
        table: "campaign_clicks",
        placement: Placement::Distributed,
        why: "each message's followed links, beside the ledger row its foreign key names",
    },
    TablePlan {
        table: "campaign_link_tallies",
        placement: Placement::Distributed,
        why: "each campaign's clicks counted per link, upserted by the clicks' statement triggers on the clicks' shard (a colocated write run locally there)",
    },
    TablePlan {
        table: "campaign_activity",
        placement: Placement::Distributed,
        why: "each campaign's activity per hour, upserted by the triggers of the ledger, the feedback, the clicks and the consent ledger on their shard (a colocated write run locally there)",
    },
    TablePlan {
        table: "sending_breakers",
        placement: Placement::Distributed,
        why: "an organization's complaint-rate breaker, one row; the send ledger's triggers and the runs' halt check read it on the tenant's shard",
    },
    TablePlan {
        table: "sending_counts",
        placement: Placement::Distributed,
        why: "an organization's sending counted per day and month, upserted by the ledger's and the feedback's statement triggers on their shard",
    },
    TablePlan {
        table: "webhook_subscriptions",
        placement: Placement::Distributed,
        why: "an organization's webhook endpoints; the event triggers read them on the shard of the change they report",
    },
    TablePlan {
        table: "webhook_outbox",
        placement: Placement::Distributed,
        why: "events waiting for and delivered to an endpoint, written by the triggers of the change on its shard; the delivery job claims one tenant's rows (`FOR UPDATE SKIP LOCKED` in a single-shard query)",
    },
    TablePlan {
        table: "sessions",
        placement: Placement::CitusLocal,
        why: "touched by a definer function and then by `app_user` in one transaction, which reference tables refuse; references `users`",
    },
    TablePlan {
        table: "login_challenges",
        placement: Placement::CitusLocal,
        why: "like `sessions`",
    },
    TablePlan {
        table: "recovery_codes",
        placement: Placement::CitusLocal,
        why: "like `sessions`",
    },
    TablePlan {
        table: "password_reset_tokens",
        placement: Placement::CitusLocal,
        why: "like `sessions`",
    },
    TablePlan {
        table: "passkeys",
        placement: Placement::CitusLocal,
        why: "like `sessions`; a definer function finds a credential's owner before the user is known",
    },
    TablePlan {
        table: "passkey_enrollments",
        placement: Placement::CitusLocal,
        why: "like `password_reset_tokens`; redeemed together with the `passkeys` row it allows",
    },
    TablePlan {
        table: "webauthn_ceremonies",
        placement: Placement::Local,
        why: "no foreign keys; reached only through two definer functions, before the user may be known",
    },
    TablePlan {
        table: "auth_throttles",
        placement: Placement::Local,
        why: "no foreign keys; its upsert uses a STABLE expression that Citus refuses in `ON CONFLICT DO UPDATE`",
    },
    TablePlan {
        table: "jobs",
        placement: Placement::Local,
        why: "the background job queue; a claim looks across every tenant with `FOR UPDATE SKIP LOCKED`, which distributed tables do not support, so no foreign keys; every other access names its tenant under RLS",
    },
    TablePlan {
        table: "platform_audit_logs",
        placement: Placement::Local,
        why: "events outside any tenant; no foreign keys",
    },
    TablePlan {
        table: "feedback_credentials",
        placement: Placement::Local,
        why: "the installation's credentials for feedback over HTTP; no foreign keys; reached only through a definer function",
    },
];

/// The plan as the Markdown table in `docs/scaling.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| table | Citus table type | why |\n| --- | --- | --- |\n");
    for plan in PLAN {
        out.push_str(&format!("| `{}` | {} | {} |\n", plan.table, plan.placement, plan.why));
    }
    out
}

/// How Citus holds `app.<table>` now.
async fn placement(conn: &mut PgConnection, table: &str) -> Result<Placement> {
    let row: Option<PartitionRow> = sqlx::query_as(
        "select partmethod::text as method, repmodel::text as model from pg_dist_partition
          where logicalrelid = to_regclass('app.' || $1)",
    )
    .bind(table)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row.as_ref().map(|r| (r.method.as_str(), r.model.as_str())) {
        None => Placement::Local,
        Some(("h", _)) => Placement::Distributed,
        Some(("n", "t")) => Placement::Reference,
        Some(_) => Placement::CitusLocal,
    })
}

/// The tables of `app`, for comparing with the plan.
async fn tables(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'app' and c.relkind in ('r', 'p') order by 1",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Places every table as [`PLAN`] says, in its order, skipping what is already placed. Refuses
/// a database that is not Citus, whose migrations are pending, that has a table the plan does
/// not name, or whose table is placed otherwise. Afterwards it takes the rights to rewrite
/// history away from the owner on every shard again (Citus does not copy an owner's revoke of
/// its own rights), and proves that no function was lost. Returns what it did.
pub async fn distribute(conn: &mut PgConnection) -> Result<Vec<String>> {
    if !is_coordinator(conn).await? {
        return Err(OpsError::NotCitus);
    }
    migrate::ensure_current(conn).await?;
    let unplanned: Vec<String> =
        tables(conn).await?.into_iter().filter(|t| !PLAN.iter().any(|p| p.table == t)).collect();
    if !unplanned.is_empty() {
        return Err(OpsError::Unplanned(unplanned.join(", ")));
    }
    // Off: otherwise Citus quietly turns a local table that references a new reference table
    // into a Citus-local one, and recreating it later drops what depends on it. On: the audit
    // guards are statement triggers that read no other table, which is safe on shards.
    sqlx::raw_sql("set citus.enable_local_reference_table_foreign_keys = off; set citus.enable_unsafe_triggers = on")
        .execute(&mut *conn)
        .await?;
    let mut done = Vec::new();
    for plan in PLAN {
        let now = placement(conn, plan.table).await?;
        if now == plan.placement {
            continue;
        }
        if now != Placement::Local {
            return Err(OpsError::Misplaced { table: plan.table, planned: plan.placement, found: now });
        }
        let qualified = format!("app.{}", plan.table);
        let sql = match plan.placement {
            Placement::Reference => "select create_reference_table($1::regclass)",
            Placement::Distributed if plan.table == "audit_logs" => {
                "select create_distributed_table($1::regclass, 'organization_id')"
            }
            Placement::Distributed => {
                "select create_distributed_table($1::regclass, 'organization_id', colocate_with => 'app.audit_logs')"
            }
            Placement::CitusLocal => {
                "select citus_add_local_table_to_metadata($1::regclass, cascade_via_foreign_keys => true)"
            }
            Placement::Local => continue,
        };
        sqlx::query(sql).bind(&qualified).execute(&mut *conn).await?;
        done.push(format!("{qualified}: {}", plan.placement));
    }
    sqlx::raw_sql("reset citus.enable_local_reference_table_foreign_keys; reset citus.enable_unsafe_triggers")
        .execute(&mut *conn)
        .await?;
    // A revoke on a distributed table reaches every shard.
    let audit: Vec<String> = AUDIT_TABLES.iter().map(|t| format!("app.{t}")).collect();
    sqlx::raw_sql(&format!("revoke update, delete, truncate on {} from mos_owner", audit.join(", ")))
        .execute(&mut *conn)
        .await?;
    // Taking over a table, Citus recreates the views over it without their grants.
    sqlx::raw_sql("grant select on app.consent_current to app_user").execute(&mut *conn).await?;
    let missing = missing_functions(conn).await?;
    if !missing.is_empty() {
        return Err(OpsError::FunctionsLost(missing.join(", ")));
    }
    Ok(done)
}

/// The checks a cluster needs besides the catalog checks of the coordinator.
pub(crate) async fn check(conn: &mut PgConnection) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let mut sharded = Vec::new();
    for plan in PLAN {
        let found = placement(conn, plan.table).await?;
        if found != plan.placement {
            problems.push(Problem {
                code: "citus_placement",
                detail: format!(
                    "table app.{} is {found}, planned as {}; run `mos db distribute`",
                    plan.table, plan.placement
                ),
            });
        }
        if found != Placement::Local {
            sharded.push(plan.table);
        }
    }
    for login in owner_logins(conn).await? {
        problems.push(Problem { code: "owner_can_login", detail: login });
    }
    for table in sharded {
        problems.extend(shard_problems(conn, table).await?);
    }
    problems.extend(worker_problems(conn).await?);
    Ok(problems)
}

/// On Citus the owner and definer roles log in to the workers, with credentials that only
/// `pg_dist_authinfo` holds; a login without them is a login someone else set up.
async fn owner_logins(conn: &mut PgConnection) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select format('role %s can log in but the coordinator holds no credentials for it in pg_dist_authinfo', r.rolname)
           from pg_roles r
          where r.rolname in ('mos_owner', 'mos_definer') and r.rolcanlogin
            and not exists (select from pg_dist_authinfo a where a.rolename = r.rolname and a.nodeid = 0)",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// What one shard of `table` lacks, as a list joined by "; " (empty when nothing). Citus
/// substitutes the shard's name for every `%1$s`, through `format()`, so the command has no
/// other `%`.
fn shard_probe(table: &str, policies: i64) -> String {
    let mut parts = vec![
        "case when not (c.relrowsecurity and c.relforcerowsecurity) then 'row-level security is not enabled and forced' end".to_owned(),
        format!(
            "case when (select count(*) from pg_policy p where p.polrelid = c.oid) <> {policies}
                  then (select count(*) from pg_policy p where p.polrelid = c.oid)::text || ' policies instead of {policies}' end"
        ),
    ];
    if AUDIT_TABLES.contains(&table) {
        parts.push(
            "(select string_agg(r.name || ' can ' || lower(g.priv), ', ')
                from unnest(array['app_user', 'mos_owner', 'mos_definer']) r(name)
               cross join unnest(array['UPDATE', 'DELETE', 'TRUNCATE']) g(priv)
               where has_table_privilege(r.name, c.oid, g.priv))"
                .to_owned(),
        );
        parts.push(format!(
            "case when (select count(*) from pg_trigger t where t.tgrelid = c.oid and t.tgenabled = 'A'
                         and t.tgname ~ '^{table}_append_only_(rows|truncate)') <> 2
                  then 'an audit guard trigger is missing or not ENABLE ALWAYS' end"
        ));
    }
    for (_, trigger) in RULE_TRIGGERS.iter().filter(|(t, _)| *t == table) {
        parts.push(format!(
            "case when not exists (select from pg_trigger t where t.tgrelid = c.oid and t.tgenabled = 'A'
                                      and t.tgname ~ '^{trigger}')
                  then 'rule trigger {trigger} is missing or not ENABLE ALWAYS' end"
        ));
    }
    format!("select concat_ws('; ', {}) from pg_class c where c.oid = '%1$s'::regclass", parts.join(", "))
}

/// Every placement of `table` on every node checked against its table on the coordinator.
/// How `pg_dist_partition` holds a table: `h` hash-distributed, `n` with model `t` a reference
/// table.
#[derive(sqlx::FromRow)]
struct PartitionRow {
    method: String,
    model: String,
}

/// What a probe run on one node (and shard) answered.
#[derive(sqlx::FromRow)]
struct NodeAnswer {
    nodename: String,
    nodeport: i32,
    #[sqlx(default)]
    shardid: i64,
    success: bool,
    result: String,
}

async fn shard_problems(conn: &mut PgConnection, table: &str) -> Result<Vec<Problem>> {
    let policies: i64 = sqlx::query_scalar("select count(*) from pg_policy where polrelid = to_regclass('app.' || $1)")
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
    let rows: Vec<NodeAnswer> = sqlx::query_as(
        "select nodename::text as nodename, nodeport, shardid, success, result
           from run_command_on_placements(to_regclass('app.' || $1), $2)
          where not success or result <> ''
          order by shardid, nodeport",
    )
    .bind(table)
    .bind(shard_probe(table, policies))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|a| Problem {
            code: if a.success { "shard_unprotected" } else { "shard_unreachable" },
            detail: format!("shard {} of app.{table} on {}:{}: {}", a.shardid, a.nodename, a.nodeport, a.result),
        })
        .collect())
}

/// The functions that shards need on every worker: the policies, constraints and guards call
/// them there.
const WORKER_FUNCTIONS: &[&str] =
    &["current_tenant_id()", "current_user_id()", "is_uuid_v7(uuid)", "audit_logs_append_only()", "append_only()"];

async fn worker_problems(conn: &mut PgConnection) -> Result<Vec<Problem>> {
    let probe = format!(
        "select coalesce(string_agg(f.name, ', '), '') from unnest(array[{}]) f(name)
          where to_regprocedure('app.' || f.name) is null",
        WORKER_FUNCTIONS.iter().map(|f| format!("'{f}'")).collect::<Vec<_>>().join(", ")
    );
    let rows: Vec<NodeAnswer> = sqlx::query_as(
        "select nodename::text as nodename, nodeport, success, result from run_command_on_workers($1)
          where not success or result <> '' order by nodeport",
    )
    .bind(probe)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|a| Problem {
            code: if a.success { "worker_function_missing" } else { "shard_unreachable" },
            detail: format!(
                "worker {}:{}: {}",
                a.nodename,
                a.nodeport,
                if a.success { format!("missing app.{}", a.result) } else { a.result }
            ),
        })
        .collect())
}
