"""AmqpBus across broker outages (a TCP proxy is cut; the machine's broker keeps running),
and the in-process bus's idle() helper."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import pytest

from libs.common.events import Envelope, InMemoryBus
from libs.common.events.amqp import AmqpBus, QueueTypeMismatch
from libs.common.testing import eventually
from libs.common.testing.tcp_proxy import tcp_proxy

if TYPE_CHECKING:
    from common_testkit import AmqpNames


def event(type_: str, **data: object) -> Envelope:
    return Envelope.new(type_, data, producer="tests")


async def test_consumer_resumes_after_the_connection_is_cut(amqp: AmqpNames) -> None:
    got: list[str] = []

    async def handler(envelope: Envelope) -> None:
        got.append(str(envelope.id))

    publisher = amqp.bus(topology={"cart": ["product.*"]})
    await publisher.start()
    async with tcp_proxy(amqp.url) as proxy:
        consumer = amqp.bus(proxy.url(amqp.url))
        consumer.subscribe("cart", ["product.*"], handler)
        await consumer.start()
        try:
            before = event("product.created")
            await publisher.publish(before)
            await eventually(lambda: _has(got, [before]), timeout=5)

            await proxy.cut()
            during = [event("product.updated", i=i) for i in range(5)]
            for e in during:
                await publisher.publish(e)
            await asyncio.sleep(0.5)
            assert got == [str(before.id)]
            with pytest.raises(ConnectionError):
                await consumer.publish(event("product.deleted"))

            await proxy.restore()
            await eventually(lambda: _has(got, [before, *during]), timeout=15)
            after = event("product.deleted")
            await _publish_when_back(consumer, after)  # its own publishes work again too
            await eventually(lambda: _has(got, [before, *during, after]), timeout=5)
            assert len(got) == len(set(got)) == 7
            await consumer.ping()
        finally:
            await consumer.close()
            await publisher.close()


async def _publish_when_back(bus: AmqpBus, envelope: Envelope) -> None:
    """Publish as the outbox relay does: a refusal while the client restores its channel is retried."""

    async def attempt() -> None:
        try:
            await bus.publish(envelope)
        except ConnectionError as exc:
            raise AssertionError(f"not yet: {exc}") from exc

    await eventually(attempt, timeout=10, interval=0.2)


async def _has(got: list[str], events: list[Envelope]) -> None:
    assert {str(e.id) for e in events} <= set(got), f"{len(got)} of {len(events)}"


async def test_bus_started_while_the_broker_is_down_connects_and_consumes_when_it_is_up(
    amqp: AmqpNames,
) -> None:
    got: list[Envelope] = []

    async def handler(envelope: Envelope) -> None:
        got.append(envelope)

    async with tcp_proxy(amqp.url) as proxy:
        await proxy.cut()
        bus = amqp.bus(proxy.url(amqp.url))
        bus.subscribe("orders", ["payment.*"], handler)
        t0 = time.monotonic()
        await bus.start()  # must not raise nor block the service's start-up
        assert time.monotonic() - t0 < 2
        try:
            with pytest.raises(ConnectionError):
                await bus.ping()
            await asyncio.sleep(0.6)
            await proxy.restore()
            await bus.wait_connected(15)
            await bus.ping()
            sent = event("payment.succeeded")
            await bus.publish(sent)
            await eventually(lambda: _has([str(e.id) for e in got], [sent]), timeout=5)
        finally:
            await bus.close()


async def test_message_in_flight_when_the_connection_drops_is_delivered_again(amqp: AmqpNames) -> None:
    started: list[str] = []
    finished: list[str] = []

    async def slow(envelope: Envelope) -> None:
        started.append(str(envelope.id))
        await asyncio.sleep(0.3)
        finished.append(str(envelope.id))

    async with tcp_proxy(amqp.url) as proxy:
        bus = amqp.bus(proxy.url(amqp.url))
        bus.subscribe("payments", ["order.*"], slow)
        await bus.start()
        try:
            sent = event("order.created")
            await bus.publish(sent)

            async def handling() -> None:
                assert started == [str(sent.id)]

            await eventually(handling, timeout=5)
            await proxy.cut()  # this delivery can no longer be acked: the broker keeps it
            await asyncio.sleep(0.5)
            await proxy.restore()

            async def handled_after_the_outage() -> None:
                assert started.count(str(sent.id)) == 2
                assert str(sent.id) in finished

            await eventually(handled_after_the_outage, timeout=10)
            assert await bus.dead_letters("payments") == []
        finally:
            await bus.close()


async def test_in_memory_idle_waits_for_retries_to_finish() -> None:
    bus = InMemoryBus(retry_delays=[0.1], max_attempts=3)
    calls = 0

    async def flaky(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("not yet")

    bus.subscribe("cart", ["#"], flaky)
    await bus.start()
    try:
        await bus.publish(event("order.created"))
        await bus.idle(timeout=5)
        assert calls == 3
        assert await bus.dead_letters("cart") == []
    finally:
        await bus.close()


async def test_in_memory_idle_says_so_when_the_bus_cannot_make_progress() -> None:
    bus = InMemoryBus(retry_delays=[5.0], max_attempts=3)

    async def failing(envelope: Envelope) -> None:
        raise RuntimeError("down")

    bus.subscribe("cart", ["#"], failing)
    await bus.start()
    await bus.publish(event("order.created"))
    await asyncio.sleep(0.05)
    await bus.close()
    await bus.idle(timeout=1)  # the retry timer died with the bus: nothing is left to wait for
    await bus.publish(event("order.created"))
    with pytest.raises(RuntimeError, match="not running"):
        await bus.idle(timeout=1)


@pytest.mark.parametrize("queue_type", ["quorum", "classic"])
async def test_every_queue_of_a_consumer_has_the_configured_type(amqp: AmqpNames, queue_type: str) -> None:
    async def handler(envelope: Envelope) -> None:
        pass

    bus = amqp.bus(queue_type=queue_type, topology={"cart": ["product.*"]})
    bus.subscribe("cart", ["product.*"], handler)
    await bus.start()
    try:
        await bus.wait_connected(10)
        types = _queue_types(amqp.url)
        ours = {
            name: kind for name, kind in types.items() if name.startswith(f"{amqp.queue_prefix}cart.events")
        }
        assert len(ours) == 2 + len(set(bus.retry_delays)), ours  # the queue, its DLQ, one per retry delay
        assert set(ours.values()) == {queue_type}
    finally:
        await bus.close()


async def test_a_queue_left_with_another_type_stops_the_bus_with_a_message_naming_it(amqp: AmqpNames) -> None:
    classic = amqp.bus(queue_type="classic", topology={"cart": ["product.*"]})
    await classic.start()
    await classic.close()
    quorum = amqp.bus(queue_type="quorum", topology={"cart": ["product.*"]})
    with pytest.raises(QueueTypeMismatch, match=r"cart\.events.*EVENT_QUEUE_TYPE"):
        await quorum._connect()


async def test_queues_left_unused_past_their_expiry_are_deleted_by_the_broker(amqp: AmqpNames) -> None:
    """What keeps a killed test run from leaving durable quorum queues for every broker start."""
    bus = amqp.bus(queue_expires=1.0, topology={"cart": ["product.*"]})
    bus.subscribe("cart", ["product.*"], _ignore)
    await bus.start()
    await bus.wait_connected(10)
    mine = f"{amqp.queue_prefix}cart.events"
    assert any(name.startswith(mine) for name in _queue_types(amqp.url))
    await bus.close()

    async def gone() -> None:
        assert not [name for name in _queue_types(amqp.url) if name.startswith(mine)]

    await eventually(gone, timeout=20, interval=0.5)


async def _ignore(envelope: Envelope) -> None:
    pass


def _queue_types(url: str) -> dict[str, str]:
    """name -> type of every queue of the URL's vhost, as the broker reports them."""
    vhost = unquote(urlsplit(url).path.lstrip("/")) or "/"
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "type", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return dict(line.split("\t")[:2] for line in out.splitlines() if "\t" in line)
