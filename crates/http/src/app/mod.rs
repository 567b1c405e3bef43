//! The operations of the product, one module per feature: typed functions that take what a
//! request established (the session's [`crate::extract::Authenticated`], a member's
//! [`crate::access::Authorized`]) and return typed values. The JSON API (`api/`) and the
//! console (`console/`) are adapters over the same functions; neither calls the other.

pub mod account;
pub mod audit;
pub mod content;
pub mod orgs;
pub mod passkeys;
pub mod registration;
pub mod session;
pub mod signin;
