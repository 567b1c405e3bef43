//! What the console says in people's words: audit actions, and the confirmation a page shows
//! after a change. Both are fixed tables, so that nothing a client sends is echoed as prose.

use maud::{html, Markup};

/// An audit action in plain words, for the records the product writes.
pub fn action(code: &str) -> Option<&'static str> {
    Some(match code {
        "auth.registered" => "Registered",
        "auth.register.duplicate" => "Tried to register an address that has an account",
        "auth.verification.sent" => "Verification link sent",
        "auth.verification.used" => "Address verified",
        "auth.verification.failed" => "Verification link refused",
        "auth.login.succeeded" => "Signed in",
        "auth.login.failed" => "Sign-in failed",
        "auth.login.throttled" => "Sign-in slowed down after failures",
        "auth.account.locked" => "Sign-ins delayed after repeated failures",
        "auth.two_factor.challenged" => "Asked for a second factor",
        "auth.two_factor.failed" => "Second factor refused",
        "auth.two_factor.setup_started" => "Two-factor setup started",
        "auth.two_factor.enabled" => "Two-factor turned on",
        "auth.two_factor.disabled" => "Two-factor turned off",
        "auth.recovery_code.used" => "Recovery code used",
        "auth.reauthenticated" => "Confirmed it was them",
        "auth.session.revoked" => "Signed out a session",
        "auth.password.changed" => "Password changed",
        "auth.password_reset.requested" => "Password reset asked for",
        "auth.password_reset.completed" => "Password reset",
        "auth.password_reset.failed" => "Password reset link refused",
        "auth.reauthentication.failed" => "Confirmation failed",
        "auth.passkey.added" => "Passkey added",
        "auth.passkey.renamed" => "Passkey renamed",
        "auth.passkey.removed" => "Passkey removed",
        "auth.passkey.failed" => "Passkey not verified",
        "auth.passkey.cloned" => "Possibly copied passkey refused",
        "auth.passkey.change_refused" => "Passkey change refused",
        "auth.passkey.enrollment_sent" => "Passkey link mailed",
        "org.created" => "Organization created",
        "org.updated" => "Organization changed",
        "member.added" => "Member added",
        "member.role_changed" => "Role changed",
        "member.removed" => "Member removed",
        "member.left" => "Member left",
        "member.passkey_enrolled" => "Member added a first passkey by mailed link",
        "invitation.created" => "Invitation sent",
        "invitation.revoked" => "Invitation revoked",
        "invitation.accepted" => "Invitation accepted",
        "access.denied" => "Access refused",
        "backup.restored" => "Restored from a backup",
        "content.created" => "Content created",
        "content.edited" => "Content edited",
        "content.submitted" => "Submitted for review",
        "content.withdrawn" => "Withdrawn from review",
        "content.commented" => "Commented",
        "content.changes_requested" => "Changes requested",
        "content.approved" => "Approved",
        "content.published" => "Published",
        "content.archived" => "Archived",
        "contact.created" => "Contact added",
        "contact.updated" => "Contact changed",
        "contact.erased" => "Contact erased",
        "contact.listed" => "Contacts shown in a list",
        "contact.viewed" => "Contact's page shown",
        "contact.exported" => "Contact's data exported",
        "contact.receipt_issued" => "Consent receipt issued",
        "contact_attribute.defined" => "Attribute defined",
        "purpose.created" => "Purpose declared",
        "notice.published" => "Notice version published",
        "consent.granted" => "Consent recorded",
        "consent.confirmed" => "Consent confirmed by the person",
        "consent.revoked" => "Consent withdrawn",
        "consent.expired" => "Consent expired",
        "consent.imported" => "Consent of a batch of imported contacts recorded",
        "suppression.added" => "Address suppressed",
        "suppression.checked" => "Asked whether an address is suppressed",
        "contacts.imported" => "Contacts imported from a file",
        "contact_import.previewed" => "First rows of an import file shown",
        "contact_import.started" => "Import started",
        "contact_import.cancelled" => "Import cancelled",
        "segment.saved" => "Segment saved",
        "segment.previewed" => "Contacts shown in a segment's preview",
        "campaign.launched" => "Campaign launched: its audience recorded in the send ledger",
        "campaign.batch_sent" => "A batch of a campaign's messages sent",
        "campaign.controlled" => "Campaign paused, resumed or cancelled",
        "sending.breaker_warned" => "Spam complaints passed 0.1%: the ADMINs were told",
        "sending.breaker_tripped" => "Sending halted by the complaint-rate breaker; sending campaigns paused",
        "sending.breaker_resumed" => "Sending resumed after the complaint-rate breaker halted it",
        "sending.breaker_configured" => "Complaint-rate breaker settings changed",
        "sender.created" => "Sender added",
        "sender.updated" => "Sender changed",
        "sender.key_rotated" => "Sender's DKIM key rotated",
        "sender.key_retired" => "Sender's previous DKIM key retired",
        "webhook.created" => "Webhook endpoint added",
        "webhook.disabled" => "Webhook endpoint disabled",
        "webhook.enabled" => "Webhook endpoint enabled",
        "webhook.secret_rotated" => "Webhook endpoint's signing secret replaced",
        "webhook.disabled_failing" => "Webhook endpoint disabled after failing too often in a row",
        "signup.repeated" => "Signed up again with consent already given",
        "signup.confirmation_failed" => "A sign-up confirmation link was refused",
        _ => return None,
    })
}

/// An audit action as a page shows it: in words where there are some, the code beside.
pub fn action_cell(code: &str) -> Markup {
    html! {
        @if let Some(words) = action(code) { (words) " " }
        code { (code) }
    }
}

/// What a page says after the change that led to it (`?done=`), or nothing.
pub fn confirmation(done: Option<&str>) -> Markup {
    let said = match done.unwrap_or_default() {
        "created" => "Created.",
        "joined" => "You joined the organization.",
        "left" => "You left the organization.",
        "invited" => "The invitation is on its way.",
        "invitation_revoked" => "The invitation was revoked.",
        "role_changed" => "The role was changed.",
        "policy" => "The policy was changed.",
        "session_ended" => "That session was signed out.",
        "password_changed" => "Your password was changed; your other sessions were signed out.",
        "two_factor_off" => "Two-factor authentication is off; your other sessions were signed out.",
        "passkey_renamed" => "The passkey was renamed.",
        "passkey_removed" => "The passkey was removed; your other sessions were signed out.",
        "saved" => "Saved as a new version.",
        "unchanged" => "The latest version has this definition already: nothing was saved.",
        "contact_saved" => "The contact was saved.",
        "consent_recorded" => "The consent was recorded.",
        "contact_erased" => "The contact was erased; its address stays suppressed.",
        "suppressed" => "The address is suppressed.",
        "published_notice" => "The notice version is published.",
        "defined" => "The attribute is defined.",
        "sender_created" => "The sender is added. Publish its DNS record before sending.",
        "sender_saved" => "The sender was changed.",
        "key_rotated" => {
            "The new key is active. Publish its DNS record now; the previous key stays published until you retire it."
        }
        "key_retired" => "The key is retired; its DNS record may be removed.",
        "webhook_enabled" => "The endpoint is enabled: the events waiting for it are sent first.",
        "webhook_disabled" => "The endpoint is disabled: nothing is sent to it and no new events are kept for it.",
        "campaign_created" => "The campaign is created as a draft. Submit it for review from its review page.",
        "campaign_saved" => "Saved as a new version; its review starts over.",
        "campaign_launch" => "Launched: its audience is in the send ledger and its sending has started.",
        "campaign_pause" => "Sending is paused.",
        "campaign_resume" => "Sending resumed.",
        "campaign_cancel" => "Sending is cancelled; every message not yet handed over is skipped.",
        "breaker_resumed" => "Sending resumed: the campaigns the breaker paused are sending again.",
        "breaker_saved" => "The breaker's settings were saved.",
        "edited" | "submitted" | "withdrawn" | "commented" | "changes_requested" | "approved" | "published"
        | "archived" => "Done.",
        _ => return html! {},
    };
    html! { p class="note" role="status" { (said) } }
}

#[cfg(test)]
mod tests {
    use super::{action, confirmation};

    #[test]
    fn every_action_the_product_records_has_words() {
        // The one vocabulary, read from its source: an action added there needs words here.
        let events = include_str!("../../../domain/src/events.rs");
        let codes: Vec<&str> =
            events.split("AuditAction::known(\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
        assert!(codes.len() > 40, "{codes:?}");
        for code in codes {
            assert!(action(code).is_some(), "{code} has no words");
        }
    }

    #[test]
    fn a_confirmation_says_only_what_its_table_holds() {
        assert!(confirmation(Some("role_changed")).into_string().contains("The role was changed."));
        assert_eq!(confirmation(Some("<script>")).into_string(), "");
        assert_eq!(confirmation(None).into_string(), "");
    }
}
