//! Credentials: password hashing now; one-time tokens and TOTP build on the same habits
//! (secrets in `secrecy` types, slow work off the async runtime, clock and RNG as inputs).

pub mod password;

pub use password::{PasswordError, PasswordHasher, Verified};
