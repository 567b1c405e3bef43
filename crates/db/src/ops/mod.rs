//! Operator tooling: what `mos migrate` and `mos db ...` run, and the embedded cluster they
//! run it on. Nothing here is on the request path, which reaches the database only through
//! [`crate::TenantTx`] and its siblings; these modules connect as the superuser or the owner.
//!
//! The modules depend on each other in one direction only:
//! `catalog` ← `migrate` ← `citus` ← `check`; `embedded` and `schema` stand apart.

pub mod catalog;
pub mod check;
pub mod citus;
pub mod embedded;
mod error;
pub mod migrate;

pub use error::{OpsError, Result};
