"""Both bus implementations keep the same promises: every test runs on InMemoryBus and AmqpBus."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import sqlalchemy.ext.asyncio

from libs.common.events import Envelope, EventBus
from libs.common.tasks import cancel_and_wait
from libs.common.testing import eventually
from libs.common.testing.apps import free_port

BusFactory = Callable[..., EventBus]
MAX_ATTEMPTS = 3  # the make_bus fixture's default


class Recorder:
    """A handler that records what it got; it fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.got: list[Envelope] = []
        self.calls = 0
        self.failing = False

    async def __call__(self, envelope: Envelope) -> None:
        self.calls += 1
        if self.failing:
            raise RuntimeError(f"handler refused {envelope.type}")
        self.got.append(envelope)

    @property
    def types(self) -> list[str]:
        return sorted(e.type for e in self.got)


def event(type_: str, **data: object) -> Envelope:
    return Envelope.new(type_, data, producer="tests")


async def settle(bus: EventBus) -> None:
    """Give a broker time to deliver what should not arrive (negative checks)."""
    await asyncio.sleep(0.3)


async def test_routing_honours_star_and_hash_wildcards(make_bus: BusFactory) -> None:
    bus = make_bus()
    star, hash_, exact = Recorder(), Recorder(), Recorder()
    bus.subscribe("star", ["order.*"], star)
    bus.subscribe("hash", ["payment.#"], hash_)
    bus.subscribe("exact", ["product.created"], exact)
    await bus.start()
    for t in [
        "order.created",
        "order.status.changed",
        "payment",
        "payment.refund.issued",
        "product.created",
        "product.updated",
        "orders.created",
    ]:
        await bus.publish(event(t))

    async def delivered() -> None:
        assert star.types == ["order.created"]
        assert hash_.types == ["payment", "payment.refund.issued"]
        assert exact.types == ["product.created"]

    await eventually(delivered, timeout=5)
    await settle(bus)
    await delivered()


async def test_each_service_queue_gets_its_own_copy(make_bus: BusFactory) -> None:
    bus = make_bus()
    cart, realtime = Recorder(), Recorder()
    bus.subscribe("cart", ["product.*"], cart)
    bus.subscribe("realtime", ["product.*", "order.*"], realtime)
    await bus.start()
    sent = event("product.updated", product_id="p1")
    await bus.publish(sent)
    await bus.publish(event("order.created"))

    async def delivered() -> None:
        assert [e.id for e in cart.got] == [sent.id]
        assert sorted(realtime.types) == ["order.created", "product.updated"]

    await eventually(delivered, timeout=5)
    await settle(bus)
    await delivered()
    assert cart.got[0] == sent


async def test_failing_handler_is_retried_then_dead_lettered_with_message_intact(
    make_bus: BusFactory,
) -> None:
    bus = make_bus()
    handler = Recorder()
    handler.failing = True
    bus.subscribe("orders", ["payment.*"], handler)
    await bus.start()
    sent = event("payment.succeeded", amount=1250, currency="EUR")
    await bus.publish(sent)

    async def dead() -> None:
        assert len(await bus.dead_letters("orders")) == 1

    await eventually(dead, timeout=10)
    [letter] = await bus.dead_letters("orders")
    assert handler.calls == MAX_ATTEMPTS
    assert letter.body == sent.to_bytes()
    assert Envelope.from_bytes(letter.body) == sent
    assert letter.attempts == MAX_ATTEMPTS
    assert letter.message_id == str(sent.id)
    assert letter.routing_key == "payment.succeeded"
    assert "RuntimeError" in letter.error and "handler refused payment.succeeded" in letter.error
    await settle(bus)
    assert handler.calls == MAX_ATTEMPTS


async def test_handler_that_recovers_on_a_retry_handles_the_event_once(make_bus: BusFactory) -> None:
    bus = make_bus()
    calls = 0
    got: list[Envelope] = []

    async def flaky(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database blinked")
        got.append(envelope)

    bus.subscribe("orders", ["payment.*"], flaky)
    await bus.start()
    sent = event("payment.failed")
    await bus.publish(sent)

    async def handled() -> None:
        assert got == [sent]

    await eventually(handled, timeout=5)
    await settle(bus)
    assert calls == 2
    assert await bus.dead_letters("orders") == []


async def test_event_waits_out_a_database_outage_longer_than_its_retries(make_bus: BusFactory) -> None:
    """An outage is not the event's fault: it spends no attempt and never reaches the dead-letter queue."""
    down = sqlalchemy.ext.asyncio.create_async_engine(
        f"postgresql+asyncpg://shop@127.0.0.1:{free_port()}/shop", pool_pre_ping=False
    )
    outage_calls = MAX_ATTEMPTS + 3
    calls = 0
    got: list[Envelope] = []

    async def needs_the_database(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls <= outage_calls:
            async with down.connect():  # nothing listens there: a real "connection refused"
                pass
        got.append(envelope)

    bus = make_bus()
    bus.subscribe("orders", ["payment.*"], needs_the_database)
    await bus.start()
    sent = event("payment.succeeded", amount=990)
    await bus.publish(sent)

    async def handled() -> None:
        assert got == [sent]

    await eventually(handled, timeout=20)
    await down.dispose()
    assert calls == outage_calls + 1
    assert await bus.dead_letters("orders") == []


async def test_poison_message_is_dead_lettered_without_stalling_the_queue(make_bus: BusFactory) -> None:
    bus = make_bus()
    handler = Recorder()
    bus.subscribe("cart", ["product.*"], handler)
    await bus.start()
    await bus.publish_raw("product.updated", b"{not json at all", message_id="poison-1")
    good = event("product.updated", product_id="p2")
    await bus.publish(good)

    async def handled() -> None:
        assert [e.id for e in handler.got] == [good.id]
        assert len(await bus.dead_letters("cart")) == 1

    await eventually(handled, timeout=5)
    [letter] = await bus.dead_letters("cart")
    assert letter.body == b"{not json at all"
    assert letter.message_id == "poison-1"
    assert letter.attempts == 1
    assert "not a valid event envelope" in letter.error
    assert handler.calls == 1


async def test_replay_from_the_dead_letter_queue_delivers_again(make_bus: BusFactory) -> None:
    bus = make_bus()
    handler = Recorder()
    handler.failing = True
    bus.subscribe("payments", ["order.*"], handler)
    await bus.start()
    first, second = event("order.created", n=1), event("order.created", n=2)
    await bus.publish(first)
    await bus.publish(second)

    async def both_dead() -> None:
        assert len(await bus.dead_letters("payments")) == 2

    await eventually(both_dead, timeout=10)
    handler.failing = False
    assert await bus.replay("payments", [str(second.id)]) == 1

    async def second_handled() -> None:
        assert [e.id for e in handler.got] == [second.id]

    await eventually(second_handled, timeout=5)
    assert [d.message_id for d in await bus.dead_letters("payments")] == [str(first.id)]
    assert await bus.replay("payments") == 1

    async def all_handled() -> None:
        assert sorted(str(e.id) for e in handler.got) == sorted([str(first.id), str(second.id)])

    await eventually(all_handled, timeout=5)
    assert await bus.dead_letters("payments") == []
    await settle(bus)
    assert Counter(e.id for e in handler.got) == Counter({first.id: 1, second.id: 1})


async def test_closing_ends_even_when_a_handler_swallowed_its_cancellation(make_bus: BusFactory) -> None:
    """On Python 3.11 asyncio.wait_for and timeout can swallow a cancellation; shutting down must still end."""
    bus = make_bus()
    started = asyncio.Event()

    async def stubborn(envelope: Envelope) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass  # as a wait_for racing its own timeout does

    bus.subscribe("orders", ["payment.*"], stubborn)
    await bus.start()
    await bus.publish(event("payment.failed"))
    async with asyncio.timeout(10):
        await started.wait()
    async with asyncio.timeout(10):  # was: the worker waited for its next message, and close() forever
        await bus.close()


async def test_stopping_a_loop_around_wait_for_ends_even_when_one_cancel_is_swallowed() -> None:
    """The outbox relay's shape: wait_for in a loop, here made to swallow each first cancel."""
    swallowed = 0

    async def relay_like() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # as a wait_for racing its own timeout does on Python 3.11

    task = asyncio.create_task(relay_like())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await cancel_and_wait([task], again_after=0.1)
    assert task.cancelled() and swallowed == 1
