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
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Unprocessable
from services.orders.models import IdempotencyKey
from services.orders.settings import OrdersSettings

T = IdempotencyKey


@dataclass(frozen=True)
class Claim:
    """Either ours to work on (``answer`` is None) or already answered."""

    order_id: uuid.UUID
    answer: tuple[int, dict[str, Any]] | None = None


def request_hash(payload: Any) -> str:
    """A fingerprint of the request body, to refuse a key reused for a different request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def claim(*, session: AsyncSession, settings: OrdersSettings, user_id: uuid.UUID, key: str,
                fingerprint: str) -> Claim:
    """Claim ``key`` for this request, or wait for the request that holds it and return its answer."""
    deadline = time.monotonic() + settings.idempotency_wait
    mine = (T.user_id == user_id) & (T.key == key)
    while True:
        now = datetime.now(UTC)
        order_id = uuid.uuid4()
        async with session.begin():
            await session.execute(sa.delete(T).where(mine, T.expires_at <= now))
            inserted = (await session.execute(
                insert(T).values(user_id=user_id, key=key, request_hash=fingerprint, order_id=order_id,
                                 claimed_at=now, expires_at=now + timedelta(seconds=settings.idempotency_ttl))
                .on_conflict_do_nothing().returning(T.order_id)
            )).first()
        if inserted is not None:
            return Claim(order_id=order_id)
        async with session.begin():
            row = (await session.execute(
                sa.select(T.request_hash, T.order_id, T.claimed_at, T.response_status, T.response_body).where(mine)
            )).first()
            if row is None:
                continue  # the holder failed and let go of the key: claim it again
            if row.request_hash != fingerprint:
                raise Unprocessable("This Idempotency-Key was already used for a different request; "
                                    "send a new key for a new order.", title="Idempotency-Key reused")
            if row.response_status is not None:
                return Claim(order_id=row.order_id, answer=(row.response_status, row.response_body or {}))
            if row.claimed_at < now - timedelta(seconds=settings.idempotency_stale_after):
                # the holder died mid-request: take over with the same order id, so catalog's
                # idempotency on order_id turns a repeated reservation into the same one
                taken = (await session.execute(
                    sa.update(T).where(mine, T.claimed_at == row.claimed_at, T.response_status.is_(None))
                    .values(claimed_at=now).returning(T.order_id)
                )).first()
                if taken is not None:
                    return Claim(order_id=row.order_id)
        if time.monotonic() > deadline:
            raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                           title="Request in progress", headers={"Retry-After": "1"})
        await asyncio.sleep(0.05)


async def complete(session: AsyncSession, *, user_id: uuid.UUID, key: str, status: int,
                   body: dict[str, Any]) -> None:
    """Store the answer in the caller's open transaction."""
    await session.execute(sa.update(T).where(T.user_id == user_id, T.key == key)
                          .values(response_status=status, response_body=body))


async def give_up(session: AsyncSession, *, user_id: uuid.UUID, key: str) -> None:
    """Let go of an unanswered claim (the failure was transient), so the same key can be retried."""
    async with session.begin():
        await session.execute(sa.delete(T).where(T.user_id == user_id, T.key == key,
                                                 T.response_status.is_(None)))


async def purge_expired(session: AsyncSession) -> int:
    async with session.begin():
        result = await session.execute(sa.delete(T).where(T.expires_at <= datetime.now(UTC)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
