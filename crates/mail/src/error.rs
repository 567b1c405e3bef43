//! What can go wrong turning approved content into a message. No message carries a value it was
//! given (a recipient's name, an address, a key): these errors reach logs, and the values are
//! personal data or secrets. A field is named, never its value.

/// An input that breaks its rule, refused when it is parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("a field name must be lowercase letters, digits and underscores, starting with a letter")]
    FieldName,
    #[error("`{0}` is the name of an element every message carries, not a personalisation field")]
    ReservedField(String),
    #[error("the field `{0}` is declared twice")]
    DuplicateField(String),
    #[error("a text field holds 1 to 10000 characters")]
    MaxChars,
    #[error("a value was given for `{0}`, which is not a declared field")]
    UndeclaredValue(String),
    #[error("no value was given for the declared field `{0}`")]
    MissingValue(String),
    #[error("the value of `{field}` is longer than {max} characters")]
    TooLong { field: String, max: u16 },
    #[error("the value of `{0}` holds a control character or one that shows nothing")]
    Invisible(String),
    #[error("the value of `{0}` looks like an address (`://`, `www.` or `@`), which mail clients turn into links")]
    LinkLike(String),
    #[error("the link must be an absolute https URL")]
    HttpsUrl,
    #[error("the address cannot go into a message header")]
    Address,
    #[error("a Message-ID is `<left@right>`, each side dot-separated atoms of printable ASCII")]
    MessageId,
    #[error("a Feedback-ID is 1 to 200 letters, digits and `:._-`")]
    FeedbackId,
    #[error("the DKIM private key is not an RSA private key in PKCS#1 PEM form")]
    DkimKey,
    #[error("the template's layout must hold `{{{{content}}}}` exactly once, as a paragraph of its own")]
    ContentSlot,
}

/// A template, a body or a subject that cannot make a message, found while rendering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the placeholder `{0}` is not a declared personalisation field")]
    Undeclared(String),
    #[error(
        "a `{{{{` opens no well-formed placeholder (`{{{{name}}}}`, name in lowercase letters, digits and underscores)"
    )]
    Malformed,
    #[error("`{{{{content}}}}` may stand only in the template's layout, as a paragraph of its own")]
    MisplacedContent,
    #[error("a link's address may be only `{{{{unsubscribe_url}}}}` or `{{{{preferences_url}}}}`, not `{0}`")]
    InAddress(String),
    #[error("the subject may use personalisation fields only, not `{0}`")]
    InSubject(String),
    #[error("the subject is empty or holds a control character")]
    Subject,
    #[error("the rendered {part} lacks {element}")]
    Missing { element: Required, part: Part },
    #[error("the message has {links} tracked links but {addresses} click addresses were made for it")]
    Clicks { links: usize, addresses: usize },
}

/// The elements every rendered message must show, in both its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    PostalAddress,
    UnsubscribeLink,
}

impl std::fmt::Display for Required {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PostalAddress => "the sender's postal address",
            Self::UnsubscribeLink => "the unsubscribe link",
        })
    }
}

/// One of a message's two alternative parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Html,
    Text,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Html => "HTML part",
            Self::Text => "text part",
        })
    }
}

/// A rendered message that cannot be built or signed.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("the message could not be built")]
    Build(#[source] lettre::error::Error),
    #[error("the message's parts could not be encoded as a 7-bit MIME body")]
    Encoding,
    #[error(
        "the From address's domain `{from}` is not the DKIM domain `{dkim}` or below it, so DMARC would not align"
    )]
    NotAligned { from: String, dkim: String },
    /// OpenSSL refused to sign; its error is left out, as it may describe the key.
    #[error("the message could not be signed")]
    Signing,
}
