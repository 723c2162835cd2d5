"""Fixtures: the cart app on the real PostgreSQL/RabbitMQ, a stand-in catalog over HTTP, event helpers."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from libs.common.events import Envelope
from libs.common.testing import Infra, TestKeys, eventually, running_app, serve_app, settings_for
from services.cart.app import create_app
from services.cart.context import CartContext
from services.cart.models import Product
from services.cart.settings import CartSettings


def default_variant(data: dict[str, Any]) -> dict[str, Any]:
    """A product's one variant as catalog shows it; its id follows from the product's, as catalog's stays put."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"variant:{data['id']}")),
        "sku": data["sku"],
        "title": "Default",
        "options": {},
        "price": data["price"],
        "compare_at_price": data["compare_at_price"],
        "stock": data["stock"],
        "is_active": True,
        "image_id": None,
        "position": 0,
    }


def product(**overrides: Any) -> dict[str, Any]:
    """A product in catalog's wire shape (version 1, active, in stock), with one default variant
    unless ``variants`` is given."""
    now = datetime.now(UTC).isoformat()
    pid = str(uuid.uuid4())
    data: dict[str, Any] = {
        "id": pid,
        "name": f"Lamp {pid[:6]}",
        "slug": f"lamp-{pid[:6]}",
        "description": "",
        "price": 1999,
        "compare_at_price": None,
        "currency": "EUR",
        "sku": f"SKU-{pid[:8]}",
        "category_id": str(uuid.uuid4()),
        "images": [f"https://img.example.com/{pid}.jpg"],
        "stock": 10,
        "attributes": {},
        "is_active": True,
        "deleted": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    data.update(overrides)
    data.setdefault("options", [])
    data.setdefault("variants", [default_variant(data)])
    return data


def changed(p: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``p`` with ``fields`` changed as catalog shows it: a product's one default variant follows its price and stock."""
    data = {**p, **fields}
    if [v["title"] for v in p.get("variants", [])] == ["Default"]:
        data["variants"] = [{**default_variant(data), "stock": data["stock"]}]
    return data


@dataclass
class FakeCatalog:
    """Stand-in for catalog's public GET /products/{id}: serves what tests put in, counts calls."""

    products: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    broken: set[str] = field(default_factory=set)
    url: str = ""

    def add(self, **overrides: Any) -> dict[str, Any]:
        p = product(**overrides)
        self.products[p["id"]] = p
        return p

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/products/{key}")
        async def get_product(key: str) -> JSONResponse:
            self.calls[key] += 1
            if key in self.broken:
                return JSONResponse({"status": 500, "title": "Internal server error", "detail": "boom"}, 500)
            if key not in self.products:
                return JSONResponse(
                    {"status": 404, "title": "Not found", "detail": "no such product"},
                    404,
                    media_type="application/problem+json",
                )
            return JSONResponse(self.products[key])

        return app


@pytest_asyncio.fixture(scope="session")
async def catalog() -> AsyncIterator[FakeCatalog]:
    fake = FakeCatalog()
    async with serve_app(fake.app()) as url:
        fake.url = url
        yield fake


@pytest_asyncio.fixture(scope="session")
async def cart_app(
    infra: Infra, keys: TestKeys, catalog: FakeCatalog
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    settings = settings_for(CartSettings, infra, keys, catalog_url=catalog.url)
    app = create_app(settings)
    async with running_app(app) as client:
        yield app, client


@dataclass
class Shop:
    """The running cart service as a test drives it: HTTP, the real bus, its database."""

    client: httpx.AsyncClient
    ctx: CartContext
    catalog: FakeCatalog
    keys: TestKeys

    def user(self) -> tuple[uuid.UUID, dict[str, str]]:
        uid = uuid.uuid4()
        return uid, self.keys.bearer(user_id=uid)

    @property
    def internal(self) -> dict[str, str]:
        return {"X-Internal-Token": self.ctx.settings.internal_api_token.get_secret_value()}

    async def publish(
        self, type_: str, data: dict[str, Any], *, envelope: Envelope | None = None
    ) -> Envelope:
        """Publish through the app's real RabbitMQ bus and wait until cart has handled it."""
        env = envelope or Envelope.new(type_, data, producer="tests")
        await self.ctx.bus.publish(env)
        await self.wait_processed(env.id)
        return env

    async def wait_processed(self, event_id: uuid.UUID) -> None:
        assert self.ctx.db is not None

        async def handled() -> None:
            async with self.ctx.db.session() as s:  # type: ignore[union-attr]
                row = await s.scalar(
                    sa.text("SELECT 1 FROM processed_events WHERE event_id = :e"), {"e": event_id}
                )
            assert row == 1, f"event {event_id} not handled yet"

        await eventually(handled, timeout=10)

    async def known(self, **overrides: Any) -> dict[str, Any]:
        """A product the read-model learnt from a product.created event."""
        p = product(**overrides)
        await self.publish("product.created", p)
        return p

    async def read_model(self, product_id: str) -> Product | None:
        assert self.ctx.db is not None
        async with self.ctx.db.session() as s:
            return await s.get(Product, uuid.UUID(product_id))

    async def add(self, headers: dict[str, str], product_id: str, quantity: int = 1) -> httpx.Response:
        return await self.client.post(
            "/cart", json={"product_id": product_id, "quantity": quantity}, headers=headers
        )

    async def cart(self, headers: dict[str, str]) -> dict[str, Any]:
        resp = await self.client.get("/cart", headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest_asyncio.fixture
async def shop(cart_app: tuple[FastAPI, httpx.AsyncClient], catalog: FakeCatalog, keys: TestKeys) -> Shop:
    app, client = cart_app
    return Shop(client=client, ctx=app.state.ctx, catalog=catalog, keys=keys)
