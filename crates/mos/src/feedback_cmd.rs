//! `mos feedback`: delivery feedback taken in from a pipe, and the credentials for taking it in
//! over HTTP.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use mos_db::feedback::credentials::{self, Name};
use secrecy::ExposeSecret;

use crate::config::Settings;
use crate::database::Database;
use crate::identity;

#[derive(Subcommand)]
pub enum FeedbackCommand {
    /// Take in one report from standard input, as Postfix's pipe transport hands it over: a
    /// delivery status notification (RFC 3464) or an abuse report (RFC 5965). It is matched to
    /// the message sent by the returned original's Feedback-ID and Message-ID, recorded, and a
    /// hard bounce or a complaint suppresses the address. Exits 0 when recorded (or recorded
    /// before), 65 with the reason when refused, 75 when the database does not answer, so that
    /// the MTA tries again later.
    Ingest,
    /// The credentials relays and mail providers present to post feedback over HTTP
    /// (`/v1/feedback/...`).
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
}

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Make a credential and print its token, once: give it to the relay or provider (as a
    /// bearer token, or as the password in the webhook's address). Only its hash is kept.
    Create {
        /// A name for who holds it, such as `postfix` or `ses`: lowercase letters, digits and
        /// `._-`; unique among the live credentials.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List the credentials, live and revoked; never a token.
    List,
    /// End a credential at once: its token is refused from now on.
    Revoke {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

pub async fn run(db: &Database, settings: &Settings, command: FeedbackCommand) -> anyhow::Result<ExitCode> {
    match command {
        FeedbackCommand::Ingest => ingest(db, settings).await,
        FeedbackCommand::Credential { command } => credential(db, command).await,
    }
}

async fn credential(db: &Database, command: CredentialCommand) -> anyhow::Result<ExitCode> {
    let name = |name: &str| {
        Name::parse(name).with_context(|| {
            format!("{name:?} is not a credential name: lowercase letters, digits and ._-, up to 63, starting with a letter or digit")
        })
    };
    let mut conn = db.admin().await?;
    let mut tx = credentials::operator(&mut conn).await?;
    let now = chrono::Utc::now();
    let mut made = None;
    match command {
        CredentialCommand::Create { name: given } => {
            let name = name(&given)?;
            let token = mos_auth::OneTimeToken::generate(&mut rand::thread_rng());
            if !credentials::create(&mut tx, &name, &token.hash, now).await? {
                eprintln!(
                    "a live credential is named {:?} already: revoke it first, or choose another name",
                    name.as_str()
                );
                return Ok(ExitCode::from(EXIT_DATAERR));
            }
            made = Some((name, token.secret));
        }
        CredentialCommand::List => {
            for c in credentials::list(&mut tx).await? {
                let state = c.revoked_at.map_or_else(|| "live".to_owned(), |at| format!("revoked {}", at.to_rfc3339()));
                println!("{}\tmade {}\t{state}", c.name, c.created_at.to_rfc3339());
            }
        }
        CredentialCommand::Revoke { name: given } => {
            let name = name(&given)?;
            if !credentials::revoke(&mut tx, &name, now).await? {
                eprintln!("no live credential is named {:?}", name.as_str());
                return Ok(ExitCode::from(EXIT_DATAERR));
            }
            println!("credential {:?} revoked", name.as_str());
        }
    }
    tx.commit().await?;
    if let Some((name, secret)) = made {
        eprintln!("credential {:?} made; its token, shown only now:", name.as_str());
        println!("{}", secret.expose_secret());
    }
    Ok(ExitCode::SUCCESS)
}

/// `EX_DATAERR` and `EX_TEMPFAIL` of sysexits.h, which a pipe transport reads.
const EXIT_DATAERR: u8 = 65;
const EXIT_TEMPFAIL: u8 = 75;

async fn ingest(db: &Database, settings: &Settings) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let mut raw = Vec::new();
    // One byte more than a report may have, so that a larger one is refused, not cut short.
    let limit = u64::try_from(mos_http::feedback::MAX_REPORT_BYTES + 1).unwrap_or(u64::MAX);
    std::io::stdin().take(limit).read_to_end(&mut raw)?;
    let pool = db.app_pool().await?;
    let source = mos_domain::RequestSource::default();
    let console = settings.identity.public_url.clone().unwrap_or_else(|| identity::default_public_url(settings.listen));
    let ingested = mos_http::feedback::ingest(&pool, &raw, chrono::Utc::now(), &source, &console).await;
    Ok(match ingested {
        Ok(mos_http::feedback::Ingested::Recorded(notice)) => {
            println!("recorded");
            // The breaker warned or halted: its ADMINs are told now, before the command ends.
            // The record stands whatever the mail does; the audit trail and the console show it.
            if let Some(notice) = notice {
                let from = identity::mail_from(settings)?.unwrap_or_else(|| mos_http::Settings::default().mail_from);
                let mailer = identity::mailer(settings)?;
                match notice.send(mailer.as_ref(), &from).await {
                    Ok(()) => println!("the organization's ADMINs were told: {}", notice.subject),
                    Err(e) => eprintln!("the organization's ADMINs could not be mailed: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Ok(mos_http::feedback::Ingested::Again) => {
            println!("recorded before; nothing changed");
            ExitCode::SUCCESS
        }
        Ok(mos_http::feedback::Ingested::Ignored) => {
            println!("nothing to record");
            ExitCode::SUCCESS
        }
        Err(mos_http::feedback::IngestError::Db(e)) => {
            eprintln!("not recorded, try again later: {e}");
            ExitCode::from(EXIT_TEMPFAIL)
        }
        Err(early @ (mos_http::feedback::IngestError::NotYet | mos_http::feedback::IngestError::Lost(_))) => {
            eprintln!("not recorded, try again later: {early}");
            ExitCode::from(EXIT_TEMPFAIL)
        }
        Err(refused) => {
            eprintln!("refused: {refused}");
            ExitCode::from(EXIT_DATAERR)
        }
    })
}
