"""An event delivered more than once has one effect."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import Database
from libs.common.events import Envelope, idempotent
from libs.common.testing import eventually

if TYPE_CHECKING:
    from common_testkit import AmqpNames

effects = sa.table("effects", sa.column("event_id", sa.Text))


async def count_effects(db: Database, event_id: object) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    sa.select(sa.func.count()).select_from(effects).where(effects.c.event_id == str(event_id))
                )
            ).scalar_one()
        )


def record_effect(delay: float = 0.0):
    async def effect(session: AsyncSession, envelope: Envelope) -> None:
        await session.execute(sa.insert(effects).values(event_id=str(envelope.id)))
        await asyncio.sleep(delay)

    return effect


async def test_same_event_delivered_twice_has_one_effect(clean_db: Database) -> None:
    handle = idempotent(clean_db, "cart", record_effect())
    env = Envelope.new("order.created", {"order_id": "o-1"}, producer="orders")
    await handle(env)
    await handle(env)
    assert await count_effects(clean_db, env.id) == 1


async def test_same_event_delivered_concurrently_has_one_effect(clean_db: Database) -> None:
    handle = idempotent(clean_db, "cart", record_effect(delay=0.1))
    env = Envelope.new("order.created", {"order_id": "o-2"}, producer="orders")
    await asyncio.gather(*(handle(env) for _ in range(5)))
    assert await count_effects(clean_db, env.id) == 1


async def test_each_consumer_handles_the_same_event_once(clean_db: Database) -> None:
    env = Envelope.new("order.created", {"order_id": "o-3"}, producer="orders")
    for consumer in ("cart", "payments", "cart"):
        await idempotent(clean_db, consumer, record_effect())(env)
    assert await count_effects(clean_db, env.id) == 2


async def test_failed_handling_leaves_no_mark_so_the_redelivery_takes_effect(clean_db: Database) -> None:
    env = Envelope.new("order.created", {"order_id": "o-4"}, producer="orders")

    async def crashes(session: AsyncSession, envelope: Envelope) -> None:
        await record_effect()(session, envelope)
        raise RuntimeError("crashed after writing")

    with pytest.raises(RuntimeError):
        await idempotent(clean_db, "cart", crashes)(env)
    assert await count_effects(clean_db, env.id) == 0
    await idempotent(clean_db, "cart", record_effect())(env)
    assert await count_effects(clean_db, env.id) == 1


async def test_duplicate_published_on_the_broker_has_one_effect(clean_db: Database, amqp: AmqpNames) -> None:
    bus = amqp.bus()
    bus.subscribe("cart", ["order.*"], idempotent(clean_db, "cart", record_effect(delay=0.05)))
    await bus.start()
    try:
        env = Envelope.new("order.created", {"order_id": "o-5"}, producer="orders")
        for _ in range(3):
            await bus.publish(env)

        async def effect_seen() -> None:
            assert await count_effects(clean_db, env.id) == 1

        await eventually(effect_seen, timeout=5)
        await asyncio.sleep(0.3)
        await effect_seen()
        assert await bus.dead_letters("cart") == []
    finally:
        await bus.close()
