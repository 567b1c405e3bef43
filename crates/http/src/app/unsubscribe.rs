//! A message's unsubscribe link (RFC 8058) and the preference centre it opens, for people
//! without an account. The link names its contact, purpose and campaign in a token the server
//! signed ([`mos_auth::UnsubscribeTokens`]); nothing is stored per message, and nothing is
//! looked up for a token whose signature fails, so a forged or altered link costs no query and
//! is refused as a page that does not exist, saying nothing of any contact.
//!
//! Opening the link (a GET, which link scanners do) changes nothing: it shows the preference
//! centre. The one-click POST that mail clients send, and the page's buttons, change consent,
//! each in the transaction that answers. A message's link is made by
//! [`mos_auth::UnsubscribeTokens::url`] with the server's public URL.

use mos_auth::Unsubscribe;
use mos_db::audiences::consent::Evidence;
use mos_db::audiences::unsubscribe::{self, Change, Choice, Intent, Person, Refusal};
use mos_db::TenantTx;
use mos_domain::content::ContentHash;
use mos_domain::{PurposeId, RequestSource};
use secrecy::SecretString;

use crate::{ApiError, AppState};

/// What a preference centre shows: only what the person needs to choose.
#[derive(Debug, Clone)]
pub struct Preferences {
    pub organization: String,
    /// The address, masked (`a***@example.com`); `None` for an erased contact, whose page shows
    /// nothing of it.
    pub address: Option<String>,
    pub purposes: Vec<Choice>,
    /// The purpose the link's message was about.
    pub purpose: PurposeId,
}

/// What the person asked for on the preference centre.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// These purposes on, each with the notice the page showed for it; every other off.
    Only(Vec<(PurposeId, Option<ContentHash>)>),
    /// Every purpose off, and the address suppressed, as the one-click unsubscribe does.
    Nothing,
}

/// What a change from the preference centre did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub preferences: Preferences,
    /// Purposes the person asked to turn on that could not be, by name.
    pub refused: Vec<(String, Refusal)>,
}

/// `a***@example.com`: the first character of the local part, then the domain, which is what a
/// person with several addresses needs to know which one the page is about.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// Whom `token` is for, or not found.
fn link(state: &AppState, token: &SecretString) -> Result<Unsubscribe, ApiError> {
    state.sealer.unsubscribe_tokens().verify(token).ok_or(ApiError::NotFound)
}

/// The link's organization's transaction and its contact (locked for a change); not found when
/// the organization or the contact is gone.
async fn open(state: &AppState, link: &Unsubscribe, intent: Intent) -> Result<(TenantTx, Person), ApiError> {
    let mut tx = state.pool.begin_tenant(link.organization, None).await?;
    match unsubscribe::person(&mut tx, link.contact, intent).await? {
        Some(person) => Ok((tx, person)),
        None => Err(ApiError::NotFound),
    }
}

fn change<'a>(state: &AppState, link: &Unsubscribe, evidence: &'a Evidence, source: &'a RequestSource) -> Change<'a> {
    Change { contact: link.contact, campaign: link.campaign, evidence, now: state.clock.now(), source }
}

/// The one-click unsubscribe of RFC 8058: revokes the contact's consent for the link's purpose
/// and suppresses its address, in the transaction that answers, so that the next message to it
/// is refused. Repeated, it records nothing new. For an erased contact it records nothing and
/// answers alike (its suppressions stay in force).
pub async fn one_click(state: &AppState, source: &RequestSource, token: &SecretString) -> Result<(), ApiError> {
    let link = link(state, token)?;
    let (mut tx, person) = open(state, &link, Intent::Change).await?;
    let evidence = Evidence { ip: source.ip, user_agent: source.user_agent.clone() };
    unsubscribe::unsubscribe(&mut tx, &person, &[link.purpose], &change(state, &link, &evidence, source)).await?;
    tx.commit().await?;
    Ok(())
}

async fn read(tx: &mut TenantTx, link: &Unsubscribe, person: Person) -> Result<Preferences, ApiError> {
    let purposes =
        if person.address_key.is_some() { unsubscribe::choices(tx, link.contact).await? } else { Vec::new() };
    Ok(Preferences {
        organization: person.organization,
        address: person.address.as_deref().map(mask),
        purposes,
        purpose: link.purpose,
    })
}

/// The preference centre of the link of `token`, changing nothing but the audit trail, which
/// records that the person's (masked) address and consent were shown.
pub async fn preferences(
    state: &AppState,
    source: &RequestSource,
    token: &SecretString,
) -> Result<Preferences, ApiError> {
    let link = link(state, token)?;
    let (mut tx, person) = open(state, &link, Intent::Show).await?;
    let shown = read(&mut tx, &link, person).await?;
    if shown.address.is_some() {
        unsubscribe::shown(&mut tx, link.contact, source).await?;
    }
    tx.commit().await?;
    Ok(shown)
}

/// Applies the person's choices from the preference centre: each purpose turned on is a grant
/// against its latest notice (the one the page showed, or it is refused), each turned off a revocation, "nothing" a revocation of every
/// purpose and the address's suppression. A purpose that cannot be turned on here (a
/// suppressed address, a HIPAA authorization) is named in the answer; the rest is done.
pub async fn apply(
    state: &AppState,
    source: &RequestSource,
    token: &SecretString,
    wanted: &Wanted,
) -> Result<Applied, ApiError> {
    let link = link(state, token)?;
    let (mut tx, person) = open(state, &link, Intent::Change).await?;
    let evidence = Evidence { ip: source.ip, user_agent: source.user_agent.clone() };
    let change = change(state, &link, &evidence, source);
    let refused = match wanted {
        Wanted::Nothing => {
            let every: Vec<PurposeId> =
                unsubscribe::choices(&mut tx, link.contact).await?.into_iter().map(|c| c.purpose).collect();
            unsubscribe::unsubscribe(&mut tx, &person, &every, &change).await?;
            Vec::new()
        }
        Wanted::Only(on) => unsubscribe::set(&mut tx, &person, on, &change).await?,
    };
    let preferences = read(&mut tx, &link, person).await?;
    tx.commit().await?;
    let name = |purpose: PurposeId| {
        preferences.purposes.iter().find(|c| c.purpose == purpose).map(|c| c.name.clone()).unwrap_or_default()
    };
    let refused = refused.into_iter().map(|(purpose, why)| (name(purpose), why)).collect();
    Ok(Applied { preferences, refused })
}

/// Whether `body` is RFC 8058's `List-Unsubscribe=One-Click`, form-encoded or as a multipart
/// form, as its content type says.
pub fn is_one_click(content_type: &str, body: &[u8]) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")),
        "multipart/form-data" => boundary(content_type).is_some_and(|b| multipart_says_one_click(body, &b)),
        _ => false,
    }
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (name, value) = p.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Whether a multipart form (RFC 7578) has the part `List-Unsubscribe` with the value
/// `One-Click`. Only that part is looked for; nothing else of the form is read.
fn multipart_says_one_click(body: &[u8], boundary: &str) -> bool {
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let delimiter = format!("--{boundary}");
    text.split(delimiter.as_str()).any(|part| {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { return false };
        let named = head.lines().any(|line| {
            let line = line.to_ascii_lowercase();
            line.starts_with("content-disposition:")
                && line.contains("form-data")
                && line.split(';').any(|p| p.trim() == "name=\"list-unsubscribe\"")
        });
        named && value.strip_suffix("\r\n").unwrap_or(value) == "One-Click"
    })
}

#[cfg(test)]
mod tests {
    use super::{is_one_click, mask};

    #[test]
    fn an_address_is_shown_by_its_first_character_and_domain() {
        assert_eq!(mask("jane.doe@example.com"), "j***@example.com");
        assert_eq!(mask("ü@example.com"), "ü***@example.com");
        assert_eq!(mask("not an address"), "***");
    }

    #[test]
    fn only_the_one_click_body_of_rfc_8058_is_a_one_click_unsubscribe() {
        let urlencoded = "application/x-www-form-urlencoded";
        assert!(is_one_click(urlencoded, b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click(urlencoded, b""));
        assert!(!is_one_click(urlencoded, b"List-Unsubscribe=one-click"));
        assert!(!is_one_click(urlencoded, b"everything=yes"));
        assert!(!is_one_click("text/plain", b"List-Unsubscribe=One-Click"));
        assert!(!is_one_click("", b"List-Unsubscribe=One-Click"));
        let multipart = "multipart/form-data; boundary=\"xyz\"";
        let body = "--xyz\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--xyz--\r\n";
        assert!(is_one_click(multipart, body.as_bytes()));
        assert!(!is_one_click(multipart, body.replace("One-Click", "No").as_bytes()));
        assert!(!is_one_click("multipart/form-data; boundary=abc", body.as_bytes()));
    }
}
