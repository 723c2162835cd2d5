"""Who a mail goes to: the customer's address and name, asked of auth when the event is handled."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import ServiceUnavailable
from libs.common.http import call
from libs.common.logging import get_logger
from services.notifications.context import NotificationsContext

log = get_logger(__name__)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str


async def customer(ctx: NotificationsContext, user_id: uuid.UUID) -> Recipient | None:
    """The account's address and name now; None when auth knows no such account.

    Auth unreachable (or answering 5xx) raises a 503 ``DomainError``: the consumer treats it as an
    outage, so the event waits for auth without spending an attempt."""
    resp = await call(
        ctx.http,
        "GET",
        f"{ctx.settings.auth_url}/internal/users/{user_id}",
        service="auth",
        headers={INTERNAL_TOKEN_HEADER: ctx.settings.internal_api_token.get_secret_value()},
    )
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        log.warning("auth_unexpected_answer", status=resp.status_code)
        raise ServiceUnavailable("The auth service gave no account right now.")
    user = resp.json()
    return Recipient(email=str(user["email"]), name=str(user["name"]))
