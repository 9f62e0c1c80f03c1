"""A receiver for teltotwist's webhook sink that checks every signature.

Standard library only. Run it with the gateway's secret::

    TELTOTWIST_WEBHOOK_SECRET=s3cret python webhook_receiver.py 127.0.0.1 8080

It prints one line per record and answers 200. A request without a valid,
fresh signature gets 401 and its records are ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_AGE = 300
"""Seconds a signed request stays acceptable: older ones may be replays."""


def verify(
    secret: bytes, timestamp: str, signature: str, body: bytes, now: float
) -> bool:
    """Whether *signature* is the sink's signature of *timestamp* and *body*,
    made at most :data:`MAX_AGE` seconds from *now*."""
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > MAX_AGE:
        return False
    signed = timestamp.encode("ascii") + b"." + body
    expected = "sha256=" + hmac.new(secret, signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def store(record: dict[str, object]) -> None:
    """Keep *record*; a real receiver upserts it by its ``id``."""
    print(record["id"], record.get("timestamp"), flush=True)


class ReceiverHandler(BaseHTTPRequestHandler):
    """Answers POSTs: 200 once the records are stored, 401 if not signed."""

    protocol_version = "HTTP/1.1"  # keep connections open for the sink's pool
    secret = b""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if not verify(
            self.secret,
            self.headers.get("X-Teltotwist-Timestamp", ""),
            self.headers.get("X-Teltotwist-Signature", ""),
            body,
            time.time(),
        ):
            self._answer(401, b"bad or stale signature\n")
            return
        for record in json.loads(body):
            store(record)
        self._answer(200, b"")

    def _answer(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


def main(host: str, port: int) -> None:
    ReceiverHandler.secret = os.environ["TELTOTWIST_WEBHOOK_SECRET"].encode("utf-8")
    server = ThreadingHTTPServer((host, port), ReceiverHandler)
    print(f"listening on http://{host}:{server.server_port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
