//! Messages Marketing OS sends: approved content rendered for one recipient ([`render`]), built
//! as MIME with its headers ([`Message::build`]) and DKIM-signed ([`DkimSigner::sign`]).
//! Pure computation, no I/O: the caller reads the database and hands the bytes to a transport.
//! docs/messages.md says what a message holds and how to verify one.

mod dkim;
mod error;
pub mod markdown;
mod message;
mod personalisation;
mod render;

pub use dkim::{DkimSigner, Signed, SIGNED_HEADERS};
pub use error::{InputError, MessageError, Part, RenderError, Required};
pub use message::{Envelope, FeedbackId, Mailbox, Message, MessageId};
pub use personalisation::{Field, FieldKind, Fields, Personalisation};
pub use render::{render, Content, Essentials, HttpsUrl, Rendered, Template};
