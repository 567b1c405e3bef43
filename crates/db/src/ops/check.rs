//! `mos db check`: inspects the live catalog for every way tenant isolation or the append-only
//! audit log could be quietly switched off, and lists each problem it finds.

use sqlx::PgConnection;

use crate::ops::catalog::{self, AUDIT_TABLES, RULE_TRIGGERS};
pub use crate::ops::catalog::{missing_functions, Problem, EXPECTED_FUNCTIONS};
use crate::ops::{citus, migrate, Result};

/// The lowest patch releases with the fixes for CVE-2024-10976 (RLS policies under reused
/// query plans) and CVE-2024-10978, per major version.
const MIN_PATCHED: &[(i32, i32)] = &[(12, 21), (13, 17), (14, 14), (15, 9), (16, 5), (17, 1)];

/// Each query yields one text column per problem found.
const CHECKS: &[(&str, &str)] = &[
    (
        "rls_disabled",
        "select format('table %s has row-level security %s', c.oid::regclass,
                       case when not c.relrowsecurity then 'disabled' else 'enabled but not forced' end)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p')
            and (not c.relrowsecurity or not c.relforcerowsecurity)
            and (n.nspname = 'app'
                 or exists (select from pg_attribute a
                             where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))",
    ),
    (
        "no_policies",
        "select format('table %s has no row-level security policy, so nobody can use it', c.oid::regclass)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p') and c.relrowsecurity
            and (n.nspname = 'app'
                 or exists (select from pg_attribute a
                             where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))
            and not exists (select from pg_policy p where p.polrelid = c.oid)",
    ),
    (
        "policy_subquery",
        "select format('policy %s on %s uses a sub-query, which distributed engines reject', p.polname, p.polrelid::regclass)
           from pg_policy p
          where coalesce(p.polqual::text, '') like '%{SUBLINK%' or coalesce(p.polwithcheck::text, '') like '%{SUBLINK%'",
    ),
    (
        "app_role_missing",
        "select 'role app_user does not exist' where not exists (select from pg_roles where rolname = 'app_user')",
    ),
    (
        "app_role_privileged",
        "select format('role %s %s', r.rolname,
                       concat_ws(' and ',
                                 case when r.rolsuper then 'is a superuser' end,
                                 case when r.rolbypassrls then 'bypasses row-level security' end,
                                 case when r.rolname <> 'app_user' then 'is granted to app_user' end))
           from pg_roles r
          where pg_has_role('app_user', r.oid, 'member')
            and (r.rolsuper or r.rolbypassrls or r.rolname <> 'app_user')
            and exists (select from pg_roles where rolname = 'app_user')",
    ),
    (
        "app_role_owns",
        "select format('role app_user owns %s %s', kind, name) from (
             select 'relation' as kind, c.oid::regclass::text as name, c.relowner as owner from pg_class c
             union all select 'function', p.oid::regprocedure::text, p.proowner from pg_proc p
             union all select 'schema', n.nspname::text, n.nspowner from pg_namespace n
             union all select 'type', t.oid::regtype::text, t.typowner from pg_type t
             union all select 'database', d.datname::text, d.datdba from pg_database d
         ) owned
         where owned.owner = (select oid from pg_roles where rolname = 'app_user')",
    ),
    (
        "audit_writable",
        "select format('role %s can %s app.%s', r.rolname, lower(priv), t.name)
           from pg_roles r
          cross join unnest(array['UPDATE', 'DELETE', 'TRUNCATE']) priv
          cross join unnest($1::text[]) t(name)
          where r.rolname in ('app_user', 'mos_owner', 'mos_definer')
            and to_regclass('app.' || t.name) is not null
            and has_table_privilege(r.oid, 'app.' || t.name, priv)",
    ),
    (
        "audit_guard",
        "select format('audit guard trigger %s is %s', g.name,
                       case when tr.tgenabled is null then 'missing'
                            else 'not ENABLE ALWAYS (state ' || tr.tgenabled::text || ')' end)
           from unnest($1::text[]) t(name)
          cross join lateral (values (t.name || '_append_only_rows'), (t.name || '_append_only_truncate')) g(name)
           left join pg_trigger tr on tr.tgname = g.name and tr.tgrelid = to_regclass('app.' || t.name)
          where tr.tgenabled is distinct from 'A'",
    ),
    (
        "definer_search_path",
        "select format('SECURITY DEFINER function %s does not pin search_path', p.oid::regprocedure)
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
            and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
            and not exists (select from unnest(p.proconfig) c where c like 'search_path=%')",
    ),
    (
        "definer_privileged",
        "select format('SECURITY DEFINER function %s runs as %s, which %s', p.oid::regprocedure, r.rolname,
                       case when r.rolsuper then 'is a superuser' else 'bypasses row-level security' end)
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_roles r on r.oid = p.proowner
          where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
            and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
            and (r.rolsuper or r.rolbypassrls)",
    ),
    (
        "view_not_invoker",
        "select format('view %s is not security_invoker, so it reads with its owner''s rights', c.oid::regclass)
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind = 'v' and n.nspname not in ('pg_catalog', 'information_schema')
            and not exists (select from pg_depend d where d.objid = c.oid and d.deptype = 'e')
            and not coalesce('security_invoker=true' = any(c.reloptions)
                             or 'security_invoker=on' = any(c.reloptions), false)",
    ),
    (
        "sql_function_with_parameters",
        "select format('function %s is a SQL-language function with parameters, which Citus cannot plan; write it in PL/pgSQL',
                       p.oid::regprocedure)
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'app' and p.pronargs > 0 and p.provolatile <> 'i'
            and p.prolang = (select oid from pg_language where lanname = 'sql')",
    ),
];

/// Each of [`RULE_TRIGGERS`] that is missing or not ENABLE ALWAYS.
const RULE_TRIGGER: &str = "select format('rule trigger %s on app.%s is %s', r.name, r.tab,
                   case when tr.tgenabled is null then 'missing'
                        else 'not ENABLE ALWAYS (state ' || tr.tgenabled::text || ')' end)
       from unnest($1::text[], $2::text[]) r(tab, name)
       left join pg_trigger tr on tr.tgname = r.name and tr.tgrelid = to_regclass('app.' || r.tab)
      where tr.tgenabled is distinct from 'A'";

/// On plain PostgreSQL nobody logs in as the owner or the definer; on Citus they log in to the
/// workers with credentials only the coordinator holds, which [`citus`] checks instead.
const OWNER_CAN_LOGIN: &str = "select format('role %s can log in; it must be NOLOGIN', rolname)
   from pg_roles where rolname in ('mos_owner', 'mos_definer') and rolcanlogin";

/// Runs every check; an empty list means the database is fit to serve.
pub async fn run(conn: &mut PgConnection) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();

    let version: i32 =
        sqlx::query_scalar("select current_setting('server_version_num')::int").fetch_one(&mut *conn).await?;
    if let Some(why) = version_problem(version) {
        problems.push(Problem { code: "postgres_version", detail: why });
    }

    match migrate::status(conn).await {
        Ok(status) if !status.pending.is_empty() => problems.push(Problem {
            code: "migrations_pending",
            detail: format!("{} migration(s) pending: {:?}", status.pending.len(), status.pending),
        }),
        Ok(_) => {}
        Err(e) => problems.push(Problem { code: "migrations", detail: e.to_string() }),
    }

    let audit_tables: Vec<String> = AUDIT_TABLES.iter().map(|s| s.to_string()).collect();
    for (code, sql) in CHECKS {
        let query = sqlx::query_scalar::<_, String>(sql);
        let query = if sql.contains("$1") { query.bind(&audit_tables) } else { query };
        for detail in query.fetch_all(&mut *conn).await? {
            problems.push(Problem { code, detail });
        }
    }
    let (tables, triggers): (Vec<&str>, Vec<&str>) = RULE_TRIGGERS.iter().copied().unzip();
    for detail in
        sqlx::query_scalar::<_, String>(RULE_TRIGGER).bind(&tables).bind(&triggers).fetch_all(&mut *conn).await?
    {
        problems.push(Problem { code: "rule_trigger", detail });
    }
    for name in missing_functions(conn).await? {
        problems.push(Problem { code: "function_missing", detail: format!("function app.{name} is missing") });
    }
    if catalog::is_coordinator(conn).await? {
        problems.extend(citus::check(conn).await?);
    } else {
        for detail in sqlx::query_scalar::<_, String>(OWNER_CAN_LOGIN).fetch_all(&mut *conn).await? {
            problems.push(Problem { code: "owner_can_login", detail });
        }
    }
    Ok(problems)
}

fn version_problem(version_num: i32) -> Option<String> {
    let (major, minor) = (version_num / 10_000, version_num % 10_000);
    let shown = format!("{major}.{minor}");
    match MIN_PATCHED.iter().find(|(m, _)| *m == major) {
        Some((_, min)) if minor < *min => Some(format!(
            "PostgreSQL {shown} lacks the row-level security fixes of {major}.{min}; upgrade to {major}.{min} or later"
        )),
        Some(_) => None,
        None if major < MIN_PATCHED[0].0 => {
            Some(format!("PostgreSQL {shown} is no longer supported; use 15.9, 16.5, 17.1 or later"))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::version_problem;

    #[test]
    fn versions_before_the_rls_fixes_are_reported() {
        assert!(version_problem(150008).is_some());
        assert!(version_problem(160004).is_some());
        assert!(version_problem(170000).is_some());
        assert!(version_problem(110022).is_some());
    }

    #[test]
    fn patched_and_newer_versions_pass() {
        for v in [150009, 150018, 160005, 170001, 180000] {
            assert_eq!(version_problem(v), None, "{v}");
        }
    }
}
