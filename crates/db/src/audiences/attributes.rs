//! Custom attributes: the organization defines them, and the database checks every value
//! against its definition (its kind, a text's length, a choice's list).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use crate::{audit, DbError, Result, TenantTx};
use mos_domain::audiences::{AttributeKind, AttributeName};
use mos_domain::events::{ATTRIBUTE, ATTRIBUTE_DEFINED};
use mos_domain::{AttributeId, AuditEvent, ContactId, RequestSource, UserId};

/// A value of a custom attribute, typed as the column that holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Date(NaiveDate),
    Boolean(bool),
    Choice(String),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Number(_) => "number",
            Self::Date(_) => "date",
            Self::Boolean(_) => "boolean",
            Self::Choice(_) => "choice",
        }
    }
}

/// Defines an attribute; a name the organization already uses is a conflict
/// (`contact_attributes_name_key`).
pub async fn define(
    tx: &mut TenantTx,
    name: &AttributeName,
    kind: &AttributeKind,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<AttributeId> {
    let id = AttributeId::new();
    let max_length = match kind {
        AttributeKind::Text { max_length } => Some(*max_length),
        _ => None,
    };
    sqlx::query(
        "insert into app.contact_attributes (organization_id, id, name, kind, max_length, created_at)
         values ($1, $2, $3, $4::text::app.attribute_kind, $5, $6)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(name.as_str())
    .bind(kind.as_str())
    .bind(max_length)
    .bind(now)
    .execute(tx.conn())
    .await?;
    if let AttributeKind::Choice { choices } = kind {
        // A VALUES list, not `select unnest(..)`: Citus runs an INSERT .. SELECT that reads no
        // table as a COPY, which row-level security refuses.
        let rows: Vec<String> = (0..choices.len()).map(|n| format!("($1, $2, ${})", n + 3)).collect();
        let sql = format!(
            "insert into app.contact_attribute_choices (organization_id, attribute_id, value) values {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(tx.org().as_uuid()).bind(id.as_uuid());
        for choice in choices {
            query = query.bind(choice);
        }
        query.execute(tx.conn()).await?;
    }
    let event = AuditEvent::new(ATTRIBUTE_DEFINED, ATTRIBUTE)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("name", json!(name.as_str()))
        .meta("kind", json!(kind.as_str()));
    audit::record(tx, &event).await?;
    Ok(id)
}

/// Sets a contact's value of an attribute. The definition's length is copied from the
/// definition in the same statement; a value of another kind than the attribute's, or for an
/// attribute the organization does not have, is refused as `contact_attribute_values_kind_fkey`,
/// a text too long as `contact_attribute_values_text_length`, a choice not in the list as
/// `contact_attribute_values_choice_fkey`.
pub async fn set(tx: &mut TenantTx, contact: ContactId, attribute: AttributeId, value: &Value) -> Result<()> {
    let (text, number, date, boolean, choice) = match value {
        Value::Text(v) => (Some(v.as_str()), None, None, None, None),
        Value::Number(v) => (None, Some(*v), None, None, None),
        Value::Date(v) => (None, None, Some(*v), None, None),
        Value::Boolean(v) => (None, None, None, Some(*v), None),
        Value::Choice(v) => (None, None, None, None, Some(v.as_str())),
    };
    let done = sqlx::query(
        "insert into app.contact_attribute_values
                (organization_id, contact_id, attribute_id, kind, max_length,
                 text_value, number_value, date_value, boolean_value, choice_value)
         select $1, $2, a.id, a.kind, a.max_length, $4, $5::float8::numeric, $6, $7, $8
           from app.contact_attributes a
          where a.organization_id = $1 and a.id = $3 and a.kind = $9::text::app.attribute_kind
         on conflict (organization_id, contact_id, attribute_id) do update
            set text_value = excluded.text_value, number_value = excluded.number_value,
                date_value = excluded.date_value, boolean_value = excluded.boolean_value,
                choice_value = excluded.choice_value",
    )
    .bind(tx.org().as_uuid())
    .bind(contact.as_uuid())
    .bind(attribute.as_uuid())
    .bind(text)
    .bind(number)
    .bind(date)
    .bind(boolean)
    .bind(choice)
    .bind(value.kind())
    .execute(tx.conn())
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::Invalid { constraint: "contact_attribute_values_kind_fkey".to_owned() });
    }
    Ok(())
}
