"""Running realtime instances on loopback, Socket.IO clients that record what they hear, and
small stand-ins of catalog's and orders' admin routes.

Every event a test publishes is what its producer would publish: ``event`` fills each field
of the producer's model (libs.contracts) that the test does not name and builds the envelope
through that producer's catalogue, so realtime, which dead-letters anything else, hears it.

The stand-ins check the bearer token with libs.common.auth (``AdminUser``, the same
dependency the real services use) and the body with the owning service's own request
models (so a refusal carries exactly what the real route would say), keep their data in
memory and publish the event the real service would on this run's RabbitMQ exchange, so
a command goes the whole way: socket -> realtime -> HTTP admin route -> event -> realtime
-> every client.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import socketio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from libs import contracts
from libs.common.auth import AdminUser
from libs.common.config import CommonSettings
from libs.common.errors import Conflict, NotFound
from libs.common.events import Envelope
from libs.common.service import create_service_app
from libs.common.testing import Infra, TestKeys, eventually, serve_app, settings_for
from libs.contracts.auth import UserRegistered
from libs.contracts.catalog import CategoryPublic, ProductPublic, StockChanged
from libs.contracts.orders import OrderCreated, OrderStatusChanged
from libs.contracts.payments import PaymentEventData
from services.catalog.schemas import CategoryCreate, ProductCreate, ProductUpdate
from services.orders.schemas import StatusUpdate
from services.realtime.app import create_app
from services.realtime.settings import RealtimeSettings


@dataclass
class Ear:
    """A connected client and every notification it got."""

    sio: socketio.AsyncClient
    heard: list[tuple[str, Any]] = field(default_factory=list)

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.heard if event == name]

    async def hears(self, name: str, count: int = 1, timeout: float = 10) -> list[Any]:
        async def check() -> list[Any]:
            got = self.of(name)
            assert len(got) >= count, f"{name}: {len(got)} of {count}; heard {[e for e, _ in self.heard]}"
            return got

        return await eventually(check, timeout=timeout)


async def listen(url: str, auth: dict[str, Any] | None = None) -> Ear:
    ear = Ear(socketio.AsyncClient(reconnection=False))

    @ear.sio.on("*")
    async def record(event: str, data: Any = None) -> None:
        ear.heard.append((event, data))

    await ear.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
    return ear


async def hang_up(*ears: Ear) -> None:
    for ear in ears:
        if ear.sio.connected:
            await ear.sio.disconnect()


@contextlib.asynccontextmanager
async def realtime(
    infra: Infra, keys: TestKeys, *, queue_prefix: str | None = None, **overrides: Any
) -> AsyncIterator[tuple[str, Any]]:
    """One realtime instance on the run's real Redis and RabbitMQ; yields (url, app).

    Each gets its own queue unless told to share one: events other tests published on
    the run's exchange must not reach it. Its Redis prefix is its own too (fresh sequences).
    """
    prefix = queue_prefix or f"{infra.queue_prefix}{uuid.uuid4().hex[:6]}."
    overrides.setdefault("redis_prefix", f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:")
    overrides.setdefault("session_check_interval", 0.3)
    settings = settings_for(RealtimeSettings, infra, keys, events_queue_prefix=prefix, **overrides)
    app = create_app(settings)
    async with serve_app(app) as url:
        yield url, app


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _new_id() -> str:
    return str(uuid.uuid4())


# a plausible value for every field of each published model a test may leave out
DEFAULTS: dict[type[BaseModel], Callable[[], dict[str, Any]]] = {
    CategoryPublic: lambda: {
        "id": _new_id(),
        "name": "Lamps",
        "slug": f"lamps-{uuid.uuid4().hex[:6]}",
        "description": "",
        "image_url": None,
        "parent_id": None,
        "position": 0,
        "product_count": 0,
        "created_at": _now(),
        "updated_at": _now(),
    },
    ProductPublic: lambda: {
        "id": _new_id(),
        "name": "Lamp",
        "slug": f"lamp-{uuid.uuid4().hex[:6]}",
        "description": "",
        "price": 2500,
        "compare_at_price": None,
        "currency": "EUR",
        "sku": f"LAMP-{uuid.uuid4().hex[:6]}",
        "category_id": _new_id(),
        "images": [],
        "stock": 3,
        "attributes": {},
        "is_active": True,
        "version": 1,
        "created_at": _now(),
        "updated_at": _now(),
    },
    StockChanged: lambda: {"product_id": _new_id(), "stock": 3, "version": 1},
    OrderCreated: lambda: {
        "order_id": _new_id(),
        "user_id": _new_id(),
        "status": "pending_payment",
        "items": [],
        "subtotal": 1000,
        "total": 1000,
        "currency": "EUR",
        "created_at": _now(),
    },
    OrderStatusChanged: lambda: {
        "order_id": _new_id(),
        "user_id": _new_id(),
        "from": "pending_payment",
        "to": "paid",
        "by": "payments",
        "reason": None,
        "total": 1000,
        "currency": "EUR",
        "at": _now(),
    },
    PaymentEventData: lambda: {
        "payment_id": _new_id(),
        "order_id": _new_id(),
        "user_id": _new_id(),
        "amount": 1000,
        "currency": "EUR",
        "payment_intent_id": f"pi_{uuid.uuid4().hex[:12]}",
    },
    UserRegistered: lambda: {"user_id": _new_id(), "email": "someone@example.com", "name": "Someone"},
}


def event(type_: str, **data: Any) -> Envelope:
    """``type_`` as its producer publishes it: ``data`` over defaults for the rest of its model.

    The producer's catalogue builds it, so a field the model does not declare or a value it
    refuses fails here, in the test that wrote it, not as a dead letter in realtime.
    """
    for catalogue in contracts.catalogues():
        if (declared := catalogue.events.get(type_)) is not None:
            return catalogue.envelope(type_, {**DEFAULTS[declared.model](), **data})
    raise LookupError(f"no part declares the event {type_!r}")


async def publish(app: Any, *envelopes: Envelope) -> None:
    for env in envelopes:
        await app.state.ctx.bus.publish(env)


@dataclass
class Standins:
    """What the stand-in services hold, and their base URL."""

    url: str
    products: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, Any]]
    orders: dict[str, dict[str, Any]]
    calls: list[str]


NEXT_STATUS = {
    "pending_payment": ["paid", "cancelled"],
    "paid": ["processing", "cancelled"],
    "processing": ["shipped", "cancelled"],
    "shipped": ["delivered"],
    "delivered": [],
}


def _standin_router(state: Standins) -> APIRouter:
    router = APIRouter()

    async def emit(request: Request, type_: str, data: dict[str, Any]) -> None:
        await request.app.state.ctx.bus.publish(event(type_, **data))

    @router.post("/admin/products", status_code=201)
    async def add_product(body: ProductCreate, admin: AdminUser, request: Request) -> dict[str, Any]:
        state.calls.append("product:add")
        if any(p["sku"] == body.sku for p in state.products.values()):
            raise Conflict("A product with this SKU already exists.")
        given = body.model_dump(mode="json", exclude_none=True)
        product = {**DEFAULTS[ProductPublic](), **given, "version": 1}
        state.products[product["id"]] = product
        await emit(request, "product.created", product)
        return product

    @router.get("/products/{product_id}")
    async def public_product(product_id: str) -> dict[str, Any]:
        product = state.products.get(product_id)
        if product is None or not product.get("is_active"):
            raise NotFound("No product has this id.")
        return product

    @router.patch("/admin/products/{product_id}")
    async def update_product(
        product_id: uuid.UUID, body: ProductUpdate, admin: AdminUser, request: Request
    ) -> dict[str, Any]:
        state.calls.append("product:update")
        if str(product_id) not in state.products:
            raise NotFound("No product has this id.")
        product = state.products[str(product_id)]
        product.update(body.model_dump(mode="json", exclude_unset=True), version=product["version"] + 1)
        await emit(request, "product.updated", product)
        return product

    @router.delete("/admin/products/{product_id}", status_code=204)
    async def delete_product(product_id: str, admin: AdminUser, request: Request) -> Response:
        product = state.products.pop(product_id, None)
        if product is None:
            raise NotFound("No product has this id.")
        await emit(request, "product.deleted", {**product, "deleted": True, "deleted_at": _now()})
        return Response(status_code=204)

    @router.post("/admin/categories", status_code=201)
    async def add_category(body: CategoryCreate, admin: AdminUser, request: Request) -> dict[str, Any]:
        state.calls.append("category:add")
        category = {**DEFAULTS[CategoryPublic](), **body.model_dump(mode="json", exclude_none=True)}
        state.categories[category["id"]] = category
        await emit(request, "category.created", category)
        return category

    @router.delete("/admin/categories/{category_id}", status_code=204)
    async def delete_category(category_id: str, admin: AdminUser, request: Request) -> Response:
        if any(p.get("category_id") == category_id for p in state.products.values()):
            raise Conflict("The category still has products; move or delete them first.")
        state.categories.pop(category_id, None)
        return Response(status_code=204)

    @router.patch("/admin/orders/{order_id}/status")
    async def update_status(
        order_id: str, body: StatusUpdate, admin: AdminUser, request: Request
    ) -> dict[str, Any]:
        order = state.orders.get(order_id)
        if order is None:
            raise NotFound("No order has this id.")
        allowed = NEXT_STATUS.get(order["status"], [])
        if body.status not in allowed:
            raise Conflict(
                f"An order that is {order['status']} cannot become {body.status}.", allowed=allowed
            )
        before, order["status"] = order["status"], str(body.status)
        await emit(
            request,
            "order.status_changed",
            {
                "order_id": order_id,
                "user_id": order["user_id"],
                "from": before,
                "to": order["status"],
                "by": str(admin.user_id),
                "reason": body.reason,
            },
        )
        return order

    return router


@contextlib.asynccontextmanager
async def standins(infra: Infra, keys: TestKeys) -> AsyncIterator[Standins]:
    """Catalog's and orders' admin routes, in memory, publishing on this run's exchange."""
    state = Standins(url="", products={}, categories={}, orders={}, calls=[])
    settings = settings_for(CommonSettings, infra, keys, service_name="standin")
    app = create_service_app(
        settings=settings, title="catalog and orders stand-in", routers=[_standin_router(state)]
    )
    async with serve_app(app) as url:
        state.url = url
        yield state


@contextlib.asynccontextmanager
async def realtime_with_standins(
    infra: Infra, keys: TestKeys, **overrides: Any
) -> AsyncIterator[tuple[str, Any, Standins]]:
    async with (
        standins(infra, keys) as services,
        realtime(infra, keys, catalog_url=services.url, orders_url=services.url, **overrides) as (url, app),
    ):
        yield url, app, services
