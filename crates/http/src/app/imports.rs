//! Contact imports: upload a CSV file, see its first rows and a suggested mapping, start it
//! with a mapping and an optional consent provenance, watch it, cancel it, and download the
//! problems of its rows. The import itself runs as a job (`mos_db::audiences::import::run`);
//! these operations store the upload, queue the job and read its progress. Every operation
//! needs `contacts.manage`: an upload is a list of people, and so are its first rows, whose
//! showing leaves an audit record as a page of contacts does.

use std::collections::HashSet;

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use mos_db::audiences::browse::{self, Attribute};
use mos_db::audiences::import::{self, Mapping, Preview, Provenance, StartError, Target};
use mos_db::audiences::import_views::{self, Status};
use mos_db::jobs;
use mos_db::{audit, AppPool, DbError};
use mos_domain::events::{CONTACT_IMPORT, CONTACT_IMPORT_CANCELLED, CONTACT_IMPORT_PREVIEWED, CONTACT_IMPORT_STARTED};
use mos_domain::{AuditEvent, ImportId, JobId, OrgId, PurposeId, UserId};
use serde_json::json;

use crate::access::{Authorized, ManageContacts};
use crate::app::audit::csv_field;
use crate::{paging, ApiError, AppState};

/// Data rows the preview shows.
pub const PREVIEW_ROWS: usize = 5;
/// Problems read per statement while the CSV of problems streams.
const PROBLEMS_PAGE: i64 = 1_000;

fn invalid(field: &'static str, message: impl ToString) -> ApiError {
    ApiError::Invalid { field, message: message.to_string() }
}

fn parse_import(id: &str) -> Result<ImportId, ApiError> {
    ImportId::parse(id).map_err(|_| ApiError::NotFound)
}

/// What an upload answers, and what the mapping page shows: the import, its file's first rows
/// and dialect, a mapping suggested from the header's names, and the attributes a column may
/// fill.
pub struct Mappable {
    pub status: Status,
    pub preview: Preview,
    pub suggested: Mapping,
    pub attributes: Vec<Attribute>,
}

/// A header's name as the suggestion compares it: lower case, letters and digits only.
fn folded(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// A mapping from the header's names: the fields under the names people give them, and the
/// attributes under their own names; each target once, the first column that names it.
pub fn suggest(header: &[String], attributes: &[Attribute]) -> Mapping {
    let mut taken = HashSet::new();
    header
        .iter()
        .map(|name| {
            let key = folded(name);
            let target = match key.as_str() {
                "email" | "emailaddress" | "mail" | "address" | "courriel" => Some(Target::Address),
                "name" | "fullname" | "contactname" => Some(Target::Name),
                "locale" | "language" | "lang" => Some(Target::Locale),
                "timezone" | "tz" | "zone" => Some(Target::TimeZone),
                "tags" | "tag" | "labels" => Some(Target::Tags),
                _ => attributes.iter().find(|a| folded(&a.name) == key).map(|a| Target::Attribute(a.name.clone())),
            };
            target.filter(|t| taken.insert(t.clone()))
        })
        .collect()
}

/// Stores an uploaded file as it arrives, at most `state.settings.import_max_bytes` of it,
/// and answers its preview. The preview's rows are personal data: showing them is recorded.
pub async fn upload<S, E>(
    state: &AppState,
    auth: Authorized<ManageContacts>,
    file_name: &str,
    body: S,
) -> Result<Mappable, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Send,
    E: std::error::Error + Send + Sync + 'static,
{
    let max = state.settings.import_max_bytes;
    let mut tx = auth.tx;
    let id = import::create(&mut tx, file_name, auth.session.user, state.clock.now()).await?;
    let mut upload = import::Upload::new(id);
    let mut size: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(bytes) = body.next().await {
        // A client that stops sending mid-file: nothing of it is kept (the transaction rolls back).
        let bytes = bytes.map_err(|e| ApiError::MalformedBody(format!("the upload was cut off: {e}")))?;
        size += bytes.len() as u64;
        if size > max {
            return Err(ApiError::BodyTooLarge { limit: usize::try_from(max).unwrap_or(usize::MAX) });
        }
        upload.push(&mut tx, &bytes).await?;
    }
    if size == 0 {
        return Err(invalid("file", "the file is empty; send the CSV file as the request body"));
    }
    upload.finish(&mut tx).await?;
    let preview = match import::preview(&mut tx, id, PREVIEW_ROWS).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(invalid("file", "the file is empty")),
        Err(DbError::Invalid { .. }) => {
            return Err(invalid("file", "the file's first line is not a CSV header (or is longer than 1 MiB)"))
        }
        Err(e) => return Err(e.into()),
    };
    if preview.header.iter().all(String::is_empty) {
        return Err(invalid("file", "the file's first line names no column"));
    }
    let mappable = mappable(&mut tx, id, preview, auth.session.user, &auth.source).await?;
    tx.commit().await?;
    Ok(mappable)
}

/// The import's status, a mapping suggestion and its attributes, and the record that `preview`'s
/// rows were shown.
async fn mappable(
    tx: &mut mos_db::TenantTx,
    id: ImportId,
    preview: Preview,
    actor: UserId,
    source: &mos_domain::RequestSource,
) -> Result<Mappable, ApiError> {
    let status = import_views::status(tx, id).await?.ok_or(ApiError::NotFound)?;
    let attributes = browse::attributes(tx).await?;
    let suggested = suggest(&preview.header, &attributes);
    if !preview.rows.is_empty() {
        // Rows as a spreadsheet numbers them: the header is row 1.
        let rows: Vec<usize> = (2..preview.rows.len() + 2).collect();
        let event = AuditEvent::new(CONTACT_IMPORT_PREVIEWED, CONTACT_IMPORT)
            .resource_id(id)
            .actor(actor)
            .source(source.clone())
            .meta("rows", json!(rows));
        audit::record(tx, &event).await?;
    }
    Ok(Mappable { status, preview, suggested, attributes })
}

/// An uploaded import's first rows and suggested mapping, again (the mapping page).
pub async fn preview(auth: &mut Authorized<ManageContacts>, id: &str) -> Result<Mappable, ApiError> {
    let id = parse_import(id)?;
    let preview = import::preview(&mut auth.tx, id, PREVIEW_ROWS).await?.ok_or(ApiError::NotFound)?;
    mappable(&mut auth.tx, id, preview, auth.session.user, &auth.source).await
}

/// The purposes an import's consent may name, each with its notice versions (newest first):
/// what the mapping page offers. A purpose that needs a HIPAA authorization is left out, as an
/// import cannot carry one.
pub async fn consent_choices(
    auth: &mut Authorized<ManageContacts>,
) -> Result<Vec<(browse::Purpose, Vec<browse::Notice>)>, ApiError> {
    let mut choices = Vec::new();
    for purpose in browse::purposes(&mut auth.tx).await? {
        if purpose.needs_hipaa_authorization || purpose.notices == 0 {
            continue;
        }
        let notices = browse::notices(&mut auth.tx, purpose.id).await?;
        choices.push((purpose, notices));
    }
    Ok(choices)
}

/// Imports, newest first, a page at a time.
pub async fn list(
    auth: &mut Authorized<ManageContacts>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Status>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let before = cursor.map(ImportId::parse).transpose().map_err(|_| paging::bad_cursor())?;
    let rows = import_views::list(&mut auth.tx, before, limit + 1).await?;
    Ok(paging::split(rows, limit, |s: &Status| s.import.id.to_string()))
}

/// One import, with its job's progress.
pub async fn status(auth: &mut Authorized<ManageContacts>, id: &str) -> Result<Status, ApiError> {
    let id = parse_import(id)?;
    import_views::status(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)
}

/// A column's target as a client names it: `address`, `name`, `locale`, `time_zone`, `tags`, or
/// `attribute` with the attribute's name.
pub fn target(field: &str, name: Option<&str>) -> Result<Target, String> {
    Ok(match (field, name) {
        ("address", None) => Target::Address,
        ("name", None) => Target::Name,
        ("locale", None) => Target::Locale,
        ("time_zone", None) => Target::TimeZone,
        ("tags", None) => Target::Tags,
        ("attribute", Some(name)) if !name.trim().is_empty() => Target::Attribute(name.trim().to_owned()),
        ("attribute", _) => return Err("an attribute column names the attribute (`name`)".into()),
        (_, Some(_)) => return Err(format!("only an attribute column has a name, not {field:?}")),
        _ => {
            return Err(format!(
                "{field:?} is not a field; fields are address, name, locale, time_zone, tags, attribute"
            ))
        }
    })
}

/// Where the list came from, as a client writes it.
pub struct ProvenanceInput<'a> {
    pub purpose: &'a str,
    /// `consent` or `exemption`.
    pub lawful_basis: &'a str,
    pub exemption: Option<&'a str>,
    pub notice_sha256: &'a str,
    pub description: &'a str,
}

impl ProvenanceInput<'_> {
    fn parse(&self) -> Result<Provenance, ApiError> {
        let purpose =
            PurposeId::parse(self.purpose.trim()).map_err(|_| invalid("provenance.purpose", "no such purpose"))?;
        let exemption = match (self.lawful_basis, self.exemption.map(str::trim).filter(|e| !e.is_empty())) {
            ("consent", None) => None,
            ("consent", Some(_)) => {
                return Err(invalid(
                    "provenance.exemption",
                    "an exemption is described only with lawful_basis exemption",
                ))
            }
            ("exemption", Some(e)) => Some(e.to_owned()),
            ("exemption", None) => {
                return Err(invalid("provenance.exemption", "an exemption must be described in 1 to 2000 characters"))
            }
            _ => {
                return Err(invalid(
                    "provenance.lawful_basis",
                    "an import records consent or a documented exemption (a HIPAA authorization cannot be imported)",
                ))
            }
        };
        Ok(Provenance {
            purpose,
            exemption,
            notice_sha256: self.notice_sha256.trim().to_ascii_lowercase(),
            description: self.description.trim().to_owned(),
        })
    }
}

/// The request field at fault for each refusal of a start.
fn refusal(e: StartError) -> ApiError {
    let message = e.to_string();
    match e {
        StartError::NotUploaded => ApiError::Conflict("the upload of this import is not complete"),
        StartError::AlreadyStarted => ApiError::Conflict("this import has already started"),
        StartError::ColumnCount { .. }
        | StartError::Address
        | StartError::Twice(_)
        | StartError::UnknownAttribute(_) => invalid("mapping", message),
        StartError::UnknownPurpose | StartError::NeedsAuthorization => invalid("provenance.purpose", message),
        StartError::UnknownNotice => invalid("provenance.notice_sha256", message),
        StartError::Description => invalid("provenance.description", message),
        StartError::Exemption => invalid("provenance.exemption", message),
    }
}

/// Sets the mapping and provenance and queues the import; without a provenance the contacts are
/// imported without consent. Wakes this process's runner, so the import starts at once.
pub async fn start(
    state: &AppState,
    auth: Authorized<ManageContacts>,
    id: &str,
    mapping: &Mapping,
    provenance: Option<&ProvenanceInput<'_>>,
) -> Result<Status, ApiError> {
    let id = parse_import(id)?;
    let provenance = provenance.map(ProvenanceInput::parse).transpose()?;
    let mut tx = auth.tx;
    import_views::status(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    import::start(&mut tx, id, mapping, provenance.as_ref(), state.clock.now()).await?.map_err(refusal)?;
    let mut event = AuditEvent::new(CONTACT_IMPORT_STARTED, CONTACT_IMPORT)
        .resource_id(id)
        .actor(auth.session.user)
        .source(auth.source.clone())
        .meta("with_consent", json!(provenance.is_some()));
    if let Some(provenance) = &provenance {
        event = event.meta("purpose", json!(provenance.purpose));
    }
    audit::record(&mut tx, &event).await?;
    let status = import_views::status(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    state.wake_jobs();
    Ok(status)
}

/// Asks a started import to stop: a queued one is cancelled at once, a running one after the
/// batch it is writing, keeping the batches written before.
pub async fn cancel(state: &AppState, auth: Authorized<ManageContacts>, id: &str) -> Result<Status, ApiError> {
    let id = parse_import(id)?;
    let mut tx = auth.tx;
    let current = import_views::status(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    let job = current
        .import
        .job_id
        .and_then(|j| JobId::from_uuid(j).ok())
        .ok_or(ApiError::Conflict("this import has not started; there is nothing to cancel"))?;
    jobs::cancel(&mut tx, job, state.clock.now()).await?.ok_or(ApiError::NotFound)?;
    let event = AuditEvent::new(CONTACT_IMPORT_CANCELLED, CONTACT_IMPORT)
        .resource_id(id)
        .actor(auth.session.user)
        .source(auth.source.clone());
    audit::record(&mut tx, &event).await?;
    let status = import_views::status(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(status)
}

/// Where the stream of problems is.
struct Reading {
    pool: AppPool,
    org: OrgId,
    user: UserId,
    import: ImportId,
    after: Option<(i64, String)>,
    header: bool,
    done: bool,
}

/// The problems of an import's rows as CSV (row, column, reason), streamed: each page of them
/// is read in a transaction of its own, so neither the server's memory nor one transaction
/// grows with their number.
pub async fn problems_csv(
    state: &AppState,
    auth: Authorized<ManageContacts>,
    id: &str,
) -> Result<impl Stream<Item = Result<Bytes, DbError>> + Send + 'static, ApiError> {
    let id = parse_import(id)?;
    let mut tx = auth.tx;
    import_views::status(&mut tx, id).await?.ok_or(ApiError::NotFound)?;
    let org = tx.org();
    tx.commit().await?;
    let start = Reading {
        pool: state.pool.clone(),
        org,
        user: auth.session.user,
        import: id,
        after: None,
        header: true,
        done: false,
    };
    Ok(futures_util::stream::unfold(start, |mut r| async move {
        if r.header {
            r.header = false;
            return Some((Ok(Bytes::from_static(b"row,column,reason\r\n")), r));
        }
        if r.done {
            return None;
        }
        let page = async {
            let mut tx = r.pool.begin_tenant(r.org, Some(r.user)).await?;
            let after = r.after.as_ref().map(|(row, column)| (*row, column.as_str()));
            let rows = import_views::problems_after(&mut tx, r.import, after, PROBLEMS_PAGE).await?;
            tx.commit().await?;
            Ok::<_, DbError>(rows)
        }
        .await;
        match page {
            Err(e) => {
                r.done = true;
                Some((Err(e), r))
            }
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                r.done = (rows.len() as i64) < PROBLEMS_PAGE;
                let mut text = String::new();
                for p in &rows {
                    text.push_str(&format!(
                        "{},{},{}\r\n",
                        p.row_number,
                        csv_field(&p.column_name),
                        csv_field(&p.reason)
                    ));
                }
                r.after = rows.last().map(|p| (p.row_number, p.column_name.clone()));
                Some((Ok(Bytes::from(text)), r))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::folded;

    #[test]
    fn a_header_name_is_compared_by_its_letters_and_digits() {
        assert_eq!(folded("E-mail Address"), "emailaddress");
        assert_eq!(folded("Time zone"), "timezone");
    }
}
