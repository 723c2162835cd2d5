"""The RabbitMQ event bus (aio-pika).

Topology: a durable topic exchange; per consuming service a durable queue
``<service>.events``, delay queues ``<service>.events.retry.<ms>ms`` whose TTL
dead-letters a message back to the service queue (back-off without blocking the
queue), and ``<service>.events.dlq`` holding what failed ``max_attempts`` times with
the reason in its headers; a failure caused by an outage spends no attempt. Every known consumer queue is declared at start by every
part (``topology``), so an event published before its consumer first started is
queued rather than dropped as unroutable.

A broker outage is logged once per process (``outages``: one warning, one info line when
the connection is back); aio-pika's and aiormq's own lines about it (a traceback per
reconnect attempt) are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError, ChannelPreconditionFailed

from libs.common.events.bus import DeadLetter, EventBus, Handler, PoisonMessage
from libs.common.events.topology import retry_queue
from libs.common.logging import get_logger
from libs.common.tasks import cancel_and_wait
from libs.common.tracing import trace_headers
from libs.common.unavailable import (
    RABBITMQ,
    DependencyUnavailable,
    describe,
    outages,
    quiet_library_outage_logs,
    unavailable_dependency,
)

log = get_logger(__name__)
PERSISTENT = aio_pika.DeliveryMode.PERSISTENT
# Quorum queues are replicated (Raft) and survive the loss of a broker node; classic ones live on
# one node. A single-node broker runs quorum queues too (the default; EVENT_QUEUE_TYPE=classic
# opts out, and the bus suite runs every test on both). Quorum needs RabbitMQ 3.10+ (message TTL and dead-lettering on
# quorum queues, which the retry queues need).
QueueType = Literal["quorum", "classic"]


class QueueTypeMismatch(RuntimeError):
    """A queue this bus declares exists on the broker with another type (a broker queue never changes type)."""


class AmqpBus(EventBus):
    """At-least-once delivery over RabbitMQ with publisher confirms and manual acks."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = "shop.events",
        prefetch: int = 16,
        topology: Mapping[str, Sequence[str]] | None = None,
        queue_type: QueueType = "quorum",
        queue_expires: float | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.url = url
        self.queue_type = queue_type
        self.queue_expires = queue_expires
        self.exchange_name = exchange
        self.prefetch = prefetch
        self.topology = dict(topology or {})
        self._subs: dict[str, tuple[list[str], Handler]] = {}
        self._conn: AbstractRobustConnection | None = None
        self._pub: AbstractChannel | None = None
        self._sub: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._queues: dict[str, AbstractQueue] = {}
        self._connecting: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closing = False
        quiet_library_outage_logs()

    def subscribe(self, service: str, patterns: Sequence[str], handler: Handler) -> None:
        self._subs[service] = (list(patterns), handler)
        if self._ready.is_set():
            asyncio.get_running_loop().create_task(self._consume(service))

    async def start(self) -> None:
        """Connect now if the broker answers, else keep trying in the background."""
        if self._connecting is not None:
            return
        try:
            await self._connect()
        except Exception as exc:
            outages.down(RABBITMQ, exc, where="event bus start")
            self._connecting = asyncio.create_task(self._connect_forever())
            return
        self._connecting = asyncio.create_task(asyncio.sleep(0))

    async def _connect_forever(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                return
            except Exception as exc:
                if unavailable_dependency(exc) is None:  # not the broker being away: say what it was
                    log.error("amqp_connect_failed", error=describe(exc), exc_info=exc)
                outages.down(RABBITMQ, exc, where="event bus start")
                delay = min(delay * 2, 2.0)

    async def _connect(self) -> None:
        conn = await aio_pika.connect_robust(
            self.url, timeout=5, reconnect_interval=1.0, client_properties={"connection_name": "shop"}
        )
        try:
            self._pub = await conn.channel(publisher_confirms=True)
            self._sub = await conn.channel(publisher_confirms=False)
            await self._sub.set_qos(prefetch_count=self.prefetch)
            self._exchange = await self._pub.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
            for service, patterns in self.topology.items():
                await self._declare(service, patterns)
        except Exception:
            await conn.close()
            raise
        self._conn = conn
        # after an outage the robust connection restores channels and consumers by itself;
        # this tells waiting publishers (the outbox relay) to retry now, not after their back-off
        conn.reconnect_callbacks.add(lambda *_: self._reconnected())
        conn.close_callbacks.add(self._on_close)
        # ready only once every subscription consumes: a publish right after
        # wait_connected() must find its queue bound, not be dropped as unroutable
        consuming: set[str] = set()
        while pending := [s for s in self._subs if s not in consuming]:
            for service in pending:
                await self._consume(service)
                consuming.add(service)
        self._ready.set()
        self._reconnected()

    def _reconnected(self) -> None:
        outages.up(RABBITMQ)
        self._notify_reconnected()

    def _on_close(self, _sender: object, exc: BaseException | None = None) -> None:
        if not self._closing:
            outages.down(RABBITMQ, exc or "the connection closed", where="event bus")

    async def _declare(self, service: str, patterns: Sequence[str]) -> AbstractQueue:
        assert self._pub is not None and self._exchange is not None
        name = self.queue_name(service)
        queue = await self._declare_queue(self._pub, name)
        for pattern in patterns:
            await queue.bind(self._exchange, routing_key=pattern)
        await self._declare_queue(self._pub, f"{name}.dlq")
        for delay in sorted(set(self.retry_delays)):
            await self._declare_queue(
                self._pub,
                retry_queue(name, delay),
                {
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": name,
                },
            )
        return queue

    async def _declare_queue(
        self, channel: AbstractChannel, name: str, arguments: dict[str, Any] | None = None
    ) -> AbstractQueue:
        """A durable queue of this bus's type; one left by an earlier setting is named, not silently reused."""
        args: dict[str, Any] = {"x-queue-type": self.queue_type, **(arguments or {})}
        if self.queue_expires is not None:
            args["x-expires"] = int(self.queue_expires * 1000)
        try:
            return await channel.declare_queue(name, durable=True, arguments=args)
        except ChannelPreconditionFailed as exc:
            raise QueueTypeMismatch(
                f"queue {name!r} exists with other arguments than a {self.queue_type} queue ({exc}); a queue "
                f"keeps its type: set EVENT_QUEUE_TYPE to the type it has, or drain and delete it "
                f"(python -m libs.common.events dlq ..., rabbitmqctl delete_queue) so it is declared anew"
            ) from exc

    async def _consume(self, service: str) -> None:
        assert self._sub is not None
        patterns, handler = self._subs[service]
        patterns = sorted(set(patterns) | set(self.topology.get(service, ())))
        await self._declare(service, patterns)
        queue = await self._declare_queue(self._sub, self.queue_name(service))
        self._queues[service] = queue

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(service, handler, message)

        await queue.consume(on_message, no_ack=False)

    async def _handle(self, service: str, handler: Handler, message: AbstractIncomingMessage) -> None:
        name = self.queue_name(service)
        headers = message.headers or {}
        attempt = _int_header(headers, "x-attempt", 1)
        routing_key = str(headers.get("x-routing-key") or message.routing_key or "")
        try:
            await self._dispatch(handler, message.body, service=service, headers=headers)
        except PoisonMessage as exc:
            await self._forward(message, f"{name}.dlq", attempt, routing_key, error=str(exc))
            log.warning("event_dead_lettered", queue=name, reason=str(exc))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            raise
        except Exception as exc:
            error = describe(exc)
            dependency = unavailable_dependency(exc)
            if dependency is not None:
                waits = _int_header(headers, "x-outage-waits", 0) + 1
                target = retry_queue(name, self.retry_delay(waits))
                outages.down(dependency, exc, where=f"event consumer {name}")
                await self._forward(
                    message,
                    target,
                    attempt,
                    routing_key,
                    error=error,
                    outage_waits=waits,
                    waited_for=dependency,
                )
                log.info("event_waits_for_dependency", queue=name, dependency=dependency, outage_waits=waits)
            elif attempt >= self.max_attempts:
                await self._forward(message, f"{name}.dlq", attempt, routing_key, error=error)
                log.error("event_dead_lettered", queue=name, attempts=attempt, error=error, exc_info=exc)
            else:
                target = retry_queue(name, self.retry_delay(attempt))
                await self._forward(message, target, attempt + 1, routing_key, error=error)
                log.warning("event_retry", queue=name, attempt=attempt, error=error)
        else:
            await message.ack()
            if waited_for := headers.get("x-waited-for"):
                outages.up(str(waited_for))

    async def _forward(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        attempt: int,
        routing_key: str,
        *,
        error: str,
        outage_waits: int = 0,
        waited_for: str | None = None,
    ) -> None:
        """Republish (confirmed) to a retry or dead-letter queue, then ack the original."""
        assert self._pub is not None
        try:
            await self._pub.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    delivery_mode=PERSISTENT,
                    message_id=message.message_id,
                    content_type=message.content_type,
                    headers={
                        "x-attempt": attempt,
                        "x-outage-waits": outage_waits,
                        "x-routing-key": routing_key,
                        "x-error": error[:1000],
                        "x-failed-at": datetime.now(UTC).isoformat(),
                        **({"x-waited-for": waited_for} if waited_for else {}),
                        **trace_headers(message.headers),  # a retry stays in the trace it came in
                    },
                ),
                routing_key=queue,
                timeout=10,
            )
        except Exception as exc:
            # not acked: the broker redelivers it once the connection is back
            if unavailable_dependency(exc) is None:
                log.warning("event_forward_failed", queue=queue, error=describe(exc))
            else:
                outages.down(RABBITMQ, exc, where="event bus")
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        await message.ack()

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if self._exchange is None or self._conn is None or self._conn.is_closed:
            raise DependencyUnavailable(RABBITMQ, "not connected to RabbitMQ")
        try:
            await self._exchange.publish(
                aio_pika.Message(
                    body,
                    delivery_mode=PERSISTENT,
                    content_type="application/json",
                    message_id=message_id or str(uuid.uuid4()),
                    headers=dict(headers) if headers else None,
                ),
                routing_key=routing_key,
                timeout=10,
            )
        except (AMQPConnectionError, ChannelInvalidStateError, TimeoutError) as exc:
            # one error type for "not confirmed, try again later", whatever aio-pika's state
            raise DependencyUnavailable(
                RABBITMQ, f"RabbitMQ did not confirm the publish: {type(exc).__name__}"
            ) from exc

    async def ping(self) -> None:
        # a robust connection is never "closed" while it reconnects: ``connected`` says if it is up now
        if (
            self._conn is None
            or self._conn.is_closed
            or not self._conn.connected.is_set()
            or not self._ready.is_set()
        ):
            raise ConnectionError("not connected to RabbitMQ")

    async def wait_connected(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            await self._ready.wait()

    async def close(self) -> None:
        self._closing = True
        if self._connecting is not None:
            await cancel_and_wait([self._connecting])
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None
        self._exchange = None
        self._ready.clear()

    async def _drain(self, service: str) -> list[AbstractIncomingMessage]:
        assert self._pub is not None
        dlq = await self._declare_queue(self._pub, f"{self.queue_name(service)}.dlq")
        held: list[AbstractIncomingMessage] = []
        while (msg := await dlq.get(no_ack=False, fail=False, timeout=5)) is not None:
            held.append(msg)
        return held

    async def dead_letters(self, service: str) -> list[DeadLetter]:
        await self.wait_connected(10)
        held = await self._drain(service)
        out = [_dead_letter(m) for m in held]
        for m in held:
            await m.nack(requeue=True)
        return out

    async def replay(self, service: str, message_ids: Sequence[str] | None = None) -> int:
        await self.wait_connected(10)
        assert self._pub is not None
        held = await self._drain(service)
        replayed = 0
        for m in held:
            if message_ids is None or m.message_id in message_ids:
                await self._pub.default_exchange.publish(
                    aio_pika.Message(
                        m.body,
                        delivery_mode=PERSISTENT,
                        message_id=m.message_id,
                        headers={
                            "x-attempt": 1,
                            "x-routing-key": (m.headers or {}).get("x-routing-key", ""),
                            **trace_headers(m.headers),
                        },
                    ),
                    routing_key=self.queue_name(service),
                    timeout=10,
                )
                await m.ack()
                replayed += 1
            else:
                await m.nack(requeue=True)
        return replayed


def _dead_letter(m: AbstractIncomingMessage) -> DeadLetter:
    h = m.headers or {}
    failed_at = h.get("x-failed-at")
    return DeadLetter(
        message_id=str(m.message_id or ""),
        routing_key=str(h.get("x-routing-key") or ""),
        body=m.body,
        attempts=_int_header(h, "x-attempt", 1),
        error=str(h.get("x-error", "")),
        dead_at=datetime.fromisoformat(str(failed_at)) if failed_at else datetime.now(UTC),
    )


def _int_header(headers: Mapping[str, Any], name: str, default: int) -> int:
    """A count this bus wrote into a message header (AMQP hands headers back as loosely typed values)."""
    value = headers.get(name, default)
    return int(value) if isinstance(value, (int, str, bytes)) else default
