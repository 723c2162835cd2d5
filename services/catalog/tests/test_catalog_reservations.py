"""Stock reservations: all or nothing, never oversold, idempotent, released once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from catalog_helpers import Builder, EventTap

from libs.common.events import Envelope
from libs.common.events.amqp import AmqpBus
from libs.common.testing import assert_problem, dead_lettered, eventually
from libs.contracts import orders


def order(*items: tuple[dict[str, Any], int], order_id: uuid.UUID | None = None) -> dict[str, Any]:
    return {
        "order_id": str(order_id or uuid.uuid4()),
        "items": [{"product_id": p["id"], "quantity": q} for p, q in items],
    }


async def stock_of(client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any]) -> int:
    return int((await client.get(f"/admin/products/{product['id']}", headers=admin)).json()["stock"])


async def test_100_concurrent_reservations_never_oversell(
    base_url: str, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=10, price=499)
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as c:
        results = await asyncio.gather(
            *(c.post("/internal/reservations", json=order((p, 1)), headers=internal) for _ in range(100))
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses.count(201) == 10 and statuses.count(409) == 90, statuses
        for r in results:
            if r.status_code == 409:
                short = r.json()["short"]
                assert short[0]["product_id"] == p["id"] and short[0]["requested"] == 1
                assert short[0]["available"] == 0
        assert await stock_of(c, admin, p) == 0


async def test_orders_sharing_products_in_any_order_are_all_or_nothing_and_each_is_announced(
    base_url: str, build: Builder, internal: dict[str, str], admin: dict[str, str], event_tap: EventTap
) -> None:
    """Two-line orders naming two scarce products in either order, all at once: none deadlocks or
    half-reserves, and every reservation's stock.changed says where each product stood after it."""
    cat = await build.category()
    a = await build.product(cat["id"], stock=7)
    b = await build.product(cat["id"], stock=12)
    bodies = [order((a, 1), (b, 2)) if n % 2 else order((b, 2), (a, 1)) for n in range(40)]
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as c:
        results = await asyncio.gather(
            *(c.post("/internal/reservations", json=body, headers=internal) for body in bodies)
        )
        statuses = sorted(r.status_code for r in results)
        # b runs out after 6 orders (2 each), a would have lasted 7: no order took a without b
        assert statuses.count(201) == 6 and statuses.count(409) == 34, statuses
        assert await stock_of(c, admin, a) == 1 and await stock_of(c, admin, b) == 0
    for product, left in ((a, 1), (b, 0)):

        async def six(p: dict[str, Any] = product) -> list[Envelope]:
            told = event_tap.of("stock.changed", product_id=p["id"])
            assert len(told) == 6, told
            return told

        seen = await eventually(six)
        stocks = sorted((e.data["version"], e.data["stock"]) for e in seen)
        start = product["stock"]
        step = start - left
        # versions 2..7 in turn, each with the stock that reservation left behind
        assert [v for v, _ in stocks] == list(range(2, 8))
        assert [st for _, st in stocks] == [start - (i + 1) * step // 6 for i in range(6)]
        assert all(e.data["variants"][0]["stock"] == e.data["stock"] for e in seen)


async def test_reservation_returns_authoritative_prices_and_names(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    a = await build.product(cat["id"], stock=5, price=1250, name="Alpha")
    b = await build.product(cat["id"], stock=5, price=300, name="Beta")
    body = order((a, 2), (b, 1), (a, 1))
    resp = await client.post("/internal/reservations", json=body, headers=internal)
    assert resp.status_code == 201, resp.text
    got = resp.json()
    assert got["order_id"] == body["order_id"] and got["currency"] == "USD"
    lines = {i["product_id"]: i for i in got["items"]}
    # a product line stands for the product's only variant, and says which
    assert lines[a["id"]] == {
        "product_id": a["id"],
        "variant_id": a["variants"][0]["id"],
        "sku": a["sku"],
        "title": "Default",
        "name": "Alpha",
        "unit_price": 1250,
        "currency": "USD",
        "quantity": 3,
    }
    assert lines[b["id"]]["quantity"] == 1 and lines[b["id"]]["unit_price"] == 300
    assert await stock_of(client, admin, a) == 2 and await stock_of(client, admin, b) == 4
    product = (await client.get(f"/products/{a['id']}")).json()
    assert product["version"] == 2


async def test_repeated_order_id_does_not_reserve_twice(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    body = order((p, 2))
    first = await client.post("/internal/reservations", json=body, headers=internal)
    again = await asyncio.gather(
        *(client.post("/internal/reservations", json=body, headers=internal) for _ in range(5))
    )
    assert first.status_code == 201
    assert all(r.status_code == 200 and r.json() == first.json() for r in again)
    assert await stock_of(client, admin, p) == 3


async def test_short_items_refuse_the_whole_order(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    plenty = await build.product(cat["id"], stock=10)
    scarce = await build.product(cat["id"], stock=1)
    body = order((plenty, 3), (scarce, 2))
    problem = assert_problem(await client.post("/internal/reservations", json=body, headers=internal), 409)
    assert problem["short"] == [
        {
            "product_id": scarce["id"],
            "variant_id": scarce["variants"][0]["id"],
            "sku": scarce["sku"],
            "requested": 2,
            "available": 1,
        }
    ]
    assert await stock_of(client, admin, plenty) == 10 and await stock_of(client, admin, scarce) == 1
    # the refused order_id is free: a smaller order under it goes through
    ok = await client.post(
        "/internal/reservations", json={**body, "items": body["items"][:1]}, headers=internal
    )
    assert ok.status_code == 201


async def test_unknown_inactive_or_mixed_currency_items_are_refused(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    ok = await build.product(cat["id"], stock=5)
    inactive = await build.product(cat["id"], stock=5, is_active=False)
    euro = await build.product(cat["id"], stock=5, currency="EUR")
    ghost = {"id": str(uuid.uuid4())}
    for bad in (ghost, inactive):
        problem = assert_problem(
            await client.post("/internal/reservations", json=order((ok, 1), (bad, 1)), headers=internal), 422
        )
        assert problem["unavailable"] == [bad["id"]] and bad["id"] in problem["detail"]
    assert_problem(
        await client.post("/internal/reservations", json=order((ok, 1), (euro, 1)), headers=internal), 422
    )
    assert_problem(await client.post("/internal/reservations", json=order((ok, 0)), headers=internal), 422)
    assert_problem(
        await client.post(
            "/internal/reservations", json={"order_id": str(uuid.uuid4()), "items": []}, headers=internal
        ),
        422,
    )
    assert await stock_of(client, admin, ok) == 5


async def test_release_gives_stock_back_once(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    body = order((p, 4))
    await client.post("/internal/reservations", json=body, headers=internal)
    assert await stock_of(client, admin, p) == 1
    releases = await asyncio.gather(
        *(
            client.post(f"/internal/reservations/{body['order_id']}/release", headers=internal)
            for _ in range(3)
        )
    )
    assert all(r.status_code == 200 and r.json()["status"] == "released" for r in releases)
    assert await stock_of(client, admin, p) == 5


async def test_a_reservation_arriving_after_its_release_holds_nothing(
    client: httpx.AsyncClient, build: Builder, internal: dict[str, str], admin: dict[str, str]
) -> None:
    """Orders releases an order id it gave up on before knowing whether its reservation arrived."""
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    body = order((p, 3))
    released = await client.post(f"/internal/reservations/{body['order_id']}/release", headers=internal)
    assert released.status_code == 200 and released.json()["status"] == "released", released.text
    late = await client.post("/internal/reservations", json=body, headers=internal)
    assert late.status_code == 200, late.text
    assert late.json()["status"] == "released" and late.json()["items"] == []
    assert await stock_of(client, admin, p) == 5


async def test_internal_routes_refuse_callers_without_the_service_token(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    body = order((p, 1))
    for headers in ({}, {"X-Internal-Token": "wrong"}, admin):
        assert_problem(await client.post("/internal/reservations", json=body, headers=headers), 403)
        assert_problem(
            await client.post(f"/internal/reservations/{body['order_id']}/release", headers=headers), 403
        )
    assert await stock_of(client, admin, p) == 5


async def test_cancelled_order_event_releases_and_paid_commits(
    client: httpx.AsyncClient,
    build: Builder,
    internal: dict[str, str],
    admin: dict[str, str],
    publish_order_status: Any,
    event_tap: EventTap,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    paid, cancelled = order((p, 1)), order((p, 2))
    for body in (paid, cancelled):
        assert (await client.post("/internal/reservations", json=body, headers=internal)).status_code == 201
    assert await stock_of(client, admin, p) == 2
    await publish_order_status(paid["order_id"], "paid")
    await publish_order_status(cancelled["order_id"], "cancelled")
    await publish_order_status(cancelled["order_id"], "cancelled")  # a second cancel fact changes nothing

    async def released() -> None:
        assert await stock_of(client, admin, p) == 4

    await eventually(released)
    await asyncio.sleep(0.3)
    assert await stock_of(client, admin, p) == 4
    again = await client.post("/internal/reservations", json=paid, headers=internal)
    assert again.status_code == 200 and again.json()["status"] == "committed"

    async def stock_events() -> None:
        assert [e.data["stock"] for e in event_tap.of("stock.changed", product_id=p["id"])] == [4, 2, 4]

    await eventually(stock_events)


async def test_an_order_event_not_matching_the_orders_model_is_dead_lettered_and_releases_nothing(
    client: httpx.AsyncClient,
    build: Builder,
    internal: dict[str, str],
    admin: dict[str, str],
    orders_bus: AmqpBus,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    reserved = order((p, 2))
    assert (await client.post("/internal/reservations", json=reserved, headers=internal)).status_code == 201
    # a cancel fact without the fields the orders contract requires
    bad = Envelope.new(
        "order.status_changed", {"order_id": reserved["order_id"], "to": "cancelled"}, producer="orders"
    )
    await orders_bus.publish(bad)

    letter = await dead_lettered(orders_bus, "catalog", bad.id)
    assert "not a valid OrderStatusChanged" in letter.error and "user_id: Field required" in letter.error
    assert await stock_of(client, admin, p) == 3


async def test_the_units_of_a_received_return_go_back_to_their_variant_once(
    client: httpx.AsyncClient,
    build: Builder,
    internal: dict[str, str],
    admin: dict[str, str],
    orders_bus: AmqpBus,
    publish_order_status: Any,
    event_tap: EventTap,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=5)
    sold = order((p, 3))
    assert (await client.post("/internal/reservations", json=sold, headers=internal)).status_code == 201
    await publish_order_status(sold["order_id"], "paid")
    assert await stock_of(client, admin, p) == 2
    received = orders.EVENTS.envelope(
        "return.received",
        {
            "return_id": uuid.uuid4(),
            "order_id": sold["order_id"],
            "user_id": uuid.uuid4(),
            "status": "received",
            # an order line from before variants names no variant: the one the order reserved comes back
            "items": [
                {
                    "line_id": 0,
                    "product_id": p["id"],
                    "variant_id": None,
                    "name": p["name"],
                    "quantity": 2,
                    "reason": "too big",
                    "refund_amount": 100,
                },
            ],
            "note": None,
            "refund_amount": 100,
            "currency": "USD",
            "by": str(uuid.uuid4()),
            "at": datetime.now(UTC),
        },
    )
    await orders_bus.publish(received)
    await orders_bus.publish(received)  # redelivered

    async def restocked() -> None:
        assert await stock_of(client, admin, p) == 4

    await eventually(restocked)
    await asyncio.sleep(0.3)
    assert await stock_of(client, admin, p) == 4
    variant = (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()["variants"][0]
    assert variant["stock"] == 4

    async def told() -> None:
        assert [e.data["stock"] for e in event_tap.of("stock.changed", product_id=p["id"])][-1:] == [4]

    await eventually(told)
