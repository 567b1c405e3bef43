//! Senders: who an organization's messages come from, and the DKIM keys that sign them
//! (docs/senders.md). Each operation parses its input into `mos_domain::senders` types, so a
//! bad field is a 422 naming it before anything is written, and calls `mos_db::senders` in the
//! request's transaction. Keys are generated with OpenSSL on the bounded pool of CPU-bound
//! work, never on the async workers, and reach the repository only to be sealed: no answer of
//! these functions carries a private key.

use mos_db::senders::{self, Key, NewSender, Retired, Sender, SenderChanges};
use mos_db::DbError;
use mos_domain::senders::{DkimDomain, FromName, KeyState, PostalAddress, Selector, SenderError, TxtRecord};
use mos_domain::{DkimKeyId, Email, SenderId};

use crate::access::{Authorized, ManageSenders, ReadSenders};
use crate::{paging, ApiError, AppState};

fn invalid(error: SenderError) -> ApiError {
    ApiError::Invalid { field: error.field, message: error.message.into() }
}

fn address(field: &'static str, input: &str) -> Result<Email, ApiError> {
    Email::parse(input)
        .map_err(|_| ApiError::Invalid { field, message: format!("{field} is not a valid email address") })
}

/// A reply-to as a door received it: absent or empty is none.
fn reply_to(input: Option<&str>) -> Result<Option<Email>, ApiError> {
    input.map(str::trim).filter(|r| !r.is_empty()).map(|r| address("reply_to", r)).transpose()
}

fn parse_sender(id: &str) -> Result<SenderId, ApiError> {
    SenderId::parse(id).map_err(|_| ApiError::NotFound)
}

/// A sender as a door received it, before parsing.
pub struct SenderInput<'a> {
    pub from_name: &'a str,
    pub from_address: &'a str,
    pub reply_to: Option<&'a str>,
    pub postal_address: &'a str,
    pub dkim_domain: &'a str,
    pub selector: &'a str,
}

impl SenderInput<'_> {
    /// Every field parsed, in the order a form shows them; the first at fault is named.
    fn parse(&self) -> Result<NewSender, ApiError> {
        let from_name = FromName::parse(self.from_name).map_err(invalid)?;
        let from_address = address("from_address", self.from_address)?;
        let reply_to = reply_to(self.reply_to)?;
        let postal_address = PostalAddress::parse(self.postal_address).map_err(invalid)?;
        let dkim_domain = DkimDomain::parse(self.dkim_domain).map_err(invalid)?;
        let selector = Selector::parse(self.selector).map_err(invalid)?;
        if !dkim_domain.aligns_with(&from_address) {
            return Err(ApiError::Invalid {
                field: "from_address",
                message: format!(
                    "the from address must be at {} or a subdomain of it, the DKIM domain, so that DMARC counts the signature for it",
                    dkim_domain.as_str()
                ),
            });
        }
        Ok(NewSender { from_name, from_address, reply_to, postal_address, dkim_domain, selector })
    }
}

/// A sender with its keys, newest first.
pub struct SenderPage {
    pub sender: Sender,
    pub keys: Vec<Key>,
}

impl SenderPage {
    /// The DNS record of `key`, while it is to be published (active or previous).
    pub fn record(&self, key: &Key) -> Option<TxtRecord> {
        key.state.published().then(|| key.txt_record(&self.sender.dkim_domain))
    }
}

async fn page(tx: &mut mos_db::TenantTx, id: SenderId) -> Result<SenderPage, ApiError> {
    let (sender, keys) = senders::get(tx, id).await?.ok_or(ApiError::NotFound)?;
    Ok(SenderPage { sender, keys })
}

/// A new RSA-2048 key pair, made off the async workers.
async fn generate(state: &AppState) -> Result<mos_auth::DkimKeyPair, ApiError> {
    state.heavy.run(mos_auth::DkimKeyPair::generate).await?.map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Adds a sender with a freshly generated key as its active one, under `input.selector`.
pub async fn create(
    state: &AppState,
    auth: Authorized<ManageSenders>,
    input: &SenderInput<'_>,
) -> Result<SenderPage, ApiError> {
    let new = input.parse()?;
    let pair = generate(state).await?;
    let mut tx = auth.tx;
    let id = senders::create(&mut tx, &state.sealer, &new, &pair, auth.session.user, state.clock.now(), &auth.source)
        .await?;
    let page = page(&mut tx, id).await?;
    tx.commit().await?;
    Ok(page)
}

/// A page of the organization's senders in id order.
pub async fn list(
    auth: &mut Authorized<ReadSenders>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Sender>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let after = cursor.map(SenderId::parse).transpose().map_err(|_| paging::bad_cursor())?;
    let asked = u16::try_from(limit + 1).unwrap_or(u16::MAX);
    let rows = senders::list(&mut auth.tx, after, asked).await?;
    Ok(paging::split(rows, limit, |s: &Sender| s.id.to_string()))
}

pub async fn sender(auth: &mut Authorized<ReadSenders>, id: &str) -> Result<SenderPage, ApiError> {
    let id = parse_sender(id)?;
    page(&mut auth.tx, id).await
}

/// What an update may change, as a door received it; `None` leaves a field as it is, and an
/// empty reply-to removes it.
#[derive(Default)]
pub struct ChangesInput<'a> {
    pub from_name: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub postal_address: Option<&'a str>,
}

/// Changes a sender's from name, reply-to or postal address.
pub async fn update(
    state: &AppState,
    auth: Authorized<ManageSenders>,
    id: &str,
    input: &ChangesInput<'_>,
) -> Result<SenderPage, ApiError> {
    let id = parse_sender(id)?;
    let changes = SenderChanges {
        from_name: input.from_name.map(FromName::parse).transpose().map_err(invalid)?,
        reply_to: input.reply_to.map(|r| reply_to(Some(r))).transpose()?,
        postal_address: input.postal_address.map(PostalAddress::parse).transpose().map_err(invalid)?,
    };
    let mut tx = auth.tx;
    senders::update(&mut tx, id, &changes, auth.session.user, state.clock.now(), &auth.source)
        .await?
        .ok_or(ApiError::NotFound)?;
    let page = page(&mut tx, id).await?;
    tx.commit().await?;
    Ok(page)
}

/// Generates a new key under `selector` and makes it the sender's active one; the key it
/// replaces stays published as `previous`.
pub async fn rotate(
    state: &AppState,
    auth: Authorized<ManageSenders>,
    id: &str,
    selector: &str,
) -> Result<SenderPage, ApiError> {
    let id = parse_sender(id)?;
    let selector = Selector::parse(selector).map_err(invalid)?;
    let pair = generate(state).await?;
    let mut tx = auth.tx;
    let rotated = senders::rotate(
        &mut tx,
        &state.sealer,
        id,
        &selector,
        &pair,
        auth.session.user,
        state.clock.now(),
        &auth.source,
    )
    .await;
    match rotated {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ApiError::NotFound),
        Err(DbError::Conflict { .. }) => {
            return Err(ApiError::ConflictOn {
                field: "selector",
                message: "this sender has used this selector before; DNS may still hold its record, so choose another"
                    .into(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    let page = page(&mut tx, id).await?;
    tx.commit().await?;
    Ok(page)
}

/// Retires a `previous` key: its record may be removed from DNS, and it never signs again.
pub async fn retire(
    state: &AppState,
    auth: Authorized<ManageSenders>,
    id: &str,
    key: &str,
) -> Result<SenderPage, ApiError> {
    let id = parse_sender(id)?;
    let key = DkimKeyId::parse(key).map_err(|_| ApiError::NotFound)?;
    let mut tx = auth.tx;
    match senders::retire(&mut tx, id, key, auth.session.user, state.clock.now(), &auth.source).await? {
        Retired::Done => {}
        Retired::NotFound => return Err(ApiError::NotFound),
        Retired::NotPrevious(KeyState::Active) => {
            return Err(ApiError::Conflict(
                "the active key signs until a rotation replaces it; rotate first, then retire the previous key",
            ))
        }
        Retired::NotPrevious(_) => return Err(ApiError::Conflict("this key is retired already")),
    }
    let page = page(&mut tx, id).await?;
    tx.commit().await?;
    Ok(page)
}
