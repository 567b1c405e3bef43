//! Sign-ins: how many a second the server completes against how many password verifications
//! the machine can do at all with the same parameters on every core, and what a storm of
//! sign-ins does to the latency of everyone else's requests.

use std::sync::Arc;
use std::time::Duration;

use mos_auth::PasswordHasher;
use secrecy::SecretString;

use super::data;
use super::measure::{self, Run};

pub const PASSWORD: &str = "bench password, not a secret";

/// Verifications of `hash` on every core at once, as fast as they go.
pub async fn raw_verify(hash: &str, duration: Duration) -> anyhow::Result<Run> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let hasher = PasswordHasher::new(cores);
    let hash: Arc<str> = hash.into();
    measure::drive(cores * 2, duration, None, move |_, _| {
        let (hasher, hash) = (hasher.clone(), hash.clone());
        async move {
            let verified = hasher.verify(SecretString::from(PASSWORD.to_owned()), hash.to_string()).await?;
            anyhow::ensure!(verified.ok, "the benchmark's password does not verify");
            Ok(())
        }
    })
    .await
}

/// `clients` sign-ins at a time through the API, each client as its own member (so that no two
/// attempts on one account overlap, which its limit would count), each attempt from another
/// address (as if through a proxy).
pub async fn storm(
    base: &str,
    orgs: usize,
    members: usize,
    clients: usize,
    duration: Duration,
    server: u32,
) -> anyhow::Result<Run> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build()?;
    let base: Arc<str> = base.into();
    measure::drive(clients, duration, Some(server), move |c, n| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let (i, m) = (c % orgs, (c / orgs) % members.max(1));
            let k = c as u64 * 1_000_003 + n;
            let response = client
                .post(format!("{base}/v1/auth/login"))
                .header("x-forwarded-for", format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255))
                .json(&serde_json::json!({ "email": data::email(i, m), "password": PASSWORD }))
                .send()
                .await?;
            anyhow::ensure!(response.status().is_success(), "login answered {}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}

/// `GET /v1/me` by one client, back to back.
pub async fn me(base: &str, duration: Duration, server: u32) -> anyhow::Result<Run> {
    let client = reqwest::Client::new();
    let url: Arc<str> = format!("{base}/v1/me").into();
    measure::drive(1, duration, Some(server), move |_, _| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(&*url).bearer_auth(data::token(0)).send().await?;
            anyhow::ensure!(response.status().is_success(), "/v1/me answered {}", response.status());
            response.bytes().await?;
            Ok(())
        }
    })
    .await
}
