//! Organizations and memberships. Each function works inside the tenant's own [`TenantTx`]
//! and filters on `organization_id` explicitly: RLS is the safety net, the filter is what lets
//! a distributed engine route the query to one shard.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::error::stored;
use crate::{Result, TenantTx};
use mos_domain::{OrgId, OrgName, Role, Slug, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrgId,
    pub slug: Slug,
    pub name: OrgName,
    pub created_at: DateTime<Utc>,
}

/// Creates the organization that `tx` is scoped to.
pub async fn insert(tx: &mut TenantTx, slug: &Slug, name: &OrgName) -> Result<Organization> {
    let created_at: DateTime<Utc> =
        sqlx::query_scalar("insert into app.organizations (id, slug, name) values ($1, $2, $3) returning created_at")
            .bind(tx.org().as_uuid())
            .bind(slug.as_str())
            .bind(name.as_str())
            .fetch_one(tx.conn())
            .await?;
    Ok(Organization { id: tx.org(), slug: slug.clone(), name: name.clone(), created_at })
}

/// The organization `tx` is scoped to, if it exists.
pub async fn get(tx: &mut TenantTx) -> Result<Option<Organization>> {
    let row = sqlx::query("select slug, name, created_at from app.organizations where id = $1")
        .bind(tx.org().as_uuid())
        .fetch_optional(tx.conn())
        .await?;
    row.map(|row| {
        let slug: String = row.try_get("slug")?;
        let name: String = row.try_get("name")?;
        Ok(Organization {
            id: tx.org(),
            slug: Slug::parse(&slug).map_err(|_| stored("organizations_slug_format"))?,
            name: OrgName::parse(&name).map_err(|_| stored("organizations_name_format"))?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

/// Adds `user` to the organization with `role`.
pub async fn add_member(tx: &mut TenantTx, user: UserId, role: Role) -> Result<()> {
    sqlx::query("insert into app.user_organizations (organization_id, user_id, role) values ($1, $2, $3::app.role)")
        .bind(tx.org().as_uuid())
        .bind(user.as_uuid())
        .bind(role.as_str())
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Every member of the organization with their role, oldest membership first.
pub async fn members(tx: &mut TenantTx) -> Result<Vec<(UserId, Role)>> {
    let rows = sqlx::query(
        "select user_id, role::text as role from app.user_organizations where organization_id = $1 order by created_at, user_id",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    rows.iter()
        .map(|row| {
            let user = UserId::from_uuid(row.try_get("user_id")?).map_err(|_| stored("users_id_v7"))?;
            let role: String = row.try_get("role")?;
            let role = role.parse().map_err(|_| stored("app.role"))?;
            Ok((user, role))
        })
        .collect()
}
