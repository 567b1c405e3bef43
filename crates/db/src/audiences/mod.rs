//! Audiences and consent: contacts and their custom attributes, purposes and notice versions,
//! the append-only consent ledger and the suppression list (migration 12, docs/consent.md).
//!
//! Every function takes the request's [`TenantTx`](crate::TenantTx) and names the tenant as
//! `$1` besides Row-Level Security, and writes as `app_user` (no SECURITY DEFINER function, so
//! that a contact, its consent and their audit records can change in one transaction on Citus).
//! The rules the database enforces whatever the caller does are constraints and the triggers of
//! migration 12; each change here also leaves its audit record, naming contacts by id only, so
//! that erasing a person leaves the audit chain whole. Addresses are keyed by an
//! [`AddressKeyer`](mos_domain::audiences::AddressKeyer) that the server holds.

pub mod attributes;
pub mod browse;
pub mod consent;
pub mod contacts;
pub mod export;
pub mod import;
pub mod import_views;
pub mod purposes;
pub mod segments;
pub mod signup;
pub mod suppression;
pub mod unsubscribe;
