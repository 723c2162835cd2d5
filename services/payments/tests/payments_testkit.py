"""Fixtures: the payments app against real PostgreSQL/RabbitMQ, with the stripe provider pointed at a
local Stripe stand-in, and a second app with the fake provider on the in-process bus (embedded mode)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import jwt
import pytest_asyncio
import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse
from stripe_standin import StripeStandIn, sign, webhook_event

from libs.common.events import Envelope, EventBus, InMemoryBus
from libs.common.testing import Infra, TestKeys, eventually, running_app, serve_app, settings_for
from services.payments.app import create_app
from services.payments.context import PaymentsContext
from services.payments.models import PayableOrder, Payment
from services.payments.settings import PaymentsSettings

API_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_test_standin"


@dataclass
class EventLog:
    """payment.* events as another service would receive them."""

    events: list[Envelope] = field(default_factory=list)

    def of(self, type_: str, order_id: uuid.UUID) -> list[Envelope]:
        return [e for e in self.events if e.type == type_ and e.data.get("order_id") == str(order_id)]


@dataclass
class Payments:
    """A running payments app and what a test needs to drive it."""

    app: FastAPI
    client: httpx.AsyncClient
    keys: TestKeys
    log: EventLog
    standin: StripeStandIn | None = None

    @property
    def ctx(self) -> PaymentsContext:
        return self.app.state.ctx

    @property
    def bus(self) -> EventBus:
        return self.ctx.bus

    async def place_order(self, user_id: uuid.UUID, *, total: int = 2599, currency: str = "EUR") -> uuid.UUID:
        """Publish order.created as orders would, and wait until payments has it."""
        order_id = uuid.uuid4()
        await self.bus.publish(
            Envelope.new(
                "order.created",
                {
                    "order_id": order_id,
                    "user_id": user_id,
                    "status": "pending_payment",
                    "items": [
                        {
                            "product_id": uuid.uuid4(),
                            "name": "Mug",
                            "unit_price": total,
                            "quantity": 1,
                            "line_total": total,
                        }
                    ],
                    "subtotal": total,
                    "total": total,
                    "currency": currency,
                    "created_at": datetime.now(UTC),
                },
                producer="orders",
            )
        )

        async def arrived() -> None:
            assert await self.order_status(order_id) is not None, "order.created not consumed yet"

        await eventually(arrived)
        return order_id

    def status_changed(
        self, order_id: uuid.UUID, user_id: uuid.UUID, to: str, *, from_: str = "paid", total: int = 2599
    ) -> Envelope:
        return Envelope.new(
            "order.status_changed",
            {
                "order_id": order_id,
                "user_id": user_id,
                "from": from_,
                "to": to,
                "by": "admin",
                "reason": "test",
                "total": total,
                "currency": "EUR",
                "at": datetime.now(UTC),
            },
            producer="orders",
        )

    async def order_status(self, order_id: uuid.UUID) -> str | None:
        assert self.ctx.db is not None
        async with self.ctx.db.session() as s:
            return (
                await s.execute(sa.select(PayableOrder.status).where(PayableOrder.order_id == order_id))
            ).scalar_one_or_none()

    async def payments_of(self, order_id: uuid.UUID) -> list[Payment]:
        assert self.ctx.db is not None
        async with self.ctx.db.session() as s:
            return list((await s.execute(sa.select(Payment).where(Payment.order_id == order_id))).scalars())

    async def checkout(
        self,
        user_id: uuid.UUID,
        order_id: uuid.UUID,
        payment_method: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {"order_id": str(order_id)}
        if payment_method:
            body["payment_method"] = payment_method
        return await self.client.post(
            "/payment/checkout", json=body, headers=self.keys.bearer(user_id=user_id)
        )

    async def verify(self, user_id: uuid.UUID, payment_intent_id: str) -> httpx.Response:
        return await self.client.post(
            "/payment/verify",
            json={"payment_intent_id": payment_intent_id},
            headers=self.keys.bearer(user_id=user_id),
        )

    async def webhook(
        self,
        type_: str,
        obj: dict[str, Any],
        *,
        secret: str = WEBHOOK_SECRET,
        body: str | None = None,
        signature: str | None = "sign",
    ) -> httpx.Response:
        payload = body or webhook_event(type_, obj)
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["Stripe-Signature"] = sign(payload, secret)
        elif signature is not None:
            headers["Stripe-Signature"] = signature
        return await self.client.post("/payment/webhook", content=payload, headers=headers)

    async def settle(self, seconds: float = 0.5) -> None:
        """Give late duplicates a chance to show up before asserting there are none."""
        await asyncio.sleep(seconds)


@dataclass
class OrdersStandIn:
    """The orders service as payments asks it: GET /orders/{id} answers 200 only to the order's owner."""

    owners: dict[str, uuid.UUID] = field(default_factory=dict)  # order id -> its owner
    base_url: str = ""
    asked: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/orders/{order_id}")
        async def get_order(order_id: str, request: Request) -> JSONResponse:
            self.asked.append(order_id)
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            try:
                caller = jwt.decode(token, options={"verify_signature": False})["sub"]
            except (jwt.PyJWTError, KeyError):
                caller = None
            if caller is None or str(self.owners.get(order_id)) != caller:
                return JSONResponse({"status": 404}, status_code=404, media_type="application/problem+json")
            return JSONResponse({"id": order_id, "status": "pending_payment"})

        return app


@pytest_asyncio.fixture(scope="session")
async def orders_standin() -> AsyncIterator[OrdersStandIn]:
    s = OrdersStandIn()
    async with serve_app(s.app()) as base:
        s.base_url = base
        yield s


@pytest_asyncio.fixture(scope="session")
async def standin() -> AsyncIterator[StripeStandIn]:
    s = StripeStandIn(api_key=API_KEY)
    async with serve_app(s.app) as base:
        s.base_url = base
        yield s


@pytest_asyncio.fixture(scope="session")
async def payments(
    infra: Infra, keys: TestKeys, standin: StripeStandIn, orders_standin: OrdersStandIn
) -> AsyncIterator[Payments]:
    """Payments with the stripe provider (real SDK -> stand-in) on this run's RabbitMQ."""
    settings = settings_for(
        PaymentsSettings,
        infra,
        keys,
        payment_provider="stripe",
        stripe_secret_key=API_KEY,
        orders_url=orders_standin.base_url,
        stripe_api_base=standin.base_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_publishable_key="pk_test_standin",
        stripe_max_network_retries=0,
    )
    log = EventLog()
    app = create_app(settings)
    async with running_app(app) as client:
        conn = await aio_pika.connect(infra.amqp_url, timeout=5)
        channel = await conn.channel()
        exchange = await channel.declare_exchange(infra.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="payment.*")

        async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                log.events.append(Envelope.from_bytes(message.body))

        await queue.consume(collect)
        await app.state.ctx.bus.wait_connected()
        try:
            yield Payments(app=app, client=client, keys=keys, log=log, standin=standin)
        finally:
            await conn.close()


@pytest_asyncio.fixture(scope="session")
async def fake_payments(
    infra: Infra, keys: TestKeys, orders_standin: OrdersStandIn
) -> AsyncIterator[Payments]:
    """Payments as in the embedded mode: fake provider, in-process bus, its own database."""
    settings = settings_for(
        PaymentsSettings,
        infra,
        keys,
        payment_provider="auto",
        event_bus="memory",
        orders_url=orders_standin.base_url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        PAYMENTS_DATABASE_URL=f"{infra.pg_dsn}/{infra.db_prefix}payments_fake",
    )
    assert settings.provider_name == "fake"
    bus = InMemoryBus(retry_delays=[0.1], max_attempts=3)
    log = EventLog()

    async def collect(env: Envelope) -> None:
        log.events.append(env)

    bus.subscribe("listener", ["payment.*"], collect)
    app = create_app(settings, bus=bus)
    async with running_app(app) as client:
        await bus.start()
        try:
            yield Payments(app=app, client=client, keys=keys, log=log)
        finally:
            await bus.close()
