//! Data the tests and `mos bench` build the same way, through the repositories as `app_user`:
//! without the test harness ([`crate::testing`], which starts its own PostgreSQL), so that the
//! `mos` binary can carry what its benchmark sends and nothing of the harness.

pub mod campaign;
