"""Events pricing publishes; their models and catalogue are in ``libs.contracts.pricing``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import publish_in
from libs.contracts.pricing import EVENTS


async def publish(session: AsyncSession, type_: str, data: dict[str, Any]) -> None:
    """Write one of pricing's events to the outbox in the caller's transaction."""
    await publish_in(session, EVENTS.envelope(type_, data))
