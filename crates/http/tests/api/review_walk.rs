//! The content review as a random walk: members of every role take random steps on items, and
//! every answer is judged against the rules as this file writes them down — a transition table
//! and the separation-of-duties rules below, written independently of the domain's
//! `State::decide` that the server runs. The walk is steered toward steps it has not yet seen,
//! and it must have reached every state (published and archived included) and seen every
//! (state, step) pair both taken and refused, wherever the table allows it at all.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use mos_domain::content::Text;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::content::{org_with_two_creators, Org};
use crate::TestApp;

/// Approvals the organization requires before publication.
const REQUIRED: usize = 2;

const STATES: [&str; 6] = ["draft", "in_review", "changes_requested", "approved", "published", "archived"];

/// Every step, by the name of its route (`edit` is the `PATCH` of the item).
const STEPS: [&str; 8] = ["edit", "submit", "withdraw", "comments", "request-changes", "approve", "publish", "archive"];

/// The steps each role may take at all, whatever the item's state.
const ROLE_MAY: [(&str, &[&str]); 4] = [
    ("ADMIN", &STEPS),
    ("REVIEWER", &["comments", "request-changes", "approve"]),
    ("CREATOR", &["edit", "submit", "withdraw"]),
    ("VIEWER", &[]),
];

/// The transition table: from a state, a step leads to a state. A pair not listed is refused
/// as an invalid transition. `approve` in review stays in review until the approval that makes
/// [`REQUIRED`]; that one leads to `approved`.
#[rustfmt::skip]
const TRANSITIONS: [(&str, &str, &str); 19] = [
    ("draft",             "edit",            "draft"),
    ("draft",             "submit",          "in_review"),
    ("draft",             "comments",        "draft"),
    ("draft",             "archive",         "archived"),
    ("in_review",         "withdraw",        "draft"),
    ("in_review",         "comments",        "in_review"),
    ("in_review",         "request-changes", "changes_requested"),
    ("in_review",         "approve",         "in_review"),
    ("changes_requested", "edit",            "changes_requested"),
    ("changes_requested", "submit",          "in_review"),
    ("changes_requested", "comments",        "changes_requested"),
    ("changes_requested", "archive",         "archived"),
    ("approved",          "edit",            "draft"),
    ("approved",          "withdraw",        "draft"),
    ("approved",          "comments",        "approved"),
    ("approved",          "publish",         "published"),
    ("approved",          "archive",         "archived"),
    ("published",         "comments",        "published"),
    ("published",         "archive",         "archived"),
];

/// The steps that change the text or its place in the review: only the item's creator or an
/// ADMIN takes them.
const OWNERS_STEPS: [&str; 3] = ["edit", "submit", "withdraw"];

/// The step that carries an item forward to publication and then to the archive, from each
/// state that has one.
const FORWARD: [(&str, &str); 5] = [
    ("draft", "submit"),
    ("changes_requested", "submit"),
    ("in_review", "approve"),
    ("approved", "publish"),
    ("published", "archive"),
];

fn transition(state: &str, step: &str) -> Option<&'static str> {
    TRANSITIONS.iter().find(|(from, s, _)| *from == state && *s == step).map(|(_, _, to)| *to)
}

/// What the test knows of an item.
struct Item {
    id: String,
    state: &'static str,
    /// Index into the members of the walk.
    owner: usize,
    /// Wrote the latest version.
    author: usize,
    /// Approved the latest version.
    approvers: BTreeSet<usize>,
    /// Review events it has: one for its creation, one per step taken.
    events: usize,
    steps_tried: usize,
}

/// The answer the rules predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Taken(&'static str),
    /// Status and problem type (after `urn:mos:problem:`).
    Refused(u16, &'static str),
}

/// The rules, in the order the answer names the first one broken: the role, the state, the
/// ownership of the item, the author's own version, a second approval by one member, and
/// enough approvals for publication.
fn expected(item: &Item, who: usize, role: &str, step: &str) -> Expected {
    let may = ROLE_MAY.iter().find(|(r, _)| *r == role).is_some_and(|(_, steps)| steps.contains(&step));
    if !may {
        return Expected::Refused(403, "forbidden");
    }
    let Some(next) = transition(item.state, step) else {
        return Expected::Refused(409, "invalid_transition");
    };
    if OWNERS_STEPS.contains(&step) && who != item.owner && role != "ADMIN" {
        return Expected::Refused(403, "not_owner");
    }
    if step == "approve" && who == item.author {
        return Expected::Refused(403, "separation_of_duties");
    }
    if step == "approve" && item.approvers.contains(&who) {
        return Expected::Refused(409, "already_approved");
    }
    // Nobody leaves during the walk, so approvals never lapse; the rule is here for completeness.
    if step == "publish" && item.approvers.len() < REQUIRED {
        return Expected::Refused(409, "approvals_lapsed");
    }
    if step == "approve" && item.approvers.len() + 1 >= REQUIRED {
        return Expected::Taken("approved");
    }
    Expected::Taken(next)
}

/// What the walk has seen: per (state, step), whether it was taken and whether it was refused;
/// the refusals by kind; the states reached.
#[derive(Default)]
struct Coverage {
    pairs: BTreeMap<(&'static str, &'static str), (bool, bool)>,
    refusals: BTreeSet<&'static str>,
    states: BTreeSet<&'static str>,
}

impl Coverage {
    fn record(&mut self, state: &'static str, step: &'static str, outcome: Expected) {
        let seen = self.pairs.entry((state, step)).or_default();
        match outcome {
            Expected::Taken(next) => {
                seen.0 = true;
                self.states.insert(next);
            }
            Expected::Refused(_, kind) => {
                seen.1 = true;
                self.refusals.insert(kind);
            }
        }
    }

    /// Whether `step` in `state` still lacks an outcome the table allows: a taken one (where
    /// the table lists the pair) or a refused one (everywhere: some role may never take it).
    fn wants(&self, state: &str, step: &str) -> (bool, bool) {
        let (taken, refused) = self.pairs.get(&(state, step)).copied().unwrap_or_default();
        (!taken && transition(state, step).is_some(), !refused)
    }

    fn missing(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for state in STATES {
            for step in STEPS {
                let (taken, refused) = self.wants(state, step);
                if taken {
                    missing.push(format!("{step} taken in {state}"));
                }
                if refused {
                    missing.push(format!("{step} refused in {state}"));
                }
            }
        }
        for state in STATES {
            if !self.states.contains(state) {
                missing.push(format!("state {state} reached"));
            }
        }
        for kind in ["forbidden", "invalid_transition", "not_owner", "separation_of_duties", "already_approved"] {
            if !self.refusals.contains(kind) {
                missing.push(format!("a refusal {kind}"));
            }
        }
        missing
    }
}

/// The most steps the walk may take before it must have seen everything.
const MAX_STEPS: usize = 1_500;
/// Steps on one item after which the walk starts another once the item's state owes the
/// coverage nothing (an archived item is done as soon as it owes nothing), and the most it
/// takes on one item in any case.
const STEPS_PER_ITEM: usize = 40;
const MOST_STEPS_PER_ITEM: usize = 120;

#[tokio::test]
async fn a_random_walk_of_every_role_reaches_every_state_and_every_step_is_taken_or_refused_as_the_table_says() {
    let app = TestApp::spawn().await;
    let (members, other_creator) = org_with_two_creators(&app, "acme").await;
    let email = "second-reviewer@acme.example";
    let second_reviewer = app.signed_in(email).await;
    app.join(&members.admin, "acme", email, "REVIEWER", &second_reviewer).await;
    let people: Vec<(&str, String)> = vec![
        ("ADMIN", members.admin.clone()),
        ("REVIEWER", members.reviewer.clone()),
        ("REVIEWER", second_reviewer),
        ("CREATOR", members.creator.clone()),
        ("CREATOR", other_creator),
        ("VIEWER", members.viewer.clone()),
    ];
    let policy = app.call_as("patch", &members.admin, "/v1/orgs/acme", json!({ "required_approvals": REQUIRED })).await;
    assert_eq!(policy.status, 200, "{}", policy.body);
    let org = Org::new(&app, &members);

    let mut rng = StdRng::seed_from_u64(24);
    let mut coverage = Coverage::default();
    coverage.states.insert("draft");
    let mut item: Option<Item> = None;
    let mut items = 0;
    let mut steps = 0;
    while steps < MAX_STEPS && !coverage.missing().is_empty() {
        let done = item.as_ref().is_some_and(|i| {
            let owes = STEPS.iter().any(|s| coverage.wants(i.state, s) != (false, false));
            (!owes && (i.state == "archived" || i.steps_tried >= STEPS_PER_ITEM))
                || i.steps_tried >= MOST_STEPS_PER_ITEM
        });
        if done {
            let finished = item.take().unwrap();
            check_invariants(&app, &org, &members.admin, &finished).await;
        }
        let current = match &mut item {
            Some(current) => current,
            None => {
                // The creators own most items; sometimes the ADMIN does.
                let owner = *[0, 3, 3, 4, 4].choose(&mut rng).unwrap();
                let created = org.create(&people[owner].1, "Flu shots").await;
                assert_eq!(created["state"], "draft");
                items += 1;
                item.insert(Item {
                    id: created["id"].as_str().unwrap().to_owned(),
                    state: "draft",
                    owner,
                    author: owner,
                    approvers: BTreeSet::new(),
                    events: 1,
                    steps_tried: 0,
                })
            }
        };

        // Often a step this state still owes the coverage; else the step that carries the item
        // forward, by someone allowed to take it (or publication would be rare: it needs two
        // approvals before anyone withdraws, edits or sends the item back); else one the table
        // allows here; else any step at all.
        let wanted: Vec<&'static str> = STEPS
            .into_iter()
            .filter(|s| {
                let (taken, refused) = coverage.wants(current.state, s);
                taken || refused
            })
            .collect();
        let possible: Vec<&'static str> =
            STEPS.into_iter().filter(|s| transition(current.state, s).is_some()).collect();
        let forward = FORWARD.iter().find(|(state, _)| *state == current.state).map(|(_, step)| *step);
        let roll = rng.gen_range(0..100);
        let step = if roll < 40 && !wanted.is_empty() {
            *wanted.choose(&mut rng).unwrap()
        } else if let Some(forward) = forward.filter(|_| roll < 65) {
            forward
        } else if roll < 90 && !possible.is_empty() {
            *possible.choose(&mut rng).unwrap()
        } else {
            *STEPS.choose(&mut rng).unwrap()
        };
        // For a forward step, or one that still owes a taken outcome here, half the time
        // someone the rules let take it; otherwise anyone.
        let allowed: Vec<usize> = (0..people.len())
            .filter(|&who| matches!(expected(current, who, people[who].0, step), Expected::Taken(_)))
            .collect();
        let push = forward == Some(step) || coverage.wants(current.state, step).0;
        let who = if push && !allowed.is_empty() && rng.gen_bool(0.5) {
            *allowed.choose(&mut rng).unwrap()
        } else {
            rng.gen_range(0..people.len())
        };

        let outcome = expected(current, who, people[who].0, step);
        let reply = org.act(&people[who].1, &current.id, step, steps).await;
        let context = format!(
            "step {steps}, item {items}: {} #{who} {step} in {} (owner #{}, author #{}, approvers {:?}): {}",
            people[who].0, current.state, current.owner, current.author, current.approvers, reply.body
        );
        match outcome {
            Expected::Taken(next) => {
                assert_eq!(reply.status, 200, "{context}");
                assert_eq!(reply.body["state"], next, "{context}");
                if step == "edit" {
                    current.author = who;
                    current.approvers.clear();
                }
                if step == "approve" {
                    current.approvers.insert(who);
                }
                current.events += 1;
            }
            Expected::Refused(status, kind) => {
                assert_eq!(
                    (reply.status, reply.problem_type()),
                    (status, format!("urn:mos:problem:{kind}").as_str()),
                    "{context}"
                );
            }
        }
        coverage.record(current.state, step, outcome);
        if let Expected::Taken(next) = outcome {
            current.state = next;
        }
        current.steps_tried += 1;
        steps += 1;
    }
    if let Some(last) = item.take() {
        check_invariants(&app, &org, &members.admin, &last).await;
    }
    let missing = coverage.missing();
    assert!(missing.is_empty(), "after {steps} steps on {items} items the walk never saw: {missing:#?}");
}

/// No approval by a version's author; a published version's text is exactly the text that
/// enough distinct members approved; every step has exactly one audit record naming its hash.
async fn check_invariants(app: &TestApp, org: &Org<'_>, admin: &str, item: &Item) {
    let (id, steps, required) = (item.id.as_str(), item.events, REQUIRED);
    let versions = app.get_as(admin, &org.path(&format!("/{id}/versions"))).await.body;
    let authors: HashMap<i64, &str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["number"].as_i64().unwrap(), v["author"].as_str().unwrap()))
        .collect();
    let history = org.history(admin, id).await;
    assert_eq!(history.len(), steps, "one review event per step taken");
    for event in history.iter().filter(|e| e["kind"] == "approved") {
        assert_ne!(event["actor"].as_str(), Some(authors[&event["version"].as_i64().unwrap()]), "{event}");
    }
    let item = org.get(admin, id).await.body;
    if let Some(published) = item["published_version"].as_i64() {
        let version = &versions[usize::try_from(published - 1).unwrap()];
        let text = Text::parse(
            version["title"].as_str().unwrap(),
            version["channel"].as_str().unwrap().parse().unwrap(),
            version["audience"].as_str().unwrap(),
            version["body"].as_str().unwrap(),
            &version["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let hash = text.hash().to_string();
        let approvers: HashSet<&str> = history
            .iter()
            .filter(|e| e["kind"] == "approved" && e["sha256"] == hash.as_str())
            .map(|e| e["actor"].as_str().unwrap())
            .collect();
        assert!(approvers.len() >= required, "published {hash} with approvals {approvers:?}");
    }
    let trail = app
        .get_as(admin, &format!("/v1/orgs/{}/audit-logs?resource_type=content&resource_id={id}&limit=500", org.slug))
        .await
        .body;
    let records: Vec<&Value> =
        trail["items"].as_array().unwrap().iter().filter(|r| r["outcome"] == "success").collect();
    assert_eq!(records.len(), history.len(), "one audit record per step");
    for event in &history {
        let action = format!("content.{}", event["kind"].as_str().unwrap());
        let matching = records
            .iter()
            .filter(|r| {
                r["action"] == action.as_str()
                    && r["metadata"]["sha256"] == event["sha256"]
                    && r["actor"] == event["actor"]
            })
            .count();
        assert!(matching >= 1, "no audit record for {event}");
    }
}
