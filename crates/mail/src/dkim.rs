//! DKIM signatures (RFC 6376): RSA-SHA256, relaxed/relaxed, over the headers a recipient trusts
//! and RFC 8058 requires signed. lettre builds the message; the canonical forms are computed
//! here and the RSA step is OpenSSL's, which signs several times faster than the pure-Rust RSA
//! lettre's own signer uses (docs/performance.md, "Sending").

use std::time::{SystemTime, UNIX_EPOCH};

use lettre::address::Envelope;
use mos_domain::senders::{DkimDomain, Selector};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
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
    key: PKey<Private>,
    selector: Selector,
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
        // OpenSSL's error would say nothing more useful, and must not carry key material to a log.
        let rsa =
            Rsa::private_key_from_pem(private_key_pem.expose_secret().as_bytes()).map_err(|_| InputError::DkimKey)?;
        if !rsa.check_key().unwrap_or(false) {
            return Err(InputError::DkimKey);
        }
        let key = PKey::from_rsa(rsa).map_err(|_| InputError::DkimKey)?;
        Ok(Self { key, selector: selector.clone(), domain: domain.clone() })
    }

    /// The message with its `DKIM-Signature` header, ready to hand to a transport. Refused when
    /// the From domain is neither the signing domain nor below it: such a signature would not
    /// align for DMARC, and the message would be judged as unsigned.
    pub fn sign(&self, message: Message) -> Result<Signed, MessageError> {
        if !self.domain.aligns_with(&message.from) {
            let from = message.from.as_str().rsplit_once('@').map_or("", |(_, domain)| domain).to_owned();
            return Err(MessageError::NotAligned { from, dkim: self.domain.as_str().to_owned() });
        }
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let bytes = self.sign_bytes(&message.inner.formatted(), timestamp)?;
        Ok(Signed { bytes, envelope: message.inner.envelope().clone() })
    }

    /// `formatted` (headers, an empty line, the body; CRLF line ends) with a `DKIM-Signature`
    /// header in front.
    fn sign_bytes(&self, formatted: &[u8], timestamp: u64) -> Result<Vec<u8>, MessageError> {
        let (head, body) = match find(formatted, b"\r\n\r\n") {
            Some(at) => (&formatted[..at + 2], &formatted[at + 4..]),
            None => (formatted, &[][..]),
        };
        let body_hash = openssl::base64::encode_block(&openssl::sha::sha256(&relaxed_body(body)));
        let names = SIGNED_HEADERS.map(str::to_ascii_lowercase).join(":");
        // Folded before each long tag, so that no line grows past 78 characters but the
        // signature's own. The verifier canonicalizes this header exactly as it is written, with
        // the value of b= left out, so it is signed here in the same form.
        let header = format!(
            "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={}; s={}; q=dns/txt; t={timestamp};\r\n h={names};\r\n bh={body_hash};\r\n b=",
            self.domain.as_str(),
            self.selector.as_str(),
        );
        let fields = fields(head);
        let mut hashed = Vec::with_capacity(head.len() + header.len());
        // RFC 6376 5.4.2: a header named once is taken from the bottom; one the message lacks
        // adds nothing (and, named, cannot be added later).
        for name in SIGNED_HEADERS {
            if let Some(field) = fields.iter().rev().find(|f| field_name(f).eq_ignore_ascii_case(name.as_bytes())) {
                relaxed_header(field, &mut hashed);
            }
        }
        relaxed_header(header.as_bytes(), &mut hashed);
        // The signature's own header goes in without its line end (RFC 6376 3.7).
        hashed.truncate(hashed.len() - 2);
        let signature = Signer::new(MessageDigest::sha256(), &self.key)
            .and_then(|mut signer| signer.sign_oneshot_to_vec(&hashed))
            .map_err(|_| MessageError::Signing)?;
        let signature = openssl::base64::encode_block(&signature);
        let mut out = Vec::with_capacity(header.len() + signature.len() + 2 + formatted.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(signature.as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(formatted);
        Ok(out)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The header fields of `head` (which ends with the last field's CRLF), each with its name, its
/// continuation lines and its final CRLF.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while let Some(end) = find(&head[at..], b"\r\n").map(|i| at + i + 2) {
        // A line that begins with white space continues the field before it.
        if end < head.len() && is_wsp(head[end]) {
            at = end;
            continue;
        }
        fields.push(&head[start..end]);
        start = end;
        at = end;
    }
    if start < head.len() {
        fields.push(&head[start..]);
    }
    fields
}

fn field_name(field: &[u8]) -> &[u8] {
    let name = field.iter().position(|&b| b == b':').map_or(field, |colon| &field[..colon]);
    name.trim_ascii_end()
}

/// RFC 6376 3.4.2, "relaxed" header canonicalization, appended to `out`: the name in lower case,
/// no white space around the colon, the value unfolded, each run of white space one space, none
/// at its ends, then CRLF.
fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let Some(colon) = field.iter().position(|&b| b == b':') else { return };
    out.extend(field[..colon].trim_ascii_end().iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let mut pending_space = false;
    let mut started = false;
    let value = &field[colon + 1..];
    for (i, &b) in value.iter().enumerate() {
        match b {
            // Unfolding removes the CRLF before a continuation line; the white space after it
            // stays, and becomes part of a run.
            b'\r' if value.get(i + 1) == Some(&b'\n') => {}
            b'\n' if i > 0 && value[i - 1] == b'\r' => {}
            b' ' | b'\t' => pending_space = true,
            _ => {
                if pending_space && started {
                    out.push(b' ');
                }
                pending_space = false;
                started = true;
                out.push(b);
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// RFC 6376 3.4.4, "relaxed" body canonicalization: each run of white space in a line one space,
/// none at a line's end, no empty lines at the end, and a non-empty body ending with CRLF.
fn relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut empty_lines = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match find(rest, b"\r\n") {
            Some(end) => (&rest[..end], &rest[end + 2..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let mut canonical = Vec::with_capacity(line.len());
        let mut pending_space = false;
        for &b in line {
            if is_wsp(b) {
                pending_space = true;
            } else {
                if pending_space {
                    canonical.push(b' ');
                }
                pending_space = false;
                canonical.push(b);
            }
        }
        if canonical.is_empty() {
            // Kept only if a line with content follows.
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            out.extend_from_slice(b"\r\n");
        }
        empty_lines = 0;
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A signed message.
#[derive(Debug, Clone)]
pub struct Signed {
    bytes: Vec<u8>,
    envelope: Envelope,
}

impl Signed {
    /// The message as it goes on the wire (CRLF line ends).
    pub fn formatted(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The SMTP envelope (MAIL FROM the From address, RCPT TO the recipient).
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6376 section 3.4.5's example, canonicalized relaxed/relaxed.
    #[test]
    fn relaxed_canonicalization_gives_the_rfcs_example() {
        let head = b"A: X\r\nB : Y\t\r\n\tZ  \r\n";
        let mut out = Vec::new();
        for field in fields(head) {
            relaxed_header(field, &mut out);
        }
        assert_eq!(String::from_utf8_lossy(&out), "a:X\r\nb:Y Z\r\n");
        let body = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&relaxed_body(body)), " C\r\nD E\r\n");
    }

    /// A message lettre would not write, but a verifier must still agree with: raw UTF-8 in a
    /// header and the body, tabs and runs of spaces, a header folded over three lines, white
    /// space at the end of lines, and empty and blank lines at the end of the body.
    const AWKWARD: &str = "From: =?utf-8?b?Wm/DqyDDhW5nc3Ryw7Zt?= <care@mail.acme.example>\r\n\
        To: \"A display name long enough to be folded onto a line of its own, past 78\"\r\n  \t<ada@patient.example>\r\n\
        Subject:   Grippe-Impfung für Zoë:\t jetzt   buchen, \r\n\tbevor der Winter\r\n  kommt  \r\n\
        Date: Mon, 7 Dec 2026 08:00:00 +0000\r\n\
        Message-ID: <c0ffee.1@mail.acme.example>\r\n\
        X-Unsigned: anything\r\n\
        list-unsubscribe: <https://mos.example/u/t>\r\n\
        List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\
        \r\n\
        Grüße,  Zoë \t\r\n\
        \r\n\
        \t  indented, with tabs at the end\t\t\r\n\
        \r\n\
        \r\n\
        \t \r\n\
        \r\n";

    fn signer() -> (DkimSigner, String) {
        let rsa = Rsa::generate(2048).expect("an RSA key");
        let public = openssl::base64::encode_block(&rsa.public_key_to_der().expect("the public key"));
        let pem = String::from_utf8(rsa.private_key_to_pem().expect("PEM")).expect("ASCII");
        let selector = Selector::parse("s1").expect("a selector");
        let domain = DkimDomain::parse("mail.acme.example").expect("a domain");
        (DkimSigner::new(&selector, &domain, &SecretString::from(pem)).expect("a signer"), public)
    }

    /// Whether dkimpy, through the integration tests' script, verifies `message` with `public`
    /// as the DNS record of s1._domainkey.mail.acme.example.
    fn dkimpy_verifies(message: &[u8], public: &str) -> bool {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("message.eml");
        std::fs::write(&file, message).expect("the message file");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/inspect_message.py");
        let output = std::process::Command::new("python3")
            .args([script, "verify"])
            .arg(&file)
            .args(["s1", "mail.acme.example", public])
            .output()
            .expect("python3 runs tests/data/inspect_message.py (pip install dkimpy)");
        assert!(!output.stdout.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
        output.status.success()
    }

    #[test]
    fn dkimpy_agrees_on_non_ascii_folded_headers_and_blank_lines_at_the_end() {
        let (signer, public) = signer();
        let signed = signer.sign_bytes(AWKWARD.as_bytes(), 1_796_630_400).expect("signed");
        assert!(dkimpy_verifies(&signed, &public), "{}", String::from_utf8_lossy(&signed));
        // What relaxed canonicalization ignores may change on the way...
        let text = String::from_utf8(signed).expect("UTF-8");
        for (from, to) in [
            ("Grüße,  Zoë \t\r\n", "Grüße, Zoë\r\n"),
            ("\t \r\n\r\n", "\r\n"),
            ("jetzt   buchen", "jetzt\r\n buchen"),
            ("\r\nlist-unsubscribe: <", "\r\nList-Unsubscribe: <"),
        ] {
            assert!(text.contains(from), "{from:?}");
            assert!(dkimpy_verifies(text.replacen(from, to, 1).as_bytes(), &public), "{from:?} -> {to:?}");
        }
        // ...what it does not, may not.
        for (from, to) in [("Grüße,  Zoë", "Grüße, Zoe"), ("für Zoë", "für Zoe"), ("indented, with", "indented with")]
        {
            assert!(!dkimpy_verifies(text.replacen(from, to, 1).as_bytes(), &public), "{from:?} -> {to:?}");
        }
        // A body without its last line end, and one with nothing but empty lines.
        for body in ["Hello", "\r\n\r\n"] {
            let message = format!("{}\r\n\r\n{body}", AWKWARD.split_once("\r\n\r\n").map_or("", |(head, _)| head));
            let signed = signer.sign_bytes(message.as_bytes(), 1_796_630_400).expect("signed");
            assert!(dkimpy_verifies(&signed, &public), "{body:?}");
        }
    }
}
