#!/usr/bin/env python3
"""Random audiences and segment definitions, with the contacts each definition selects.

An independent evaluation of docs/segments.md, for crates/db/tests/db/segments.rs: the test
loads the contacts through the repository, runs every definition through the compiled SQL,
and compares the ids with the ones computed here.

Usage: segments.py SEED CONTACTS DEFINITIONS   (writes JSON to stdout)

Purposes are named in definitions as "purpose:<name>"; the test replaces them with the ids
it created. Contacts are named by their index.
"""
import json
import random
import sys
from datetime import date, datetime, timedelta, timezone

AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
TEXTS = ["basic", "plus", "premium", "Basic", "o'brien", "100%", "a_b", "x\\y", "\u00e9t\u00e9",
         "'; drop table app.contacts; --", "$1", "pre", "premium plus"]
TAGS = ["vip", "new", "staff", "o'neil", "50%", "a,b", "{x}", "\"q\"", "') or true --"]
CHOICES = ["gold", "silver", "bronze"]
PURPOSES = ["news", "offers"]
ATTRIBUTES = [
    {"name": "plan", "kind": "text", "max_length": 40},
    {"name": "age", "kind": "number"},
    {"name": "visit", "kind": "date"},
    {"name": "smoker", "kind": "boolean"},
    {"name": "tier", "kind": "choice", "choices": CHOICES},
]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_number(rng):
    return rng.choice([rng.randint(0, 100), rng.randint(0, 200) / 2])


def random_date(rng):
    return date(2020, 1, 1) + timedelta(days=rng.randint(0, 2000))


def random_value(rng, attribute):
    kind = attribute["kind"]
    if kind == "text":
        return rng.choice(TEXTS)
    if kind == "number":
        return random_number(rng)
    if kind == "date":
        return random_date(rng).isoformat()
    if kind == "boolean":
        return rng.random() < 0.5
    return rng.choice(CHOICES)


def random_events(rng):
    """A history the ledger accepts, as (kind, source, expires_at or None)."""
    events = []
    for _ in range(rng.randint(0, 4)):
        last = events[-1] if events else None
        options = ["grant_api", "grant_signup", "grant_hipaa", "revoke", "expire"]
        if last and last[0] == "grant" and last[1] == "signup_form":
            options += ["confirm", "confirm"]
        pick = rng.choice(options)
        if pick == "grant_api":
            events.append(("grant", "api", None))
        elif pick == "grant_signup":
            events.append(("grant", "signup_form", None))
        elif pick == "grant_hipaa":
            expires = AT + timedelta(days=rng.choice([-30, -1, 1, 30]))
            events.append(("grant", rng.choice(["api", "console"]), iso(expires)))
        elif pick == "confirm":
            # A confirmation takes the pending sign-up's basis, and so its expiry.
            events.append(("confirm", "signup_form", last[2]))
        else:
            events.append((pick, "api", None))
    return events


def live(events):
    if not events:
        return False
    kind, source, expires = events[-1]
    granted = kind == "confirm" or (kind == "grant" and source != "signup_form")
    return granted and (expires is None or datetime.strptime(expires, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) > AT)


def random_contacts(rng, n):
    contacts = []
    for i in range(n):
        values = {}
        for attribute in ATTRIBUTES:
            if rng.random() < 0.7:
                values[attribute["name"]] = random_value(rng, attribute)
        created = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randint(0, 525600))
        contacts.append({
            "address": f"person{i}@patients.example",
            "tags": sorted(set(rng.sample(TAGS, rng.randint(0, 3)))),
            "created_at": iso(created),
            "values": values,
            "consent": {p: [list(e) for e in random_events(rng)] for p in PURPOSES},
            "erased": rng.random() < 0.05,
            # Suppressed after its events: no confirmation comes after the entry to lift it.
            "suppressed": rng.random() < 0.1,
        })
    return contacts


def random_condition(rng, depth):
    roll = rng.randint(0, 9 if depth < 3 else 6)
    if roll == 0:
        attribute = rng.choice(ATTRIBUTES)
        return {"attribute": attribute["name"], "op": rng.choice(["is_set", "is_not_set"])}
    if roll == 1:
        kind = rng.choice(["text", "number", "date", "boolean", "choice"])
        if kind == "text":
            op = rng.choice(["equals", "contains", "starts_with"])
            value = rng.choice(TEXTS) if op == "equals" else rng.choice(["pre", "'", "%", "_", "\\", "e", "$1", "plus"])
            return {"attribute": "plan", "op": op, "value": value}
        if kind == "number":
            low, high = sorted([random_number(rng), random_number(rng)])
            op = rng.choice(["equals", "lt", "lte", "gt", "gte", "between"])
            return {"attribute": "age", "op": op, "value": [low, high] if op == "between" else low}
        if kind == "date":
            low, high = sorted([random_date(rng).isoformat(), random_date(rng).isoformat()])
            op = rng.choice(["equals", "lt", "lte", "gt", "gte", "between"])
            return {"attribute": "visit", "op": op, "value": [low, high] if op == "between" else low}
        if kind == "boolean":
            return {"attribute": "smoker", "op": "equals", "value": rng.random() < 0.5}
        return {"attribute": "tier", "op": "in", "value": rng.sample(CHOICES, rng.randint(1, 2))}
    if roll == 2:
        op = rng.choice(["has", "has_any", "has_all"])
        value = rng.choice(TAGS) if op == "has" else rng.sample(TAGS, rng.randint(1, 3))
        return {"tags": op, "value": value}
    if roll in (3, 4):
        return {"consent": rng.choice(["live", "not_live"]), "purpose": "purpose:" + rng.choice(PURPOSES)}
    if roll in (5, 6):
        instant = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=rng.randint(0, 525600))
        return {"created": rng.choice(["before", "after"]), "value": iso(instant)}
    if roll == 7:
        return {"not": random_condition(rng, depth + 1)}
    return {rng.choice(["all", "any"]): [random_condition(rng, depth + 1) for _ in range(rng.randint(0, 4))]}


def compare(op, stored, value):
    if op == "equals":
        return stored == value
    if op == "lt":
        return stored < value
    if op == "lte":
        return stored <= value
    if op == "gt":
        return stored > value
    if op == "gte":
        return stored >= value
    return value[0] <= stored <= value[1]


def holds(node, contact):
    if "all" in node:
        return all(holds(n, contact) for n in node["all"])
    if "any" in node:
        return any(holds(n, contact) for n in node["any"])
    if "not" in node:
        return not holds(node["not"], contact)
    if "attribute" in node:
        stored = contact["values"].get(node["attribute"])
        op = node["op"]
        if op == "is_set":
            return stored is not None
        if op == "is_not_set":
            return stored is None
        if stored is None:
            return False
        value = node["value"]
        if op == "contains":
            return value in stored
        if op == "starts_with":
            return stored.startswith(value)
        if op == "in":
            return stored in value
        return compare(op, stored, value)
    if "tags" in node:
        value = node["value"]
        if node["tags"] == "has":
            return value in contact["tags"]
        if node["tags"] == "has_any":
            return any(t in contact["tags"] for t in value)
        return all(t in contact["tags"] for t in value)
    if "consent" in node:
        is_live = live(contact["consent"][node["purpose"].split(":", 1)[1]]) and not contact["suppressed"]
        return is_live if node["consent"] == "live" else not is_live
    created = contact["created_at"]
    # Both are ISO 8601 in UTC with the same layout, so they compare as text.
    return created < node["value"] if node["created"] == "before" else created > node["value"]


def main():
    seed, n_contacts, n_definitions = (int(a) for a in sys.argv[1:4])
    rng = random.Random(seed)
    contacts = random_contacts(rng, n_contacts)
    definitions = []
    for _ in range(n_definitions):
        definition = random_condition(rng, 0)
        expected = [i for i, c in enumerate(contacts) if not c["erased"] and holds(definition, c)]
        definitions.append({"definition": definition, "expected": expected})
    json.dump({"at": iso(AT), "attributes": ATTRIBUTES, "purposes": PURPOSES, "contacts": contacts,
               "definitions": definitions}, sys.stdout)


if __name__ == "__main__":
    main()
