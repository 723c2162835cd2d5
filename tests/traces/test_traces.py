"""One trace for one order: the gateway, orders, catalog's reservation, the outbox relay, a
consumer and the socket push (DESIGN.md section 11).

The parts run in this process, each a real server on loopback, on the run's real PostgreSQL,
Redis and RabbitMQ, so every hop is the one production makes: HTTP between parts, the outbox
row, an AMQP message with its headers, realtime's Redis feed. An in-memory exporter collects
what the SDK would export over OTLP.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
import socketio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.common import tracing
from libs.common.testing import Infra, TestKeys, eventually, serve_app, settings_for
from libs.common.testing.apps import free_port

CLIENT_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNRECORDED_TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
UNRECORDED = f"00-{UNRECORDED_TRACE_ID:032x}-00f067aa0ba902b7-00"  # flags 00: not sampled
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}


@pytest_asyncio.fixture
async def exporter() -> AsyncIterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracing.setup("shop-test", mode="test", exporter=spans)
    try:
        yield spans
    finally:
        tracing.stop()
        spans.shutdown()  # later tests' spans (if any part traces) are dropped, not kept


@pytest_asyncio.fixture
async def shop(infra: Infra, keys: TestKeys, exporter: InMemorySpanExporter) -> AsyncIterator[dict[str, str]]:
    """Catalog, pricing, orders, realtime and the gateway in front of them; yields the gateway's and
    realtime's URLs."""
    from gateway.app import create_app as gateway_app
    from gateway.settings import GatewaySettings
    from services.catalog.app import create_app as catalog_app
    from services.catalog.settings import CatalogSettings
    from services.orders.app import create_app as orders_app
    from services.orders.settings import OrdersSettings
    from services.pricing.app import create_app as pricing_app
    from services.pricing.settings import PricingSettings
    from services.realtime.app import create_app as realtime_app
    from services.realtime.settings import RealtimeSettings

    # its own queues and Redis keys: events other tests left on the run's exchange stay out
    own = uuid.uuid4().hex[:6]
    common: dict[str, Any] = {
        "events_queue_prefix": f"{infra.queue_prefix}{own}.",
        "redis_prefix": f"{infra.redis_prefix}{own}:",
    }
    nowhere = f"http://127.0.0.1:{free_port()}"
    # pricing on a database of its own: zones other tests configure would not ship to this address
    pricing_settings = settings_for(
        PricingSettings, infra, keys, **common, default_currency="USD", db_prefix=f"{infra.db_prefix}traces_"
    )
    async with (
        serve_app(catalog_app(settings_for(CatalogSettings, infra, keys, **common))) as catalog,
        serve_app(pricing_app(pricing_settings)) as pricing,
    ):
        urls = {"catalog_url": catalog, "pricing_url": pricing, "auth_url": nowhere, "cart_url": nowhere}
        async with serve_app(
            orders_app(settings_for(OrdersSettings, infra, keys, **common, **urls))
        ) as orders:
            urls["orders_url"] = orders
            realtime_settings = settings_for(RealtimeSettings, infra, keys, **common, **urls)
            async with serve_app(realtime_app(realtime_settings)) as realtime:
                urls.update(realtime_url=realtime, payments_url=nowhere)
                gateway_settings = settings_for(GatewaySettings, infra, keys, **common, **urls)
                async with serve_app(gateway_app(gateway_settings)) as gateway:
                    yield {"gateway": gateway, "realtime": realtime, "orders": orders}


def _trace_of(spans: list[ReadableSpan], leaf: ReadableSpan) -> list[ReadableSpan]:
    """``leaf`` and its ancestors, root first."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    chain = [leaf]
    while chain[-1].parent is not None:
        parent = by_id.get(chain[-1].parent.span_id)
        assert parent is not None, f"{chain[-1].name}: its parent span was never exported"
        chain.append(parent)
    return chain[::-1]


def _part(span: ReadableSpan) -> Any:
    return (span.attributes or {}).get("shop.part")


async def test_an_order_is_one_trace_from_the_gateway_to_the_admins_socket(
    shop: dict[str, str], keys: TestKeys, exporter: InMemorySpanExporter
) -> None:
    admin = keys.bearer(role="admin")
    async with httpx.AsyncClient(base_url=shop["gateway"], timeout=20) as gw:
        category = await gw.post(
            "/admin/categories", json={"name": f"Traced {uuid.uuid4().hex[:8]}"}, headers=admin
        )
        assert category.status_code == 201, category.text
        product = await gw.post(
            "/admin/products",
            headers=admin,
            json={
                "name": f"Traced lamp {uuid.uuid4().hex[:8]}",
                "price": 4200,
                "sku": f"SKU-{uuid.uuid4().hex[:12]}",
                "category_id": category.json()["id"],
                "stock": 3,
            },
        )
        assert product.status_code == 201, product.text
        heard: list[dict[str, Any]] = []
        ear = socketio.AsyncClient(reconnection=False)
        ear.on("order:created", heard.append)
        await ear.connect(
            shop["realtime"],
            auth={"token": keys.mint(role="admin")},
            transports=["websocket"],
            wait_timeout=10,
        )
        try:
            placed = await gw.post(
                "/orders",
                # a client's own trace context is not continued: the gateway, the edge, starts the trace
                headers={**keys.bearer(user_id=uuid.uuid4(), role="user"), "traceparent": CLIENT_TRACEPARENT},
                json={
                    "shipping_address": ADDRESS,
                    "items": [{"product_id": product.json()["id"], "quantity": 2}],
                },
            )
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["id"]

            async def told() -> None:
                assert [n for n in heard if n["data"]["order_id"] == order_id], heard

            await eventually(told)

            # a trace its start left unrecorded (sampled out) is followed, not restarted, by every
            # part after it: the same order placed under one records nothing anywhere
            async with httpx.AsyncClient(base_url=shop["orders"], timeout=20) as orders:
                unrecorded = await orders.post(
                    "/orders",
                    headers={**keys.bearer(user_id=uuid.uuid4(), role="user"), "traceparent": UNRECORDED},
                    json={
                        "shipping_address": ADDRESS,
                        "items": [{"product_id": product.json()["id"], "quantity": 1}],
                    },
                )
            assert unrecorded.status_code == 201, unrecorded.text
            quiet_id = unrecorded.json()["id"]

            async def told_again() -> None:
                assert [n for n in heard if n["data"]["order_id"] == quiet_id], heard

            await eventually(told_again)
        finally:
            await ear.disconnect()
        recorded = list(exporter.get_finished_spans())
        assert not [s for s in recorded if s.context.trace_id == UNRECORDED_TRACE_ID]
        # nor did a part downstream start a trace of its own: each step was recorded once, for the first order
        for part, step in (
            ("catalog", "POST /internal/reservations"),
            ("realtime", "order.created process"),
            ("realtime", "order:created emit"),
        ):
            assert len([s for s in recorded if s.name == step and _part(s) == part]) == 1, (part, step)

    async def emitted() -> ReadableSpan:
        spans = list(exporter.get_finished_spans())
        emits = [s for s in spans if s.name == "order:created emit" and _part(s) == "realtime"]
        assert emits, f"no socket emit span yet: {[(s.name, _part(s)) for s in spans]}"
        return emits[-1]

    emit = await eventually(emitted)

    async def whole() -> list[ReadableSpan]:
        # a span is exported when it ends: the relay's publish span ends at the broker's confirm,
        # which may come after realtime has consumed and emitted the event
        return _trace_of(list(exporter.get_finished_spans()), emit)

    chain = await eventually(whole)
    spans = list(exporter.get_finished_spans())
    steps = [(s.kind, _part(s), s.name) for s in chain]

    # the trace starts at the gateway and reaches the socket through orders, the outbox and realtime
    assert steps[0] == (SpanKind.SERVER, "gateway", "POST /orders"), steps
    assert chain[0].parent is None and f"{chain[0].context.trace_id:032x}" not in CLIENT_TRACEPARENT
    assert (SpanKind.SERVER, "orders", "POST /orders") in steps, steps
    assert steps[-3:] == [
        (SpanKind.PRODUCER, "orders", "order.created publish"),  # the outbox relay
        (SpanKind.CONSUMER, "realtime", "order.created process"),
        (SpanKind.PRODUCER, "realtime", "order:created emit"),
    ], steps
    trace_id = emit.context.trace_id
    assert {s.context.trace_id for s in chain} == {trace_id}

    # catalog's reservation is in the same trace, under orders' request
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    [orders_request] = [s for s in in_trace if s.kind == SpanKind.SERVER and _part(s) == "orders"]
    [reservation] = [
        s
        for s in in_trace
        if s.kind == SpanKind.SERVER and _part(s) == "catalog" and "reservations" in s.name
    ]
    assert orders_request in _trace_of(spans, reservation)
    # with its SQL and the outbox row written in orders' transaction
    assert any(
        (s.attributes or {}).get("db.system") == "postgresql" and _part(s) == "catalog"
        for s in in_trace
        if reservation in _trace_of(spans, s)[:-1]
    ), [s.name for s in in_trace]
    assert not [s for s in in_trace if s.name in ("BEGIN;", "COMMIT;", "ROLLBACK;")]
