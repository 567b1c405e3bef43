//! Amazon SNS's signing certificates, for `POST /v1/feedback/ses`: looked up in the operator's
//! pinned directory first, else fetched over HTTPS from the address the message names (which
//! `mos_mail::feedback::ses` accepts only when it is SNS's own) and kept in memory. A message
//! reaches this only after its feedback credential was checked, so nobody unknown can make the
//! server fetch anything.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

/// The largest certificate read; SNS's are about 2 KiB.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Certificates kept in memory at most; SNS signs with a few at a time.
const MAX_KEPT: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("the SNS signing certificate could not be fetched; try again later")]
    Unreachable(#[source] reqwest::Error),
    #[error("SNS answered {0} for the signing certificate")]
    Status(u16),
    #[error("the SNS signing certificate is larger than {MAX_CERTIFICATE_BYTES} bytes")]
    TooLarge,
    #[error("the pinned SNS signing certificate could not be read")]
    Pinned(#[source] std::io::Error),
}

/// Where certificates come from, and those fetched so far.
pub struct Certificates {
    pinned: Option<PathBuf>,
    fetched: Mutex<HashMap<Url, Arc<Vec<u8>>>>,
    client: reqwest::Client,
}

impl Certificates {
    /// Refused when no HTTPS client can be built: a default one would follow redirects and
    /// wait without end, so the server does not start without this one.
    pub fn new(pinned: Option<PathBuf>) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { pinned, fetched: Mutex::new(HashMap::new()), client })
    }

    /// The client that also confirms a subscription (a GET of SNS's own address).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The certificate (PEM) at `url`, an address of SNS.
    pub async fn get(&self, url: &Url) -> Result<Arc<Vec<u8>>, CertificateError> {
        if let Some(file) = self.pinned_file(url) {
            if file.is_file() {
                let pem = tokio::fs::read(&file).await.map_err(CertificateError::Pinned)?;
                return if pem.len() > MAX_CERTIFICATE_BYTES {
                    Err(CertificateError::TooLarge)
                } else {
                    Ok(Arc::new(pem))
                };
            }
        }
        if let Some(pem) = self.kept().get(url) {
            return Ok(pem.clone());
        }
        let response = self.client.get(url.clone()).send().await.map_err(CertificateError::Unreachable)?;
        if !response.status().is_success() {
            return Err(CertificateError::Status(response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > MAX_CERTIFICATE_BYTES as u64) {
            return Err(CertificateError::TooLarge);
        }
        let pem = response.bytes().await.map_err(CertificateError::Unreachable)?;
        if pem.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge);
        }
        let pem = Arc::new(pem.to_vec());
        let mut kept = self.kept();
        if kept.len() >= MAX_KEPT {
            kept.clear();
        }
        kept.insert(url.clone(), pem.clone());
        Ok(pem)
    }

    fn pinned_file(&self, url: &Url) -> Option<PathBuf> {
        let name = url.path_segments()?.next_back()?;
        let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        (plain && !name.starts_with('.')).then(|| self.pinned.as_ref().map(|dir| dir.join(name)))?
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, HashMap<Url, Arc<Vec<u8>>>> {
        self.fetched.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
