//! Importing contacts from CSV, as a background job (`crate::jobs`).
//!
//! The upload is stored in PostgreSQL in chunks of at most [`CHUNK_BYTES`] as it arrives, with
//! its SHA-256, so an import resumed on another server or after a restart reads the same
//! bytes. The job parses it streamed, one chunk in memory at a time, on a blocking thread
//! (parsing, validating and keying addresses is CPU work), and hands batches of
//! [`BATCH_ROWS`] rows to the writer. Each batch is one tenant transaction: the valid rows go
//! into contacts, attribute values and consent events by one `INSERT ... SELECT` each from
//! arrays bound as parameters, which Citus routes to the tenant's shard (see `write`); the
//! rows it refused are stored with row,
//! column and reason; the job's progress (rows read) is committed with them. A resumed import
//! skips the rows already read, so nothing is imported twice.
//!
//! Rules, chosen to keep an import from overwriting what people recorded:
//! - an address the organization already has (or an earlier row of the file added) is
//!   reported and left as it is; a later row with the same address as an earlier row of the
//!   same batch is reported too;
//! - a row with an invalid field is not imported; each invalid field is reported;
//! - a suppressed address is imported without consent and reported; only the person's
//!   confirmed double opt-in can consent for it again;
//! - without a provenance, contacts are imported without consent (and cannot be mailed).
//!
//! The whole import leaves one audit record, with the file's SHA-256 and the counts, never a
//! row's data.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use super::export::{self, LedgerEvent};
use super::suppression::in_force;
use crate::error::stored;
use crate::jobs::runner::{Next, Outcome, Work};
use crate::jobs::{self, Ending, JobKind, Progress};
use crate::{audit, AppPool, DbError, Result, TenantTx};
use mos_domain::audiences::AddressKeyer;
use mos_domain::content::ContentHash;
use mos_domain::events::{CONSENT_IMPORTED, CONTACTS_IMPORTED, CONTACT_IMPORT};
use mos_domain::merkle;
use mos_domain::{AuditEvent, ConsentEventId, ContactId, Email, ImportId, JobId, OrgId, PurposeId, UserId};

/// The job kind that runs imports.
pub const IMPORT_JOB: JobKind = JobKind::new("contact_import");
/// The largest chunk stored: big enough that a million rows take a few dozen chunks, small
/// enough that the parser holds one at a time.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Rows per batch, committed together with the job's progress.
pub const BATCH_ROWS: usize = 5_000;
/// Attempts an import gets; a resumed attempt carries on where the last batch committed.
pub const MAX_ATTEMPTS: i32 = 5;
/// Tags in one cell are separated by this character, which no CSV dialect uses as delimiter.
pub const TAG_SEPARATOR: char = '|';

/// What a column of the file fills.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "field", content = "name")]
pub enum Target {
    Address,
    Name,
    Locale,
    TimeZone,
    Tags,
    /// A custom attribute, by its name.
    Attribute(String),
}

/// One entry per column of the header, in order; `None` leaves the column out.
pub type Mapping = Vec<Option<Target>>;

/// Where the list came from, which every consent it records names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub purpose: PurposeId,
    /// `None`: consent; `Some`: a documented exemption, described.
    pub exemption: Option<String>,
    /// The notice version the people saw, by its SHA-256 (hex).
    pub notice_sha256: String,
    /// Where the list came from, in the member's words.
    pub description: String,
}

/// Why a mapping or provenance cannot start an import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error("the upload is not complete")]
    NotUploaded,
    #[error("the import has already started")]
    AlreadyStarted,
    #[error("the mapping has {given} columns, the header {header}")]
    ColumnCount { given: usize, header: usize },
    #[error("exactly one column must be the address")]
    Address,
    #[error("{0:?} is mapped twice")]
    Twice(String),
    #[error("no attribute is named {0:?}")]
    UnknownAttribute(String),
    #[error("the purpose does not exist")]
    UnknownPurpose,
    #[error("the purpose needs a HIPAA authorization, which an import cannot carry")]
    NeedsAuthorization,
    #[error("the notice is not a version of the purpose")]
    UnknownNotice,
    #[error("the description must have 1 to 2000 characters")]
    Description,
    #[error("an exemption must be described in 1 to 2000 characters")]
    Exemption,
}

/// Creates an import for a file about to be uploaded.
pub async fn create(tx: &mut TenantTx, file_name: &str, by: UserId, now: DateTime<Utc>) -> Result<ImportId> {
    let id = ImportId::new();
    let name: String = file_name.chars().filter(|c| !c.is_control()).take(255).collect();
    let name = if name.trim().is_empty() { "upload.csv".to_owned() } else { name };
    sqlx::query(
        "insert into app.contact_imports (organization_id, id, file_name, created_by, created_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(name)
    .bind(by.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Stores an upload as it arrives: full chunks go to the database at once, so memory holds at
/// most one chunk whatever the file's size.
pub struct Upload {
    import: ImportId,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
    chunks: i32,
    records: Option<Records>,
}

/// Counts a CSV's records as its chunks are stored, so that an import's progress has a total.
/// Where a record ends depends on the delimiter too (a quote opens a quoted field only at a
/// field's start), which is detected from the first chunk as the import's job detects it.
struct Records {
    reader: csv_core::Reader,
    count: u64,
}

impl Records {
    /// Counts the records that `input` ends; an empty `input` is the end of the file (which
    /// csv_core reads into any empty input, so a chunk is never followed by one before then).
    fn feed(&mut self, mut input: &[u8]) {
        // The fields themselves are not wanted: they are read into a small buffer that is
        // overwritten (a field longer than it is read in pieces).
        let (mut fields, mut ends) = ([0u8; 1024], [0usize; 64]);
        let end = input.is_empty();
        while end || !input.is_empty() {
            let (result, read, _, _) = self.reader.read_record(input, &mut fields, &mut ends);
            input = &input[read..];
            match result {
                csv_core::ReadRecordResult::Record => self.count += 1,
                csv_core::ReadRecordResult::End => return,
                _ => {}
            }
        }
    }
}

impl Upload {
    pub fn new(import: ImportId) -> Self {
        Self {
            import,
            buffer: Vec::with_capacity(CHUNK_BYTES),
            hasher: Sha256::new(),
            size: 0,
            chunks: 0,
            records: None,
        }
    }

    pub async fn push(&mut self, tx: &mut TenantTx, mut bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        while !bytes.is_empty() {
            let room = CHUNK_BYTES - self.buffer.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.buffer.extend_from_slice(now);
            bytes = later;
            if self.buffer.len() == CHUNK_BYTES {
                self.flush(tx).await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self, tx: &mut TenantTx) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let delimiter = detect_delimiter(&self.buffer);
        let records = self.records.get_or_insert_with(|| Records {
            reader: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            count: 0,
        });
        records.feed(&self.buffer);
        sqlx::query(
            "insert into app.contact_import_chunks (organization_id, import_id, seq, data) values ($1, $2, $3, $4)",
        )
        .bind(tx.org().as_uuid())
        .bind(self.import.as_uuid())
        .bind(self.chunks)
        .bind(&self.buffer)
        .execute(tx.conn())
        .await?;
        self.chunks += 1;
        self.buffer.clear();
        Ok(())
    }

    /// Stores the rest and seals the import with the file's SHA-256, size and rows (the
    /// records after the header); returns the hash.
    pub async fn finish(mut self, tx: &mut TenantTx) -> Result<[u8; 32]> {
        self.flush(tx).await?;
        // No input is the end of the file: a last record without a line end counts too.
        let records = self.records.as_mut().map_or(0, |r| {
            r.feed(&[]);
            r.count
        });
        let sha256: [u8; 32] = self.hasher.finalize().into();
        let sealed = sqlx::query(
            "update app.contact_imports set file_sha256 = $3, size_bytes = $4, chunks = $5, rows = $6
              where organization_id = $1 and id = $2 and file_sha256 is null",
        )
        .bind(tx.org().as_uuid())
        .bind(self.import.as_uuid())
        .bind(sha256.as_slice())
        .bind(self.size as i64)
        .bind(self.chunks)
        .bind(i64::try_from(records.saturating_sub(1)).unwrap_or(i64::MAX))
        .execute(tx.conn())
        .await?;
        if sealed.rows_affected() != 1 {
            return Err(stored("contact_imports_sealed"));
        }
        Ok(sha256)
    }
}

/// An import as its organization sees it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Import {
    #[sqlx(try_from = "Uuid")]
    pub id: ImportId,
    pub file_name: String,
    #[sqlx(try_from = "Uuid")]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub file_sha256: Option<Vec<u8>>,
    pub size_bytes: Option<i64>,
    pub chunks: Option<i32>,
    /// The file's rows after the header, counted as it was uploaded.
    pub rows: Option<i64>,
    pub mapping: Option<serde_json::Value>,
    pub provenance: Option<serde_json::Value>,
    pub job_id: Option<Uuid>,
    pub imported: i64,
    pub existing: i64,
    pub suppressed: i64,
    pub invalid: i64,
    pub finished_at: Option<DateTime<Utc>>,
}

pub async fn get(tx: &mut TenantTx, id: ImportId) -> Result<Option<Import>> {
    Ok(sqlx::query_as(
        "select id, file_name, created_by, created_at, file_sha256, size_bytes, chunks, rows, mapping, provenance, job_id,
                imported, existing, suppressed, invalid, finished_at
           from app.contact_imports where organization_id = $1 and id = $2",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?)
}

async fn chunk(tx: &mut TenantTx, import: ImportId, seq: i32) -> Result<Option<Vec<u8>>> {
    Ok(sqlx::query_scalar(
        "select data from app.contact_import_chunks where organization_id = $1 and import_id = $2 and seq = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(import.as_uuid())
    .bind(seq)
    .fetch_optional(tx.conn())
    .await?)
}

/// The file's dialect and header, and its first rows, as the mapping form shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub delimiter: u8,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `;` when the header line has more semicolons than commas outside quotes, else `,`.
pub fn detect_delimiter(start: &[u8]) -> u8 {
    let (mut commas, mut semicolons, mut quoted) = (0, 0, false);
    for &b in start.strip_prefix(BOM).unwrap_or(start) {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
    }
    if semicolons > commas {
        b';'
    } else {
        b','
    }
}

fn reader<R: std::io::Read>(delimiter: u8, input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(input)
}

/// Reads the header and up to `rows` rows from the first chunk (a header longer than a chunk
/// is refused as `contact_imports_header`).
pub async fn preview(tx: &mut TenantTx, import: ImportId, rows: usize) -> Result<Option<Preview>> {
    let Some(first) = chunk(tx, import, 0).await? else { return Ok(None) };
    let delimiter = detect_delimiter(&first);
    let body = first.strip_prefix(BOM).unwrap_or(&first);
    let mut csv = reader(delimiter, body);
    let header: Vec<String> = csv
        .byte_headers()
        .map_err(|_| stored("contact_imports_header"))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_owned())
        .collect();
    let mut shown = Vec::new();
    for record in csv.byte_records().take(rows) {
        // The chunk may end inside a row: show what was read whole.
        let Ok(record) = record else { break };
        shown.push(record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect());
    }
    Ok(Some(Preview { delimiter, header, rows: shown }))
}

/// Sets the mapping and provenance and queues the import's job; returns the job.
pub async fn start(
    tx: &mut TenantTx,
    import: ImportId,
    mapping: &Mapping,
    provenance: Option<&Provenance>,
    now: DateTime<Utc>,
) -> Result<std::result::Result<JobId, StartError>> {
    let Some(current) = get(tx, import).await? else { return Ok(Err(StartError::NotUploaded)) };
    if current.job_id.is_some() {
        return Ok(Err(StartError::AlreadyStarted));
    }
    if current.file_sha256.is_none() {
        return Ok(Err(StartError::NotUploaded));
    }
    let Some(preview) = preview(tx, import, 0).await? else { return Ok(Err(StartError::NotUploaded)) };
    if let Err(e) = check_mapping(tx, mapping, preview.header.len()).await? {
        return Ok(Err(e));
    }
    if let Some(p) = provenance {
        if let Err(e) = check_provenance(tx, p).await? {
            return Ok(Err(e));
        }
    }
    let job = jobs::enqueue(tx, IMPORT_JOB, &json!({ "import": import }), MAX_ATTEMPTS, now).await?;
    sqlx::query(
        "update app.contact_imports set mapping = $3, provenance = $4, job_id = $5
          where organization_id = $1 and id = $2 and job_id is null",
    )
    .bind(tx.org().as_uuid())
    .bind(import.as_uuid())
    .bind(json!(mapping))
    .bind(provenance.map(|p| json!(p)))
    .bind(job.as_uuid())
    .execute(tx.conn())
    .await?;
    Ok(Ok(job))
}

async fn check_mapping(
    tx: &mut TenantTx,
    mapping: &Mapping,
    columns: usize,
) -> Result<std::result::Result<(), StartError>> {
    if mapping.len() != columns {
        return Ok(Err(StartError::ColumnCount { given: mapping.len(), header: columns }));
    }
    let targets: Vec<&Target> = mapping.iter().flatten().collect();
    if targets.iter().filter(|t| ***t == Target::Address).count() != 1 {
        return Ok(Err(StartError::Address));
    }
    let mut seen = HashSet::new();
    for t in &targets {
        if !seen.insert(*t) {
            return Ok(Err(StartError::Twice(format!("{t:?}"))));
        }
    }
    let attributes = definitions(tx).await?;
    for t in targets {
        if let Target::Attribute(name) = t {
            if !attributes.contains_key(name) {
                return Ok(Err(StartError::UnknownAttribute(name.clone())));
            }
        }
    }
    Ok(Ok(()))
}

async fn check_provenance(tx: &mut TenantTx, p: &Provenance) -> Result<std::result::Result<(), StartError>> {
    if !(1..=2000).contains(&p.description.trim().chars().count()) {
        return Ok(Err(StartError::Description));
    }
    if p.exemption.as_ref().is_some_and(|e| !(1..=2000).contains(&e.trim().chars().count())) {
        return Ok(Err(StartError::Exemption));
    }
    let org = tx.org().as_uuid();
    let needs: Option<bool> =
        sqlx::query_scalar("select needs_hipaa_authorization from app.purposes where organization_id = $1 and id = $2")
            .bind(org)
            .bind(p.purpose.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    match needs {
        None => return Ok(Err(StartError::UnknownPurpose)),
        Some(true) => return Ok(Err(StartError::NeedsAuthorization)),
        Some(false) => {}
    }
    let Ok(hash) = ContentHash::parse(&p.notice_sha256) else { return Ok(Err(StartError::UnknownNotice)) };
    let found: bool = sqlx::query_scalar(
        "select exists (select from app.notices where organization_id = $1 and purpose_id = $2 and sha256 = $3)",
    )
    .bind(org)
    .bind(p.purpose.as_uuid())
    .bind(hash.as_bytes())
    .fetch_one(tx.conn())
    .await?;
    Ok(if found { Ok(()) } else { Err(StartError::UnknownNotice) })
}

/// An attribute as the parser checks values against it.
#[derive(Debug, Clone)]
struct Definition {
    id: Uuid,
    kind: String,
    max_length: Option<i32>,
    choices: HashSet<String>,
}

async fn definitions(tx: &mut TenantTx) -> Result<HashMap<String, Definition>> {
    let rows = sqlx::query(
        "select a.name, a.id, a.kind::text as kind, a.max_length,
                coalesce(array_agg(c.value) filter (where c.value is not null), '{}') as choices
           from app.contact_attributes a
           left join app.contact_attribute_choices c
             on c.organization_id = a.organization_id and c.attribute_id = a.id
          where a.organization_id = $1
          group by a.name, a.id, a.kind, a.max_length",
    )
    .bind(tx.org().as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let mut out = HashMap::new();
    for row in rows {
        let choices: Vec<String> = row.try_get("choices")?;
        out.insert(
            row.try_get("name")?,
            Definition {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                max_length: row.try_get("max_length")?,
                choices: choices.into_iter().collect(),
            },
        );
    }
    Ok(out)
}

/// A refused row's field.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Problem {
    pub row_number: i64,
    pub column_name: String,
    pub reason: String,
}

/// The problems after `after_row`, in row order, at most `limit`.
pub async fn problems(tx: &mut TenantTx, import: ImportId, after_row: i64, limit: i64) -> Result<Vec<Problem>> {
    Ok(sqlx::query_as(
        "select row_number, column_name, reason from app.contact_import_problems
          where organization_id = $1 and import_id = $2 and row_number > $3
          order by row_number, column_name limit $4",
    )
    .bind(tx.org().as_uuid())
    .bind(import.as_uuid())
    .bind(after_row)
    .bind(limit)
    .fetch_all(tx.conn())
    .await?)
}

/// One valid row, ready for the staging tables.
struct Staged {
    row_number: i64,
    id: ContactId,
    event: ConsentEventId,
    address: String,
    key: [u8; 32],
    name: Option<String>,
    locale: Option<String>,
    time_zone: Option<String>,
    tags: Vec<String>,
    values: Vec<(usize, Value)>,
}

enum Value {
    Text(String),
    Number(f64),
    Date(NaiveDate),
    Boolean(bool),
    Choice(String),
}

/// The rows read since the last batch: the valid ones and the problems of the others.
struct Batch {
    /// Data rows read from the start of the file once this batch is written.
    read: i64,
    rows: Vec<Staged>,
    problems: Vec<Problem>,
}

/// How each column is read, resolved once per run.
struct Plan {
    delimiter: u8,
    columns: Vec<(String, Option<Column>)>,
    attributes: Vec<Definition>,
}

enum Column {
    Address,
    Name,
    Locale,
    TimeZone,
    Tags,
    Attribute(usize),
}

fn valid_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or_default();
    (2..=3).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Reads one data row; `Err` lists its problems.
fn parse_row(
    plan: &Plan,
    keys: &dyn AddressKeyer,
    row_number: i64,
    record: &csv::ByteRecord,
) -> std::result::Result<Staged, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut staged = Staged {
        row_number,
        id: ContactId::new(),
        event: ConsentEventId::new(),
        address: String::new(),
        key: [0; 32],
        name: None,
        locale: None,
        time_zone: None,
        tags: Vec::new(),
        values: Vec::new(),
    };
    let problem = |column: &str, reason: &str| Problem {
        row_number,
        column_name: column.chars().take(200).collect(),
        reason: reason.to_owned(),
    };
    for (i, (name, column)) in plan.columns.iter().enumerate() {
        let Some(column) = column else { continue };
        let raw = record.get(i).unwrap_or_default();
        let Ok(cell) = std::str::from_utf8(raw) else {
            problems.push(problem(name, "not UTF-8"));
            continue;
        };
        let cell = cell.trim();
        if cell.is_empty() {
            if matches!(column, Column::Address) {
                problems.push(problem(name, "required"));
            }
            continue;
        }
        match column {
            Column::Address => match Email::parse(cell) {
                Ok(email) => {
                    staged.key = *keys.key(&email).as_bytes();
                    staged.address = email.as_str().to_owned();
                }
                Err(_) => problems.push(problem(name, "not an email address")),
            },
            Column::Name if cell.chars().count() > 200 || cell.chars().any(char::is_control) => {
                problems.push(problem(name, "longer than 200 characters or with control characters"))
            }
            Column::Name => staged.name = Some(cell.to_owned()),
            Column::Locale if !valid_locale(cell) => problems.push(problem(name, "not a language tag")),
            Column::Locale => staged.locale = Some(cell.to_owned()),
            Column::TimeZone if cell.chars().count() > 64 => problems.push(problem(name, "longer than 64 characters")),
            Column::TimeZone => staged.time_zone = Some(cell.to_owned()),
            Column::Tags => {
                let tags: Vec<String> =
                    cell.split(TAG_SEPARATOR).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
                if tags.len() > 50 {
                    problems.push(problem(name, "more than 50 tags"));
                } else {
                    staged.tags = tags;
                }
            }
            Column::Attribute(a) => {
                let def = &plan.attributes[*a];
                let value = match def.kind.as_str() {
                    "text" if cell.chars().count() as i32 > def.max_length.unwrap_or(0) => Err("too long"),
                    "text" => Ok(Value::Text(cell.to_owned())),
                    "number" => {
                        cell.parse::<f64>().ok().filter(|n| n.is_finite()).map(Value::Number).ok_or("not a number")
                    }
                    "date" => NaiveDate::parse_from_str(cell, "%Y-%m-%d")
                        .map(Value::Date)
                        .map_err(|_| "not a date (YYYY-MM-DD)"),
                    "boolean" => match cell.to_ascii_lowercase().as_str() {
                        "true" | "yes" | "1" => Ok(Value::Boolean(true)),
                        "false" | "no" | "0" => Ok(Value::Boolean(false)),
                        _ => Err("not true or false"),
                    },
                    "choice" if def.choices.contains(cell) => Ok(Value::Choice(cell.to_owned())),
                    _ => Err("not one of the choices"),
                };
                match value {
                    Ok(v) => staged.values.push((*a, v)),
                    Err(reason) => problems.push(problem(name, reason)),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(staged)
    } else {
        Err(problems)
    }
}

/// Reads the stored chunks in order for the blocking parser, one at a time, each in a
/// transaction of its own.
struct Chunks {
    pool: AppPool,
    org: OrgId,
    import: ImportId,
    next: i32,
    count: i32,
    current: std::io::Cursor<Vec<u8>>,
    runtime: tokio::runtime::Handle,
}

impl std::io::Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = std::io::Read::read(&mut self.current, buf)?;
            if n > 0 || self.next >= self.count {
                return Ok(n);
            }
            let (pool, org, import, seq) = (self.pool.clone(), self.org, self.import, self.next);
            let data = self
                .runtime
                .block_on(async move {
                    let mut tx = pool.begin_tenant(org, None).await?;
                    let data = chunk(&mut tx, import, seq).await?;
                    tx.commit().await?;
                    Ok::<_, DbError>(data)
                })
                .map_err(std::io::Error::other)?
                .ok_or_else(|| std::io::Error::other("a chunk of the upload is missing"))?;
            let data = if seq == 0 { data.strip_prefix(BOM).map(<[u8]>::to_vec).unwrap_or(data) } else { data };
            self.current = std::io::Cursor::new(data);
            self.next += 1;
        }
    }
}

/// Parses the file from the start on the calling (blocking) thread, skipping the first `skip`
/// data rows, and sends batches until the end or until the receiver is gone.
fn parse(
    plan: &Plan,
    keys: &dyn AddressKeyer,
    input: Chunks,
    skip: i64,
    batches: &tokio::sync::mpsc::Sender<std::result::Result<Batch, String>>,
) {
    let mut csv = reader(plan.delimiter, input);
    if let Err(e) = csv.byte_headers() {
        let _ = batches.blocking_send(Err(format!("the header cannot be read: {e}")));
        return;
    }
    let mut batch = Batch { read: skip, rows: Vec::with_capacity(BATCH_ROWS), problems: Vec::new() };
    let mut record = csv::ByteRecord::new();
    let mut index: i64 = 0;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let _ = batches.blocking_send(Err(format!("the file cannot be read after row {}: {e}", index + 1)));
                return;
            }
        }
        index += 1;
        if index <= skip {
            continue;
        }
        // The header is row 1.
        match parse_row(plan, keys, index + 1, &record) {
            Ok(row) => batch.rows.push(row),
            Err(mut p) => batch.problems.append(&mut p),
        }
        batch.read = index;
        if batch.rows.len() + batch.problems.len() >= BATCH_ROWS {
            let full = std::mem::replace(
                &mut batch,
                Batch { read: index, rows: Vec::with_capacity(BATCH_ROWS), problems: Vec::new() },
            );
            if batches.blocking_send(Ok(full)).is_err() {
                return;
            }
        }
    }
    let _ = batches.blocking_send(Ok(batch));
}

/// A `text[]` literal with every element quoted, cast to `text[]` in the statement: a batch's
/// tags go as one array of these, since `unnest` flattens an array of arrays.
fn array_literal(items: &[String]) -> String {
    let quoted: Vec<String> =
        items.iter().map(|t| format!("\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    format!("{{{}}}", quoted.join(","))
}

/// A batch's attribute values as one array per column, each value in the text form its
/// column's type reads (a number as it was written, so that the numeric keeps every digit).
#[derive(Default)]
struct Values {
    contacts: Vec<Uuid>,
    attributes: Vec<Uuid>,
    kinds: Vec<String>,
    max_lengths: Vec<Option<i32>>,
    text: Vec<Option<String>>,
    number: Vec<Option<String>>,
    date: Vec<Option<String>>,
    boolean: Vec<Option<String>>,
    choice: Vec<Option<String>>,
}

impl Values {
    fn push(&mut self, contact: Uuid, def: &Definition, value: &Value) {
        self.contacts.push(contact);
        self.attributes.push(def.id);
        self.kinds.push(def.kind.clone());
        self.max_lengths.push(def.max_length);
        let (mut text, mut number, mut date, mut boolean, mut choice) = (None, None, None, None, None);
        match value {
            Value::Text(v) => text = Some(v.clone()),
            Value::Number(v) => number = Some(v.to_string()),
            Value::Date(v) => date = Some(v.format("%Y-%m-%d").to_string()),
            Value::Boolean(v) => boolean = Some(if *v { "t" } else { "f" }.to_owned()),
            Value::Choice(v) => choice = Some(v.clone()),
        }
        self.text.push(text);
        self.number.push(number);
        self.date.push(date);
        self.boolean.push(boolean);
        self.choice.push(choice);
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub imported: i64,
    pub existing: i64,
    pub suppressed: i64,
    pub invalid: i64,
}

/// What a run needs besides the batch.
struct Run {
    import: ImportId,
    job: JobId,
    by: UserId,
    provenance: Option<(Provenance, ContentHash, String)>,
    attributes: Vec<Definition>,
    now: DateTime<Utc>,
}

/// Writes one batch in `tx`: two lookups, then one set-based statement per table.
async fn write(tx: &mut TenantTx, run: &Run, batch: Batch) -> Result<Counts> {
    let org = tx.org().as_uuid();
    let mut problems = batch.problems;
    let invalid = problems.iter().map(|p| p.row_number).collect::<HashSet<_>>().len() as i64;
    // The first row of an address in this batch goes on; a later one is reported.
    let mut first: HashMap<String, i64> = HashMap::new();
    let mut rows = Vec::with_capacity(batch.rows.len());
    for row in batch.rows {
        if let Some(earlier) = first.get(&row.address) {
            problems.push(Problem {
                row_number: row.row_number,
                column_name: "address".into(),
                reason: format!("same address as row {earlier}"),
            });
        } else {
            first.insert(row.address.clone(), row.row_number);
            rows.push(row);
        }
    }
    let addresses: Vec<String> = rows.iter().map(|r| r.address.clone()).collect();
    let existing: HashSet<String> =
        sqlx::query_scalar("select address from app.contacts where organization_id = $1 and address = any($2)")
            .bind(org)
            .bind(&addresses)
            .fetch_all(tx.conn())
            .await?
            .into_iter()
            .collect();
    let keys: Vec<Vec<u8>> = rows.iter().map(|r| r.key.to_vec()).collect();
    let suppressed: HashSet<Vec<u8>> = sqlx::query_scalar(concat!(
        "select s.address_key from app.suppressions s where s.organization_id = $1 and s.address_key = any($2) and ",
        in_force!()
    ))
    .bind(org)
    .bind(&keys)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    let mut counts = Counts { invalid, ..Counts::default() };
    let mut fresh = Vec::with_capacity(rows.len());
    for row in &rows {
        if existing.contains(&row.address) {
            counts.existing += 1;
            problems.push(Problem {
                row_number: row.row_number,
                column_name: "address".into(),
                reason: "already a contact: left unchanged".into(),
            });
            continue;
        }
        let suppressed = suppressed.contains(row.key.as_slice());
        if suppressed {
            counts.suppressed += 1;
            problems.push(Problem {
                row_number: row.row_number,
                column_name: "address".into(),
                reason: "suppressed: imported without consent".into(),
            });
        }
        counts.imported += 1;
        fresh.push((row, run.provenance.is_some() && !suppressed));
    }

    // Every statement below reads its rows from arrays bound as parameters, beside the import's
    // own row (`i`). Why that row: Citus plans an `INSERT ... SELECT` whose source is not a
    // distributed table colocated with the target (a temporary staging table, or `unnest` of
    // arrays alone) by pulling the rows to the coordinator and `COPY`ing them into the shard,
    // and PostgreSQL refuses `COPY FROM` into a table under row-level security. Selecting from
    // the tenant's `contact_imports` row, which lives on the same shard, makes the statement a
    // router statement that Citus sends whole to that shard, where it runs as `app_user`. One
    // statement per table whatever the batch's size, prepared once.
    let (ids, addresses, keys, names, locales, zones, tags) = fresh.iter().fold(
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()),
        |mut a, (row, _)| {
            a.0.push(row.id.as_uuid());
            a.1.push(row.address.as_str());
            a.2.push(row.key.as_slice());
            a.3.push(row.name.as_deref());
            a.4.push(row.locale.as_deref());
            a.5.push(row.time_zone.as_deref());
            a.6.push(array_literal(&row.tags));
            a
        },
    );
    if !ids.is_empty() {
        sqlx::query(
            "insert into app.contacts (organization_id, id, address, address_key, name, locale, time_zone, tags, created_at)
             select i.organization_id, u.id, u.address, u.address_key, u.name, u.locale, u.time_zone, u.tags::text[], $3
               from app.contact_imports i
              cross join lateral unnest($4::uuid[], $5::text[], $6::bytea[], $7::text[], $8::text[], $9::text[], $10::text[])
                    u(id, address, address_key, name, locale, time_zone, tags)
              where i.organization_id = $1 and i.id = $2",
        )
        .bind(org)
        .bind(run.import.as_uuid())
        .bind(run.now)
        .bind(&ids)
        .bind(&addresses)
        .bind(&keys)
        .bind(&names)
        .bind(&locales)
        .bind(&zones)
        .bind(&tags)
        .execute(tx.conn())
        .await?;
    }
    let mut values = Values::default();
    for (row, _) in &fresh {
        for (a, value) in &row.values {
            values.push(row.id.as_uuid(), &run.attributes[*a], value);
        }
    }
    if !values.contacts.is_empty() {
        sqlx::query(
            "insert into app.contact_attribute_values (organization_id, contact_id, attribute_id, kind, max_length,
                                                       text_value, number_value, date_value, boolean_value, choice_value)
             select i.organization_id, u.contact_id, u.attribute_id, u.kind::app.attribute_kind, u.max_length,
                    u.text_value, u.number_value::numeric, u.date_value::date, u.boolean_value::boolean, u.choice_value
               from app.contact_imports i
              cross join lateral unnest($3::uuid[], $4::uuid[], $5::text[], $6::integer[], $7::text[], $8::text[],
                                        $9::text[], $10::text[], $11::text[])
                    u(contact_id, attribute_id, kind, max_length, text_value, number_value, date_value, boolean_value,
                      choice_value)
              where i.organization_id = $1 and i.id = $2",
        )
        .bind(org)
        .bind(run.import.as_uuid())
        .bind(&values.contacts)
        .bind(&values.attributes)
        .bind(&values.kinds)
        .bind(&values.max_lengths)
        .bind(&values.text)
        .bind(&values.number)
        .bind(&values.date)
        .bind(&values.boolean)
        .bind(&values.choice)
        .execute(tx.conn())
        .await?;
    }
    let consented: Vec<&Staged> = fresh.iter().filter(|(_, consent)| *consent).map(|(row, _)| *row).collect();
    if let (Some((p, notice, channel)), false) = (&run.provenance, consented.is_empty()) {
        let basis = if p.exemption.is_some() { "exemption" } else { "consent" };
        let (contacts, events, rows): (Vec<Uuid>, Vec<Uuid>, Vec<i64>) =
            consented.iter().fold((Vec::new(), Vec::new(), Vec::new()), |mut a, row| {
                a.0.push(row.id.as_uuid());
                a.1.push(row.event.as_uuid());
                a.2.push(row.row_number);
                a
            });
        sqlx::query(
            "insert into app.consent_events (organization_id, contact_id, purpose_id, seq, id, channel, kind, basis,
                                             notice_sha256, exemption, source, import_job, import_row, recorded_by,
                                             created_at)
             select i.organization_id, u.contact_id, $3, 1, u.id, $4::text::app.consent_channel, 'grant',
                    $5::text::app.lawful_basis, $6, $7, 'import', $8, u.import_row, $9, $10
               from app.contact_imports i
              cross join lateral unnest($11::uuid[], $12::uuid[], $13::bigint[]) u(contact_id, id, import_row)
              where i.organization_id = $1 and i.id = $2",
        )
        .bind(org)
        .bind(run.import.as_uuid())
        .bind(p.purpose.as_uuid())
        .bind(channel)
        .bind(basis)
        .bind(notice.as_bytes())
        .bind(p.exemption.as_ref().map(|e| e.trim()))
        .bind(run.job.as_uuid())
        .bind(run.by.as_uuid())
        .bind(run.now)
        .bind(&contacts)
        .bind(&events)
        .bind(&rows)
        .execute(tx.conn())
        .await?;
        // The events' audit record: one for the batch, committing to each event by the root
        // of a Merkle tree over them in row order, so that a consent receipt proves an
        // imported grant from the chain as it proves one recorded alone.
        let notice_hex = hex::encode(notice.as_bytes());
        let exemption = p.exemption.as_ref().map(|e| e.trim().to_owned());
        let leaves: Vec<merkle::Hash> = consented
            .iter()
            .map(|row| {
                export::import_leaf(&LedgerEvent {
                    id: row.event.as_uuid(),
                    contact_id: row.id.as_uuid(),
                    purpose_id: p.purpose.as_uuid(),
                    seq: 1,
                    channel: channel.clone(),
                    kind: "grant".into(),
                    basis: Some(basis.into()),
                    notice_sha256: Some(notice_hex.clone()),
                    hipaa: None,
                    expires_at: None,
                    exemption: exemption.clone(),
                    source: "import".into(),
                    import_job: Some(run.job.as_uuid()),
                    import_row: Some(row.row_number),
                    evidence_sha256: None,
                    recorded_by: Some(run.by.as_uuid()),
                    created_at: run.now,
                })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| stored("consent_events_import"))?;
        let event = AuditEvent::new(CONSENT_IMPORTED, CONTACT_IMPORT)
            .resource_id(run.import)
            .actor(run.by)
            .meta("job", json!(run.job))
            .meta("purpose", json!(p.purpose))
            .meta("notice_sha256", json!(notice_hex))
            .meta("first_row", json!(rows.first()))
            .meta("last_row", json!(rows.last()))
            .meta("events", json!(leaves.len()))
            .meta("merkle_root", json!(hex::encode(merkle::root(&leaves))));
        audit::record(tx, &event).await?;
    }
    if !problems.is_empty() {
        let (rows, columns, reasons): (Vec<i64>, Vec<&str>, Vec<&str>) =
            problems.iter().fold((Vec::new(), Vec::new(), Vec::new()), |mut a, p| {
                a.0.push(p.row_number);
                a.1.push(p.column_name.as_str());
                a.2.push(p.reason.as_str());
                a
            });
        // The same column named twice in a header gives two problems with one key: one is kept.
        sqlx::query(
            "insert into app.contact_import_problems (organization_id, import_id, row_number, column_name, reason)
             select i.organization_id, i.id, u.row_number, u.column_name, u.reason
               from app.contact_imports i
              cross join lateral unnest($3::bigint[], $4::text[], $5::text[]) u(row_number, column_name, reason)
              where i.organization_id = $1 and i.id = $2
             on conflict do nothing",
        )
        .bind(org)
        .bind(run.import.as_uuid())
        .bind(&rows)
        .bind(&columns)
        .bind(&reasons)
        .execute(tx.conn())
        .await?;
    }
    sqlx::query(
        "update app.contact_imports
            set imported = imported + $3, existing = existing + $4, suppressed = suppressed + $5, invalid = invalid + $6
          where organization_id = $1 and id = $2",
    )
    .bind(org)
    .bind(run.import.as_uuid())
    .bind(counts.imported)
    .bind(counts.existing)
    .bind(counts.suppressed)
    .bind(counts.invalid)
    .execute(tx.conn())
    .await?;
    Ok(counts)
}

/// The job's handler: runs (or resumes) the import its payload names.
pub async fn run(mut work: Work, keys: Arc<dyn AddressKeyer>) -> Outcome {
    let fail = |e: DbError| e.to_string();
    let import: ImportId = work
        .claim
        .payload
        .get("import")
        .and_then(|v| v.as_str())
        .and_then(|s| ImportId::parse(s).ok())
        .ok_or("the job names no import")?;
    let mut tx = work.begin().await.map_err(fail)?;
    let current = get(&mut tx, import).await.map_err(fail)?.ok_or("the import is gone")?;
    let job = jobs::get(&mut tx, work.claim.id).await.map_err(fail)?.ok_or("the job is gone")?;
    if current.finished_at.is_some() {
        tx.commit().await.map_err(fail)?;
        return Ok(Ending::Succeeded);
    }
    let mapping: Mapping =
        current.mapping.clone().and_then(|m| serde_json::from_value(m).ok()).ok_or("the import has no mapping")?;
    let provenance: Option<Provenance> = current.provenance.clone().and_then(|p| serde_json::from_value(p).ok());
    let provenance = match provenance {
        None => None,
        Some(p) => {
            let notice = ContentHash::parse(&p.notice_sha256).map_err(|_| "the notice hash is not valid")?;
            let channel: String =
                sqlx::query_scalar("select channel::text from app.purposes where organization_id = $1 and id = $2")
                    .bind(work.claim.org.as_uuid())
                    .bind(p.purpose.as_uuid())
                    .fetch_one(tx.conn())
                    .await
                    .map_err(|e| fail(e.into()))?;
            Some((p, notice, channel))
        }
    };
    let definitions = definitions(&mut tx).await.map_err(fail)?;
    let first = chunk(&mut tx, import, 0).await.map_err(fail)?.unwrap_or_default();
    let header = preview(&mut tx, import, 0).await.map_err(fail)?.map(|p| p.header).unwrap_or_default();
    tx.commit().await.map_err(fail)?;

    let mut attributes = Vec::new();
    let columns = header
        .into_iter()
        .zip(mapping.into_iter().chain(std::iter::repeat(None)))
        .map(|(name, target)| {
            let column = target.map(|t| match t {
                Target::Address => Column::Address,
                Target::Name => Column::Name,
                Target::Locale => Column::Locale,
                Target::TimeZone => Column::TimeZone,
                Target::Tags => Column::Tags,
                Target::Attribute(a) => match definitions.get(&a) {
                    Some(def) => {
                        attributes.push(def.clone());
                        Column::Attribute(attributes.len() - 1)
                    }
                    // Defined when the import started; definitions are never removed.
                    None => Column::Attribute(usize::MAX),
                },
            });
            (name, column)
        })
        .collect::<Vec<_>>();
    if columns.iter().any(|(_, c)| matches!(c, Some(Column::Attribute(usize::MAX)))) {
        return Err("an attribute of the mapping is gone".into());
    }
    let plan = Plan { delimiter: detect_delimiter(&first), columns, attributes };
    let run = Run {
        import,
        job: work.claim.id,
        by: current.created_by,
        provenance,
        attributes: plan.attributes.clone(),
        now: Utc::now(),
    };
    let input = Chunks {
        pool: work.pool().clone(),
        org: work.claim.org,
        import,
        next: 0,
        count: current.chunks.unwrap_or(0),
        current: std::io::Cursor::new(Vec::new()),
        runtime: tokio::runtime::Handle::current(),
    };
    let (send, mut batches) = tokio::sync::mpsc::channel(2);
    let skip = job.done;
    let parser = tokio::task::spawn_blocking(move || parse(&plan, keys.as_ref(), input, skip, &send));

    let mut totals = Counts {
        imported: current.imported,
        existing: current.existing,
        suppressed: current.suppressed,
        invalid: current.invalid,
    };
    let mut ending = Ending::Succeeded;
    while let Some(batch) = batches.recv().await {
        let batch = batch?;
        let read = batch.read;
        let mut tx = work.begin().await.map_err(fail)?;
        let counts = write(&mut tx, &run, batch).await.map_err(fail)?;
        totals.imported += counts.imported;
        totals.existing += counts.existing;
        totals.suppressed += counts.suppressed;
        totals.invalid += counts.invalid;
        let progress = Progress { total: current.rows, done: read, errors: totals.invalid, ..Progress::default() };
        match work.checkpoint(tx, progress).await.map_err(fail)? {
            Next::Continue => {}
            Next::Cancel => {
                ending = Ending::Cancelled;
                break;
            }
            Next::Stop | Next::Lost => {
                drop(batches);
                let _ = parser.await;
                return Ok(Ending::Released);
            }
        }
    }
    drop(batches);
    parser.await.map_err(|e| e.to_string())?;

    // The one audit record, committed with the import's end and checked against the lease.
    let mut tx = work.begin().await.map_err(fail)?;
    let outcome = if ending == Ending::Cancelled { "cancelled" } else { "completed" };
    let mut event = AuditEvent::new(CONTACTS_IMPORTED, CONTACT_IMPORT)
        .resource_id(import)
        .actor(current.created_by)
        .meta("outcome", json!(outcome))
        .meta("job", json!(work.claim.id))
        .meta("file_sha256", json!(current.file_sha256.as_deref().map(hex::encode)))
        .meta("imported", json!(totals.imported))
        .meta("existing", json!(totals.existing))
        .meta("suppressed", json!(totals.suppressed))
        .meta("invalid", json!(totals.invalid));
    if let Some((p, notice, _)) = &run.provenance {
        event = event.meta("purpose", json!(p.purpose)).meta("notice_sha256", json!(hex::encode(notice.as_bytes())));
    }
    audit::record(&mut tx, &event).await.map_err(fail)?;
    sqlx::query("update app.contact_imports set finished_at = $3 where organization_id = $1 and id = $2")
        .bind(work.claim.org.as_uuid())
        .bind(import.as_uuid())
        .bind(Utc::now())
        .execute(tx.conn())
        .await
        .map_err(|e| fail(e.into()))?;
    // Progress was recorded with the last batch; this proves the lease once more.
    let progress = Progress { done: 0, errors: totals.invalid, ..Progress::default() };
    match work.checkpoint(tx, progress).await.map_err(fail)? {
        Next::Lost => Ok(Ending::Released),
        _ => Ok(ending),
    }
}
