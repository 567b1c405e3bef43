//! Every audited action, named once for the API, the operator commands and the tests.
//! `known` checks each name at compile time.

use crate::content::Action;
use crate::{AuditAction, ResourceType};

pub const USER: ResourceType = ResourceType::known("user");
pub const SESSION: ResourceType = ResourceType::known("session");

pub const REGISTERED: AuditAction = AuditAction::known("auth.registered");
pub const REGISTER_DUPLICATE: AuditAction = AuditAction::known("auth.register.duplicate");
pub const VERIFICATION_SENT: AuditAction = AuditAction::known("auth.verification.sent");
pub const VERIFICATION_USED: AuditAction = AuditAction::known("auth.verification.used");
pub const VERIFICATION_FAILED: AuditAction = AuditAction::known("auth.verification.failed");
pub const LOGIN_SUCCEEDED: AuditAction = AuditAction::known("auth.login.succeeded");
pub const LOGIN_FAILED: AuditAction = AuditAction::known("auth.login.failed");
pub const LOGIN_THROTTLED: AuditAction = AuditAction::known("auth.login.throttled");
pub const ACCOUNT_LOCKED: AuditAction = AuditAction::known("auth.account.locked");
pub const TWO_FACTOR_CHALLENGED: AuditAction = AuditAction::known("auth.two_factor.challenged");
pub const TWO_FACTOR_FAILED: AuditAction = AuditAction::known("auth.two_factor.failed");
pub const TWO_FACTOR_SETUP_STARTED: AuditAction = AuditAction::known("auth.two_factor.setup_started");
pub const TWO_FACTOR_ENABLED: AuditAction = AuditAction::known("auth.two_factor.enabled");
pub const TWO_FACTOR_DISABLED: AuditAction = AuditAction::known("auth.two_factor.disabled");
pub const RECOVERY_CODE_USED: AuditAction = AuditAction::known("auth.recovery_code.used");
pub const REAUTHENTICATED: AuditAction = AuditAction::known("auth.reauthenticated");
pub const SESSION_REVOKED: AuditAction = AuditAction::known("auth.session.revoked");
pub const PASSWORD_CHANGED: AuditAction = AuditAction::known("auth.password.changed");
pub const PASSWORD_RESET_REQUESTED: AuditAction = AuditAction::known("auth.password_reset.requested");
pub const PASSWORD_RESET_COMPLETED: AuditAction = AuditAction::known("auth.password_reset.completed");
pub const PASSWORD_RESET_FAILED: AuditAction = AuditAction::known("auth.password_reset.failed");
pub const REAUTHENTICATION_FAILED: AuditAction = AuditAction::known("auth.reauthentication.failed");
pub const PASSKEY_ADDED: AuditAction = AuditAction::known("auth.passkey.added");
pub const PASSKEY_RENAMED: AuditAction = AuditAction::known("auth.passkey.renamed");
pub const PASSKEY_REMOVED: AuditAction = AuditAction::known("auth.passkey.removed");
pub const PASSKEY_FAILED: AuditAction = AuditAction::known("auth.passkey.failed");
/// A passkey answered with a sign counter that did not go up: a copy of it may exist.
pub const PASSKEY_CLONED: AuditAction = AuditAction::known("auth.passkey.cloned");
/// A change of passkeys was refused for want of what the account's passkeys or organizations
/// require (a passkey session, or the mailed enrollment link).
pub const PASSKEY_CHANGE_REFUSED: AuditAction = AuditAction::known("auth.passkey.change_refused");
/// A link to add the first passkey was mailed to the account's address.
pub const PASSKEY_ENROLLMENT_SENT: AuditAction = AuditAction::known("auth.passkey.enrollment_sent");

pub const ORGANIZATION: ResourceType = ResourceType::known("organization");
pub const MEMBERSHIP: ResourceType = ResourceType::known("membership");
pub const INVITATION: ResourceType = ResourceType::known("invitation");

pub const ORG_CREATED: AuditAction = AuditAction::known("org.created");
pub const ORG_UPDATED: AuditAction = AuditAction::known("org.updated");
pub const MEMBER_ADDED: AuditAction = AuditAction::known("member.added");
pub const MEMBER_ROLE_CHANGED: AuditAction = AuditAction::known("member.role_changed");
pub const MEMBER_REMOVED: AuditAction = AuditAction::known("member.removed");
pub const MEMBER_LEFT: AuditAction = AuditAction::known("member.left");
/// A member of an organization that requires phishing-resistant sign-in added their first
/// passkey through the mailed link: on the organization's trail, and its ADMINs are mailed.
pub const MEMBER_PASSKEY_ENROLLED: AuditAction = AuditAction::known("member.passkey_enrolled");
pub const INVITATION_CREATED: AuditAction = AuditAction::known("invitation.created");
pub const INVITATION_REVOKED: AuditAction = AuditAction::known("invitation.revoked");
pub const INVITATION_ACCEPTED: AuditAction = AuditAction::known("invitation.accepted");
/// A member tried something their role or the organization's policy does not allow.
pub const ACCESS_DENIED: AuditAction = AuditAction::known("access.denied");

pub const BACKUP: ResourceType = ResourceType::known("backup");

/// The database was restored from a backup: every record after the backup's point, up to the
/// restore, is not in the restored chain; this record says so in the chain itself.
pub const BACKUP_RESTORED: AuditAction = AuditAction::known("backup.restored");

pub const CONTENT: ResourceType = ResourceType::known("content");

pub const CONTENT_CREATED: AuditAction = AuditAction::known("content.created");
pub const CONTENT_EDITED: AuditAction = AuditAction::known("content.edited");
pub const CONTENT_SUBMITTED: AuditAction = AuditAction::known("content.submitted");
pub const CONTENT_WITHDRAWN: AuditAction = AuditAction::known("content.withdrawn");
pub const CONTENT_COMMENTED: AuditAction = AuditAction::known("content.commented");
pub const CONTENT_CHANGES_REQUESTED: AuditAction = AuditAction::known("content.changes_requested");
pub const CONTENT_APPROVED: AuditAction = AuditAction::known("content.approved");
pub const CONTENT_PUBLISHED: AuditAction = AuditAction::known("content.published");
pub const CONTENT_ARCHIVED: AuditAction = AuditAction::known("content.archived");

pub const CONTACT: ResourceType = ResourceType::known("contact");
pub const ATTRIBUTE: ResourceType = ResourceType::known("contact_attribute");
pub const PURPOSE: ResourceType = ResourceType::known("purpose");
pub const NOTICE: ResourceType = ResourceType::known("notice");
pub const CONSENT: ResourceType = ResourceType::known("consent");
pub const SUPPRESSION: ResourceType = ResourceType::known("suppression");
pub const CONTACT_CREATED: AuditAction = AuditAction::known("contact.created");
pub const CONTACT_ERASED: AuditAction = AuditAction::known("contact.erased");
pub const CONTACT_IMPORT: ResourceType = ResourceType::known("contact_import");
/// One record for a whole import: the file's SHA-256 and the counts, never a row's data.
pub const CONTACTS_IMPORTED: AuditAction = AuditAction::known("contacts.imported");
/// The first rows of an uploaded file were shown to map its columns: they are personal data, so
/// the record names the import and the rows shown (by number), never their contents.
pub const CONTACT_IMPORT_PREVIEWED: AuditAction = AuditAction::known("contact_import.previewed");
/// A member queued an import, with or without a consent provenance (its purpose named).
pub const CONTACT_IMPORT_STARTED: AuditAction = AuditAction::known("contact_import.started");
/// A member asked an import to stop; one cancelled before it ran leaves no other record.
pub const CONTACT_IMPORT_CANCELLED: AuditAction = AuditAction::known("contact_import.cancelled");
pub const ATTRIBUTE_DEFINED: AuditAction = AuditAction::known("contact_attribute.defined");
pub const PURPOSE_CREATED: AuditAction = AuditAction::known("purpose.created");
pub const NOTICE_PUBLISHED: AuditAction = AuditAction::known("notice.published");
pub const CONSENT_GRANTED: AuditAction = AuditAction::known("consent.granted");
pub const CONSENT_CONFIRMED: AuditAction = AuditAction::known("consent.confirmed");
pub const CONSENT_REVOKED: AuditAction = AuditAction::known("consent.revoked");
pub const CONSENT_EXPIRED: AuditAction = AuditAction::known("consent.expired");
/// One import batch's consent grants, committed to by a Merkle tree's root.
pub const CONSENT_IMPORTED: AuditAction = AuditAction::known("consent.imported");
pub const ADDRESS_SUPPRESSED: AuditAction = AuditAction::known("suppression.added");
pub const SEGMENT: ResourceType = ResourceType::known("segment");
pub const SEGMENT_SAVED: AuditAction = AuditAction::known("segment.saved");
/// Contacts' personal data was shown as the rows of a segment's preview.
pub const SEGMENT_PREVIEWED: AuditAction = AuditAction::known("segment.previewed");
/// A member changed a contact's name, locale, time zone, tags or attribute values; the record
/// names the fields, not their values (they are personal data, and the trail outlives erasure).
pub const CONTACT_UPDATED: AuditAction = AuditAction::known("contact.updated");
/// A page of contacts with their personal data was shown: the record names the contacts shown
/// (`contacts`, by id) and what of them (`fields`), so that the trail answers "who looked at
/// this person". One record per page, whichever door showed it.
pub const CONTACTS_LISTED: AuditAction = AuditAction::known("contact.listed");
/// One contact's personal data, attributes and consent history were shown.
pub const CONTACT_VIEWED: AuditAction = AuditAction::known("contact.viewed");
/// Everything held about a contact was handed out (GDPR Art. 15 and 20): the record names the
/// contact and what was exported (`fields`), never the data.
pub const CONTACT_EXPORTED: AuditAction = AuditAction::known("contact.exported");
/// A contact's consent receipt was handed out: its consent events, the notices they name, and
/// the stretch of the chain they are in (`chain_to`, the last link's number).
pub const CONTACT_RECEIPT_ISSUED: AuditAction = AuditAction::known("contact.receipt_issued");
/// A member asked whether an address is suppressed; the record names the answer, not the address.
pub const SUPPRESSION_CHECKED: AuditAction = AuditAction::known("suppression.checked");

pub const CAMPAIGN: ResourceType = ResourceType::known("campaign");
/// A campaign's approved version launched: its audience snapshot's counts.
pub const CAMPAIGN_LAUNCHED: AuditAction = AuditAction::known("campaign.launched");
/// A batch of a campaign's messages accepted by the relay: the count and the Merkle root of
/// their hashes.
pub const CAMPAIGN_BATCH_SENT: AuditAction = AuditAction::known("campaign.batch_sent");
/// A campaign's sending paused, resumed or cancelled.
pub const CAMPAIGN_CONTROLLED: AuditAction = AuditAction::known("campaign.controlled");

/// An organization's complaint-rate breaker (docs/sending.md, "Complaint-rate breaker").
pub const SENDING_BREAKER: ResourceType = ResourceType::known("sending_breaker");
/// The complaint rate crossed the warning line: once per crossing, with the window's counts.
pub const BREAKER_WARNED: AuditAction = AuditAction::known("sending.breaker_warned");
/// The breaker halted the organization's sending and paused its sending runs, with the
/// window's counts and the campaigns paused.
pub const BREAKER_TRIPPED: AuditAction = AuditAction::known("sending.breaker_tripped");
/// An ADMIN resumed the halted sending, with the window's counts at that moment.
pub const BREAKER_RESUMED: AuditAction = AuditAction::known("sending.breaker_resumed");
/// An ADMIN changed the breaker's minimum volume or hard-bounce limit.
pub const BREAKER_CONFIGURED: AuditAction = AuditAction::known("sending.breaker_configured");

pub const SENDER: ResourceType = ResourceType::known("sender");
pub const SENDER_CREATED: AuditAction = AuditAction::known("sender.created");
/// The record names the fields changed, not their values.
pub const SENDER_UPDATED: AuditAction = AuditAction::known("sender.updated");
/// A new DKIM key became the sender's active one; the record names the new key and selector
/// and the key it replaced, never key material.
pub const SENDER_KEY_ROTATED: AuditAction = AuditAction::known("sender.key_rotated");
pub const SENDER_KEY_RETIRED: AuditAction = AuditAction::known("sender.key_retired");

/// An endpoint subscribed to an organization's events (docs/webhooks.md). No record holds its
/// signing secret.
pub const WEBHOOK: ResourceType = ResourceType::known("webhook");
pub const WEBHOOK_CREATED: AuditAction = AuditAction::known("webhook.created");
pub const WEBHOOK_DISABLED: AuditAction = AuditAction::known("webhook.disabled");
pub const WEBHOOK_ENABLED: AuditAction = AuditAction::known("webhook.enabled");
pub const WEBHOOK_SECRET_ROTATED: AuditAction = AuditAction::known("webhook.secret_rotated");
/// Disabled by the delivery job after too many failed attempts in a row.
pub const WEBHOOK_FAILING_DISABLED: AuditAction = AuditAction::known("webhook.disabled_failing");

pub const SIGNUP: ResourceType = ResourceType::known("signup");
/// Someone asked, through the public sign-up form, for a purpose the address already consented
/// to: nothing was recorded or mailed, so a stranger cannot turn a confirmed consent back into a
/// pending one.
pub const SIGNUP_REPEATED: AuditAction = AuditAction::known("signup.repeated");
/// A confirmation link of the sign-up form was refused: unknown, spent or expired.
pub const SIGNUP_CONFIRMATION_FAILED: AuditAction = AuditAction::known("signup.confirmation_failed");

/// The audit action of each kind of consent event.
pub fn consent_action(kind: crate::audiences::ConsentKind) -> AuditAction {
    use crate::audiences::ConsentKind;
    match kind {
        ConsentKind::Grant => CONSENT_GRANTED,
        ConsentKind::Confirm => CONSENT_CONFIRMED,
        ConsentKind::Revoke => CONSENT_REVOKED,
        ConsentKind::Expire => CONSENT_EXPIRED,
    }
}

/// The audit action of a step of the review.
pub fn content(action: Action) -> AuditAction {
    match action {
        Action::Edit => CONTENT_EDITED,
        Action::Submit => CONTENT_SUBMITTED,
        Action::Withdraw => CONTENT_WITHDRAWN,
        Action::Comment => CONTENT_COMMENTED,
        Action::RequestChanges => CONTENT_CHANGES_REQUESTED,
        Action::Approve => CONTENT_APPROVED,
        Action::Publish => CONTENT_PUBLISHED,
        Action::Archive => CONTENT_ARCHIVED,
    }
}
