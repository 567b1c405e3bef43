//! Senders under `/v1/orgs/{slug}/senders`: list, add, show (with the DNS TXT record of each
//! published DKIM key), change the from name, reply-to and postal address, rotate the key and
//! retire a previous one. Adapters over `app::senders`. No answer carries a private key.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use mos_db::senders::{Key, Sender};
use mos_domain::{DkimKeyId, SenderId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, ManageSenders, ReadSenders};
use crate::app::senders::{self as app, ChangesInput, SenderInput, SenderPage};
use crate::extract::{ApiJson, ApiQuery};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_senders, create_sender))
        .routes(routes!(get_sender, update_sender))
        .routes(routes!(rotate_key))
        .routes(routes!(retire_key))
}

/// A sender in a list.
#[derive(Serialize, ToSchema)]
pub struct SenderSummary {
    #[schema(value_type = uuid::Uuid)]
    id: SenderId,
    from_name: String,
    from_address: String,
    dkim_domain: String,
}

impl From<Sender> for SenderSummary {
    fn from(s: Sender) -> Self {
        Self {
            id: s.id,
            from_name: s.from_name.as_str().to_owned(),
            from_address: s.from_address.as_str().to_owned(),
            dkim_domain: s.dkim_domain.as_str().to_owned(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SenderListView {
    /// In id order (oldest first).
    items: Vec<SenderSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SenderQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
}

/// The organization's senders, a page at a time.
#[utoipa::path(get, path = "/v1/orgs/{slug}/senders", tag = "senders",
    params(("slug" = String, Path), SenderQuery),
    responses((status = 200, body = SenderListView)))]
async fn list_senders(
    mut auth: Authorized<ReadSenders>,
    ApiQuery(query): ApiQuery<SenderQuery>,
) -> Result<Json<SenderListView>, ApiError> {
    let (rows, next_cursor) = app::list(&mut auth, query.cursor.as_deref(), query.limit).await?;
    auth.commit().await?;
    Ok(Json(SenderListView { items: rows.into_iter().map(Into::into).collect(), next_cursor }))
}

/// The DNS TXT record that publishes a key (RFC 6376 section 3.6.1).
#[derive(Serialize, ToSchema)]
pub struct TxtRecordView {
    #[schema(example = "s2026._domainkey.example.com")]
    name: String,
    /// `v=DKIM1; k=rsa; p=` and the base64 of the key's DER SubjectPublicKeyInfo.
    #[schema(example = "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA...")]
    value: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyStateView {
    /// Signs new mail.
    Active,
    /// Replaced by a rotation; still published, so that mail it signed verifies, until retired.
    Previous,
    /// No longer published; never signs again.
    Retired,
}

/// A DKIM key: its public side only.
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    #[schema(value_type = uuid::Uuid)]
    id: DkimKeyId,
    selector: String,
    state: KeyStateView,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
    /// The record to publish; absent for a retired key.
    dns: Option<TxtRecordView>,
}

#[derive(Serialize, ToSchema)]
pub struct SenderView {
    #[schema(value_type = uuid::Uuid)]
    id: SenderId,
    from_name: String,
    from_address: String,
    reply_to: Option<String>,
    /// Lines separated by `\n`.
    postal_address: String,
    dkim_domain: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Newest first.
    keys: Vec<KeyView>,
}

impl From<SenderPage> for SenderView {
    fn from(page: SenderPage) -> Self {
        let key = |k: &Key| KeyView {
            id: k.id,
            selector: k.selector.as_str().to_owned(),
            state: match k.state {
                mos_domain::senders::KeyState::Active => KeyStateView::Active,
                mos_domain::senders::KeyState::Previous => KeyStateView::Previous,
                mos_domain::senders::KeyState::Retired => KeyStateView::Retired,
            },
            created_at: k.created_at,
            retired_at: k.retired_at,
            dns: page.record(k).map(|r| TxtRecordView { name: r.name, value: r.value }),
        };
        let keys = page.keys.iter().map(key).collect();
        let s = page.sender;
        Self {
            id: s.id,
            from_name: s.from_name.as_str().to_owned(),
            from_address: s.from_address.as_str().to_owned(),
            reply_to: s.reply_to.map(|r| r.as_str().to_owned()),
            postal_address: s.postal_address.as_str().to_owned(),
            dkim_domain: s.dkim_domain.as_str().to_owned(),
            created_at: s.created_at,
            updated_at: s.updated_at,
            keys,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSenderBody {
    /// The display name of the From header: 1 to 100 characters, no quotes or angle brackets.
    #[schema(example = "Example Health", min_length = 1, max_length = 100)]
    from_name: String,
    /// At `dkim_domain` or a subdomain of it (DMARC alignment).
    #[schema(example = "news@mail.example.com")]
    from_address: String,
    #[schema(example = "care@example.com")]
    reply_to: Option<String>,
    /// The physical postal address every message carries (CAN-SPAM): 1 to 10 lines, at most
    /// 500 characters.
    #[schema(example = "Example Health\n1 Main St\nSpringfield, IL 62701", min_length = 1, max_length = 500)]
    postal_address: String,
    /// The domain the DKIM signatures name (`d=`).
    #[schema(example = "example.com")]
    dkim_domain: String,
    /// The first key's selector (`s=`): DNS labels, at most 63 characters.
    #[schema(example = "s2026", min_length = 1, max_length = 63)]
    selector: String,
}

/// Add a sender. Its first RSA-2048 DKIM key is generated and becomes active; the answer shows
/// the DNS record to publish for it.
#[utoipa::path(post, path = "/v1/orgs/{slug}/senders", tag = "senders", request_body = NewSenderBody,
    params(("slug" = String, Path)),
    responses((status = 201, body = SenderView), (status = 422, description = "A field breaks its rule, or the from address is outside the DKIM domain (`field` names it)")))]
async fn create_sender(
    State(state): State<AppState>,
    auth: Authorized<ManageSenders>,
    ApiJson(body): ApiJson<NewSenderBody>,
) -> Result<Response, ApiError> {
    let input = SenderInput {
        from_name: &body.from_name,
        from_address: &body.from_address,
        reply_to: body.reply_to.as_deref(),
        postal_address: &body.postal_address,
        dkim_domain: &body.dkim_domain,
        selector: &body.selector,
    };
    let page = app::create(&state, auth, &input).await?;
    Ok((StatusCode::CREATED, Json(SenderView::from(page))).into_response())
}

/// A sender with its keys and the DNS record of each key to publish.
#[utoipa::path(get, path = "/v1/orgs/{slug}/senders/{id}", tag = "senders",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SenderView)))]
async fn get_sender(
    mut auth: Authorized<ReadSenders>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<SenderView>, ApiError> {
    let page = app::sender(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(page.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderChangesBody {
    #[schema(min_length = 1, max_length = 100)]
    from_name: Option<String>,
    /// An empty string removes the reply-to.
    reply_to: Option<String>,
    #[schema(min_length = 1, max_length = 500)]
    postal_address: Option<String>,
}

/// Change a sender's from name, reply-to or postal address. The from address and the DKIM
/// domain are fixed: another address is another sender.
#[utoipa::path(patch, path = "/v1/orgs/{slug}/senders/{id}", tag = "senders", request_body = SenderChangesBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SenderView), (status = 422, description = "A field breaks its rule (`field` names it)")))]
async fn update_sender(
    State(state): State<AppState>,
    auth: Authorized<ManageSenders>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<SenderChangesBody>,
) -> Result<Json<SenderView>, ApiError> {
    let input = ChangesInput {
        from_name: body.from_name.as_deref(),
        reply_to: body.reply_to.as_deref(),
        postal_address: body.postal_address.as_deref(),
    };
    Ok(Json(app::update(&state, auth, &id, &input).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// The new key's selector; one this sender never used.
    #[schema(example = "s2027", min_length = 1, max_length = 63)]
    selector: String,
}

/// Rotate the DKIM key: a new RSA-2048 key becomes active, and the active one becomes
/// `previous`, still published until retired. Publish the new record before mail is sent.
#[utoipa::path(post, path = "/v1/orgs/{slug}/senders/{id}/keys", tag = "senders", request_body = RotateBody,
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 201, body = SenderView), (status = 409, description = "The sender used this selector before (`field`: `selector`)"), (status = 422, description = "The selector is not DNS labels (`field`: `selector`)")))]
async fn rotate_key(
    State(state): State<AppState>,
    auth: Authorized<ManageSenders>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Response, ApiError> {
    let page = app::rotate(&state, auth, &id, &body.selector).await?;
    Ok((StatusCode::CREATED, Json(SenderView::from(page))).into_response())
}

/// Retire a `previous` key: its record may come out of DNS, and it never signs again.
#[utoipa::path(post, path = "/v1/orgs/{slug}/senders/{id}/keys/{key}/retire", tag = "senders",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path), ("key" = uuid::Uuid, Path)),
    responses((status = 200, body = SenderView), (status = 409, description = "The key is the active one, or retired already")))]
async fn retire_key(
    State(state): State<AppState>,
    auth: Authorized<ManageSenders>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> Result<Json<SenderView>, ApiError> {
    Ok(Json(app::retire(&state, auth, &id, &key).await?.into()))
}
