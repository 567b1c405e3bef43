//! Audiences and consent: contacts and their custom attributes, purposes and notice versions,
//! the append-only consent ledger and the suppression list (migration 11, docs/consent.md).
//!
//! Every function takes the request's [`TenantTx`](crate::TenantTx) and names the tenant as
//! `$1` besides Row-Level Security. The ledger, its evidence, the suppressions and erasure go
//! through the schema's SECURITY DEFINER functions, which hold the rules the database enforces
//! whatever the caller does; each change here also leaves its audit record, naming contacts by
//! id only, so that erasing a person leaves the audit chain whole.

pub mod attributes;
pub mod consent;
pub mod contacts;
pub mod purposes;
pub mod signup;
pub mod suppression;
