"""Fixtures of the orders tests: the orders app on real PostgreSQL + RabbitMQ, stand-ins of
catalog and cart that implement exactly their internal contracts, and the real pricing service
on loopback (its money rules are what an order's total is)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aio_pika
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from orders_standins import ADDRESS, TOKEN, CartStandIn, CatalogStandIn

from libs.common.events import Envelope
from libs.common.testing import Infra, TestKeys, running_app, serve_app, settings_for
from services.orders.app import create_app
from services.orders.settings import OrdersSettings
from services.pricing.app import create_app as create_pricing_app
from services.pricing.settings import PricingSettings


@pytest_asyncio.fixture(scope="session")
async def catalog() -> AsyncIterator[tuple[CatalogStandIn, str]]:
    standin = CatalogStandIn()
    async with serve_app(standin.app()) as url:
        yield standin, url


@pytest_asyncio.fixture(scope="session")
async def cart() -> AsyncIterator[tuple[CartStandIn, str]]:
    standin = CartStandIn()
    async with serve_app(standin.app()) as url:
        yield standin, url


@pytest_asyncio.fixture(scope="session")
async def pricing(infra: Infra, keys: TestKeys) -> AsyncIterator[str]:
    """The real pricing service; a shop without zones, rates or promotions charges the lines alone.

    Its own database and queue: what other modules configure in pricing (a zone that does not
    ship to these tests' address) must not reach the orders placed here, nor its events theirs.
    """
    settings = settings_for(
        PricingSettings,
        infra,
        keys,
        internal_api_token=TOKEN,
        default_currency="EUR",
        db_prefix=f"{infra.db_prefix}orders_",
        events_queue_prefix=f"{infra.queue_prefix}orders.",
    )
    async with serve_app(create_pricing_app(settings)) as url:
        yield url


@pytest.fixture(scope="session")
def make_settings(
    infra: Infra,
    keys: TestKeys,
    catalog: tuple[CatalogStandIn, str],
    cart: tuple[CartStandIn, str],
    pricing: str,
) -> Callable[..., OrdersSettings]:
    def make(**overrides: Any) -> OrdersSettings:
        values: dict[str, Any] = {
            "catalog_url": catalog[1],
            "cart_url": cart[1],
            "pricing_url": pricing,
            "internal_api_token": TOKEN,
            "catalog_timeout": 1.0,
            "order_sweep_interval": 0.2,
        }
        values.update(overrides)
        return settings_for(OrdersSettings, infra, keys, **values)

    return make


@pytest.fixture(scope="session")
def start_orders(
    make_settings: Callable[..., OrdersSettings],
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Start another orders instance (same database and queue) with other settings."""
    return lambda **overrides: running_app(create_app(make_settings(**overrides)))


@pytest_asyncio.fixture(scope="session")
async def orders_app(
    make_settings: Callable[..., OrdersSettings],
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings())
    async with running_app(app) as client:
        yield app, client


@pytest.fixture
def client(orders_app: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return orders_app[1]


@pytest.fixture
def publish(orders_app: tuple[FastAPI, httpx.AsyncClient]) -> Callable[[Envelope], Any]:
    """Publish an event on the real bus (RabbitMQ), as another service's relay would."""
    return orders_app[0].state.ctx.bus.publish


class BusTap:
    """Every order.* and return.* event on this run's exchange, read from a queue of our own."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def of(self, order_id: str, type_: str | None = None) -> list[Envelope]:
        return [
            e
            for e in self.events
            if str(e.data.get("order_id")) == order_id and (type_ is None or e.type == type_)
        ]


@pytest_asyncio.fixture(scope="session")
async def bus(infra: Infra, orders_app: tuple[FastAPI, httpx.AsyncClient]) -> AsyncIterator[BusTap]:
    tap = BusTap()
    conn = await aio_pika.connect(infra.amqp_url)
    channel = await conn.channel()
    exchange = await channel.declare_exchange(infra.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, routing_key="order.#")
    await queue.bind(exchange, routing_key="return.#")

    async def collect(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            tap.events.append(Envelope.from_bytes(message.body))

    await queue.consume(collect)
    yield tap
    await conn.close()


@pytest.fixture
def user() -> uuid.UUID:
    return uuid.uuid4()


@pytest.fixture
def as_user(keys: TestKeys, user: uuid.UUID) -> dict[str, str]:
    return keys.bearer(user_id=user, role="user")


@pytest.fixture
def as_admin(keys: TestKeys) -> dict[str, str]:
    return keys.bearer(role="admin")


@pytest.fixture
def place(client: httpx.AsyncClient, catalog: tuple[CatalogStandIn, str]) -> Callable[..., Any]:
    """Place an order of one fresh product for the given caller; returns the order."""

    async def do(headers: dict[str, str], *, quantity: int = 1, price: int = 1250) -> dict[str, Any]:
        pid = catalog[0].add_product(price=price, stock=10)
        resp = await client.post(
            "/orders",
            headers=headers,
            json={"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": quantity}]},
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    return do
