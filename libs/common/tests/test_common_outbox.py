"""The outbox publishes what was committed, only that, once, even across a broker outage."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from libs.common.db import Database
from libs.common.events import Envelope, InMemoryBus, OutboxRelay, publish_in
from libs.common.events.amqp import AmqpBus
from libs.common.events.tables import outbox_t
from libs.common.testing import eventually
from libs.common.testing.tcp_proxy import tcp_proxy

if TYPE_CHECKING:
    from common_testkit import AmqpNames


class Sink:
    """Counts deliveries per event id."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def __call__(self, envelope: Envelope) -> None:
        self.seen[str(envelope.id)] += 1


@contextlib.asynccontextmanager
async def consumer(amqp: AmqpNames, sink: Sink) -> AsyncIterator[AmqpBus]:
    """A consumer connected straight to RabbitMQ, bound before anything is published."""
    bus = amqp.bus()
    bus.subscribe("sink", ["outbox.#"], sink)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def commit_events(db: Database, n: int, *, prefix: str = "outbox.test") -> list[str]:
    ids = []
    for i in range(n):
        env = Envelope.new(f"{prefix}.happened", {"i": i}, producer="tests")
        async with db.session() as session, session.begin():
            await publish_in(session, env)
        ids.append(str(env.id))
    return ids


async def unsent(db: Database) -> int:
    async with db.session() as session:
        return int(
            (
                await session.execute(
                    sa.select(sa.func.count()).select_from(outbox_t).where(outbox_t.c.sent_at.is_(None))
                )
            ).scalar_one()
        )


async def test_events_committed_while_the_broker_is_unreachable_arrive_once_it_is_back(
    clean_db: Database, amqp: AmqpNames
) -> None:
    sink = Sink()
    async with consumer(amqp, sink), tcp_proxy(amqp.url) as proxy:
        relay_bus = amqp.bus(proxy.url(amqp.url))
        await relay_bus.start()
        relay = OutboxRelay(clean_db, relay_bus, poll_interval=0.1)
        try:
            async with running(relay):
                before = await commit_events(clean_db, 1)
                await eventually(lambda: _seen_once(sink, before), timeout=5)

                await proxy.cut()
                during = await commit_events(clean_db, 20)
                await asyncio.sleep(1.0)
                assert not any(sink.seen[i] for i in during), "nothing can arrive while the broker is cut off"
                assert await unsent(clean_db) == 20

                await proxy.restore()
                await eventually(lambda: _seen_once(sink, before + during), timeout=20)
                after = await commit_events(clean_db, 3)
                await eventually(lambda: _seen_once(sink, before + during + after), timeout=10)
                await asyncio.sleep(0.3)
                assert set(sink.seen.values()) == {1}, "each event arrives exactly once"
                assert await unsent(clean_db) == 0
                assert proxy.connections_made >= 2, "the bus reconnected through the proxy"
        finally:
            await relay_bus.close()


async def _seen_once(sink: Sink, ids: list[str]) -> None:
    assert all(sink.seen[i] == 1 for i in ids), f"{sum(1 for i in ids if sink.seen[i])}/{len(ids)} delivered"


async def test_relay_started_while_the_broker_is_down_delivers_once_it_comes_up(
    clean_db: Database, amqp: AmqpNames
) -> None:
    sink = Sink()
    async with consumer(amqp, sink), tcp_proxy(amqp.url) as proxy:
        await proxy.cut()
        relay_bus = amqp.bus(proxy.url(amqp.url))
        await relay_bus.start()
        relay = OutboxRelay(clean_db, relay_bus, poll_interval=0.1)
        try:
            async with running(relay):
                ids = await commit_events(clean_db, 5)
                await asyncio.sleep(0.5)
                assert not any(sink.seen.values())
                with pytest.raises(ConnectionError):
                    await relay_bus.ping()
                await proxy.restore()
                await eventually(lambda: _seen_once(sink, ids), timeout=20)
                await relay_bus.ping()
        finally:
            await relay_bus.close()


async def test_events_of_a_rolled_back_transaction_are_never_published(
    clean_db: Database, amqp: AmqpNames
) -> None:
    sink = Sink()
    async with consumer(amqp, sink) as bus:
        relay = OutboxRelay(clean_db, bus, poll_interval=0.1)
        async with running(relay):
            doomed = Envelope.new("outbox.test.doomed", {}, producer="tests")
            with pytest.raises(RuntimeError):
                async with clean_db.session() as session, session.begin():
                    await publish_in(session, doomed)
                    raise RuntimeError("the order could not be placed")
            async with clean_db.session() as session, session.begin():
                await publish_in(session, Envelope.new("outbox.test.doomed", {}, producer="tests"))
                await session.rollback()
            kept = await commit_events(clean_db, 1)
            await eventually(lambda: _seen_once(sink, kept), timeout=5)
            await asyncio.sleep(0.3)
            assert list(sink.seen) == kept
            async with clean_db.session() as session:
                assert (
                    await session.execute(sa.select(sa.func.count()).select_from(outbox_t))
                ).scalar_one() == 1


async def test_two_relays_on_one_outbox_publish_each_row_once(clean_db: Database, amqp: AmqpNames) -> None:
    sink = Sink()
    async with consumer(amqp, sink) as bus:
        second_bus = amqp.bus()
        await second_bus.start()
        try:
            async with clean_db.session() as session, session.begin():
                envs = [Envelope.new("outbox.test.bulk", {"i": i}, producer="tests") for i in range(400)]
                for env in envs:
                    await publish_in(session, env)
            relays = [
                OutboxRelay(clean_db, b, batch=15, poll_interval=0.05)
                for b in (bus, second_bus, bus, second_bus)
            ]
            async with contextlib.AsyncExitStack() as stack:
                for relay in relays:
                    await stack.enter_async_context(running(relay))
                ids = [str(e.id) for e in envs]
                await eventually(lambda: _seen_once(sink, ids), timeout=20)
                await asyncio.sleep(0.3)
            assert sum(sink.seen.values()) == 400 and set(sink.seen.values()) == {1}
            assert await unsent(clean_db) == 0
        finally:
            await second_bus.close()


async def test_a_commit_wakes_the_relay_before_its_next_poll(clean_db: Database, amqp: AmqpNames) -> None:
    sink = Sink()
    async with consumer(amqp, sink) as bus:
        relay = OutboxRelay(clean_db, bus, poll_interval=30)
        async with running(relay):
            await asyncio.sleep(0.2)  # the relay's first (empty) round is over; it now sleeps 30 s
            ids = await commit_events(clean_db, 1)
            await eventually(lambda: _seen_once(sink, ids), timeout=3)


class BrokenAfter(InMemoryBus):
    """A bus whose broker stops confirming after ``n`` publishes."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n
        self.published: list[str] = []

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self.left == 0:
            raise ConnectionError("broker went away")
        self.left -= 1
        self.published.append(str(message_id))


async def test_rows_confirmed_before_a_failure_are_not_sent_again(clean_db: Database) -> None:
    ids = await commit_events(clean_db, 5)
    bus = BrokenAfter(2)
    relay = OutboxRelay(clean_db, bus)
    with pytest.raises(ConnectionError):
        await relay.run_once()
    assert await unsent(clean_db) == 3
    bus.left = 100
    assert await relay.run_once() == 3
    assert bus.published == ids
