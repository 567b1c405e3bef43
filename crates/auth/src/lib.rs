//! Credentials and the secrets around them. Secrets are `secrecy` types; slow work runs off the
//! async runtime; time and randomness are inputs, so that tests never sleep.

pub mod address;
pub mod clock;
pub mod device;
pub mod dkim;
pub mod links;
pub mod password;
pub mod policy;
pub mod recovery;
pub mod seal;
pub mod signer;
pub mod token;
pub mod totp;

pub use address::AddressKeys;
pub use clock::{Clock, ManualClock, SystemClock};
pub use device::DeviceTokens;
pub use dkim::{DkimKeyError, DkimKeyPair};
pub use links::{Click, ClickTokens, Unsubscribe, UnsubscribeTokens};
pub use password::{PasswordError, PasswordHasher, Verified};
pub use policy::{NewPassword, PasswordRejected};
pub use seal::{SealError, Sealer};
pub use signer::Signer;
pub use token::{OneTimeToken, TokenHash};
pub use totp::Totp;
