"""Outgoing email: SMTP (aiosmtplib) or, in dev, the log."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib

from libs.common.logging import get_logger
from services.auth.settings import AuthSettings

log = get_logger(__name__)


class Mailer:
    """Sends in the background so the caller's answer time does not depend on the mail server."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._pending: set[asyncio.Task[None]] = set()

    def send_later(self, *, to: str, subject: str, body: str) -> None:
        task = asyncio.create_task(self._send(to=to, subject=subject, body=body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, *, to: str, subject: str, body: str) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.smtp_from
        msg["To"] = to
        msg["Subject"] = subject
        msg.set_content(body)
        if s.email_backend == "log":
            log.info("email_not_sent_log_backend", to=to, subject=subject, body=body)
            return
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # the user can ask again; the answer they got did not depend on delivery
            log.error("email_send_failed", to=to, subject=subject, error=f"{type(exc).__name__}: {exc}")

    async def drain(self) -> None:
        """Wait for messages still being sent (shutdown)."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.settings.smtp_timeout)
