"""Sending one e-mail over SMTP (aiosmtplib), and telling a refusal from a server that is away."""

from __future__ import annotations

import re
import uuid
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from services.notifications.rendering import Rendered, one_line
from services.notifications.settings import NotificationsSettings

_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


class SendFailed(Exception):
    """The mail was not accepted. ``permanent``: the server refused it (5xx), trying again the same
    way will not help; otherwise it could not be reached or said "try later" (4xx)."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


def build_message(
    settings: NotificationsSettings, *, delivery_id: uuid.UUID, to_address: str, to_name: str, mail: Rendered
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML); its Message-ID is the delivery's, so a mail
    sent twice (the sender died between the server's yes and recording it) is seen as one."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = Address(display_name=display_name(to_name), addr_spec=to_address)
    msg["Subject"] = one_line(mail.subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "shop.local"
    msg["Message-ID"] = f"<{delivery_id}@{domain}>"
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def display_name(name: str) -> str:
    """The name as a To header's phrase: one line, without the characters that would need quoting.

    Quoting is not enough: the standard library folds a long quoted name across lines and loses the
    quotes, so ``"<x>" <addr>`` comes out as an address ``x``. The name is only cosmetic there (the
    mail's text greets the customer with it as typed)."""
    return " ".join(_SPECIALS.sub(" ", one_line(name)).split())[:100]


async def send(settings: NotificationsSettings, message: EmailMessage) -> None:
    """Hand the message to the configured SMTP server; ``SendFailed`` says why not."""
    s = settings
    try:
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            validate_certs=s.smtp_tls_verify,
            timeout=s.smtp_timeout,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        raise SendFailed(_describe(exc), permanent=all(500 <= c < 600 for c in codes)) from exc
    except aiosmtplib.SMTPAuthenticationError as exc:
        # the shop's credentials are wrong: fixing them must let the waiting mail go, so it waits
        raise SendFailed(_describe(exc), permanent=False) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise SendFailed(_describe(exc), permanent=500 <= exc.code < 600) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise SendFailed(_describe(exc), permanent=False) from exc


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]
