//! One organization ready to send a campaign, for the tests of campaigns and their sending:
//! built through the repositories as `app_user`, as the application builds it.
#![allow(clippy::unwrap_used)] // A fixture that cannot be built can only fail the test.

use chrono::Utc;
use mos_auth::{AddressKeys, DkimKeyPair, Sealer};
use mos_domain::audiences::{AddressKeyer, ConsentKind, NoticeText, SuppressionReason};
use mos_domain::campaigns::{ContentRef, Definition, Field, Schedule, SegmentRef};
use mos_domain::content::{Action, Channel, ContentHash, Text};
use mos_domain::segments::Segment;
use mos_domain::senders::{DkimDomain, FromName, PostalAddress, Selector};
use mos_domain::{ContactId, ContentId, Email, OrgId, OrgName, PurposeId, RequestSource, Role, Slug, UserId};

use crate::audiences::consent::{self, Basis, Provenance, Record};
use crate::audiences::{contacts, purposes, segments, suppression};
use crate::campaigns::{self, Launch};
use crate::content::{self, Request, Step};
use crate::senders::{self, NewSender};
use crate::{orgs, users, AppPool, TenantTx};

pub fn src() -> RequestSource {
    RequestSource::default()
}

/// The address keys a test server derives from its configured secret.
pub fn keys() -> AddressKeys {
    AddressKeys::derive(b"the server's configured secret")
}

/// A user with a verified address, through the application path.
pub async fn user(pool: &AppPool, email: &str) -> UserId {
    let user = UserId::new();
    let mut tx = pool.begin_user(user).await.unwrap();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    users::insert(&mut tx, &Email::parse(email).unwrap(), hash, Some(Utc::now())).await.unwrap();
    tx.commit().await.unwrap();
    user
}

/// One organization ready to send: an ADMIN who writes and launches, a REVIEWER who approves,
/// an approved piece and template, a purpose with a notice, a sender, a segment of every contact,
/// and three contacts: Ada with consent, Bea without, Cy with consent but suppressed.
pub struct Org {
    pub org: OrgId,
    pub admin: UserId,
    pub reviewer: UserId,
    pub purpose: PurposeId,
    pub notice: ContentHash,
    pub ada: ContactId,
    pub bea: ContactId,
    pub cy: ContactId,
    pub definition: Definition,
}

pub async fn begin(pool: &AppPool, org: OrgId, user: UserId) -> TenantTx {
    pool.begin_tenant(org, Some(user)).await.unwrap()
}

pub async fn step(tx: &mut TenantTx, id: ContentId, action: Action, actor: UserId, role: Role) -> Step {
    act(tx, id, action, None, actor, role).await
}

/// A new version of content item `id` written by `actor`, an ADMIN.
pub async fn edit(tx: &mut TenantTx, id: ContentId, text: &Text, actor: UserId) -> Step {
    act(tx, id, Action::Edit, Some(text), actor, Role::Admin).await
}

async fn act(tx: &mut TenantTx, id: ContentId, action: Action, text: Option<&Text>, actor: UserId, role: Role) -> Step {
    let request = Request {
        action,
        text,
        note: None,
        actor,
        role,
        revisions: None,
        sha256: None,
        now: Utc::now(),
        source: &src(),
    };
    content::act(tx, id, request).await.unwrap()
}

/// Submitted by the ADMIN who wrote it and approved by the REVIEWER.
pub async fn approved(pool: &AppPool, o: &Org, id: ContentId) {
    let mut tx = begin(pool, o.org, o.admin).await;
    assert!(matches!(step(&mut tx, id, Action::Submit, o.admin, Role::Admin).await, Step::Done(_)));
    assert!(matches!(step(&mut tx, id, Action::Approve, o.reviewer, Role::Reviewer).await, Step::Done(_)));
    tx.commit().await.unwrap();
}

pub fn grant(o: &Org, contact: ContactId, kind: ConsentKind) -> Record<'static> {
    Record {
        contact,
        purpose: o.purpose,
        kind,
        basis: (kind == ConsentKind::Grant).then_some(&Basis::Consent),
        notice: (kind == ConsentKind::Grant).then_some(o.notice),
        provenance: Provenance::Api { by: o.admin },
        evidence: None,
        now: Utc::now(),
    }
}

/// The organization `slug`: its contacts keyed by `keys`, its sender's key sealed by `sealer`,
/// as the server that will send for it has them.
pub async fn org(pool: &AppPool, slug: &str, sealer: &Sealer, keys: &dyn AddressKeyer) -> Org {
    let admin = user(pool, &format!("admin@{slug}.example")).await;
    let reviewer = user(pool, &format!("reviewer@{slug}.example")).await;
    let org = OrgId::new();
    let mut tx = begin(pool, org, admin).await;
    orgs::insert(&mut tx, &Slug::parse(slug).unwrap(), &OrgName::parse(slug).unwrap()).await.unwrap();
    orgs::add_member(&mut tx, admin, Role::Admin).await.unwrap();
    orgs::add_member(&mut tx, reviewer, Role::Reviewer).await.unwrap();
    let now = Utc::now();
    let piece = Text::parse("Flu shots", Channel::Email, "patients", "Book your flu shot, {{name}}.", &[]).unwrap();
    let piece = content::create(&mut tx, &piece, admin, now, &src()).await.unwrap();
    let layout = "{{content}}\n\n{{postal_address}} [Unsubscribe]({{unsubscribe_url}})";
    let template = Text::parse("Plain", Channel::EmailTemplate, "", layout, &[]).unwrap();
    let template = content::create(&mut tx, &template, admin, now, &src()).await.unwrap();
    let purpose = purposes::create(&mut tx, "Newsletter", false, admin, now, &src()).await.unwrap();
    let notice = NoticeText::parse("We write to you about flu shots.").unwrap();
    let notice = purposes::publish_notice(&mut tx, purpose, &notice, admin, now, &src()).await.unwrap();
    let new = NewSender {
        from_name: FromName::parse("Example Health").unwrap(),
        from_address: Email::parse(&format!("news@{slug}.example")).unwrap(),
        reply_to: None,
        postal_address: PostalAddress::parse("Example Health\n1 Main St").unwrap(),
        dkim_domain: DkimDomain::parse(&format!("{slug}.example")).unwrap(),
        selector: Selector::parse("s1").unwrap(),
    };
    let sender =
        senders::create(&mut tx, sealer, &new, &DkimKeyPair::generate().unwrap(), admin, now, &src()).await.unwrap();
    let catalog = segments::catalog(&mut tx).await.unwrap();
    let everyone = Segment::parse(r#"{"all": []}"#, &catalog).unwrap();
    let segment = segments::create(&mut tx, "Everyone", &everyone, admin, now, &src()).await.unwrap();
    let [ada, bea, cy] = ["ada@p.example", "bea@p.example", "cy@p.example"].map(|a| Email::parse(a).unwrap());
    let mut ids = Vec::new();
    for address in [&ada, &bea, &cy] {
        ids.push(
            contacts::create(&mut tx, keys, address, &Default::default(), Some(admin), now, &src()).await.unwrap(),
        );
    }
    let fields = vec![Field::text("name", 40).unwrap()];
    let definition = Definition::new(
        ContentRef { item: piece.id, version: 1, sha256: piece.version.sha256 },
        ContentRef { item: template.id, version: 1, sha256: template.version.sha256 },
        SegmentRef { segment: segment.segment, version: segment.version, sha256: segment.sha256 },
        sender,
        purpose,
        Schedule::Now,
        fields,
    )
    .unwrap();
    tx.commit().await.unwrap();
    let o = Org { org, admin, reviewer, purpose, notice, ada: ids[0], bea: ids[1], cy: ids[2], definition };
    let mut tx = begin(pool, org, admin).await;
    consent::append(&mut tx, &grant(&o, o.ada, ConsentKind::Grant), &src()).await.unwrap();
    consent::append(&mut tx, &grant(&o, o.cy, ConsentKind::Grant), &src()).await.unwrap();
    suppression::suppress(&mut tx, keys, &cy, SuppressionReason::Complaint, Some(admin), now, &src()).await.unwrap();
    tx.commit().await.unwrap();
    approved(pool, &o, piece.id).await;
    approved(pool, &o, template.id).await;
    o
}

pub async fn new_campaign(pool: &AppPool, o: &Org, definition: &Definition) -> ContentId {
    let mut tx = begin(pool, o.org, o.admin).await;
    let text = definition.text("December flu shots").unwrap();
    let item = campaigns::create(&mut tx, definition, &text, o.admin, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    item.id
}

pub async fn launch(pool: &AppPool, o: &Org, id: ContentId) -> Launch {
    let mut tx = begin(pool, o.org, o.admin).await;
    let launched = campaigns::launch(&mut tx, id, o.admin, Role::Admin, Utc::now(), &src()).await.unwrap();
    tx.commit().await.unwrap();
    launched
}

/// `n` more contacts of `o`, `person{i}@p.example` for `i` in `0..n`, each with a grant for its
/// purpose, added through the repositories in one transaction: their ids and addresses.
pub async fn consenting(pool: &AppPool, o: &Org, keys: &dyn AddressKeyer, n: usize) -> Vec<(ContactId, String)> {
    let mut tx = begin(pool, o.org, o.admin).await;
    let mut added = Vec::with_capacity(n);
    for i in 0..n {
        let address = format!("person{i}@p.example");
        let email = Email::parse(&address).unwrap();
        let id = contacts::create(&mut tx, keys, &email, &Default::default(), Some(o.admin), Utc::now(), &src())
            .await
            .unwrap();
        consent::append(&mut tx, &grant(o, id, ConsentKind::Grant), &src()).await.unwrap();
        added.push((id, address));
    }
    tx.commit().await.unwrap();
    added
}
