"""Fixtures: the pricing app on the real PostgreSQL and RabbitMQ, callers of each kind, event helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import pytest_asyncio
import sqlalchemy as sa
from fastapi import FastAPI

from libs.common.events import Envelope
from libs.common.testing import Infra, TestKeys, eventually, running_app, settings_for
from services.pricing.app import create_app
from services.pricing.context import PricingContext
from services.pricing.settings import PricingSettings

ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "Unter den Linden 1",
    "line2": None,
    "city": "Berlin",
    "region": "BE",
    "postal_code": "10117",
    "country": "DE",
    "phone": None,
}


@dataclass
class BusTap:
    """Every pricing event on this run's exchange, read from a queue of our own."""

    events: list[Envelope] = field(default_factory=list)

    def of(self, type_: str, **data: Any) -> list[Envelope]:
        return [
            e
            for e in self.events
            if e.type == type_ and all(str(e.data.get(k)) == str(v) for k, v in data.items())
        ]


@pytest_asyncio.fixture(scope="session")
async def pricing_app(infra: Infra, keys: TestKeys) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings_for(PricingSettings, infra, keys, default_currency="EUR")
    app = create_app(settings)
    async with running_app(app) as client:
        yield app, client


@pytest_asyncio.fixture(scope="session")
async def tap(infra: Infra, pricing_app: tuple[FastAPI, httpx.AsyncClient]) -> AsyncIterator[BusTap]:
    tap = BusTap()
    conn = await aio_pika.connect(infra.amqp_url)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(infra.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    for key in ("promotion.*", "shipping.*", "tax.*"):
        await queue.bind(exchange, routing_key=key)

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            tap.events.append(Envelope.from_bytes(message.body))

    await queue.consume(collect)
    yield tap
    await conn.close()


@dataclass
class Shop:
    """The running pricing service as a test drives it: HTTP as each kind of caller, the bus, its database."""

    client: httpx.AsyncClient
    ctx: PricingContext
    keys: TestKeys

    @property
    def admin(self) -> dict[str, str]:
        return self.keys.bearer(role="admin")

    def customer(self) -> tuple[uuid.UUID, dict[str, str]]:
        uid = uuid.uuid4()
        return uid, self.keys.bearer(user_id=uid, role="user")

    @property
    def internal(self) -> dict[str, str]:
        return {"X-Internal-Token": self.ctx.settings.internal_api_token.get_secret_value()}

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.client.post(path, json=body, headers=self.admin)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def quote(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post("/internal/quotes", json=body, headers=self.internal)

    async def publish(self, type_: str, data: dict[str, Any]) -> Envelope:
        """Publish through the app's real RabbitMQ bus, as another part's relay would, and wait until handled."""
        env = Envelope.new(type_, data, producer="tests")
        await self.ctx.bus.publish(env)
        assert self.ctx.db is not None
        db = self.ctx.db

        async def handled() -> None:
            async with db.session() as s:
                row = await s.scalar(
                    sa.text("SELECT 1 FROM processed_events WHERE event_id = :e"), {"e": env.id}
                )
            assert row == 1, f"event {env.id} not handled yet"

        await eventually(handled, timeout=10)
        return env


async def _forget_configuration(ctx: PricingContext) -> None:
    assert ctx.db is not None
    # the service's consumer and sweeper may hold row locks the TRUNCATE's table locks wait on in
    # another order; PostgreSQL then breaks the deadlock by failing one side, and if it is us we go again
    for attempt in range(5):
        try:
            async with ctx.db.session() as s, s.begin():
                await s.execute(
                    sa.text(
                        "TRUNCATE promotion_usages, promotions, order_pricings, shipping_methods, "
                        "shipping_zones, tax_rates, customer_orders CASCADE"
                    )
                )
            return
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == 4:
                raise
            await asyncio.sleep(0.1)


@pytest_asyncio.fixture
async def shop(pricing_app: tuple[FastAPI, httpx.AsyncClient], keys: TestKeys) -> AsyncIterator[Shop]:
    app, client = pricing_app
    # each test starts from a shop without zones, rates or promotions (other suites price through
    # this database too): what one configures never prices another's quote
    await _forget_configuration(app.state.ctx)
    yield Shop(client=client, ctx=app.state.ctx, keys=keys)
    await _forget_configuration(app.state.ctx)
