#!/usr/bin/env python3
"""Known answers for the audit chain, computed from docs/audit-chain.md alone.

An implementation of the documented format that shares no code with `mos`: it reads the records
and the checkpoint of audit_vectors.json, computes every link hash, the checkpoint's signed text
and its Ed25519 signature, and checks them against the expected values stored there (or, with
--write, stores them). The database and CLI tests insert the same records, seal them with the
real sealer and sign the same heads, and compare with these values, so the encoding cannot change
while the tests stay green.

Needs Python 3 and, for the signature, the `cryptography` package.
"""
import hashlib
import ipaddress
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

PATH = Path(__file__).with_name("audit_vectors.json")


def jsonb_text(value):
    """PostgreSQL's text output of a jsonb value: keys by length, then bytes; ': ' and ', '."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            escaped = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
            if ch in escaped:
                out.append(escaped[ch])
            elif ord(ch) < 0x20:
                out.append("\\u%04x" % ord(ch))
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(jsonb_text(k) + ": " + jsonb_text(value[k]) for k in keys) + "}"
    raise TypeError(f"no jsonb text for {value!r}")


def micros(timestamp):
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode(text):
    if text is None:
        return b"\xff\xff\xff\xff"
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def texts(organization_id, seq, record):
    ip = record["ip"]
    return [
        organization_id,
        str(seq),
        record["id"],
        record["actor_user_id"],
        record["action"],
        record["resource_type"],
        record["resource_id"],
        record["outcome"],
        None if ip is None else str(ipaddress.ip_interface(ip).ip),
        record["user_agent"],
        record["request_id"],
        jsonb_text(record["changes"]),
        jsonb_text(record["metadata"]),
        str(micros(record["created_at"])),
    ]


def links(vectors):
    prev = bytes(32)
    for seq, record in enumerate(vectors["records"], start=1):
        prev = hashlib.sha256(prev + b"".join(encode(t) for t in texts(vectors["organization_id"], seq, record))).digest()
        yield prev.hex()


def checkpoint_message(checkpoint):
    lines = ["mos-audit-checkpoint-v1", checkpoint["created_at"]]
    lines += [f'{h["organization_id"]} {h["seq"]} {h["hash"]}' for h in checkpoint["heads"]]
    return ("\n".join(lines) + "\n").encode()


def main():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    vectors = json.loads(PATH.read_text())
    hashes = list(links(vectors))
    checkpoint = vectors["checkpoint"]
    checkpoint["heads"] = [{"organization_id": vectors["organization_id"], "seq": len(hashes), "hash": hashes[-1]}]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(checkpoint["signing_key"]))
    message = checkpoint_message(checkpoint)
    expected = {
        "hashes": hashes,
        "message": message.decode(),
        "public_key": key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        "signature": key.sign(message).hex(),
    }
    if "--write" in sys.argv:
        vectors["expected"] = expected
        PATH.write_text(json.dumps(vectors, indent=2, ensure_ascii=False) + "\n")
    elif vectors.get("expected") != expected:
        sys.exit("audit_vectors.json disagrees with the documented format")
    print("audit_vectors.json matches the documented format")


if __name__ == "__main__":
    main()
