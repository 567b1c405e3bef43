"""A webhook endpoint for the tests: verifies every delivery with the `standardwebhooks` package
(the Standard Webhooks reference implementation, independent of ours) and keeps what it got.

    python3 webhook_receiver.py            prints its port on the first line, then serves

Control, on the same port:
    POST /control/{name}  {"secret": "whsec_...", "fail_first": N}
        requests to /hooks/{name} are verified with that secret; the first N are answered 500
    GET  /control/log     every request to /hooks/..., in arrival order
"""

import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
endpoints = {}
log = []
# Another key of the same length: a signature must not verify under it.
WRONG = "whsec_" + base64.b64encode(os.urandom(32)).decode()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/control/log":
            with lock:
                body = json.dumps(log).encode()
            return self.answer(200, body)
        self.answer(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/control/"):
            with lock:
                endpoints[name] = dict(json.loads(body), seen=0)
            return self.answer(204)
        if not self.path.startswith("/hooks/") or name not in endpoints:
            return self.answer(404)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            endpoint = endpoints[name]
            endpoint["seen"] += 1
            failing = endpoint["seen"] <= endpoint["fail_first"]
            secret = endpoint["secret"]
        try:
            payload = Webhook(secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        try:
            Webhook(WRONG).verify(body, headers)
            wrong_secret_verifies = True
        except WebhookVerificationError:
            wrong_secret_verifies = False
        status = 500 if failing else (204 if verified else 400)
        with lock:
            log.append({
                "endpoint": name,
                "id": headers.get("webhook-id"),
                "timestamp": headers.get("webhook-timestamp"),
                "verified": verified,
                "wrong_secret_verifies": wrong_secret_verifies,
                "status": status,
                "payload": payload,
            })
        self.answer(status)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
