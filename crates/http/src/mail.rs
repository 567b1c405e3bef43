//! Outgoing mail: SMTP when `SMTP_URL` is set, otherwise `.eml` files in a dev outbox folder.
//! Messages go out in the background, after the transaction that caused them has committed,
//! so that neither the mail server's latency nor whether an address has an account shows in
//! the time a request takes.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::Body;
pub use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("SMTP_URL is not a valid SMTP URL: {0}")]
    BadUrl(String),
    #[error("sending mail failed: {0}")]
    Send(String),
    #[error("writing to the outbox {path}: {source}")]
    Outbox { path: PathBuf, source: std::io::Error },
    #[error("building the message failed: {0}")]
    Build(String),
}

pub trait Mailer: Send + Sync + 'static {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>>;
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// `smtp://host:port` (plain, for a local relay), `smtp://host?tls=required` (STARTTLS),
    /// `smtps://host` (TLS), with `user:password@` when the server wants it.
    pub fn from_url(url: &str) -> Result<Self, MailError> {
        // The URL may carry a password: report what is wrong, never the URL.
        let transport =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| MailError::BadUrl(e.to_string()))?;
        Ok(Self { transport: transport.build() })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(
            async move { self.transport.send(message).await.map(|_| ()).map_err(|e| MailError::Send(e.to_string())) },
        )
    }
}

/// Development mail: each message becomes an `.eml` file that any mail client opens.
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

impl Mailer for OutboxMailer {
    fn send(&self, message: Message) -> BoxFuture<'_, Result<(), MailError>> {
        Box::pin(async move {
            let outbox = |source| MailError::Outbox { path: self.dir.clone(), source };
            // The messages hold live tokens: readable by the server's user alone.
            tokio::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).await.map_err(outbox)?;
            let name =
                format!("{}-{}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"), uuid::Uuid::now_v7().simple());
            let path = self.dir.join(name);
            let failed = |source| MailError::Outbox { path: path.clone(), source };
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .await
                .map_err(failed)?;
            tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted()).await.map_err(failed)?;
            // tokio writes in the background: the message is in the file only once flushed.
            tokio::io::AsyncWriteExt::flush(&mut file).await.map_err(failed)?;
            // The file holds the link; the log says where, and never the token itself.
            tracing::info!(path = %path.display(), "mail written to the dev outbox");
            Ok(())
        })
    }
}

/// Sends in the background; a failure is logged (without the message) and the user can ask again.
pub fn send_later(mailer: &Arc<dyn Mailer>, message: Result<Message, MailError>) {
    let mailer = Arc::clone(mailer);
    tokio::spawn(async move {
        let sent = match message {
            Ok(message) => mailer.send(message).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::error!(error = %e, "mail not sent");
        }
    });
}

/// A plain-text message. Plain ASCII with lines of at most 998 octets is valid 7bit as it is
/// (RFC 5322 §2.1.1), so it goes out unencoded and a link in it survives being copied out of
/// the raw message (lettre would quote-print anything over 76 columns); anything else is
/// encoded as lettre sees fit.
pub fn letter(from: &Mailbox, to: &str, subject: &str, body: String) -> Result<Message, MailError> {
    let to: Mailbox = to.parse().map_err(|e: lettre::address::AddressError| MailError::Build(e.to_string()))?;
    let crlf = body.replace("\r\n", "\n").replace('\n', "\r\n");
    let plain = crlf.is_ascii() && !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= 998);
    let body = if plain {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(body)
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_dev_outbox_keeps_each_message_as_an_eml_file_with_its_link_intact() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = OutboxMailer::new(dir.path().join("outbox"));
        let from: Mailbox = "Marketing OS <no-reply@example.com>".parse().unwrap();
        let link = format!("https://marketing-os.example.com/verify-email?token={}", "t".repeat(43));
        outbox.send(letter(&from, "ada@example.com", "Confirm", format!("Open:\n\n{link}\n")).unwrap()).await.unwrap();

        let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains("To: ada@example.com\r\n") && raw.contains(&format!("\r\n{link}\r\n")), "{raw}");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files[0]), 0o600, "the link is a live token: the server's user alone reads it");
        assert_eq!(mode(&dir.path().join("outbox")), 0o700);
    }

    #[test]
    fn text_that_is_not_plain_ascii_is_left_to_lettre_to_encode() {
        let from: Mailbox = "a@example.com".parse().unwrap();
        let message = letter(&from, "b@example.com", "Hi", "Grüße".to_owned()).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(!raw.contains("Content-Transfer-Encoding: 7bit"), "{raw}");
    }
}
