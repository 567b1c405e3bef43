//! The one table of what each role may do. Every tenant endpoint names the permission it needs
//! and the request extractor checks it here, so authorization lives in one place; the README
//! and the OpenAPI descriptions are rendered from the same table.

use std::fmt;

use crate::Role;

/// Something a member may be allowed to do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the organization and leave it.
    ReadOrganization,
    /// Rename the organization and set its security policy.
    ManageOrganization,
    /// List members and their roles.
    ReadMembers,
    /// Invite people, list and revoke pending invitations.
    InviteMembers,
    /// Change a member's role.
    ChangeRoles,
    /// Remove a member.
    RemoveMembers,
    /// Read and export the organization's audit trail.
    ReadAuditLog,
    /// Read content, its versions and its review history.
    ReadContent,
    /// Create content; edit, submit and withdraw one's own (an ADMIN: anyone's).
    WriteContent,
    /// Comment on content, request changes, approve a version someone else wrote.
    ReviewContent,
    /// Publish an approved version, archive content.
    PublishContent,
    /// See purposes, notices, attributes, segments and counts: no one's personal data.
    ReadAudience,
    /// Declare purposes, publish notice versions, define contact attributes.
    ConfigureAudience,
    /// Read contacts' personal data and consent history (every read leaves an audit record).
    ReadContacts,
    /// Add and edit contacts, record consent and revocations, suppress addresses, import.
    ManageContacts,
    /// Build and save segments.
    ManageSegments,
    /// Export a contact's data and consent receipt.
    ExportContacts,
    /// Erase a contact's personal data.
    EraseContacts,
    /// See the organization's senders and the DNS records of their keys (a campaign names one).
    ReadSenders,
    /// Add and change senders, rotate and retire their DKIM keys.
    ManageSenders,
    /// Launch an approved campaign, pause, resume and cancel its sending.
    SendCampaigns,
    /// Subscribe endpoints to the organization's events, disable them, rotate their secrets,
    /// read their deliveries.
    ManageWebhooks,
}

/// Columns: ADMIN, REVIEWER, CREATOR, VIEWER (the order of [`Role::ALL`]).
const TABLE: [(Permission, [bool; 4]); 22] = [
    (Permission::ReadOrganization, [true, true, true, true]),
    (Permission::ManageOrganization, [true, false, false, false]),
    (Permission::ReadMembers, [true, true, true, true]),
    (Permission::InviteMembers, [true, false, false, false]),
    (Permission::ChangeRoles, [true, false, false, false]),
    (Permission::RemoveMembers, [true, false, false, false]),
    (Permission::ReadAuditLog, [true, false, false, false]),
    (Permission::ReadContent, [true, true, true, true]),
    (Permission::WriteContent, [true, false, true, false]),
    (Permission::ReviewContent, [true, true, false, false]),
    (Permission::PublishContent, [true, false, false, false]),
    (Permission::ReadAudience, [true, true, true, true]),
    (Permission::ConfigureAudience, [true, false, false, false]),
    (Permission::ReadContacts, [true, false, true, false]),
    (Permission::ManageContacts, [true, false, true, false]),
    (Permission::ManageSegments, [true, false, true, false]),
    (Permission::ExportContacts, [true, false, false, false]),
    (Permission::EraseContacts, [true, false, false, false]),
    (Permission::ReadSenders, [true, false, true, false]),
    (Permission::ManageSenders, [true, false, false, false]),
    (Permission::SendCampaigns, [true, false, false, false]),
    (Permission::ManageWebhooks, [true, false, false, false]),
];

impl Permission {
    pub const ALL: [Permission; 22] = [
        Permission::ReadOrganization,
        Permission::ManageOrganization,
        Permission::ReadMembers,
        Permission::InviteMembers,
        Permission::ChangeRoles,
        Permission::RemoveMembers,
        Permission::ReadAuditLog,
        Permission::ReadContent,
        Permission::WriteContent,
        Permission::ReviewContent,
        Permission::PublishContent,
        Permission::ReadAudience,
        Permission::ConfigureAudience,
        Permission::ReadContacts,
        Permission::ManageContacts,
        Permission::ManageSegments,
        Permission::ExportContacts,
        Permission::EraseContacts,
        Permission::ReadSenders,
        Permission::ManageSenders,
        Permission::SendCampaigns,
        Permission::ManageWebhooks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadOrganization => "org.read",
            Permission::ManageOrganization => "org.manage",
            Permission::ReadMembers => "members.read",
            Permission::InviteMembers => "members.invite",
            Permission::ChangeRoles => "members.change_role",
            Permission::RemoveMembers => "members.remove",
            Permission::ReadAuditLog => "audit.read",
            Permission::ReadContent => "content.read",
            Permission::WriteContent => "content.write",
            Permission::ReviewContent => "content.review",
            Permission::PublishContent => "content.publish",
            Permission::ReadAudience => "audience.read",
            Permission::ConfigureAudience => "audience.configure",
            Permission::ReadContacts => "contacts.read",
            Permission::ManageContacts => "contacts.manage",
            Permission::ManageSegments => "segments.manage",
            Permission::ExportContacts => "contacts.export",
            Permission::EraseContacts => "contacts.erase",
            Permission::ReadSenders => "senders.read",
            Permission::ManageSenders => "senders.manage",
            Permission::SendCampaigns => "campaigns.send",
            Permission::ManageWebhooks => "webhooks.manage",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Permission::ReadOrganization => "see the organization, leave it",
            Permission::ManageOrganization => {
                "rename it, set its two-factor and review policies and its sending breaker; resume halted sending"
            }
            Permission::ReadMembers => "list members and roles",
            Permission::InviteMembers => "invite people, list and revoke invitations",
            Permission::ChangeRoles => "change a member's role",
            Permission::RemoveMembers => "remove a member",
            Permission::ReadAuditLog => "read and export the audit trail",
            Permission::ReadContent => "read content, its versions, diffs and review history",
            Permission::WriteContent => "create content; edit, submit and withdraw one's own (ADMIN: anyone's)",
            Permission::ReviewContent => "comment, request changes, approve a version written by someone else",
            Permission::PublishContent => "publish an approved version, archive content",
            Permission::ReadAudience => "see purposes, notices, attributes, segments and counts (no personal data)",
            Permission::ConfigureAudience => "declare purposes, publish notice versions, define contact attributes",
            Permission::ReadContacts => "read contacts' personal data and consent history (each read audited)",
            Permission::ManageContacts => "add and edit contacts, record consent, suppress addresses, import",
            Permission::ManageSegments => "build and save segments",
            Permission::ExportContacts => "export a contact's data and consent receipt",
            Permission::EraseContacts => "erase a contact's personal data",
            Permission::ReadSenders => "see senders and the DNS records of their DKIM keys",
            Permission::ManageSenders => "add and change senders, rotate and retire their DKIM keys",
            Permission::SendCampaigns => "launch an approved campaign; pause, resume and cancel its sending",
            Permission::ManageWebhooks => {
                "subscribe endpoints to events, disable them, rotate their secrets, see deliveries"
            }
        }
    }

    /// The roles that hold this permission.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.can(self)).collect()
    }

    /// The sentence that OpenAPI descriptions carry for an endpoint needing this permission.
    pub fn requirement(self) -> String {
        let roles: Vec<&str> = self.roles().into_iter().map(Role::as_str).collect();
        format!("Requires permission `{}` (roles: {}).", self.as_str(), roles.join(", "))
    }

    /// The whole table as Markdown, as the README shows it.
    pub fn markdown_table() -> String {
        let mut out = String::from(
            "| permission | allows | ADMIN | REVIEWER | CREATOR | VIEWER |\n| --- | --- | --- | --- | --- | --- |\n",
        );
        for (permission, allowed) in TABLE {
            let cells: Vec<&str> = allowed.iter().map(|a| if *a { "yes" } else { "no" }).collect();
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                permission.as_str(),
                permission.describe(),
                cells.join(" | ")
            ));
        }
        out
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    pub fn can(self, permission: Permission) -> bool {
        let column = Role::ALL.iter().position(|r| *r == self).unwrap_or(usize::MAX);
        TABLE.iter().any(|(p, allowed)| *p == permission && allowed.get(column).copied().unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_has_exactly_one_row() {
        for p in Permission::ALL {
            assert_eq!(TABLE.iter().filter(|(q, _)| *q == p).count(), 1, "{p}");
        }
    }

    #[test]
    fn only_admins_manage_and_everyone_reads() {
        assert!(Role::Admin.can(Permission::ChangeRoles));
        assert!(!Role::Reviewer.can(Permission::ChangeRoles));
        assert!(Role::Viewer.can(Permission::ReadMembers));
        assert!(!Role::Creator.can(Permission::ReadAuditLog));
        assert_eq!(Permission::ReadAuditLog.requirement(), "Requires permission `audit.read` (roles: ADMIN).");
    }
}

#[cfg(test)]
mod readme {
    #[test]
    fn the_readme_shows_the_permission_table_as_the_code_defines_it() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&super::Permission::markdown_table()),
            "README.md is out of date; paste this table into it:\n{}",
            super::Permission::markdown_table()
        );
    }
}
