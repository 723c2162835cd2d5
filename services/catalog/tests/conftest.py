"""Fixtures: one real catalog server per run, admin/user tokens, builders, and an event tap."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

import aio_pika
import httpx
import pytest
import pytest_asyncio
from catalog_helpers import Builder, EventTap
from moto.server import ThreadedMotoServer

from libs.common.events import Envelope
from libs.common.events.amqp import AmqpBus
from libs.common.testing import Infra, TestKeys, serve_app, settings_for
from libs.common.testing.infra import QUEUE_EXPIRES
from libs.contracts import orders
from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings

INTERNAL_TOKEN = "catalog-test-internal-token"


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """A real server speaking the S3 API on loopback (moto's server mode), for product images."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def catalog_settings(infra: Infra, keys: TestKeys, s3_url: str) -> CatalogSettings:
    return settings_for(
        CatalogSettings,
        infra,
        keys,
        internal_api_token=INTERNAL_TOKEN,
        db_pool_size=20,
        media_s3_endpoint=s3_url,
        media_s3_bucket="shop-media",
        media_s3_access_key="test",
        media_s3_secret_key="test",
    )


@pytest_asyncio.fixture(scope="session")
async def event_tap(infra: Infra) -> AsyncIterator[EventTap]:
    tap = EventTap()
    conn = await aio_pika.connect(infra.amqp_url, timeout=5)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(infra.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    # exclusive + auto-delete: the queue disappears with this connection
    queue = await channel.declare_queue(
        f"{infra.queue_prefix}catalog-test-tap", exclusive=True, auto_delete=True
    )
    for key in ("category.*", "product.*", "variant.*", "stock.changed", "settings.*"):
        await queue.bind(exchange, routing_key=key)

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            tap.events.append(Envelope.from_bytes(message.body))

    await queue.consume(on_message)
    yield tap
    await conn.close()


@pytest_asyncio.fixture(scope="session")
async def base_url(catalog_settings: CatalogSettings, event_tap: EventTap) -> AsyncIterator[str]:
    async with serve_app(create_app(catalog_settings)) as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def admin(keys: TestKeys) -> dict[str, str]:
    return keys.bearer(role="admin")


@pytest.fixture(scope="session")
def user(keys: TestKeys) -> dict[str, str]:
    return keys.bearer(role="user")


@pytest.fixture(scope="session")
def internal() -> dict[str, str]:
    return {"X-Internal-Token": INTERNAL_TOKEN}


@pytest.fixture
def build(client: httpx.AsyncClient, admin: dict[str, str]) -> Builder:
    return Builder(client, admin)


@pytest_asyncio.fixture(scope="session")
async def orders_bus(infra: Infra) -> AsyncIterator[AmqpBus]:
    """This run's exchange as the orders service sees it: to publish its facts and read catalog's DLQ."""
    bus = AmqpBus(
        infra.amqp_url, exchange=infra.exchange, queue_prefix=infra.queue_prefix, queue_expires=QUEUE_EXPIRES
    )
    await bus.start()
    await bus.wait_connected()
    yield bus
    await bus.close()


@pytest_asyncio.fixture(scope="session")
async def publish_order_status(orders_bus: AmqpBus) -> Callable[[str, str], Awaitable[None]]:
    """Publish ``order.status_changed`` facts, built from the orders contract as the orders service does."""

    async def publish(order_id: str, to: str) -> None:
        await orders_bus.publish(
            orders.EVENTS.envelope(
                "order.status_changed",
                {
                    "order_id": order_id,
                    "user_id": uuid.uuid4(),
                    "from": "pending_payment",
                    "to": to,
                    "by": "system",
                    "reason": None,
                    "total": 0,
                    "currency": "USD",
                    "at": datetime.now(UTC),
                },
            )
        )

    return publish
