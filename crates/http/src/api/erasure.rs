//! A person's rights over their data under `/v1/orgs/{slug}/contacts/{id}/...`: erase, export,
//! and the consent receipt. Adapters over `app::erasure`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mos_db::audiences::export::{Receipt, RECEIPT_FORMAT};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{Authorized, EraseContacts, ExportContacts};
use crate::app::erasure::{self as app, ContactExportView};
use crate::{ApiError, AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase_contact)).routes(routes!(export_contact)).routes(routes!(consent_receipt))
}

/// Erase a contact (GDPR Art. 17): its address is suppressed, its personal data, attribute
/// values and consent evidence are deleted; its consent events and the audit records stay,
/// naming it by id only. An erased contact is not found again.
#[utoipa::path(post, path = "/v1/orgs/{slug}/contacts/{id}/erase", tag = "audiences",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Erased")))]
async fn erase_contact(
    State(state): State<AppState>,
    auth: Authorized<EraseContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app::erase_contact(&state, auth, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Export everything held about a contact (GDPR Art. 15 and 20): its fields, attribute values,
/// consent events with the notice texts they name, and the evidence. Leaves an audit record
/// (`contact.exported`) naming the contact, not the data.
#[utoipa::path(get, path = "/v1/orgs/{slug}/contacts/{id}/export", tag = "audiences",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ContactExportView)))]
async fn export_contact(
    mut auth: Authorized<ExportContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ContactExportView>, ApiError> {
    let export = app::export_contact(&mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(export))
}

/// A consent receipt, in the format docs/consent.md describes.
#[derive(Serialize)]
#[serde(transparent)]
pub struct ReceiptView(Receipt);

/// An object: its format is docs/consent.md's ("Consent receipts"), for offline verifiers.
impl utoipa::PartialSchema for ReceiptView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .description(Some(format!("A consent receipt (format {RECEIPT_FORMAT}, docs/consent.md)")))
            .into()
    }
}

impl ToSchema for ReceiptView {}

/// A contact's consent receipt: its consent events as the ledger stores them, the notice texts
/// they name, their audit records and the stretch of the organization's audit chain from them
/// to a link signed with the installation's audit signing key. `mos consent verify` checks it
/// offline with the public key. Leaves an audit record (`contact.receipt_issued`).
#[utoipa::path(get, path = "/v1/orgs/{slug}/contacts/{id}/consent-receipt", tag = "audiences",
    params(("slug" = String, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ReceiptView)))]
async fn consent_receipt(
    State(state): State<AppState>,
    mut auth: Authorized<ExportContacts>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<ReceiptView>, ApiError> {
    let receipt = app::consent_receipt(&state, &mut auth, &id).await?;
    auth.commit().await?;
    Ok(Json(ReceiptView(receipt)))
}
