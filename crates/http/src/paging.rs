//! Keyset pagination, the same for every list: `limit` (1 to 500, default 50) and the
//! `next_cursor` of the previous page, opaque to clients.

use crate::ApiError;

pub const PAGE_DEFAULT: i64 = 50;
pub const PAGE_MAX: i64 = 500;

/// The page size asked for, or 422.
pub fn limit(asked: Option<i64>) -> Result<i64, ApiError> {
    let limit = asked.unwrap_or(PAGE_DEFAULT);
    if (1..=PAGE_MAX).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Invalid { field: "limit", message: format!("limit must be 1 to {PAGE_MAX}") })
    }
}

pub fn bad_cursor() -> ApiError {
    ApiError::Invalid { field: "cursor", message: "cursor is not one this API issued".into() }
}

/// A page from `limit + 1` rows: the extra row only says that another page follows, and the
/// cursor of the last row kept is where it starts.
pub fn split<T>(mut rows: Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more { rows.last().map(cursor_of) } else { None };
    (rows, next)
}
