//! The JSON API: one module of routes per feature.

pub mod account;
pub mod audit;
pub mod content;
pub mod docs;
pub mod health;
pub mod orgs;
pub mod passkeys;
pub mod signin;
