//! Reading an organization's audit trail, for its ADMINs: filtered, keyset-paginated pages,
//! and the verification of its hash chain. Writing records is not here: every operation
//! writes its own, in its own transaction (`mos_db::audit`).

use chrono::{DateTime, Utc};
use data_encoding::BASE64URL_NOPAD;
use mos_db::audit::{self, AuditRecord, Filter};
use mos_db::chain::Report;

use crate::access::{Authorized, ReadAuditLog};
use crate::{paging, ApiError, AppState};

/// What to look for; every field narrows the trail.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Only records whose actor is this user.
    pub actor: Option<uuid::Uuid>,
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time (exclusive).
    pub to: Option<DateTime<Utc>>,
}

impl Search {
    /// The filter of the database, from `cursor` on (the `next_cursor` of a page).
    pub fn filter(&self, cursor: Option<&str>) -> Result<Filter, ApiError> {
        let before = cursor.map(|c| parse_cursor(c).ok_or_else(paging::bad_cursor)).transpose()?;
        Ok(Filter {
            actor: self.actor,
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            from: self.from,
            to: self.to,
            before,
        })
    }
}

/// Where the page after `record` starts.
pub fn cursor_of(record: &AuditRecord) -> String {
    BASE64URL_NOPAD.encode(format!("{}|{}", record.created_at.timestamp_micros(), record.id).as_bytes())
}

pub fn parse_cursor(text: &str) -> Option<(DateTime<Utc>, uuid::Uuid)> {
    let raw = String::from_utf8(BASE64URL_NOPAD.decode(text.as_bytes()).ok()?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    Some((DateTime::from_timestamp_micros(micros.parse().ok()?)?, uuid::Uuid::try_parse(id).ok()?))
}

/// A page of the records that `search` finds, newest first, from `cursor` on, and the cursor
/// of the next page.
pub async fn page(
    auth: &mut Authorized<ReadAuditLog>,
    search: &Search,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<AuditRecord>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let filter = search.filter(cursor)?;
    let records = audit::search(&mut auth.tx, &filter, limit + 1).await?;
    Ok(paging::split(records, limit, cursor_of))
}

/// Verifies the organization's chain now: every sealed record recomputed and linked, as
/// `mos audit verify` does for one organization. A pass over the whole trail.
pub async fn verify_chain(state: &AppState, auth: &mut Authorized<ReadAuditLog>) -> Result<Report, ApiError> {
    Ok(mos_db::chain::verify_tenant(&mut auth.tx, state.clock.now()).await?)
}

/// Passes every record that `search` finds, newest first, to `each` until it returns false,
/// reading from a database cursor (the trail is never held in memory), then ends the
/// transaction.
pub async fn export<F, Fut>(auth: Authorized<ReadAuditLog>, search: &Search, each: F) -> Result<(), ApiError>
where
    F: FnMut(AuditRecord) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut tx = auth.tx;
    audit::for_each(&mut tx, &search.filter(None)?, each).await?;
    tx.commit().await?;
    Ok(())
}

/// A CSV field: quoted when it must be, and defused when a spreadsheet would read it as a
/// formula (CWE-1236). Every CSV the product writes (the audit export, an import's problems)
/// holds text that someone else wrote.
pub fn csv_field(value: &str) -> String {
    let defused =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}
