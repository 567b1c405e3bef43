//! A person's rights over their data: erasure (GDPR Art. 17), the export of everything held
//! about them (Art. 15 and 20), and the consent receipt, checkable offline against the
//! tenant's signed audit chain (docs/consent.md). Each takes the member's [`Authorized`] for
//! `contacts.erase` or `contacts.export` and leaves its audit record in the same transaction.

use ed25519_dalek::Signer;
use mos_db::audiences::contacts;
use std::collections::BTreeMap;

use mos_db::audiences::export::{
    self, ContactExport, EvidenceCopy, LedgerEvent, NoticeCopy, Receipt, ReceiptCheckpoint, ReceiptHead,
};
use mos_db::audiences::suppression;
use mos_db::chain;
use mos_domain::audiences::SuppressionReason;
use mos_domain::{ContactId, Email};

use serde::Serialize;
use utoipa::ToSchema;

use crate::access::{Authorized, EraseContacts, ExportContacts};
use crate::app::audiences::{AttributeValueView, ContactSummary};
use crate::{ApiError, AppState};

fn parse_contact(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).map_err(|_| ApiError::NotFound)
}

/// Erases a contact: its address is suppressed first (so that a re-import or a grant through
/// the API or the console is refused for it, by the database), then its personal data,
/// attribute values and erasable evidence go; its consent events and audit records stay and
/// name it by id only. An unknown or already erased contact is not found.
pub async fn erase_contact(state: &AppState, auth: Authorized<EraseContacts>, id: &str) -> Result<(), ApiError> {
    let id = parse_contact(id)?;
    let mut tx = auth.tx;
    let contact = contacts::get(&mut tx, id).await?.filter(|c| c.erased_at.is_none()).ok_or(ApiError::NotFound)?;
    let now = state.clock.now();
    let user = auth.session.user;
    // A stored address is one the contact was created with, and so parses; one that would not
    // is still erased, only without the suppression it could not be keyed for. The reason is
    // the person's own wish to hear nothing more, which only their own confirmed sign-up later
    // lifts; a manual block would outlast even that.
    if let Some(address) = contact.address.as_deref().and_then(|a| Email::parse(a).ok()) {
        let keys = state.sealer.address_keys();
        suppression::suppress(&mut tx, keys, &address, SuppressionReason::Unsubscribe, Some(user), now, &auth.source)
            .await?;
    }
    if !contacts::erase(&mut tx, id, user, now, &auth.source).await? {
        return Err(ApiError::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Everything held about a live contact, recorded as exported (`contact.exported`).
pub async fn export_contact(auth: &mut Authorized<ExportContacts>, id: &str) -> Result<ContactExportView, ApiError> {
    let id = parse_contact(id)?;
    let user = auth.session.user;
    Ok(export::export(&mut auth.tx, id, user, &auth.source).await?.ok_or(ApiError::NotFound)?.into())
}

/// Everything held about a contact, as the API answers it and the console hands it out.
#[derive(Serialize, ToSchema)]
pub struct ContactExportView {
    #[serde(flatten)]
    contact: ContactSummary,
    /// By attribute name.
    attributes: BTreeMap<String, AttributeValueView>,
    /// The consent ledger's events as stored (hashes in hex), oldest first.
    #[schema(value_type = Vec<Object>)]
    consent_events: Vec<LedgerEvent>,
    /// The texts of the notice versions the events name.
    #[schema(value_type = Vec<Object>)]
    notices: Vec<NoticeCopy>,
    /// The evidence still held beside the events (address and user agent of a form), with
    /// the salt each event's `evidence_sha256` commits to it with.
    #[schema(value_type = Vec<Object>)]
    evidence: Vec<EvidenceCopy>,
}

impl From<ContactExport> for ContactExportView {
    fn from(export: ContactExport) -> Self {
        Self {
            contact: export.contact.into(),
            attributes: export.attributes.into_iter().map(|a| (a.name, a.value.into())).collect(),
            consent_events: export.events,
            notices: export.notices,
            evidence: export.evidence,
        }
    }
}

/// A contact's consent receipt, recorded as issued (`contact.receipt_issued`): what the tenant
/// has waiting is sealed into its chain first, and the last link the receipt needs is signed
/// with the installation's audit signing key (the key `mos audit checkpoint` signs with). A
/// server without that key hands out the receipt without a checkpoint, which its verifier
/// refuses as unproven.
pub async fn consent_receipt(
    state: &AppState,
    auth: &mut Authorized<ExportContacts>,
    id: &str,
) -> Result<Receipt, ApiError> {
    let id = parse_contact(id)?;
    let org = auth.tx.org();
    chain::seal_tenant(&state.pool, org.as_uuid()).await?;
    let now = chrono::SubsecRound::trunc_subsecs(state.clock.now(), 6);
    let user = auth.session.user;
    let unsigned = export::receipt(&mut auth.tx, id, now, user, &auth.source, export::RECEIPT_MAX_RECORDS)
        .await?
        .ok_or(ApiError::NotFound)?
        .map_err(|too_long| ApiError::Invalid {
            field: "id",
            message: format!(
                "this contact's consent events lie {} audit records apart, more than a receipt carries ({})",
                too_long.links,
                export::RECEIPT_MAX_RECORDS
            ),
        })?;
    let mut receipt = unsigned.receipt;
    if let (Some(key), Some((seq, hash))) = (state.audit_signer.as_deref(), unsigned.head) {
        let head = ReceiptHead { organization_id: org.as_uuid(), seq, hash: hex::encode(hash) };
        let text = chain::checkpoint_text(&now, [(head.organization_id, head.seq, head.hash.as_str())]);
        let signature = key.sign(&text);
        receipt.checkpoint = Some(ReceiptCheckpoint {
            created_at: now,
            heads: vec![head],
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(signature.to_bytes()),
        });
    }
    Ok(receipt)
}
