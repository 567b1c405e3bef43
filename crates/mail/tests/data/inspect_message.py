"""Reads a message with tools nobody here wrote: dkimpy for the DKIM signature, Python's own
email package for the headers and parts.

    python3 inspect_message.py verify MESSAGE SELECTOR DOMAIN PUBLIC_KEY_BASE64
        Verifies the DKIM signature with the public key as the DNS TXT record of
        SELECTOR._domainkey.DOMAIN (no DNS is asked). Prints a JSON object: "ok" (true or false),
        "tags" (the signature's tags a, c, d, s) and "signed" (the h= list, lowercased).
        Exits 0 when it verifies, 1 when it does not.

    python3 inspect_message.py parse MESSAGE
        Prints a JSON object: "headers" ([name, decoded value] in order) and "parts"
        ([content type, charset, transfer encoding, decoded text] for each leaf part).
"""

import json
import sys
from email import policy
from email.parser import BytesParser

import dkim
from dkim.util import parse_tag_value


def verify(message, selector, domain, public_key):
    record = ("v=DKIM1; k=rsa; p=" + public_key).encode()
    wanted = f"{selector}._domainkey.{domain}.".encode()

    def dnsfunc(name, timeout=5):
        return record if name == wanted else None

    ok = dkim.verify(message, dnsfunc=dnsfunc)
    parsed = BytesParser(policy=policy.compat32).parsebytes(message)
    signature = parsed.get("DKIM-Signature", "")
    tags = parse_tag_value("".join(signature.split()).encode())
    result = {
        "ok": bool(ok),
        "tags": {k: tags.get(k.encode(), b"").decode() for k in ("a", "c", "d", "s")},
        "signed": [h.strip().lower() for h in tags.get(b"h", b"").decode().split(":") if h.strip()],
    }
    print(json.dumps(result))
    sys.exit(0 if ok else 1)


def parse(message):
    parsed = BytesParser(policy=policy.default).parsebytes(message)
    headers = [[name, str(value)] for name, value in parsed.items()]
    parts = []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        parts.append([part.get_content_type(), part.get_content_charset(), part.get("Content-Transfer-Encoding"),
                      part.get_content()])
    print(json.dumps({"content_type": parsed.get_content_type(), "headers": headers, "parts": parts}))


def main():
    message = open(sys.argv[2], "rb").read()
    if sys.argv[1] == "verify":
        verify(message, *sys.argv[3:6])
    else:
        parse(message)


if __name__ == "__main__":
    main()
