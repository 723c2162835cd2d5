"""Fixtures of the shared kernel's tests: a scratch database, buses of both kinds, a test app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from libs.common.db import Database, create_database, drop_database, new_metadata
from libs.common.events import EventBus, InMemoryBus, add_event_tables
from libs.common.events.amqp import AmqpBus
from libs.common.events.topology import declared_queues
from libs.common.testing import Infra
from libs.common.testing.infra import QUEUE_EXPIRES, delete_amqp

RETRY_DELAYS = [0.05, 0.1]
MAX_ATTEMPTS = 3

metadata = new_metadata()
add_event_tables(metadata)
effects = sa.Table(
    "effects",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Text, nullable=False),
)


@pytest_asyncio.fixture(scope="session")
async def common_db(infra: Infra) -> AsyncIterator[Database]:
    """This run's scratch database with an outbox, an inbox and an ``effects`` table."""
    url = f"{infra.pg_dsn.rstrip('/')}/{infra.db_prefix}common"
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://"), pool_size=5)
    await create_database(db.url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.dispose()
    await drop_database(db.url)


@pytest_asyncio.fixture
async def clean_db(common_db: Database) -> Database:
    """The scratch database with empty tables, so each test counts only its own rows."""
    async with common_db.engine.begin() as conn:
        await conn.execute(sa.text("TRUNCATE outbox, processed_events, effects"))
    return common_db


@dataclass
class AmqpNames:
    """An exchange and queue prefix of one test; its queues are deleted when it ends."""

    url: str
    exchange: str
    queue_prefix: str
    services: set[str] = field(default_factory=set)

    def bus(self, url: str | None = None, **kw: Any) -> AmqpBus:
        kw.setdefault("retry_delays", RETRY_DELAYS)
        kw.setdefault("max_attempts", MAX_ATTEMPTS)
        kw.setdefault("topology", {})
        kw.setdefault("queue_expires", QUEUE_EXPIRES)
        self.services.update(kw["topology"])
        return _TrackedAmqpBus(
            self, url or self.url, exchange=self.exchange, queue_prefix=self.queue_prefix, **kw
        )

    async def cleanup(self) -> None:
        queues = [
            q
            for service in self.services
            for q in declared_queues(f"{self.queue_prefix}{service}.events", RETRY_DELAYS)
        ]
        await delete_amqp(self.url, queues, self.exchange)


class _TrackedAmqpBus(AmqpBus):
    """Remembers the services it declared queues for, so the test can delete them."""

    def __init__(self, names: AmqpNames, url: str, **kw: Any) -> None:
        super().__init__(url, **kw)
        self._names = names

    def subscribe(self, service: str, patterns: Sequence[str], handler: Any) -> None:
        self._names.services.add(service)
        super().subscribe(service, patterns, handler)


@pytest_asyncio.fixture
async def amqp(infra: Infra) -> AsyncIterator[AmqpNames]:
    """Names of this test only on the real RabbitMQ, removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    names = AmqpNames(infra.amqp_url, f"{infra.exchange}.{suffix}", f"{infra.queue_prefix}{suffix}.")
    yield names
    await names.cleanup()


BusFactory = Callable[..., EventBus]


@pytest_asyncio.fixture(params=["memory", "amqp", "amqp-classic"])
async def make_bus(request: pytest.FixtureRequest, amqp: AmqpNames) -> AsyncIterator[BusFactory]:
    """Builds buses of one kind (each test runs once per kind: in-process, RabbitMQ with quorum
    queues, the default, and with classic ones); started buses are closed after."""
    made: list[EventBus] = []

    def factory(**kw: Any) -> EventBus:
        bus: EventBus
        if request.param == "memory":
            kw.pop("topology", None)
            bus = InMemoryBus(
                retry_delays=kw.pop("retry_delays", RETRY_DELAYS),
                max_attempts=kw.pop("max_attempts", MAX_ATTEMPTS),
                **kw,
            )
        else:
            bus = amqp.bus(queue_type="classic" if request.param == "amqp-classic" else "quorum", **kw)
        made.append(bus)
        return bus

    yield factory
    for bus in made:
        await bus.close()
