"""Idempotent consumers: the handled event's id is recorded with the handler's effect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import Database
from libs.common.events.bus import Handler
from libs.common.events.envelope import Envelope
from libs.common.events.tables import processed_t

SessionHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]


async def mark_processed(session: AsyncSession, *, event_id: object, consumer: str) -> bool:
    """Record the event in the open transaction; False if this consumer already handled it.

    A concurrent duplicate waits on the primary key until the first transaction ends,
    then sees the row, so two deliveries racing still have one effect.
    """
    result = await session.execute(
        insert(processed_t)
        .values(event_id=event_id, consumer=consumer)
        .on_conflict_do_nothing()
        .returning(sa.literal(1))
    )
    return result.first() is not None


def idempotent(db: Database, consumer: str, handler: SessionHandler) -> Handler:
    """Wrap ``handler`` so its effect and the inbox row commit together, once per event."""

    async def handle(envelope: Envelope) -> None:
        async with db.session() as session, session.begin():
            if await mark_processed(session, event_id=envelope.id, consumer=consumer):
                await handler(session, envelope)

    return handle
