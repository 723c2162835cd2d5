"""Reading the dev mailbox: the Maildir that ``make dev``'s SMTP catcher writes every message into.

A Maildir (one file per message) because any mail client opens it too (``mutt -f .data/mailbox``),
it outlives a restart, and the catcher needs nothing but aiosmtpd's own Mailbox handler.
"""

from __future__ import annotations

import email.policy
import mailbox
import re
from email.message import EmailMessage
from pathlib import Path

from services.notifications.schemas import MailboxMessage, MailboxPage

_KEY = re.compile(r"^(\d+)\.M(\d+)")


def read(directory: str, *, to: str | None, limit: int) -> MailboxPage:
    """The newest ``limit`` messages (to ``to`` when given), newest first."""
    path = Path(directory)
    if not (path / "cur").is_dir():
        return MailboxPage(items=[], total=0)
    box = mailbox.Maildir(path, factory=None, create=False)
    found: list[tuple[str, EmailMessage]] = []
    for key in sorted(box.keys(), key=_arrival, reverse=True):
        try:
            with box.get_file(key) as fh:
                raw = fh.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
        except (KeyError, OSError):
            continue  # removed while we read
        assert isinstance(msg, EmailMessage)
        if to and to.lower() not in str(msg.get("To", "")).lower():
            continue
        found.append((key, msg))
    return MailboxPage(items=[_public(key, msg) for key, msg in found[:limit]], total=len(found))


def _arrival(key: str) -> tuple[int, int, str]:
    """Maildir names start ``<seconds>.M<microseconds>P<pid>``: the order messages arrived in."""
    m = _KEY.match(key)
    return (int(m.group(1)), int(m.group(2)), key) if m else (0, 0, key)


def _public(key: str, msg: EmailMessage) -> MailboxMessage:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return MailboxMessage(
        id=key,
        to=str(msg.get("To", "")),
        sender=str(msg.get("From", "")),
        subject=str(msg.get("Subject", "")),
        date=str(msg["Date"]) if msg["Date"] else None,
        text=text.get_content() if isinstance(text, EmailMessage) else None,
        html=html.get_content() if isinstance(html, EmailMessage) else None,
    )
