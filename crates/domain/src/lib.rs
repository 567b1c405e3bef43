//! The vocabulary of Marketing OS: identifiers, constrained strings, roles and audit events.
//!
//! Every value here is parsed once at the edge and trusted afterwards, so nothing in this crate
//! knows about SQL or HTTP.

pub mod audiences;
mod audit;
pub mod campaigns;
pub mod contact;
pub mod content;
pub mod events;
mod id;
pub mod merkle;
mod permission;
mod role;
pub mod segments;
pub mod senders;
mod text;
mod token;
pub mod webhooks;

pub use audit::{AuditAction, AuditEvent, AuditTextError, Outcome, RequestSource, ResourceType};
pub use id::{
    AttributeId, ConsentEventId, ContactId, ContentId, DkimKeyId, IdError, ImportId, InvitationId, JobId, OrgId,
    PurposeId, SegmentId, SenderId, SessionId, UserId, WebhookId,
};
pub use permission::Permission;
pub use role::{Role, RoleError};
pub use text::{deceptive, reveal, url_component, Email, OrgName, Slug, TextError};
pub use token::TokenHash;
