//! DKIM signatures (RFC 6376): RSA-SHA256, relaxed/relaxed, over the headers a recipient trusts
//! and RFC 8058 requires signed, by lettre's implementation.

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use mos_domain::senders::{DkimDomain, Selector};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{InputError, MessageError};
use crate::message::Message;

/// The headers the signature covers. `List-Unsubscribe` and `List-Unsubscribe-Post` because RFC
/// 8058 section 4 requires it (a relay must not be able to add a one-click address); Reply-To
/// and Feedback-ID too, so neither can be changed on the way. A header the message lacks is still
/// named, so it cannot be added afterwards either.
pub const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "Feedback-ID",
];

/// One sender's DKIM key with its selector and domain (`d=`), parsed once and used for many
/// messages. Signing is CPU work (one RSA-2048 signature): call it off the async runtime.
pub struct DkimSigner {
    config: DkimConfig,
    domain: DkimDomain,
}

impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of every log line.
        f.debug_struct("DkimSigner").field("domain", &self.domain).finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// `private_key_pem` is an RSA private key in PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`).
    /// The selector and domain are the sender's, parsed by their domain types, so they hold
    /// nothing that could end a tag or the header.
    pub fn new(selector: &Selector, domain: &DkimDomain, private_key_pem: &SecretString) -> Result<Self, InputError> {
        let key = DkimSigningKey::new(private_key_pem.expose_secret(), DkimSigningAlgorithm::Rsa)
            .map_err(|_| InputError::DkimKey)?;
        let headers = SIGNED_HEADERS.iter().map(|name| HeaderName::new_from_ascii_str(name)).collect();
        let relaxed =
            DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
        let config = DkimConfig::new(selector.as_str().to_owned(), domain.as_str().to_owned(), key, headers, relaxed);
        Ok(Self { config, domain: domain.clone() })
    }

    /// The message with its `DKIM-Signature` header, ready to hand to a transport. Refused when
    /// the From domain is neither the signing domain nor below it: such a signature would not
    /// align for DMARC, and the message would be judged as unsigned.
    pub fn sign(&self, message: Message) -> Result<Signed, MessageError> {
        if !self.domain.aligns_with(&message.from) {
            let from = message.from.as_str().rsplit_once('@').map_or("", |(_, domain)| domain).to_owned();
            return Err(MessageError::NotAligned { from, dkim: self.domain.as_str().to_owned() });
        }
        let mut inner = message.inner;
        inner.sign(&self.config);
        Ok(Signed { inner })
    }
}

/// A signed message.
#[derive(Debug, Clone)]
pub struct Signed {
    inner: lettre::Message,
}

impl Signed {
    /// The message as it goes on the wire (CRLF line ends).
    pub fn formatted(&self) -> Vec<u8> {
        self.inner.formatted()
    }

    /// The SMTP envelope (MAIL FROM the From address, RCPT TO the recipient).
    pub fn envelope(&self) -> &lettre::address::Envelope {
        self.inner.envelope()
    }
}
