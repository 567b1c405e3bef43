//! Senders and their DKIM keys (migration 23, docs/senders.md).
//!
//! A sender is created with its first key, and a rotation demotes the active key to `previous`
//! before it adds the new active one, in the request's transaction; the partial unique index
//! `dkim_keys_one_active` refuses a second active key whatever the caller does, and the trigger
//! `dkim_keys_forward` refuses any move but active → previous → retired. Every function names
//! the tenant as `$1` besides Row-Level Security and writes as `app_user`.
//!
//! The private key is stored only sealed with the server's [`Sealer`], bound by [`owner`] to
//! the organization and the key's id; it leaves this module only through [`signing_key`], as a
//! [`SecretString`], and no audit record, error or `Debug` output carries it.

use chrono::{DateTime, Utc};
use mos_auth::{DkimKeyPair, Sealer};
use mos_domain::events::{SENDER, SENDER_CREATED, SENDER_KEY_RETIRED, SENDER_KEY_ROTATED, SENDER_UPDATED};
use mos_domain::senders::{DkimDomain, FromName, KeyState, PostalAddress, Selector, TxtRecord};
use mos_domain::{AuditEvent, DkimKeyId, Email, OrgId, RequestSource, SenderId, UserId};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::error::stored;
use crate::{audit, DbError, Result, TenantTx};

/// What a sender is created with, each part parsed.
#[derive(Debug, Clone)]
pub struct NewSender {
    pub from_name: FromName,
    pub from_address: Email,
    pub reply_to: Option<Email>,
    pub postal_address: PostalAddress,
    pub dkim_domain: DkimDomain,
    pub selector: Selector,
}

/// A sender as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub id: SenderId,
    pub from_name: FromName,
    pub from_address: Email,
    pub reply_to: Option<Email>,
    pub postal_address: PostalAddress,
    pub dkim_domain: DkimDomain,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SenderRow {
    id: uuid::Uuid,
    from_name: String,
    from_address: String,
    reply_to: Option<String>,
    postal_address: String,
    dkim_domain: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SenderRow> for Sender {
    type Error = DbError;
    fn try_from(r: SenderRow) -> Result<Self> {
        Ok(Self {
            id: SenderId::from_uuid(r.id).map_err(|_| stored("senders_id_v7"))?,
            from_name: FromName::parse(&r.from_name).map_err(|_| stored("senders_from_name"))?,
            from_address: Email::parse(&r.from_address).map_err(|_| stored("senders_from_address"))?,
            reply_to: r.reply_to.map(|a| Email::parse(&a)).transpose().map_err(|_| stored("senders_reply_to"))?,
            postal_address: PostalAddress::parse(&r.postal_address).map_err(|_| stored("senders_postal_address"))?,
            dkim_domain: DkimDomain::parse(&r.dkim_domain).map_err(|_| stored("senders_dkim_domain"))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A DKIM key's public side: never its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: DkimKeyId,
    pub selector: Selector,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl Key {
    /// The DNS record that publishes this key for `domain`.
    pub fn txt_record(&self, domain: &DkimDomain) -> TxtRecord {
        TxtRecord::new(&self.selector, domain, &self.public_key)
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: uuid::Uuid,
    selector: String,
    public_key: Vec<u8>,
    state: String,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl TryFrom<KeyRow> for Key {
    type Error = DbError;
    fn try_from(r: KeyRow) -> Result<Self> {
        Ok(Self {
            id: DkimKeyId::from_uuid(r.id).map_err(|_| stored("dkim_keys_id_v7"))?,
            selector: Selector::parse(&r.selector).map_err(|_| stored("dkim_keys_selector"))?,
            public_key: r.public_key,
            state: KeyState::parse(&r.state).ok_or_else(|| stored("dkim_key_state"))?,
            created_at: r.created_at,
            retired_at: r.retired_at,
        })
    }
}

/// The associated data a key is sealed under: the organization's id and the key's id. A sealed
/// key copied onto another key's row, or into another organization, does not open.
pub fn owner(org: OrgId, key: DkimKeyId) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(org.as_uuid().as_bytes());
    out[16..].copy_from_slice(key.as_uuid().as_bytes());
    out
}

const SENDER_COLUMNS: &str =
    "s.id, s.from_name, s.from_address, s.reply_to, s.postal_address, s.dkim_domain, s.created_at, s.updated_at";
const KEY_COLUMNS: &str = "k.id, k.selector, k.public_key, k.state::text as state, k.created_at, k.retired_at";

/// Adds `pair` as `sender`'s active key, sealed.
async fn insert_key(
    tx: &mut TenantTx,
    sealer: &Sealer,
    sender: SenderId,
    selector: &Selector,
    pair: &DkimKeyPair,
    now: DateTime<Utc>,
) -> Result<DkimKeyId> {
    let id = DkimKeyId::new();
    let sealed =
        sealer.seal(pair.private_key_pem.expose_secret().as_bytes(), &owner(tx.org(), id), &mut rand::thread_rng());
    sqlx::query(
        "insert into app.dkim_keys (organization_id, id, sender_id, selector, public_key, sealed_private_key, state, created_at)
         values ($1, $2, $3, $4, $5, $6, 'active', $7)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(sender.as_uuid())
    .bind(selector.as_str())
    .bind(&pair.public_key_spki)
    .bind(sealed)
    .bind(now)
    .execute(tx.conn())
    .await?;
    Ok(id)
}

/// Creates a sender with `pair` as its first, active key. The database refuses a from address
/// outside the DKIM domain (`senders_dkim_aligned`) as the caller should have already.
pub async fn create(
    tx: &mut TenantTx,
    sealer: &Sealer,
    new: &NewSender,
    pair: &DkimKeyPair,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<SenderId> {
    let id = SenderId::new();
    sqlx::query(
        "insert into app.senders (organization_id, id, from_name, from_address, reply_to, postal_address, dkim_domain,
                                  created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(new.from_name.as_str())
    .bind(new.from_address.as_str())
    .bind(new.reply_to.as_ref().map(Email::as_str))
    .bind(new.postal_address.as_str())
    .bind(new.dkim_domain.as_str())
    .bind(now)
    .execute(tx.conn())
    .await?;
    let key = insert_key(tx, sealer, id, &new.selector, pair, now).await?;
    let event = AuditEvent::new(SENDER_CREATED, SENDER)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("from_address", json!(new.from_address.as_str()))
        .meta("dkim_domain", json!(new.dkim_domain.as_str()))
        .meta("selector", json!(new.selector.as_str()))
        .meta("key", json!(key.to_string()));
    audit::record(tx, &event).await?;
    Ok(id)
}

/// A page of the organization's senders in id order after `after`, at most `limit`.
pub async fn list(tx: &mut TenantTx, after: Option<SenderId>, limit: u16) -> Result<Vec<Sender>> {
    let rows: Vec<SenderRow> = sqlx::query_as(&format!(
        "select {SENDER_COLUMNS} from app.senders s
          where s.organization_id = $1 and ($2::uuid is null or s.id > $2)
          order by s.id limit $3"
    ))
    .bind(tx.org().as_uuid())
    .bind(after.map(|a| a.as_uuid()))
    .bind(i64::from(limit))
    .fetch_all(tx.conn())
    .await?;
    rows.into_iter().map(Sender::try_from).collect()
}

/// One sender, and its keys, newest first (the retired ones too).
pub async fn get(tx: &mut TenantTx, id: SenderId) -> Result<Option<(Sender, Vec<Key>)>> {
    let row: Option<SenderRow> = sqlx::query_as(&format!(
        "select {SENDER_COLUMNS} from app.senders s where s.organization_id = $1 and s.id = $2"
    ))
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let keys: Vec<KeyRow> = sqlx::query_as(&format!(
        "select {KEY_COLUMNS} from app.dkim_keys k
          where k.organization_id = $1 and k.sender_id = $2 order by k.id desc"
    ))
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .fetch_all(tx.conn())
    .await?;
    let keys = keys.into_iter().map(Key::try_from).collect::<Result<Vec<_>>>()?;
    Ok(Some((Sender::try_from(row)?, keys)))
}

/// What an update changes; `None` leaves a field as it is. `reply_to: Some(None)` removes it.
#[derive(Debug, Clone, Default)]
pub struct SenderChanges {
    pub from_name: Option<FromName>,
    pub reply_to: Option<Option<Email>>,
    pub postal_address: Option<PostalAddress>,
}

/// Changes a sender's from name, reply-to or postal address; the from address and the DKIM
/// domain are fixed (a new address is a new sender, with keys of its own). Answers `None` for
/// a sender the organization does not have; records `sender.updated` naming the fields that
/// changed, when any did.
pub async fn update(
    tx: &mut TenantTx,
    id: SenderId,
    changes: &SenderChanges,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<Sender>> {
    let Some((before, _)) = get(tx, id).await? else { return Ok(None) };
    let from_name = changes.from_name.as_ref().unwrap_or(&before.from_name);
    let reply_to = changes.reply_to.as_ref().unwrap_or(&before.reply_to);
    let postal_address = changes.postal_address.as_ref().unwrap_or(&before.postal_address);
    let mut fields = Vec::new();
    if *from_name != before.from_name {
        fields.push("from_name");
    }
    if *reply_to != before.reply_to {
        fields.push("reply_to");
    }
    if *postal_address != before.postal_address {
        fields.push("postal_address");
    }
    if fields.is_empty() {
        return Ok(Some(before));
    }
    let row: SenderRow = sqlx::query_as(&format!(
        "update app.senders s set from_name = $3, reply_to = $4, postal_address = $5, updated_at = $6
          where s.organization_id = $1 and s.id = $2
          returning {SENDER_COLUMNS}"
    ))
    .bind(tx.org().as_uuid())
    .bind(id.as_uuid())
    .bind(from_name.as_str())
    .bind(reply_to.as_ref().map(Email::as_str))
    .bind(postal_address.as_str())
    .bind(now)
    .fetch_one(tx.conn())
    .await?;
    let event = AuditEvent::new(SENDER_UPDATED, SENDER)
        .actor(actor)
        .resource_id(id)
        .source(source.clone())
        .meta("fields", json!(fields));
    audit::record(tx, &event).await?;
    Ok(Some(Sender::try_from(row)?))
}

/// Makes `pair` the sender's active key under `selector`, and the key that was active its
/// `previous` one, still published until an ADMIN retires it. Answers `None` for a sender the
/// organization does not have; a selector the sender used before is a conflict
/// (`dkim_keys_selector_key`).
#[allow(clippy::too_many_arguments)]
pub async fn rotate(
    tx: &mut TenantTx,
    sealer: &Sealer,
    sender: SenderId,
    selector: &Selector,
    pair: &DkimKeyPair,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Option<DkimKeyId>> {
    // Locks the sender, so that two rotations at once take turns instead of one failing on the
    // index.
    let found: Option<uuid::Uuid> =
        sqlx::query_scalar("select id from app.senders where organization_id = $1 and id = $2 for update")
            .bind(tx.org().as_uuid())
            .bind(sender.as_uuid())
            .fetch_optional(tx.conn())
            .await?;
    if found.is_none() {
        return Ok(None);
    }
    let replaced: Option<uuid::Uuid> = sqlx::query_scalar(
        "update app.dkim_keys set state = 'previous'
          where organization_id = $1 and sender_id = $2 and state = 'active'
          returning id",
    )
    .bind(tx.org().as_uuid())
    .bind(sender.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let key = insert_key(tx, sealer, sender, selector, pair, now).await?;
    let event = AuditEvent::new(SENDER_KEY_ROTATED, SENDER)
        .actor(actor)
        .resource_id(sender)
        .source(source.clone())
        .meta("key", json!(key.to_string()))
        .meta("selector", json!(selector.as_str()))
        .meta("previous", json!(replaced.map(|r| r.to_string())));
    audit::record(tx, &event).await?;
    Ok(Some(key))
}

/// What retiring a key came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    Done,
    /// The sender has no such key.
    NotFound,
    /// Only a `previous` key is retired: the active one signs until a rotation replaces it,
    /// and a retired one stays retired.
    NotPrevious(KeyState),
}

/// Retires a `previous` key of `sender`: its record is no longer to be published, and it never
/// signs again.
pub async fn retire(
    tx: &mut TenantTx,
    sender: SenderId,
    key: DkimKeyId,
    actor: UserId,
    now: DateTime<Utc>,
    source: &RequestSource,
) -> Result<Retired> {
    let state: Option<String> = sqlx::query_scalar(
        "select state::text from app.dkim_keys where organization_id = $1 and sender_id = $2 and id = $3 for update",
    )
    .bind(tx.org().as_uuid())
    .bind(sender.as_uuid())
    .bind(key.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let Some(state) = state else { return Ok(Retired::NotFound) };
    let state = KeyState::parse(&state).ok_or_else(|| stored("dkim_key_state"))?;
    if state != KeyState::Previous {
        return Ok(Retired::NotPrevious(state));
    }
    sqlx::query(
        "update app.dkim_keys set state = 'retired', retired_at = $4
          where organization_id = $1 and sender_id = $2 and id = $3",
    )
    .bind(tx.org().as_uuid())
    .bind(sender.as_uuid())
    .bind(key.as_uuid())
    .bind(now)
    .execute(tx.conn())
    .await?;
    let event = AuditEvent::new(SENDER_KEY_RETIRED, SENDER)
        .actor(actor)
        .resource_id(sender)
        .source(source.clone())
        .meta("key", json!(key.to_string()));
    audit::record(tx, &event).await?;
    Ok(Retired::Done)
}

/// What signs a sender's mail: the domain (`d=`), the selector (`s=`) and the private key as
/// PKCS#1 PEM, the text lettre's `DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa)` reads.
/// `Debug` shows no key.
#[derive(Debug)]
pub struct SigningKey {
    pub key: DkimKeyId,
    pub domain: DkimDomain,
    pub selector: Selector,
    pub private_key_pem: SecretString,
}

/// The sender's active key, opened with the server's key; `None` for a sender the organization
/// does not have. A sealed key that does not open (another server key, a row altered or copied)
/// is [`DbError::Unsealable`].
pub async fn signing_key(tx: &mut TenantTx, sealer: &Sealer, sender: SenderId) -> Result<Option<SigningKey>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: uuid::Uuid,
        dkim_domain: String,
        selector: String,
        sealed_private_key: Vec<u8>,
    }
    let row: Option<Row> = sqlx::query_as(
        "select k.id, s.dkim_domain, k.selector, k.sealed_private_key
           from app.dkim_keys k
           join app.senders s on s.organization_id = k.organization_id and s.id = k.sender_id
          where k.organization_id = $1 and s.organization_id = $1 and k.sender_id = $2 and k.state = 'active'",
    )
    .bind(tx.org().as_uuid())
    .bind(sender.as_uuid())
    .fetch_optional(tx.conn())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let key = DkimKeyId::from_uuid(row.id).map_err(|_| stored("dkim_keys_id_v7"))?;
    let opened = sealer.open(&row.sealed_private_key, &owner(tx.org(), key)).map_err(DbError::Unsealable)?;
    let pem = String::from_utf8(opened.expose_secret().clone()).map_err(|_| stored("dkim_keys_sealed_private_key"))?;
    Ok(Some(SigningKey {
        key,
        domain: DkimDomain::parse(&row.dkim_domain).map_err(|_| stored("senders_dkim_domain"))?,
        selector: Selector::parse(&row.selector).map_err(|_| stored("dkim_keys_selector"))?,
        private_key_pem: SecretString::from(pem),
    }))
}
