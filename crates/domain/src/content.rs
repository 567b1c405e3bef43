//! Marketing content and its compliance review: what a piece of content is, the one state
//! machine of its review, and who may take each step. The database holds the same transition
//! table in a trigger (migration 8); a test keeps the two equal.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::{Permission, Role};

/// A content field that breaks its rule; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("title must be 1 to 200 characters without control characters, bidirectional controls, zero-width or tag characters")]
    Title,
    #[error("audience must be at most 500 characters without control characters, bidirectional controls, zero-width or tag characters")]
    Audience,
    #[error(
        "body must be at most {MAX_BODY_BYTES} bytes of text without control characters other than tab and newline"
    )]
    Body,
    #[error("tags: at most {MAX_TAGS}, each 1 to 40 lowercase letters, digits and single hyphens")]
    Tags,
    #[error("channel must be one of email, web_page, social_post, print, other, email_template")]
    Channel,
    #[error("state must be one of draft, in_review, changes_requested, approved, published, archived")]
    State,
    #[error("a content hash is 64 hexadecimal digits")]
    Hash,
}

impl ContentError {
    /// The request field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ContentError::Title => "title",
            ContentError::Audience => "audience",
            ContentError::Body => "body",
            ContentError::Tags => "tags",
            ContentError::Channel => "channel",
            ContentError::State => "state",
            ContentError::Hash => "sha256",
        }
    }
}

/// The most a body may hold, in bytes of UTF-8.
pub const MAX_BODY_BYTES: usize = 100_000;
pub const MAX_TAGS: usize = 20;

/// Declares a closed set of lowercase labels shared with a database enum.
macro_rules! labels {
    ($(#[$doc:meta])* $name:ident, $error:ident, [$($variant:ident => $label:literal),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The label shared with the database enum.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ContentError;
            fn from_str(s: &str) -> Result<Self, ContentError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or(ContentError::$error)
            }
        }

        /// For row structs, which read the database enum as text.
        impl TryFrom<String> for $name {
            type Error = ContentError;
            fn try_from(text: String) -> Result<Self, ContentError> {
                text.parse()
            }
        }
    };
}

labels!(
    /// Where a piece goes out.
    Channel, Channel, [
        Email => "email",
        WebPage => "web_page",
        SocialPost => "social_post",
        Print => "print",
        Other => "other",
        EmailTemplate => "email_template",
        Campaign => "campaign",
    ]
);

impl Channel {
    /// Whether a member writes a version of this channel as text. A campaign's version is its
    /// definition in canonical form, written only by [`crate::campaigns::Definition::text`].
    pub fn authored(self) -> bool {
        self != Channel::Campaign
    }
}

labels!(
    /// Where a piece stands in its review. The state belongs to the item's latest version.
    State, State, [
        Draft => "draft",
        InReview => "in_review",
        ChangesRequested => "changes_requested",
        Approved => "approved",
        Published => "published",
        Archived => "archived",
    ]
);

labels!(
    /// Everything a member can do to an existing piece.
    Action, State, [
        Edit => "edit",
        Submit => "submit",
        Withdraw => "withdraw",
        Comment => "comment",
        RequestChanges => "request_changes",
        Approve => "approve",
        Publish => "publish",
        Archive => "archive",
    ]
);

/// How strictly a text is read: as new input, or as a version stored under earlier rules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    Input,
    Stored,
}

/// Trimmed, NFC, no control characters, at most `max` characters (at least one when `min`);
/// as input, no [`deceptive`](crate::deceptive) characters either: a one-line field is read at
/// a glance, where a bidirectional override or an invisible character goes unseen.
fn line(input: &str, min: usize, max: usize, rules: Rules) -> Option<String> {
    let text: String = input.trim().nfc().collect();
    let count = text.chars().count();
    let refused = |c: char| c.is_control() || (rules == Rules::Input && crate::deceptive(c));
    (count >= min && count <= max && !text.chars().any(refused)).then_some(text)
}

/// What a version says: every field that a reviewer approves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    title: String,
    channel: Channel,
    audience: String,
    body: String,
    tags: Vec<String>,
}

/// The one spelling of a tag that look-alikes share (see [`tag`]); a filter by tag folds the
/// same way, so that it finds what was saved.
pub fn fold_tag(input: &str) -> String {
    let folded: String = input.trim().nfkc().collect::<String>().to_lowercase().replace('\u{131}', "i");
    folded.nfkc().collect()
}

/// A tag: lowercase letters, digits and single hyphens, as slugs are, 1 to 40 characters.
/// As input it is folded so that tags that look alike are one tag: NFKC (fullwidth `ｆｌｕ` and
/// the long s `ſ` become `flu` and `s`), lower case, and the dotless `ı` as `i` (Unicode's
/// confusables table maps one to the other; a Turkish tag loses the difference, a list of
/// labels gains one spelling per word). A stored tag is kept as it was stored, so that the
/// version's hash still holds.
fn tag(input: &str, rules: Rules) -> Option<String> {
    let tag = match rules {
        Rules::Input => fold_tag(input),
        Rules::Stored => input.trim().to_lowercase(),
    };
    let ok = (1..=40).contains(&tag.len())
        && tag.split('-').all(|part| !part.is_empty() && part.chars().all(|c| c.is_alphanumeric()));
    ok.then_some(tag)
}

impl Text {
    /// Parses every field of a new text; tags are folded, sorted and deduplicated, line ends
    /// become `\n`.
    pub fn parse(
        title: &str,
        channel: Channel,
        audience: &str,
        body: &str,
        tags: &[String],
    ) -> Result<Self, ContentError> {
        Self::read(title, channel, audience, body, tags, Rules::Input)
    }

    /// A stored version's text, read by the rules it was written under: a version stored
    /// before a rule was tightened still reads, and still has its hash.
    pub fn stored(
        title: &str,
        channel: Channel,
        audience: &str,
        body: &str,
        tags: &[String],
    ) -> Result<Self, ContentError> {
        Self::read(title, channel, audience, body, tags, Rules::Stored)
    }

    fn read(
        title: &str,
        channel: Channel,
        audience: &str,
        body: &str,
        tags: &[String],
        rules: Rules,
    ) -> Result<Self, ContentError> {
        if rules == Rules::Input && !channel.authored() {
            return Err(ContentError::Channel);
        }
        Self::unchecked_channel(title, channel, audience, body, tags, rules)
    }

    /// A campaign's text: its name and its definition's canonical form.
    pub(crate) fn campaign(name: &str, definition: &str) -> Result<Self, ContentError> {
        Self::unchecked_channel(name, Channel::Campaign, "", definition, &[], Rules::Input)
    }

    fn unchecked_channel(
        title: &str,
        channel: Channel,
        audience: &str,
        body: &str,
        tags: &[String],
        rules: Rules,
    ) -> Result<Self, ContentError> {
        let title = line(title, 1, 200, rules).ok_or(ContentError::Title)?;
        let audience = line(audience, 0, 500, rules).ok_or(ContentError::Audience)?;
        // Every line end as `\n`: `\r\n` (Windows) and a lone `\r` (old Mac OS, some editors' paste).
        let body: String = body.replace("\r\n", "\n").replace('\r', "\n").nfc().collect();
        if body.len() > MAX_BODY_BYTES || body.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(ContentError::Body);
        }
        let mut tags = tags.iter().map(|t| tag(t, rules)).collect::<Option<Vec<_>>>().ok_or(ContentError::Tags)?;
        tags.sort();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(ContentError::Tags);
        }
        Ok(Self { title, channel, audience, body, tags })
    }

    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn channel(&self) -> Channel {
        self.channel
    }
    pub fn audience(&self) -> &str {
        &self.audience
    }
    pub fn body(&self) -> &str {
        &self.body
    }
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The text a version's hash is taken over: a JSON object with the keys `audience`, `body`,
    /// `channel`, `tags`, `title` in that order, no whitespace between tokens, strings as
    /// `serde_json` escapes them. Written down in docs/content-review.md so that anyone can
    /// recompute a hash from a stored version.
    pub fn canonical(&self) -> String {
        #[derive(serde::Serialize)]
        struct Canonical<'a> {
            audience: &'a str,
            body: &'a str,
            channel: &'a str,
            tags: &'a [String],
            title: &'a str,
        }
        let canonical = Canonical {
            audience: &self.audience,
            body: &self.body,
            channel: self.channel.as_str(),
            tags: &self.tags,
            title: &self.title,
        };
        // Serializing borrowed strings into a String cannot fail.
        serde_json::to_string(&canonical).unwrap_or_default()
    }

    pub fn hash(&self) -> ContentHash {
        ContentHash(Sha256::digest(self.canonical().as_bytes()).into())
    }
}

/// One field that differs between two versions, before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// What changed from one version to another: the short fields whole, the body as a unified
/// diff by lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub fields: Vec<FieldChange>,
    pub body: String,
    /// The body's comparison ran out of time: the diff is still correct (applying it turns one
    /// body into the other), but it may show whole blocks removed and added again where a
    /// finer comparison would find lines they share.
    pub deadline_reached: bool,
}

impl Text {
    /// The difference from `self` to `later`. Comparing bodies by lines costs time in the
    /// product of their differing lines (two 50,000-line bodies with nothing in common take
    /// seconds), so the comparison stops refining at `deadline`.
    pub fn diff(&self, later: &Text, names: (&str, &str), deadline: std::time::Instant) -> Diff {
        let pairs = [
            ("title", self.title.clone(), later.title.clone()),
            ("channel", self.channel.to_string(), later.channel.to_string()),
            ("audience", self.audience.clone(), later.audience.clone()),
            ("tags", self.tags.join(", "), later.tags.join(", ")),
        ];
        let fields = pairs
            .into_iter()
            .filter(|(_, before, after)| before != after)
            .map(|(field, before, after)| FieldChange { field, before, after })
            .collect();
        let body = similar::TextDiff::configure()
            .deadline(deadline)
            .diff_lines(&self.body, &later.body)
            .unified_diff()
            .context_radius(3)
            .header(names.0, names.1)
            .to_string();
        // `similar` does not say whether it gave up refining; a comparison that ends after its
        // deadline may have, so it is reported as such.
        let deadline_reached = std::time::Instant::now() >= deadline;
        Diff { fields, body, deadline_reached }
    }
}

/// SHA-256 of a version's canonical text: what an approval names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn parse(hex: &str) -> Result<Self, ContentError> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return Err(ContentError::Hash);
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or(ContentError::Hash)?, 16)
                .map_err(|_| ContentError::Hash)?;
        }
        Ok(Self(out))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for ContentHash {
    type Error = ContentError;
    fn try_from(bytes: Vec<u8>) -> Result<Self, ContentError> {
        <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| ContentError::Hash)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl Action {
    /// The permission of the role table that the action needs.
    pub fn permission(self) -> Permission {
        match self {
            Action::Edit | Action::Submit | Action::Withdraw => Permission::WriteContent,
            Action::Comment | Action::RequestChanges | Action::Approve => Permission::ReviewContent,
            Action::Publish | Action::Archive => Permission::PublishContent,
        }
    }

    /// The kind of review event it leaves, as the database enum spells it.
    pub fn event(self) -> &'static str {
        match self {
            Action::Edit => "edited",
            Action::Submit => "submitted",
            Action::Withdraw => "withdrawn",
            Action::Comment => "commented",
            Action::RequestChanges => "changes_requested",
            Action::Approve => "approved",
            Action::Publish => "published",
            Action::Archive => "archived",
        }
    }
}

/// Who is acting, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    /// Created the item.
    pub owns_item: bool,
    /// Wrote the item's latest version.
    pub wrote_version: bool,
    /// Has already approved the item's latest version.
    pub approved_version: bool,
}

/// Approvals of the latest version, and how many the organization requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approvals {
    pub given: u32,
    pub required: u32,
}

/// Why an action is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("your role does not allow `{0}`")]
    Role(Permission),
    #[error("only the member who created this item, or an ADMIN, may {0} it")]
    NotOwner(Action),
    #[error("you wrote this version; someone else must approve it")]
    OwnVersion,
    #[error("a campaign is changed through its definition, and content cannot become a campaign")]
    KindFixed,
    #[error("you have already approved this version")]
    AlreadyApproved,
    #[error("an item that is {state} cannot be given `{action}`")]
    WrongState { action: Action, state: State },
    #[error("{given} of the {required} approval(s) required still count: an approval lapses when its member leaves, is removed or may no longer review; withdraw the item and submit it again for review")]
    ApprovalsLapsed { given: u32, required: u32 },
}

impl State {
    /// Every change of state the review allows, as the database trigger also lists it.
    pub fn edges() -> Vec<(State, State)> {
        let mut edges = Vec::new();
        for from in State::ALL {
            for action in Action::ALL {
                for approvals in [Approvals { given: 0, required: 2 }, Approvals { given: 0, required: 1 }] {
                    if let Some(to) = from.after(*action, approvals) {
                        if to != *from && !edges.contains(&(*from, to)) {
                            edges.push((*from, to));
                        }
                    }
                }
            }
        }
        edges.sort();
        edges
    }

    /// The state after `action`, if the action is possible in this state at all.
    fn after(self, action: Action, approvals: Approvals) -> Option<State> {
        use State::*;
        match (action, self) {
            (Action::Edit, Draft | ChangesRequested) => Some(self),
            // An edit after approval is a new version: its approval starts over.
            (Action::Edit, Approved) => Some(Draft),
            (Action::Submit, Draft | ChangesRequested) => Some(InReview),
            (Action::Withdraw, InReview) => Some(Draft),
            // Back from approval without a new version: when approvals lapsed, the same text
            // goes through review again, keeping the approvals that still count.
            (Action::Withdraw, Approved) => Some(Draft),
            (Action::Comment, Draft | InReview | ChangesRequested | Approved | Published) => Some(self),
            (Action::RequestChanges, InReview) => Some(ChangesRequested),
            (Action::Approve, InReview) if approvals.given + 1 >= approvals.required => Some(Approved),
            (Action::Approve, InReview) => Some(InReview),
            (Action::Publish, Approved) => Some(Published),
            (Action::Archive, Draft | ChangesRequested | Approved | Published) => Some(Archived),
            _ => None,
        }
    }

    /// Whether `actor` may take `action` on an item in this state, and the state it leaves.
    pub fn decide(self, action: Action, actor: Actor, approvals: Approvals) -> Result<State, Refusal> {
        if !actor.role.can(action.permission()) {
            return Err(Refusal::Role(action.permission()));
        }
        let next = self.after(action, approvals).ok_or(Refusal::WrongState { action, state: self })?;
        let writes = action.permission() == Permission::WriteContent;
        if writes && !actor.owns_item && actor.role != Role::Admin {
            return Err(Refusal::NotOwner(action));
        }
        if action == Action::Approve && actor.wrote_version {
            return Err(Refusal::OwnVersion);
        }
        if action == Action::Approve && actor.approved_version {
            return Err(Refusal::AlreadyApproved);
        }
        // Approvals are counted again when they are used: one whose member has since lost the
        // authority to review does not carry a publication.
        if action == Action::Publish && approvals.given < approvals.required {
            return Err(Refusal::ApprovalsLapsed { given: approvals.given, required: approvals.required });
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(body: &str, tags: &[&str]) -> Result<Text, ContentError> {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        Text::parse(" Flu shots ", Channel::Email, "adults 65+", body, &tags)
    }

    const ANYONE: Actor = Actor { role: Role::Admin, owns_item: false, wrote_version: false, approved_version: false };
    const ONE: Approvals = Approvals { given: 0, required: 1 };

    #[test]
    fn the_canonical_text_is_fixed_json_and_its_hash_follows_it() {
        let t = text("Line one\r\nLine two", &["Vaccines", "flu", "flu"]).unwrap();
        assert_eq!(
            t.canonical(),
            r#"{"audience":"adults 65+","body":"Line one\nLine two","channel":"email","tags":["flu","vaccines"],"title":"Flu shots"}"#
        );
        assert_eq!(t.hash().0, <[u8; 32]>::from(Sha256::digest(t.canonical().as_bytes())));
        assert_eq!(ContentHash::parse(&t.hash().to_string()), Ok(t.hash()));
        let lone = text("Line one\rLine two", &["Vaccines", "flu"]).unwrap();
        assert_eq!((lone.body(), lone.hash()), ("Line one\nLine two", t.hash()), "a lone \\r is a line end too");
        let mixed = text("a\r\rb\r\n\nc\r", &[]).unwrap();
        assert_eq!(mixed.body(), "a\n\nb\n\nc\n");
        let nfd = text("caf\u{65}\u{301}", &[]).unwrap();
        assert_eq!(nfd.hash(), text("caf\u{e9}", &[]).unwrap().hash(), "one text, one hash");
    }

    #[test]
    fn a_diff_shows_changed_fields_whole_and_the_body_by_lines() {
        let before = text("one\ntwo\nthree\n", &["flu"]).unwrap();
        let after =
            Text::parse("Flu shots", Channel::WebPage, "adults 65+", "one\n2\nthree\n", &["flu".into()]).unwrap();
        let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let diff = before.diff(&after, ("v1", "v2"), later);
        assert_eq!(
            diff.fields,
            vec![FieldChange { field: "channel", before: "email".into(), after: "web_page".into() }]
        );
        assert_eq!(diff.body, "--- v1\n+++ v2\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n");
        assert!(!diff.deadline_reached);
        assert!(before.diff(&before, ("v1", "v1"), later).body.is_empty());
    }

    #[test]
    fn a_diff_past_its_deadline_says_so_and_still_shows_every_change() {
        let before = text("same\none\ntwo\nthree\n", &[]).unwrap();
        let after = text("same\nuno\ntwo\ntres\n", &[]).unwrap();
        let diff = before.diff(&after, ("v1", "v2"), std::time::Instant::now());
        assert!(diff.deadline_reached);
        for line in ["-one\n", "+uno\n", "-three\n", "+tres\n"] {
            assert!(diff.body.contains(line), "{line:?} missing from {}", diff.body);
        }
    }

    #[test]
    fn fields_that_break_their_rules_are_refused() {
        assert_eq!(text("a\u{7}b", &[]), Err(ContentError::Body));
        assert_eq!(text(&"x".repeat(MAX_BODY_BYTES + 1), &[]), Err(ContentError::Body));
        assert!(text(&"x".repeat(MAX_BODY_BYTES), &[]).is_ok());
        assert_eq!(text("", &["two words"]), Err(ContentError::Tags));
        assert_eq!(text("", &["-x"]), Err(ContentError::Tags));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(text("", &many), Err(ContentError::Tags));
        assert_eq!(Text::parse("  ", Channel::Print, "", "", &[]), Err(ContentError::Title));
        assert_eq!("fax".parse::<Channel>(), Err(ContentError::Channel));
        assert_eq!(ContentHash::parse("zz"), Err(ContentError::Hash));
    }

    #[test]
    fn titles_audiences_and_tags_refuse_bidi_controls_and_invisible_characters() {
        for bad in ["Flu \u{202e}stohs", "Flu\u{200b}shots", "Flu shots\u{e0041}", "\u{2066}Flu\u{2069}"] {
            let title = Text::parse(bad, Channel::Email, "", "", &[]);
            assert_eq!(title, Err(ContentError::Title), "{bad:?}");
            assert_eq!(Text::parse("Flu", Channel::Email, bad, "", &[]), Err(ContentError::Audience), "{bad:?}");
            assert_eq!(text("", &[bad]), Err(ContentError::Tags), "{bad:?}");
        }
        // A body keeps them, as written: the review diff shows them.
        assert_eq!(text("pay \u{202e}txt.exe", &[]).unwrap().body(), "pay \u{202e}txt.exe");
        // Joiners build emoji; they reorder nothing.
        assert!(Text::parse("\u{1f469}\u{200d}\u{2695}\u{fe0f} Meet our nurses", Channel::Email, "", "", &[]).is_ok());
    }

    #[test]
    fn tags_that_look_alike_are_one_tag() {
        let tags =
            text("", &["flu", "\u{ff26}\u{ff2c}\u{ff35}", "FLU", "vaccine\u{17f}", "vaccines", "\u{131}ll", "ill"])
                .unwrap();
        assert_eq!(tags.tags(), ["flu", "ill", "vaccines"]);
    }

    #[test]
    fn a_stored_text_reads_by_the_rules_it_was_written_under() {
        let tags = vec!["\u{131}ll".to_owned()];
        let old = Text::stored("Flu \u{202e}shots", Channel::Email, "", "", &tags).unwrap();
        assert_eq!(
            (old.title(), old.tags()),
            ("Flu \u{202e}shots", tags.as_slice()),
            "nothing folded, so the hash holds"
        );
        assert_eq!(Text::parse("Flu \u{202e}shots", Channel::Email, "", "", &[]), Err(ContentError::Title));
    }

    #[test]
    fn the_review_runs_from_draft_through_approval_to_publication() {
        let mut state = State::Draft;
        for (action, next) in [
            (Action::Submit, State::InReview),
            (Action::RequestChanges, State::ChangesRequested),
            (Action::Edit, State::ChangesRequested),
            (Action::Submit, State::InReview),
            (Action::Approve, State::Approved),
            (Action::Publish, State::Published),
            (Action::Archive, State::Archived),
        ] {
            // Approved once, by a member who may still review.
            let approvals = if action == Action::Publish { Approvals { given: 1, required: 1 } } else { ONE };
            state = state.decide(action, ANYONE, approvals).unwrap();
            assert_eq!(state, next, "{action}");
        }
        assert_eq!(
            State::Archived.decide(Action::Edit, ANYONE, ONE),
            Err(Refusal::WrongState { action: Action::Edit, state: State::Archived })
        );
    }

    #[test]
    fn approval_takes_as_many_distinct_reviewers_as_required_and_never_the_author() {
        let two = Approvals { given: 0, required: 2 };
        assert_eq!(State::InReview.decide(Action::Approve, ANYONE, two), Ok(State::InReview));
        assert_eq!(State::InReview.decide(Action::Approve, ANYONE, Approvals { given: 1, ..two }), Ok(State::Approved));
        let author = Actor { wrote_version: true, ..ANYONE };
        assert_eq!(State::InReview.decide(Action::Approve, author, ONE), Err(Refusal::OwnVersion));
        let again = Actor { approved_version: true, ..ANYONE };
        assert_eq!(State::InReview.decide(Action::Approve, again, two), Err(Refusal::AlreadyApproved));
        assert_eq!(State::Approved.decide(Action::Edit, ANYONE, ONE), Ok(State::Draft), "a new version starts over");
    }

    #[test]
    fn publishing_needs_the_required_approvals_to_still_count_and_an_approved_item_can_go_back() {
        let two = Approvals { given: 2, required: 2 };
        assert_eq!(State::Approved.decide(Action::Publish, ANYONE, two), Ok(State::Published));
        let lapsed = Approvals { given: 1, required: 2 };
        assert_eq!(
            State::Approved.decide(Action::Publish, ANYONE, lapsed),
            Err(Refusal::ApprovalsLapsed { given: 1, required: 2 })
        );
        assert_eq!(State::Approved.decide(Action::Withdraw, ANYONE, lapsed), Ok(State::Draft));
    }

    #[test]
    fn creators_write_only_their_own_items_and_roles_bound_the_rest() {
        let creator = Actor { role: Role::Creator, ..ANYONE };
        assert_eq!(State::Draft.decide(Action::Edit, creator, ONE), Err(Refusal::NotOwner(Action::Edit)));
        let own = Actor { owns_item: true, ..creator };
        assert_eq!(State::Draft.decide(Action::Submit, own, ONE), Ok(State::InReview));
        assert_eq!(State::InReview.decide(Action::Approve, own, ONE), Err(Refusal::Role(Permission::ReviewContent)));
        let reviewer = Actor { role: Role::Reviewer, ..ANYONE };
        assert_eq!(
            State::Approved.decide(Action::Publish, reviewer, ONE),
            Err(Refusal::Role(Permission::PublishContent))
        );
        let viewer = Actor { role: Role::Viewer, owns_item: true, ..ANYONE };
        assert_eq!(State::Draft.decide(Action::Edit, viewer, ONE), Err(Refusal::Role(Permission::WriteContent)));
    }

    #[test]
    fn the_edges_are_the_review_table() {
        use State::*;
        assert_eq!(
            State::edges(),
            vec![
                (Draft, InReview),
                (Draft, Archived),
                (InReview, Draft),
                (InReview, ChangesRequested),
                (InReview, Approved),
                (ChangesRequested, InReview),
                (ChangesRequested, Archived),
                (Approved, Draft),
                (Approved, Published),
                (Approved, Archived),
                (Published, Archived),
            ]
        );
    }
}
