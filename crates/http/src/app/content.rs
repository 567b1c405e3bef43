//! Content and its compliance review. Each operation takes the member's [`Authorized`] for the
//! permission it needs; what the role table cannot say (only the item's creator or an ADMIN
//! writes it, nobody approves their own version, which state allows which step) is decided by
//! `mos_domain::content` on the item's locked row, in the request's one transaction.

use mos_db::campaigns::{self, FirstUse};
use mos_db::content::{self, Event, Filter, Item, Request, Step, Tally, Version};
use mos_db::TenantTx;
use mos_domain::content::{fold_tag, Action, Channel, ContentHash, Diff, State as ReviewState, Text};
use mos_domain::{ContentId, UserId};

use crate::access::{Authorized, Needs, ReadContent, WriteContent};
use crate::{paging, ApiError, AppState};

/// The most a request that carries a text may send: content bodies are long texts, and JSON
/// escaping (or a form's encoding) makes them longer still.
pub const MAX_CONTENT_REQUEST_BYTES: usize = 512 * 1024;

fn invalid(field: &'static str, error: impl ToString) -> ApiError {
    ApiError::Invalid { field, message: error.to_string() }
}

fn parse_id(id: &str) -> Result<ContentId, ApiError> {
    ContentId::parse(id).map_err(|_| ApiError::NotFound)
}

/// The text of a new item or version, as a client writes it.
pub struct Draft<'a> {
    pub title: &'a str,
    pub channel: &'a str,
    pub audience: &'a str,
    pub body: &'a str,
    pub tags: &'a [String],
}

impl Draft<'_> {
    pub fn parse(&self) -> Result<Text, ApiError> {
        let channel = self.channel.parse::<Channel>().map_err(|e| invalid("channel", e))?;
        Text::parse(self.title, channel, self.audience, self.body, self.tags).map_err(|e| invalid(e.field(), e))
    }
}

/// An item as a member sees it: its latest version, and the approvals of that version.
pub struct Shown {
    pub item: Item,
    pub approvals: Tally,
}

async fn shown(tx: &mut TenantTx, item: Item, me: UserId) -> Result<Shown, ApiError> {
    let approvals = content::approvals(tx, &item, me).await?;
    Ok(Shown { item, approvals })
}

/// Creates an item: a draft at version 1, written by the member.
pub async fn create(state: &AppState, auth: Authorized<WriteContent>, text: &Text) -> Result<Shown, ApiError> {
    let mut tx = auth.tx;
    let item = content::create(&mut tx, text, auth.session.user, state.clock.now(), &auth.source).await?;
    let created = shown(&mut tx, item, auth.session.user).await?;
    tx.commit().await?;
    Ok(created)
}

/// What a list asks for, as a client writes it; every field narrows the list.
#[derive(Default)]
pub struct Listing<'a> {
    pub state: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub author: Option<uuid::Uuid>,
    pub text: Option<&'a str>,
    /// Only items in review that the member did not write and has not approved yet.
    pub awaiting_my_review: bool,
}

/// A page of items, newest first, and the cursor of the next.
pub async fn list(
    state: &AppState,
    auth: &mut Authorized<ReadContent>,
    listing: &Listing<'_>,
    cursor: Option<&str>,
    limit: Option<i64>,
) -> Result<(Vec<Item>, Option<String>), ApiError> {
    let limit = paging::limit(limit)?;
    let filter = Filter {
        state: listing.state.map(str::parse::<ReviewState>).transpose().map_err(|e| invalid("state", e))?,
        channel: listing.channel.map(str::parse::<Channel>).transpose().map_err(|e| invalid("channel", e))?,
        tag: listing.tag.map(fold_tag),
        author: listing.author.map(UserId::from_uuid).transpose().map_err(|e| invalid("author", e))?,
        text: listing.text.filter(|q| !q.trim().is_empty()).map(str::to_owned),
        text_within: state.settings.search_deadline,
        awaiting: listing.awaiting_my_review.then_some(auth.session.user),
        before: cursor.map(ContentId::parse).transpose().map_err(|_| paging::bad_cursor())?,
    };
    let rows = content::list(&mut auth.tx, &filter, limit + 1).await?;
    Ok(paging::split(rows, limit, |i: &Item| i.id.to_string()))
}

/// An item with its latest version.
pub async fn get(auth: &mut Authorized<ReadContent>, id: &str) -> Result<Shown, ApiError> {
    let id = parse_id(id)?;
    let item = content::get(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    shown(&mut auth.tx, item, auth.session.user).await
}

/// Every version, oldest first.
pub async fn versions(auth: &mut Authorized<ReadContent>, id: &str) -> Result<Vec<Version>, ApiError> {
    let all = content::versions(&mut auth.tx, parse_id(id)?).await?;
    if all.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(all)
}

/// One version.
pub async fn version(auth: &mut Authorized<ReadContent>, id: &str, number: i32) -> Result<Version, ApiError> {
    content::version(&mut auth.tx, parse_id(id)?, number).await?.ok_or(ApiError::NotFound)
}

/// When each version of the item was first sent, from the send ledger (docs/campaigns.md,
/// "First use"); empty while none was.
pub async fn first_use(auth: &mut Authorized<ReadContent>, id: &str) -> Result<Vec<FirstUse>, ApiError> {
    let id = parse_id(id)?;
    content::get(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    Ok(campaigns::first_use(&mut auth.tx, id).await?)
}

/// The evidence of each version's first use (Form FDA 2253), with the audit records it rests on
/// and their places in the sealed chain, for `mos audit verify --evidence`.
pub async fn first_use_evidence(
    state: &AppState,
    auth: &mut Authorized<ReadContent>,
    id: &str,
) -> Result<mos_db::first_use::Evidence, ApiError> {
    let id = parse_id(id)?;
    content::get(&mut auth.tx, id).await?.ok_or(ApiError::NotFound)?;
    Ok(mos_db::first_use::evidence(&mut auth.tx, id, state.clock.now()).await?)
}

/// The review history, oldest first.
pub async fn history(auth: &mut Authorized<ReadContent>, id: &str) -> Result<Vec<Event>, ApiError> {
    let events = content::history(&mut auth.tx, parse_id(id)?).await?;
    if events.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(events)
}

/// What changed between two versions.
pub struct Compared {
    pub from: i32,
    pub to: i32,
    pub diff: Diff,
}

/// Compares two versions. The request's transaction ends before the comparison, which runs
/// off the async workers: its cost grows with the product of the lines.
pub async fn diff(
    state: &AppState,
    mut auth: Authorized<ReadContent>,
    id: &str,
    from: i32,
    to: i32,
) -> Result<Compared, ApiError> {
    // The two versions compared, not every version's text.
    let from = version(&mut auth, id, from).await?;
    let to = version(&mut auth, id, to).await?;
    auth.commit().await?;
    let names = (format!("version {}", from.number), format!("version {}", to.number));
    let (before, after) = (from.text()?, to.text()?);
    let limit = state.settings.diff_deadline;
    let diff =
        state.heavy.run(move || before.diff(&after, (&names.0, &names.1), std::time::Instant::now() + limit)).await?;
    Ok(Compared { from: from.number, to: to.number, diff })
}

/// What a member states with a step: the revisions they read, the version they mean, their
/// note, the new text of an edit.
#[derive(Default)]
pub struct Precondition<'a> {
    /// The revisions accepted (`If-Match`); `None` for any.
    pub revisions: Option<Vec<i32>>,
    pub sha256: Option<ContentHash>,
    pub note: Option<String>,
    pub text: Option<&'a Text>,
}

impl Precondition<'_> {
    /// From what a client wrote: the hash in hex, a note (trimmed; empty is none).
    pub fn stated(revisions: Option<Vec<i32>>, sha256: Option<&str>, note: Option<String>) -> Result<Self, ApiError> {
        let sha256 = sha256.map(ContentHash::parse).transpose().map_err(|e| invalid("sha256", e))?;
        let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
        if note.as_ref().is_some_and(|n| n.chars().count() > 10_000) {
            return Err(invalid("note", "note must be at most 10,000 characters"));
        }
        Ok(Self { revisions, sha256, note, text: None })
    }
}

/// Takes `action` on the item `id` and returns the item as it is afterwards. `P` must be the
/// permission the step needs ([`Action::permission`]).
pub async fn act<P: Needs>(
    state: &AppState,
    auth: Authorized<P>,
    id: &str,
    action: Action,
    pre: Precondition<'_>,
) -> Result<Shown, ApiError> {
    if action.permission() != P::PERMISSION {
        return Err(ApiError::Forbidden(action.permission()));
    }
    let id = parse_id(id)?;
    let needs_note = matches!(action, Action::Comment | Action::RequestChanges);
    if needs_note && pre.note.is_none() {
        return Err(invalid("note", "say what the author should know or change"));
    }
    if action == Action::Approve && pre.sha256.is_none() {
        return Err(invalid("sha256", "an approval names the hash of the version it approves"));
    }
    let me = auth.session.user;
    let mut tx = auth.tx;
    let request = Request {
        action,
        text: pre.text,
        note: pre.note.as_deref(),
        actor: me,
        role: auth.role,
        revisions: pre.revisions.as_deref(),
        sha256: pre.sha256,
        now: state.clock.now(),
        source: &auth.source,
    };
    let step = content::act(&mut tx, id, request).await?;
    let answer = match step {
        Step::Done(item) => Ok(shown(&mut tx, *item, me).await?),
        Step::NotFound => Err(ApiError::NotFound),
        Step::Stale { revision } => Err(ApiError::PreconditionFailed { revision }),
        Step::OtherVersion { number, .. } => Err(ApiError::VersionChanged { number }),
        Step::Refused(refusal) => Err(ApiError::Review(refusal)),
    };
    // A refusal commits its audit record, and nothing else was written.
    tx.commit().await?;
    answer
}
