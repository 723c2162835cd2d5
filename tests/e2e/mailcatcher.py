"""An SMTP server that keeps what it receives and shows it over HTTP: the ``mailcatcher`` container of
docker-compose.yml (a development stack's mailbox, ``GET /`` as a page), and the SMTP server of e2e
runs against a stack the tests did not start (``make e2e-compose``) and of ``make up``.

The e2e suite reads the emailed reset code like a user reads their inbox; with a stack in
containers the suite cannot reach into the SMTP server's memory, so the messages are
offered at ``GET /messages?to=<address>`` as ``[{to, subject, raw}]`` (``raw`` is the
RFC 5322 text). Only the standard library and aiosmtpd, so the container needs nothing of
the shop. Never expose it beyond a test network: it shows every message to anyone.

    python tests/e2e/mailcatcher.py --smtp-port 1025 --http-port 8025
"""

from __future__ import annotations

import argparse
import email
import html
import json
import signal
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller


class Inbox:
    """Received messages, shared by the SMTP thread and the HTTP threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self._messages.append(envelope.content)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            raw = list(self._messages)
        parsed = [email.message_from_bytes(m) for m in raw]
        return [m for m in parsed if address.lower() in str(m["To"] or "").lower()]


def _text(message: Message) -> str:
    """The plain-text part (or the whole message when it has none)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return message.as_string()


def http_handler(inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/":
                self._page(inbox.to(""))
            elif url.path == "/healthz":
                self._json(200, {"status": "ok"})
            elif url.path == "/messages":
                address = parse_qs(url.query).get("to", [""])[0]
                self._json(
                    200,
                    [
                        {"to": str(m["To"]), "subject": str(m["Subject"]), "raw": m.as_string()}
                        for m in inbox.to(address)
                    ],
                )
            else:
                self._json(404, {"detail": "GET /, /messages?to=<address> or /healthz"})

        def _page(self, messages: list[Message]) -> None:
            # newest first; every value is escaped text (a mail's HTML part is never rendered here)
            rows = "".join(
                "<details><summary>{} &middot; {}</summary><pre>{}</pre></details>".format(
                    html.escape(str(m["To"])), html.escape(str(m["Subject"])), html.escape(_text(m))
                )
                for m in reversed(messages)
            )
            data = (
                "<!doctype html><meta charset=utf-8><title>Mailbox</title>"
                f"<h1>Mailbox: {len(messages)} messages</h1>{rows or '<p>No mail yet.</p>'}"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", "default-src 'none'")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # polled often: keep the log quiet
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args()
    inbox = Inbox()
    smtp = Controller(inbox, hostname=args.host, port=args.smtp_port)
    smtp.start()
    http = ThreadingHTTPServer((args.host, args.http_port), http_handler(inbox))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=http.shutdown).start())
    print(
        f"mailcatcher: SMTP on {args.host}:{args.smtp_port}, HTTP on {args.host}:{args.http_port}", flush=True
    )
    try:
        http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        http.server_close()
        smtp.stop()


if __name__ == "__main__":
    main()
