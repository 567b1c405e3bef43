//! The HTTP side of Marketing OS: the operations of the product (`app/`), and the two doors
//! onto them, the JSON API (`api/`) and the console (`console/`). [`app()`] builds the whole
//! router from its state, so the binary and the tests serve exactly the same thing.

mod access;
mod api;
mod app;
mod batch;
pub mod clicks;
mod console;
mod error;
mod extract;
pub mod feedback;
mod headers;
mod heavy;
pub mod mail;
mod origin;
mod paging;
mod router;
pub mod sending;
mod server;
mod settings;
mod state;
mod throttle;
pub mod webhooks;

pub use api::health::Readiness;
pub use error::ApiError;
pub use mail::Mailer;
pub use router::app;
pub use server::{serve, Limits};
pub use settings::{Settings, WebhookSettings};
pub use state::{AppState, StartError};

/// JSON bodies of this API are small; anything larger is refused before it is parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
