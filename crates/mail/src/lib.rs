//! Messages Marketing OS sends: approved content rendered for one recipient ([`render`]), built
//! as MIME with its headers ([`Message::build`]), DKIM-signed ([`DkimSigner::sign`]) and handed
//! to the relay ([`smtp::Relay::send`]).
//! Everything but [`smtp`] is pure computation: the caller reads the database, and `smtp` is the
//! crate's one I/O part, the SMTP client that delivers the signed bytes. docs/messages.md says
//! what a message holds, how to verify one and how it is delivered.

mod dkim;
mod error;
pub mod feedback;
pub mod markdown;
mod message;
mod personalisation;
mod render;
pub mod smtp;
#[cfg(feature = "testing")]
pub mod testing;

pub use dkim::{DkimSigner, Signed, SIGNED_HEADERS};
pub use error::{InputError, MessageError, Part, RenderError, Required};
pub use message::{Envelope, FeedbackId, Mailbox, Message, MessageId};
pub use personalisation::{Field, FieldKind, Fields, Personalisation};
pub use render::{render, tracked_links, Content, Essentials, HttpsUrl, Rendered, Template};
