"""The event bus contract and its in-process implementation.

Both implementations share one semantics, so the embedded mode behaves like the
full stack: a topic exchange (``*`` one word, ``#`` zero or more), one queue per
consuming service that gets its own copy, at-least-once delivery, an ack only after
the handler returned, retries with back-off, and a dead-letter queue after
``max_attempts`` (poison messages go there at once). A failure that says a
dependency is down (database, Redis, a peer service) spends no attempt: the event
waits, retried on the back-off schedule, for as long as the outage lasts, since
nothing is wrong with the event itself. The outage is logged once per process (``outages``)
and each wait as an info line; a bug's traceback is logged when its event is dead-lettered.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from libs.common import tracing
from libs.common.events.envelope import Envelope
from libs.common.logging import correlation_id_var, get_logger, request_id_var
from libs.common.tasks import cancel_and_wait
from libs.common.unavailable import describe, outages, unavailable_dependency

Handler = Callable[[Envelope], Awaitable[None]]
log = get_logger(__name__)


@dataclass
class DeadLetter:
    """A message that could not be handled, with why and how often it was tried."""

    message_id: str
    routing_key: str
    body: bytes
    attempts: int
    error: str
    dead_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@functools.lru_cache(maxsize=4096)
def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    return _match(tuple(pattern.split(".")), tuple(key.split(".")))


def _match(p: tuple[str, ...], k: tuple[str, ...]) -> bool:
    if not p:
        return not k
    head, rest = p[0], p[1:]
    if head == "#":
        return any(_match(rest, k[i:]) for i in range(len(k) + 1))
    if not k:
        return False
    return (head == "*" or head == k[0]) and _match(rest, k[1:])


class EventBus(abc.ABC):
    """Publish envelopes and consume them per service queue."""

    def __init__(
        self,
        *,
        retry_delays: Sequence[float] = (1.0, 5.0, 30.0),
        max_attempts: int = 4,
        queue_prefix: str = "",
    ) -> None:
        self.retry_delays = list(retry_delays) or [1.0]
        self.max_attempts = max(1, max_attempts)
        self.queue_prefix = queue_prefix
        self._reconnect_listeners: list[Callable[[], None]] = []

    def on_reconnect(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` each time the bus (re)connects, e.g. to retry at once what failed."""
        self._reconnect_listeners.append(listener)

    def _notify_reconnected(self) -> None:
        for listener in list(self._reconnect_listeners):
            try:
                listener()
            except Exception as exc:
                log.warning("reconnect_listener_failed", error=str(exc))

    def queue_name(self, service: str) -> str:
        return f"{self.queue_prefix}{service}.events"

    def retry_delay(self, attempt: int) -> float:
        return self.retry_delays[min(attempt - 1, len(self.retry_delays) - 1)]

    @abc.abstractmethod
    def subscribe(self, service: str, patterns: Sequence[str], handler: Handler) -> None:
        """Route messages matching ``patterns`` to ``service``'s queue, handled by ``handler``."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and begin consuming; subscriptions made later start at once."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def publish(self, envelope: Envelope) -> None:
        """Publish and wait for the broker's confirm (in the current trace, when tracing)."""
        headers = tracing.current_headers() if tracing.enabled() else None
        await self.publish_raw(
            envelope.type, envelope.to_bytes(), message_id=str(envelope.id), headers=headers
        )

    @abc.abstractmethod
    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish one message; ``headers`` (W3C trace context) travel as its message headers."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the broker cannot be reached."""

    @abc.abstractmethod
    async def dead_letters(self, service: str) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def replay(self, service: str, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or the given ids) back to the service's queue."""

    async def _dispatch(
        self, handler: Handler, body: bytes, *, service: str = "", headers: Mapping[str, Any] | None = None
    ) -> Envelope:
        """Parse and handle one message; raises ``PoisonMessage`` or the handler's error.

        When tracing, the handler runs in a consumer span under the context ``headers`` carry.
        """
        try:
            envelope = Envelope.from_bytes(body)
        except Exception as exc:
            raise PoisonMessage(f"not a valid event envelope: {exc}") from exc
        rtok = request_id_var.set(envelope.correlation_id)
        ctok = correlation_id_var.set(envelope.correlation_id)
        try:
            if tracing.enabled():
                with tracing.consuming(envelope.type, headers, part=service, message_id=str(envelope.id)):
                    await handler(envelope)
            else:
                await handler(envelope)
        finally:
            request_id_var.reset(rtok)
            correlation_id_var.reset(ctok)
        return envelope


class PoisonMessage(Exception):
    """A message no retry can fix: it goes to the dead-letter queue at once."""


@dataclass
class _Message:
    routing_key: str
    body: bytes
    message_id: str
    attempt: int = 1
    outage_waits: int = 0
    waited_for: str | None = None  # the dependency it last waited for: its success shows that one is back
    headers: Mapping[str, str] | None = None  # the W3C trace context it was published with


@dataclass
class _Queue:
    name: str
    patterns: list[str]
    handler: Handler
    pending: asyncio.Queue[_Message] = field(default_factory=asyncio.Queue)
    dlq: list[DeadLetter] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    in_flight: int = 0


class InMemoryBus(EventBus):
    """The embedded mode's bus: one per process, shared by every part running in it."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._queues: dict[str, _Queue] = {}
        self._services: dict[str, str] = {}  # queue name -> the consuming part (for its spans)
        self._running = False
        self._timers: set[asyncio.TimerHandle] = set()

    def subscribe(self, service: str, patterns: Sequence[str], handler: Handler) -> None:
        name = self.queue_name(service)
        if name in self._queues:
            self._queues[name].patterns.extend(p for p in patterns if p not in self._queues[name].patterns)
            return
        q = _Queue(name=name, patterns=list(patterns), handler=handler)
        self._queues[name] = q
        self._services[name] = service
        if self._running:
            q.worker = asyncio.create_task(self._work(q))

    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        for q in self._queues.values():
            q.worker = asyncio.create_task(self._work(q))

    async def close(self) -> None:
        self._running = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        # a handler's wait_for can swallow one cancel (Python 3.11): the worker would wait for its next message
        await cancel_and_wait(q.worker for q in self._queues.values() if q.worker)

    async def publish_raw(
        self,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        mid = message_id or str(uuid.uuid4())
        for q in self._queues.values():
            if any(topic_matches(p, routing_key) for p in q.patterns):
                q.pending.put_nowait(_Message(routing_key, body, mid, headers=headers))

    async def ping(self) -> None:
        return None

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no message is queued, in flight or scheduled for retry (tests use it)."""
        async with asyncio.timeout(timeout):
            while self._timers or any(q.in_flight or not q.pending.empty() for q in self._queues.values()):
                if not self._running:
                    raise RuntimeError("messages are waiting but the bus is not running (start() it)")
                await asyncio.sleep(0.01)

    async def dead_letters(self, service: str) -> list[DeadLetter]:
        q = self._queues.get(self.queue_name(service))
        return list(q.dlq) if q else []

    async def replay(self, service: str, message_ids: Sequence[str] | None = None) -> int:
        q = self._queues.get(self.queue_name(service))
        if not q:
            return 0
        chosen = [d for d in q.dlq if message_ids is None or d.message_id in message_ids]
        for d in chosen:
            q.dlq.remove(d)
            q.pending.put_nowait(_Message(d.routing_key, d.body, d.message_id))
        return len(chosen)

    async def _work(self, q: _Queue) -> None:
        while True:
            msg = await q.pending.get()
            q.in_flight += 1
            try:
                await self._dispatch(q.handler, msg.body, service=self._services[q.name], headers=msg.headers)
            except asyncio.CancelledError:
                raise
            except PoisonMessage as exc:
                q.dlq.append(DeadLetter(msg.message_id, msg.routing_key, msg.body, msg.attempt, str(exc)))
                log.warning("event_dead_lettered", queue=q.name, reason=str(exc))
            except Exception as exc:
                self._retry_or_dead_letter(q, msg, exc)
            else:
                if msg.waited_for:
                    outages.up(msg.waited_for)
            finally:
                q.in_flight -= 1

    def _retry_or_dead_letter(self, q: _Queue, msg: _Message, exc: Exception) -> None:
        error = describe(exc)
        dependency = unavailable_dependency(exc)
        if msg.attempt >= self.max_attempts and dependency is None:
            q.dlq.append(DeadLetter(msg.message_id, msg.routing_key, msg.body, msg.attempt, error))
            log.error("event_dead_lettered", queue=q.name, attempts=msg.attempt, error=error, exc_info=exc)
            return
        waits = msg.outage_waits + 1 if dependency else 0
        # the same log lines as the AMQP bus, so an operator greps one name for either
        if dependency:
            outages.down(dependency, exc, where=f"event consumer {q.name}")
            log.info("event_waits_for_dependency", queue=q.name, dependency=dependency, outage_waits=waits)
        else:
            log.warning("event_retry", queue=q.name, attempt=msg.attempt, error=error)
        attempt = msg.attempt if dependency else msg.attempt + 1
        nxt = _Message(msg.routing_key, msg.body, msg.message_id, attempt, waits, dependency, msg.headers)
        delay = self.retry_delay(waits if dependency else msg.attempt)
        loop = asyncio.get_running_loop()

        def requeue() -> None:
            self._timers.discard(handle)
            q.pending.put_nowait(nxt)

        handle = loop.call_later(delay, requeue)
        self._timers.add(handle)
