"""An independent verifier of consent receipts, written from docs/consent.md ("Consent
receipts") and docs/audit-chain.md alone; it shares no code with `mos`.

    python3 verify_receipt.py RECEIPT.json PUBLIC_KEY_HEX

Prints `ok` and exits 0 when the receipt holds, or prints the reason and exits 1.
"""

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone

FIELDS = ["organization_id", "id", "actor_user_id", "action", "resource_type", "resource_id", "outcome",
          "ip", "user_agent", "request_id", "changes", "metadata", "created_at"]
ACTIONS = {"grant": "consent.granted", "confirm": "consent.confirmed", "revoke": "consent.revoked",
           "expire": "consent.expired"}


class Refused(Exception):
    pass


def encode(text):
    if text is None:
        return b"\xff\xff\xff\xff"
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def link(prev, seq, fields):
    texts = [fields["organization_id"], str(seq)] + [fields[name] for name in FIELDS[1:]]
    return hashlib.sha256(prev + b"".join(encode(t) for t in texts)).digest()


def micros(text):
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def import_leaf(event):
    if event["hipaa"] is not None or event["evidence_sha256"] is not None:
        raise Refused("an imported event with HIPAA elements or evidence")
    expires = event["expires_at"]
    texts = [event["id"], event["contact_id"], event["purpose_id"], str(event["seq"]), event["channel"], event["kind"],
             event["basis"], event["notice_sha256"], None if expires is None else str(micros(expires)),
             event["exemption"], event["source"], event["import_job"],
             None if event["import_row"] is None else str(event["import_row"]), event["recorded_by"],
             str(micros(event["created_at"]))]
    return hashlib.sha256(b"\x00" + b"".join(encode(t) for t in texts)).digest()


def root_from_path(leaf, index, size, path):
    """RFC 9162, 2.1.3.2."""
    if index >= size:
        raise Refused("a proof's index lies outside its tree")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Refused("a proof is longer than its tree is deep")
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Refused("a proof is shorter than its tree is deep")
    return r


def check_batch(event, record, proof):
    meta = json.loads(record["metadata"])
    row = event["import_row"]
    stated = [
        (record["resource_type"], "contact_import"),
        (event["source"], "import"),
        (meta.get("job"), event["import_job"]),
        (meta.get("purpose"), event["purpose_id"]),
        (meta.get("notice_sha256"), event["notice_sha256"]),
        (record["actor_user_id"], event["recorded_by"]),
        (meta.get("events"), proof["size"]),
    ]
    if any(said != shown for said, shown in stated) or row is None or not meta["first_row"] <= row <= meta["last_row"]:
        raise Refused(f"event {event['id']} does not match its import batch's record")
    path = [bytes.fromhex(h) for h in proof["path"]]
    if root_from_path(import_leaf(event), proof["index"], proof["size"], path).hex() != meta["merkle_root"]:
        raise Refused(f"event {event['id']}'s proof does not lead to its batch's root")


def signed_time(text):
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_signature(checkpoint, public_key):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if checkpoint["public_key"] != public_key:
        raise Refused("signed with another key")
    lines = ["mos-audit-checkpoint-v1", signed_time(checkpoint["created_at"])]
    lines += [f'{h["organization_id"]} {h["seq"]} {h["hash"]}' for h in checkpoint["heads"]]
    message = ("\n".join(lines) + "\n").encode()
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(bytes.fromhex(checkpoint["signature"]), message)
    except InvalidSignature:
        raise Refused("the signature does not verify")


def verify(receipt, public_key):
    if receipt["format"] not in ("mos-consent-receipt-v1", "mos-consent-receipt-v2"):
        raise Refused("unknown format")
    proofs = receipt.get("proofs", {})
    if receipt["format"] == "mos-consent-receipt-v1" and proofs:
        raise Refused("a version 1 receipt with proofs")
    org, contact = receipt["organization_id"], receipt["contact_id"]
    checkpoint = receipt["checkpoint"]
    if checkpoint is None or receipt["chain"] is None:
        raise Refused("nothing signed")
    check_signature(checkpoint, public_key)
    [head] = checkpoint["heads"]
    if head["organization_id"] != org:
        raise Refused("another organization's checkpoint")

    prev = bytes.fromhex(receipt["chain"]["prev_hash"])
    records, seq = {}, None
    for record in receipt["chain"]["records"]:
        if seq is not None and record["seq"] != seq + 1:
            raise Refused("the records are not consecutive")
        seq = record["seq"]
        fields = record["fields"]
        if fields["organization_id"] != org:
            raise Refused("a record of another organization")
        prev = link(prev, seq, fields)
        if prev.hex() != record["hash"]:
            raise Refused(f"record {seq} was changed")
        records[fields["id"]] = fields
    if (seq, prev.hex()) != (head["seq"], head["hash"]):
        raise Refused("the chain does not reach the signed link")

    notices = set()
    for notice in receipt["notices"]:
        if hashlib.sha256(notice["text"].encode("utf-8")).hexdigest() != notice["sha256"]:
            raise Refused("a notice text was changed")
        notices.add((notice["purpose_id"], notice["sha256"]))

    numbers, vouched = {}, set()
    for event in receipt["events"]:
        if event["contact_id"] != contact:
            raise Refused("another contact's event")
        numbers.setdefault(event["purpose_id"], []).append(event["seq"])
        if event["notice_sha256"] is not None and (event["purpose_id"], event["notice_sha256"]) not in notices:
            raise Refused("a notice text is missing")
        if event["id"] in receipt["not_covered"]:
            continue
        record = records.get(receipt["records"].get(event["id"]))
        if record is None:
            raise Refused("an event's record is not in the chain")
        if record["action"] == "consent.imported":
            if event["id"] not in proofs:
                raise Refused("an imported event without its proof")
            check_batch(event, record, proofs[event["id"]])
            continue
        meta = json.loads(record["metadata"])
        stated = [
            (record["action"], ACTIONS.get(event["kind"])),
            (record["resource_type"], "consent"),
            (record["resource_id"], event["id"]),
            (record["actor_user_id"], event["recorded_by"]),
            (meta.get("contact"), contact),
            (meta.get("purpose"), event["purpose_id"]),
            (meta.get("seq"), event["seq"]),
            (meta.get("source"), event["source"]),
            (meta.get("notice_sha256"), event["notice_sha256"]),
        ]
        if "channel" in meta:
            stated += [(meta.get(k), event[k]) for k in ("channel", "basis", "evidence_sha256")]
        if any(said != shown for said, shown in stated):
            raise Refused(f"event {event['id']} does not match its audit record")
        vouched.add(record["id"])
    for purpose, seqs in numbers.items():
        if sorted(seqs) != list(range(1, len(seqs) + 1)):
            raise Refused(f"a gap in the history of purpose {purpose}")
    for record in records.values():
        if record["resource_type"] == "consent" and json.loads(record["metadata"]).get("contact") == contact:
            if record["id"] not in vouched:
                raise Refused("an event of this contact was left out")


def main():
    receipt = json.loads(open(sys.argv[1], encoding="utf-8").read())
    try:
        verify(receipt, sys.argv[2].strip())
    except (Refused, KeyError, ValueError, TypeError) as why:
        print(f"refused: {why}")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
