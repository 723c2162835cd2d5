"""Transactional outbox: events are rows written in the state change's transaction.

A relay publishes pending rows with publisher confirms and marks them sent. Rows are
claimed with ``FOR UPDATE SKIP LOCKED`` so two relays (two replicas) never send the
same row at the same time; a broker outage only delays events. The relay is woken
right after a commit that wrote events, and also polls, for rows written elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from datetime import UTC, datetime, timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from libs.common import tracing
from libs.common.db import Database
from libs.common.events.bus import EventBus
from libs.common.events.envelope import Envelope
from libs.common.events.tables import outbox_t
from libs.common.logging import get_logger
from libs.common.unavailable import POSTGRESQL, RABBITMQ, dependency_probes, describe, outages

log = get_logger(__name__)
_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


async def publish_in(session: AsyncSession, envelope: Envelope) -> None:
    """Write ``envelope`` to the outbox inside the caller's open transaction (with the current
    trace context when tracing: the relay publishes it as this transaction's child)."""
    await session.execute(
        sa.insert(outbox_t).values(
            id=envelope.id,
            routing_key=envelope.type,
            payload=envelope.to_bytes().decode(),
            headers=tracing.headers_json(),
        )
    )
    sync = session.sync_session
    sync.info["outbox_pending"] = True
    if not sync.info.get("outbox_hooked"):
        # listeners stay for the session's life: removing one during dispatch is not allowed
        sync.info["outbox_hooked"] = True
        sa_event.listen(sync, "after_commit", _wake_relays)
        sa_event.listen(sync, "after_rollback", _forget_pending)


def _wake_relays(sync_session: Session) -> None:
    if sync_session.info.pop("outbox_pending", False):
        wake_relays()


def wake_relays() -> None:
    """Tell this process's relays that rows were committed (for outbox rows written in plain SQL)."""
    for relay in list(_relays):
        relay.wake()


def _forget_pending(sync_session: Session) -> None:
    sync_session.info.pop("outbox_pending", None)


class OutboxRelay:
    """Publishes a service's pending outbox rows; run it as a background task."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        batch: int = 100,
        poll_interval: float = 1.0,
        keep_sent: timedelta = timedelta(days=7),
        service: str = "",
    ) -> None:
        self.db = db
        self.service = service
        self.bus = bus
        self.batch = batch
        self.poll_interval = poll_interval
        self.keep_sent = keep_sent
        self.backlog = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        _relays.add(self)
        bus.on_reconnect(self.wake)

    def wake(self) -> None:
        """Ask for a run now; safe to call from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def run_once(self) -> int:
        """Publish up to one batch; returns how many rows were sent."""
        sent: list[int] = []
        failure: Exception | None = None
        async with self.db.session() as session, session.begin():
            rows = (
                await session.execute(
                    sa.select(
                        outbox_t.c.seq,
                        outbox_t.c.id,
                        outbox_t.c.routing_key,
                        outbox_t.c.payload,
                        outbox_t.c.headers,
                    )
                    .where(outbox_t.c.sent_at.is_(None))
                    .order_by(outbox_t.c.seq)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                try:
                    await self._publish(row.routing_key, row.payload, str(row.id), row.headers)
                except Exception as exc:
                    failure = exc
                    break
                sent.append(row.seq)
            # what was confirmed is marked (and committed) even when a later publish failed
            if sent:
                await session.execute(
                    sa.update(outbox_t).where(outbox_t.c.seq.in_(sent)).values(sent_at=datetime.now(UTC))
                )
        if failure is not None:
            raise failure
        return len(sent)

    async def _publish(self, routing_key: str, payload: str, message_id: str, headers: str | None) -> None:
        """One row, under the trace context it was written in (passed on as is when not tracing here)."""
        stored: dict[str, str] | None = orjson.loads(headers) if headers else None
        if not tracing.enabled():
            await self.bus.publish_raw(routing_key, payload.encode(), message_id=message_id, headers=stored)
            return
        with tracing.publishing(routing_key, stored, part=self.service) as sent:
            await self.bus.publish_raw(routing_key, payload.encode(), message_id=message_id, headers=sent)

    async def pending(self) -> int:
        async with self.db.session() as session:
            return int(
                (
                    await session.execute(
                        sa.select(sa.func.count()).select_from(outbox_t).where(outbox_t.c.sent_at.is_(None))
                    )
                ).scalar_one()
            )

    async def purge_sent(self) -> None:
        async with self.db.session() as session, session.begin():
            await session.execute(
                sa.delete(outbox_t).where(outbox_t.c.sent_at < datetime.now(UTC) - self.keep_sent)
            )

    async def run(self) -> None:
        """Loop until cancelled: publish, then sleep until woken or the poll interval passes."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        rounds = 0
        while True:
            self._wake.clear()
            try:
                published = 0
                while (sent := await self.run_once()) == self.batch:
                    published += sent
                published += sent
                self.backlog = await self.pending()
                # the relay polls its database whatever happens: the one place sure to see it back
                outages.up(POSTGRESQL, *((RABBITMQ,) if published else ()))
                failures = 0
                rounds += 1
                if rounds % 3600 == 0:
                    await self.purge_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                # an outage is one warning for the whole process (outages), not one per poll
                if (
                    outages.note(
                        exc, where="outbox relay", probes=dependency_probes(db=self.db, bus=self.bus)
                    )
                    is None
                ):
                    log.error("outbox_relay_failed", error=describe(exc), failures=failures, exc_info=exc)
            wait = self.poll_interval if failures == 0 else min(self.poll_interval * 2**failures, 10.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
