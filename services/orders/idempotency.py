"""Idempotency-Key per user: the first request claims the key, every repeat gets the first answer.

The claim is a row inserted with ``ON CONFLICT DO NOTHING`` and committed before any work,
so of any number of racing requests exactly one does the work; the others poll the row
until the answer is stored. A successful answer is stored in the same transaction as the
order, so an order and its key's answer are never one without the other.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Unprocessable
from services.orders import placements
from services.orders.models import IdempotencyKey
from services.orders.settings import OrdersSettings

T = IdempotencyKey


@dataclass(frozen=True)
class Claim:
    """Either ours to work on (``answer`` is None) or already answered.

    ``abandoned`` is the order id of an earlier placement under this key whose owner is gone:
    it was fenced when we took the key over, and its stock should go back before we reserve.
    """

    order_id: uuid.UUID
    answer: tuple[int, dict[str, Any]] | None = None
    abandoned: uuid.UUID | None = None


def request_hash(payload: Any) -> str:
    """A fingerprint of the request body, to refuse a key reused for a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim(
    *, session: AsyncSession, settings: OrdersSettings, user_id: uuid.UUID, key: str, fingerprint: str
) -> Claim:
    """Claim ``key`` for this request (opening its placement), or return the answer of the request that had it.

    A key whose placement is live is being worked on: wait up to ``IDEMPOTENCY_WAIT`` for its
    answer, then 409 with Retry-After. A key whose placement is not live (its owner died or gave
    up without being able to say so) is taken over at once under a new order id.
    """
    deadline = time.monotonic() + settings.idempotency_wait
    mine = (T.user_id == user_id) & (T.key == key)
    while True:
        now = datetime.now(UTC)
        order_id = uuid.uuid4()
        async with session.begin():
            await session.execute(sa.delete(T).where(mine, T.expires_at <= now))
            inserted = (
                await session.execute(
                    insert(T)
                    .values(
                        user_id=user_id,
                        key=key,
                        request_hash=fingerprint,
                        order_id=order_id,
                        claimed_at=now,
                        expires_at=now + timedelta(seconds=settings.idempotency_ttl),
                    )
                    .on_conflict_do_nothing()
                    .returning(T.order_id)
                )
            ).first()
            if inserted is not None:
                await placements.open_in(session, settings=settings, order_id=order_id, user_id=user_id)
                return Claim(order_id=order_id)
        async with session.begin():
            row = (
                await session.execute(
                    sa.select(T.request_hash, T.order_id, T.response_status, T.response_body).where(mine)
                )
            ).first()
            if row is None:
                continue  # the holder failed and let go of the key: claim it again
            if row.request_hash != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was already used for a different request; "
                    "send a new key for a new order.",
                    title="Idempotency-Key reused",
                    type_="idempotency-key-reused",
                )
            if row.response_status is not None:
                return Claim(order_id=row.order_id, answer=(row.response_status, row.response_body or {}))
            left = await placements.seconds_left(session, row.order_id)
            if left is None:
                taken = await _take_over(
                    session,
                    settings=settings,
                    user_id=user_id,
                    key=key,
                    old=row.order_id,
                    new=order_id,
                    now=now,
                )
                if taken is not None:
                    return taken
                continue
        if time.monotonic() > deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                title="Request in progress",
                type_="request-in-progress",
                headers={"Retry-After": placements.retry_after(left)},
            )
        await asyncio.sleep(0.05)


async def _take_over(
    session: AsyncSession,
    *,
    settings: OrdersSettings,
    user_id: uuid.UUID,
    key: str,
    old: uuid.UUID,
    new: uuid.UUID,
    now: datetime,
) -> Claim | None:
    """Under the key's row lock: fence the old placement, open a new one, point the key at it.

    Never the old order id again: its reservation may have been released already, and catalog's
    replay of it would look like stock that is not held. None when someone else moved first.
    """
    locked = (
        await session.execute(
            sa.select(T.order_id)
            .where(T.user_id == user_id, T.key == key, T.order_id == old, T.response_status.is_(None))
            .with_for_update()
        )
    ).first()
    if locked is None or not await placements.fence_in(session, old, settings=settings):
        return None
    await placements.open_in(session, settings=settings, order_id=new, user_id=user_id)
    await session.execute(
        sa.update(T).where(T.user_id == user_id, T.key == key).values(order_id=new, claimed_at=now)
    )
    return Claim(order_id=new, abandoned=old)


async def lock(session: AsyncSession, *, user_id: uuid.UUID, key: str) -> None:
    """Lock the key's row in the caller's transaction (taken before a placement's row, everywhere)."""
    await session.execute(sa.select(T.order_id).where(T.user_id == user_id, T.key == key).with_for_update())


async def complete(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    key: str,
    order_id: uuid.UUID,
    status: int,
    body: dict[str, Any],
) -> None:
    """Store the answer in the caller's open transaction (only while the key is still this placement's)."""
    await session.execute(
        sa.update(T)
        .where(T.user_id == user_id, T.key == key, T.order_id == order_id)
        .values(response_status=status, response_body=body)
    )


async def purge_expired(session: AsyncSession) -> int:
    async with session.begin():
        result = await session.execute(sa.delete(T).where(T.expires_at <= datetime.now(UTC)))
    return int(cast("CursorResult[Any]", result).rowcount or 0)
