//! A launched campaign sent by the server's own job runner through real SMTP servers on
//! loopback (a private Postfix relaying into Postfix's `smtp-sink`): every message to a contact
//! with a live consent, DKIM-verified by dkimpy after the relay, with the RFC 8058 headers; the
//! ledger final and proven; a one-click unsubscribe stops the next one.

use std::time::Duration;

use chrono::Utc;
use mos_db::audiences::consent;
use mos_db::campaigns::{self, Launch};
use mos_db::testing::campaign::{self, approved, begin, grant, launch, new_campaign, Org};
use mos_db::{chain, senders};
use mos_domain::audiences::ConsentKind;
use mos_domain::{ContactId, ContentId};
use mos_mail::testing::{Postfix, Sink};
use serde_json::Value;

use crate::TestApp;

/// The public address the test server's links carry: https, as RFC 8058 wants.
pub(crate) const PUBLIC_URL: &str = "https://mos.test";

/// A server sending through a private Postfix that relays into `smtp-sink`, which keeps each
/// message it takes; the organization `acme` with its campaign fixture.
async fn sending_through_postfix() -> (TestApp, Org, Sink, Postfix) {
    let sink = Sink::start(&[]).await;
    let postfix = Postfix::start(sink.port).await;
    let app = TestApp::spawn_sending_through(&format!("smtp://127.0.0.1:{}", postfix.port), PUBLIC_URL, |_| {}).await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    (app, o, sink, postfix)
}

/// The messages to `address` the sink has taken so far, as Postfix relayed them.
fn relayed_to(sink: &Sink, address: &str) -> Vec<String> {
    let recipient = format!("X-Rcpt-Args: <{address}>");
    sink.dumps().iter().filter(|d| d.contains(&recipient)).filter_map(|d| Postfix::relayed(d)).collect()
}

/// Waits until the sink holds `n` messages to `address` (Postfix delivers from its queue on its
/// own time, after the server's hand-over), and answers them.
async fn arrived(sink: &Sink, postfix: &Postfix, address: &str, n: usize) -> Vec<String> {
    for _ in 0..1200 {
        let messages = relayed_to(sink, address);
        if messages.len() >= n {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {n} messages to {address} after Postfix; its log: {}", postfix.log());
}

/// The ledger row of `contact` in campaign `id`: state, attempts and reply.
async fn row(app: &TestApp, o: &Org, id: ContentId, contact: ContactId) -> (String, i16, Option<String>) {
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let page = campaigns::messages(&mut tx, id, None, None, 10).await.unwrap();
    let m = page.into_iter().find(|m| m.contact == contact).expect("the contact's row");
    (m.state, m.attempts, m.reply)
}

/// Launches an approved campaign of `o`'s definition, wakes the runner and waits for the run
/// to finish.
pub(crate) async fn sent(app: &TestApp, o: &Org) -> ContentId {
    let id = launched(app, o).await;
    until(app, o, id, |progress| progress.keys().all(|state| !["queued", "sending"].contains(&state.as_str()))).await;
    id
}

async fn launched(app: &TestApp, o: &Org) -> ContentId {
    let id = new_campaign(&app.pool, o, &o.definition).await;
    approved(&app.pool, o, id).await;
    assert!(matches!(launch(&app.pool, o, id).await, Launch::Done(_)));
    app.wake_jobs();
    id
}

/// Waits until the campaign's progress (counts by state) satisfies `done`: up to two minutes,
/// since one job worker may share its time with an organization's webhook deliveries and the
/// machine with every other test.
async fn until(app: &TestApp, o: &Org, id: ContentId, done: impl Fn(&std::collections::BTreeMap<String, i64>) -> bool) {
    for _ in 0..4800 {
        let mut tx = begin(&app.pool, o.org, o.admin).await;
        let progress = campaigns::progress(&mut tx, id).await.unwrap();
        drop(tx);
        if done(&progress) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the campaign {id} did not get there");
}

/// `python3 inspect_message.py` of the mail crate's tests: dkimpy and Python's email package.
fn inspect(args: &[&str], message: &str) -> (bool, Value) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/tests/data/inspect_message.py");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message).unwrap();
    let path = file.path().to_str().unwrap();
    let mut command = std::process::Command::new("python3");
    command.arg(script).arg(args[0]).arg(path).args(&args[1..]);
    let output = command.output().expect("python3 runs inspect_message.py");
    (output.status.success(), serde_json::from_slice(&output.stdout).unwrap_or(Value::Null))
}

fn header<'a>(parsed: &'a Value, name: &str) -> Vec<&'a str> {
    parsed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_campaign_through_postfix_reaches_exactly_the_consenting_signed_with_one_click_headers_and_is_proven() {
    let (app, o, sink, postfix) = sending_through_postfix().await;
    let id = sent(&app, &o).await;

    // Ada has consent; Bea has none and Cy is suppressed: only Ada gets a message.
    let to_ada = arrived(&sink, &postfix, "ada@p.example", 1).await;
    assert_eq!(to_ada.len(), 1, "{to_ada:?}");
    assert!(to_ada[0].contains("by relay.mos.test (Postfix)"), "{}", to_ada[0]);

    // dkimpy verifies it, as the relay passed it on, against the sender's published record.
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let (sender, keys) = senders::get(&mut tx, o.definition.sender).await.unwrap().unwrap();
    let record = keys[0].txt_record(&sender.dkim_domain);
    let public_key = record.value.rsplit_once("p=").unwrap().1.to_owned();
    let selector = keys[0].selector.as_str().to_owned();
    let (verified, tags) = inspect(&["verify", &selector, sender.dkim_domain.as_str(), &public_key], &to_ada[0]);
    assert!(verified, "{tags}");
    let signed: Vec<&str> = tags["signed"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert!(signed.contains(&"list-unsubscribe") && signed.contains(&"list-unsubscribe-post"), "{signed:?}");

    // RFC 8058: the one-click headers, an https link to this server; the stable Message-ID.
    let (_, parsed) = inspect(&["parse"], &to_ada[0]);
    let unsubscribe = header(&parsed, "List-Unsubscribe");
    assert_eq!(unsubscribe.len(), 1);
    let link = unsubscribe[0].trim_start_matches('<').split('>').next().unwrap();
    assert!(link.starts_with(&format!("{PUBLIC_URL}/u/")), "{link}");
    assert_eq!(header(&parsed, "List-Unsubscribe-Post"), ["List-Unsubscribe=One-Click"]);
    let message_id = format!("<{}>", campaigns::message_id(id, o.ada, sender.dkim_domain.as_str()));
    assert_eq!(header(&parsed, "Message-ID"), [message_id.as_str()]);

    // The ledger: Ada sent, the two others skipped with their reasons; the proof holds.
    let progress = campaigns::progress(&mut tx, id).await.unwrap();
    let progress: Vec<(&str, i64)> = progress.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(progress, [("sent", 1), ("skipped:no_consent", 1), ("skipped:suppressed", 1)]);
    drop(tx);
    chain::seal(&app.pool, None, chain::WINDOW).await.unwrap();
    let proofs = campaigns::evidence(&mut app.db.superuser().await, o.org.as_uuid()).await.unwrap();
    assert_eq!((proofs[0].sent, proofs[0].batches, &proofs[0].problems), (1, 1, &vec![]));

    // Ada uses the one-click link: the next campaign skips her.
    let path = link.trim_start_matches(PUBLIC_URL);
    let request = app.http.post(format!("{}{path}", app.base)).form(&[("List-Unsubscribe", "One-Click")]);
    assert_eq!(app.send(request).await.status, 200);
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    assert!(!consent::is_live(&mut tx, o.ada, o.purpose, Utc::now()).await.unwrap());
    // Bea consents meanwhile: she gets the next one, Ada does not.
    consent::append(&mut tx, &grant(&o, o.bea, ConsentKind::Grant), &campaign::src()).await.unwrap();
    tx.commit().await.unwrap();
    let second = sent(&app, &o).await;
    assert_eq!(arrived(&sink, &postfix, "bea@p.example", 1).await.len(), 1);
    // The ledger skipped Ada; what the relay passed on agrees.
    assert_eq!(relayed_to(&sink, "ada@p.example").len(), 1, "nothing more to Ada");
    assert!(relayed_to(&sink, "cy@p.example").is_empty());
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let progress = campaigns::progress(&mut tx, second).await.unwrap();
    assert_eq!(progress.get("skipped:no_consent"), Some(&1), "{progress:?}");
}

#[tokio::test]
async fn a_relay_that_refuses_for_now_defers_the_message_and_one_that_says_no_such_user_bounces_and_suppresses() {
    // 450 to every recipient: deferred, queued again for later with the reply, not lost.
    let sink = Sink::start(&["-r", "RCPT"]).await;
    let app = TestApp::spawn_sending_through(&sink.url(), PUBLIC_URL, |_| {}).await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    let id = launched(&app, &o).await;
    // Deferred: queued again after one attempt, with the relay's reply.
    let mut answered = None;
    for _ in 0..1200 {
        let (state, attempts, reply) = row(&app, &o, id, o.ada).await;
        if reply.is_some() && state != "sending" {
            answered = Some((state, attempts, reply));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (state, attempts, reply) = answered.expect("the relay's answer is recorded");
    assert_eq!((state.as_str(), attempts), ("queued", 1));
    assert!(reply.as_deref().is_some_and(|r| r.starts_with("450 ")), "{reply:?}");
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    assert_eq!(campaigns::run(&mut tx, id).await.unwrap().unwrap().state, "sending", "not finished: retried later");
    assert_eq!(
        campaigns::claim(&mut tx, id, 10, chrono::Duration::minutes(5), Utc::now()).await.unwrap(),
        Default::default(),
        "not before its backoff"
    );
    drop(tx);
    drop(app);

    // 550 5.1.1: bounced, and the address suppressed, so the next campaign skips it.
    let sink = Sink::start(&["-f", "RCPT", "-B", "550 5.1.1 <ada@p.example>: Recipient address rejected"]).await;
    let app = TestApp::spawn_sending_through(&sink.url(), PUBLIC_URL, |_| {}).await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    let id = sent(&app, &o).await;
    let (state, _, reply) = row(&app, &o, id, o.ada).await;
    assert_eq!(state, "bounced");
    assert!(reply.as_deref().is_some_and(|r| r.starts_with("550 5.1.1")), "{reply:?}");
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    assert!(!consent::is_live(&mut tx, o.ada, o.purpose, Utc::now()).await.unwrap(), "suppressed");
    drop(tx);
    let next = sent(&app, &o).await;
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let progress = campaigns::progress(&mut tx, next).await.unwrap();
    assert_eq!(progress.get("skipped:suppressed"), Some(&2), "Ada and Cy: {progress:?}");
}

#[tokio::test]
async fn a_large_campaign_yields_to_another_organizations_small_one_on_a_single_worker() {
    // One worker, and every organization paced at 20 messages a second: Big's 300 messages take
    // at least 14 s whatever the machine's speed, far longer than the slice after which a job
    // lets another organization in.
    let sink = Sink::start(&[]).await;
    let app = TestApp::spawn_sending_through(&sink.url(), PUBLIC_URL, |outbox| {
        outbox.batch = 10;
        outbox.per_org_rate = 20.0;
    })
    .await;
    let big = campaign::org(&app.pool, "big", &app.sealer, &app.address_keys).await;
    campaign::consenting(&app.pool, &big, &app.address_keys, 300).await;
    let small = campaign::org(&app.pool, "small", &app.sealer, &app.address_keys).await;
    let big_id = launched(&app, &big).await;
    until(&app, &big, big_id, |progress| progress.get("sent").is_some_and(|&n| n > 0)).await;

    // Small launches while Big sends and the only worker is Big's: it is sent before Big ends.
    let small_id = launched(&app, &small).await;
    until(&app, &small, small_id, |progress| progress.keys().all(|s| !["queued", "sending"].contains(&s.as_str())))
        .await;
    let mut tx = begin(&app.pool, small.org, small.admin).await;
    assert_eq!(campaigns::progress(&mut tx, small_id).await.unwrap().get("sent"), Some(&1));
    drop(tx);
    let mut tx = begin(&app.pool, big.org, big.admin).await;
    let progress = campaigns::progress(&mut tx, big_id).await.unwrap();
    assert!(progress.get("queued").is_some_and(|&n| n > 0), "Big is still sending: {progress:?}");
    assert_eq!(campaigns::run(&mut tx, big_id).await.unwrap().unwrap().state, "sending");
}

/// The `/c/` addresses in the text part of `message`, in order.
pub(crate) fn click_links(message: &str) -> Vec<String> {
    let (_, parsed) = inspect(&["parse"], message);
    let text = parsed["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "text/plain")
        .and_then(|p| p[3].as_str())
        .unwrap_or_else(|| panic!("a text part in {parsed}"))
        .to_owned();
    text.split(['<', '>'])
        .filter(|s| s.starts_with(&format!("{PUBLIC_URL}/c/")))
        .map(|s| s.trim_start_matches(PUBLIC_URL).to_owned())
        .collect()
}

#[tokio::test]
async fn a_messages_links_lead_through_this_server_only_to_the_approved_addresses_and_each_click_is_counted() {
    let sink = Sink::start(&[]).await;
    let app = TestApp::spawn_sending_through(&sink.url(), PUBLIC_URL, |_| {}).await;
    let o = campaign::org(&app.pool, "acme", &app.sealer, &app.address_keys).await;
    let id = sent(&app, &o).await;
    let to_ada: Vec<String> = sink.dumps().into_iter().filter(|d| d.contains("X-Rcpt-Args: <ada@p.example>")).collect();
    assert_eq!(to_ada.len(), 1);
    let links = click_links(&to_ada[0]);
    assert_eq!(links.len(), 2, "the content's two web links: {links:?}");
    assert!(!to_ada[0].contains("https://clinic.example/"), "no approved address is in the message itself");

    // Each leads, by a redirect of this server, to the address the approved content gives it.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let follow = |path: String, method: reqwest::Method| {
        let request = client.request(method, format!("{}{path}", app.base));
        async move { request.send().await.unwrap() }
    };
    let location = |r: &reqwest::Response| r.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    for (path, expected) in links.iter().zip(["https://clinic.example/book?from=mail", "https://clinic.example/flu"]) {
        let answer = follow(path.clone(), reqwest::Method::GET).await;
        assert_eq!((answer.status().as_u16(), location(&answer).as_deref()), (302, Some(expected)));
    }
    // A query string or a path added to the link changes nothing of where it leads.
    for added in [format!("{}?url=https://evil.example/", links[0]), format!("{}?to=//evil.example", links[0])] {
        let answer = follow(added, reqwest::Method::GET).await;
        assert_eq!(location(&answer).as_deref(), Some("https://clinic.example/book?from=mail"));
    }
    // A link scanner's HEAD is answered, and not counted.
    let head = follow(links[1].clone(), reqwest::Method::HEAD).await;
    assert_eq!(location(&head).as_deref(), Some("https://clinic.example/flu"));

    // A forged or altered token, a third link no message holds (signed with the server's own
    // key), and a link to Bea, whose message was never sent, lead nowhere and count nothing.
    let tokens = app.sealer.click_tokens();
    let third = tokens.url("", &mos_auth::Click { organization: o.org, campaign: id, contact: o.ada, link: 2 });
    let token = links[0].trim_start_matches("/c/");
    let swapped = if &token[60..61] == "A" { "B" } else { "A" };
    let altered = format!("/c/{}{swapped}{}", &token[..60], &token[61..]);
    for path in [third, altered, "/c/not-a-token".to_owned(), format!("/c/{}", &token[..token.len() - 1])] {
        let answer = follow(path.clone(), reqwest::Method::GET).await;
        assert_eq!((answer.status().as_u16(), location(&answer)), (404, None), "{path}");
        assert!(answer.text().await.unwrap().contains("This link does not work"));
    }
    let to_bea = tokens.url("", &mos_auth::Click { organization: o.org, campaign: id, contact: o.bea, link: 0 });
    assert_eq!(
        location(&follow(to_bea, reqwest::Method::GET).await).as_deref(),
        Some("https://clinic.example/book?from=mail")
    );

    // Counted: the first link once (the two with added query strings count too: they are
    // Ada's link), the second once by GET; the HEAD and the rest nothing.
    let mut tx = begin(&app.pool, o.org, o.admin).await;
    let tallies = mos_db::clicks::tallies(&mut tx, id).await.unwrap();
    let counts: Vec<(u16, i64, i64)> = tallies.iter().map(|t| (t.link, t.unique, t.total)).collect();
    assert_eq!(counts, [(0, 1, 3), (1, 1, 1)]);
}
