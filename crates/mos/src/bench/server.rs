//! `mos serve` as its own process, on the benchmark's database, as an operator would run it:
//! its CPU time and memory are then its own to measure.

use std::process::Stdio;

use anyhow::Context;
use mos_auth::Sealer;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub struct Server {
    child: Child,
    _stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    pub pid: u32,
    pub base: String,
}

impl Server {
    /// Starts `mos serve` on a free loopback port, with `connections` in its pool; `data_dir`
    /// takes its outbox.
    pub async fn start(
        admin_url: &SecretString,
        app_url: Option<&SecretString>,
        data_dir: &std::path::Path,
        connections: usize,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the mos binary")?;
        let mut command = Command::new(exe);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", admin_url.expose_secret())
            .env("MOS_TOTP_KEY", Sealer::generate_key_base64(&mut rand::thread_rng()))
            .env("MOS_DATA_DIR", data_dir)
            // The benchmark's sessions stay alive for its whole run; logins come from many
            // addresses, which the load generator names as a proxy would.
            .env("MOS_SESSION_IDLE_SECS", "86400")
            .env("MOS_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("MOS_LOG", "warn")
            .env("MOS_POOL_SIZE", connections.to_string())
            .env_remove("MOS_CONFIG")
            .env_remove("MOS_APP_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(app) = app_url {
            command.env("MOS_APP_DATABASE_URL", app.expose_secret());
        }
        let mut child = command.spawn().context("starting mos serve")?;
        let pid = child.id().context("mos serve exited at once")?;
        let stdout = child.stdout.take().context("mos serve's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next_line().await? {
                Some(line) => {
                    // `listening on ADDR, open URL`: the socket address, not the public URL.
                    if let Some(address) = line.strip_prefix("listening on ").and_then(|rest| rest.split(',').next()) {
                        break format!("http://{}", address.trim());
                    }
                }
                None => anyhow::bail!("mos serve stopped before it listened: {:?}", child.wait().await?),
            }
        };
        Ok(Self { child, _stdout: lines, pid, base })
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
