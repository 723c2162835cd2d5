"""Placements (issue 23): stock reserved for a request that died is released without any retry, never
for an order that was stored; a key whose request died is taken over at once, under a new order id."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from orders_standins import ADDRESS, TOKEN, CatalogStandIn

from libs.common.testing import assert_problem, eventually, serve_app
from services.orders import idempotency
from services.orders.models import IdempotencyKey, Order, Placement
from services.orders.schemas import OrderCreate


def body_of(pid: str, quantity: int) -> dict[str, Any]:
    return {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": quantity}]}


async def reserve_at(url: str, order_id: uuid.UUID, pid: str, quantity: int) -> None:
    """What the dead request got done: catalog holds stock under its order id."""
    async with httpx.AsyncClient(base_url=url) as http:
        resp = await http.post(
            "/internal/reservations",
            headers={"X-Internal-Token": TOKEN},
            json={"order_id": str(order_id), "items": [{"product_id": pid, "quantity": quantity}]},
        )
        assert resp.status_code == 201, resp.text


async def leftovers(
    orders_app,
    *,
    user: uuid.UUID,
    order_id: uuid.UUID,
    lease_in: float,
    key: str | None = None,
    body: dict[str, Any] | None = None,
    placement: bool = True,
) -> None:
    """The rows a request leaves in orders' database when its process dies before the order is stored."""
    now = datetime.now(UTC)
    async with orders_app[0].state.ctx.db.session() as session, session.begin():
        if key is not None:
            assert body is not None
            fingerprint = idempotency.request_hash(OrderCreate.model_validate(body).model_dump(mode="json"))
            session.add(
                IdempotencyKey(
                    user_id=user,
                    key=key,
                    request_hash=fingerprint,
                    order_id=order_id,
                    claimed_at=now,
                    expires_at=now + timedelta(days=1),
                )
            )
        if placement:
            session.add(
                Placement(
                    order_id=order_id,
                    user_id=user,
                    state="placing",
                    lease_until=now + timedelta(seconds=lease_in),
                    created_at=now,
                )
            )


async def placement_state(orders_app, order_id: uuid.UUID | str) -> str | None:
    async with orders_app[0].state.ctx.db.session() as session, session.begin():
        return (
            await session.execute(
                sa.select(Placement.state).where(Placement.order_id == uuid.UUID(str(order_id)))
            )
        ).scalar_one_or_none()


async def test_stock_reserved_by_a_request_that_died_is_released_without_any_retry(
    orders_app, client, catalog, user, as_user
):
    standin, url = catalog
    pid = standin.add_product(stock=10)
    dead = uuid.uuid4()
    await reserve_at(url, dead, pid, 5)
    await leftovers(orders_app, user=user, order_id=dead, lease_in=-1)
    assert standin.stock(pid) == 5

    async def released() -> None:
        assert standin.stock(pid) == 10
        assert await placement_state(orders_app, dead) is None

    await eventually(released, timeout=10)
    assert (await client.get("/orders", headers=as_user)).json()["total"] == 0


async def test_the_sweeper_never_releases_the_stock_of_an_order_that_was_stored(
    orders_app, client, catalog, user, as_user
):
    standin = catalog[0]
    pid = standin.add_product(stock=10)
    placed = await client.post("/orders", headers=as_user, json=body_of(pid, 1))
    assert placed.status_code == 201, placed.text
    order_id = uuid.UUID(placed.json()["id"])
    # a stray row for a stored order (it cannot arise, the order's transaction deletes it): still never released
    await leftovers(orders_app, user=user, order_id=order_id, lease_in=-1)

    async def swept() -> None:
        assert await placement_state(orders_app, order_id) is None

    await eventually(swept, timeout=10)
    assert str(order_id) not in standin.release_calls
    assert standin.held(str(order_id)) and standin.stock(pid) == 9


async def test_a_key_whose_request_died_is_taken_over_at_once_under_a_new_order_id(
    orders_app, client, catalog, user, as_user
):
    standin, url = catalog
    pid = standin.add_product(stock=10)
    body = body_of(pid, 2)
    dead = uuid.uuid4()
    await reserve_at(url, dead, pid, 2)
    await leftovers(orders_app, user=user, order_id=dead, lease_in=-1, key="crashed", body=body)

    started = time.monotonic()
    resp = await client.post("/orders", json=body, headers={**as_user, "Idempotency-Key": "crashed"})
    assert resp.status_code == 201, resp.text
    assert time.monotonic() - started < 2
    assert resp.json()["id"] != str(dead)
    assert not standin.held(str(dead)) and standin.held(resp.json()["id"])
    assert standin.stock(pid) == 8  # taken once
    again = await client.post("/orders", json=body, headers={**as_user, "Idempotency-Key": "crashed"})
    assert again.json()["id"] == resp.json()["id"]


async def test_a_taken_over_key_never_builds_an_order_on_a_released_reservation(
    orders_app, client, catalog, user, as_user
):
    standin, url = catalog
    pid = standin.add_product(stock=10)
    body = body_of(pid, 3)
    dead = uuid.uuid4()
    await reserve_at(url, dead, pid, 3)
    async with httpx.AsyncClient(base_url=url) as http:  # the sweeper already gave it back
        await http.post(f"/internal/reservations/{dead}/release", headers={"X-Internal-Token": TOKEN})
    await leftovers(
        orders_app, user=user, order_id=dead, lease_in=-1, key="released", body=body, placement=False
    )

    resp = await client.post("/orders", json=body, headers={**as_user, "Idempotency-Key": "released"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["id"] != str(dead) and standin.held(resp.json()["id"])
    assert standin.stock(pid) == 7


async def test_a_repeat_while_the_first_request_still_works_is_told_to_retry_not_kept_waiting(
    orders_app, start_orders, catalog, user, as_user
):
    pid = catalog[0].add_product(stock=10)
    body = body_of(pid, 1)
    await leftovers(orders_app, user=user, order_id=uuid.uuid4(), lease_in=60, key="busy", body=body)
    async with start_orders(idempotency_wait=0.5) as client:
        started = time.monotonic()
        resp = await client.post("/orders", json=body, headers={**as_user, "Idempotency-Key": "busy"})
        took = time.monotonic() - started
    assert assert_problem(resp, 409)["title"] == "Request in progress"
    assert 1 <= int(resp.headers["Retry-After"]) <= 5
    assert took < 2
    assert catalog[0].stock(pid) == 10


async def test_an_owner_fenced_while_reserving_does_not_store_its_order(orders_app, start_orders, keys):
    slow = CatalogStandIn()
    slow.delay = 1.0
    pid = slow.add_product(stock=4)
    headers = keys.bearer()
    async with serve_app(slow.app()) as url, start_orders(catalog_url=url, catalog_timeout=5) as client:
        placing = asyncio.create_task(client.post("/orders", headers=headers, json=body_of(pid, 3)))

        async def reserving() -> None:
            assert slow.reserve_calls

        await eventually(reserving, timeout=5, interval=0.02)
        order_id = uuid.UUID(slow.reserve_calls[0])
        # what a sweeper does when the lease lapsed: the row is abandoned before any release
        async with orders_app[0].state.ctx.db.session() as session, session.begin():
            await session.execute(
                sa.update(Placement).where(Placement.order_id == order_id).values(state="abandoned")
            )
        resp = await placing
        assert assert_problem(resp, 503)["detail"].startswith("This checkout took too long")
        assert resp.headers["Retry-After"]
        async with orders_app[0].state.ctx.db.session() as session, session.begin():
            assert await session.get(Order, order_id) is None
        assert not slow.held(str(order_id)) and slow.stock(pid) == 4


async def test_a_request_slower_than_its_lease_keeps_its_placement_by_renewing_it(start_orders, keys):
    slow = CatalogStandIn()
    # three leases long: only renewals keep it alive. A lease of 0.4 s was outlasted by one stall
    # of a busy full run's event loop, which tells nothing about renewing
    slow.delay = 3.0
    pid = slow.add_product(stock=4)
    async with (
        serve_app(slow.app()) as url,
        start_orders(catalog_url=url, catalog_timeout=8, placement_lease=1.0) as client,
    ):
        resp = await client.post("/orders", headers=keys.bearer(), json=body_of(pid, 3))
    assert resp.status_code == 201, resp.text
    assert slow.held(resp.json()["id"]) and slow.stock(pid) == 1


async def test_several_replicas_sweep_orphans_but_never_the_stock_of_orders_being_placed(
    orders_app, start_orders, catalog, keys
):
    """Three replicas with a lease shorter than catalog's answer: live placements are renewed, not swept."""
    standin, url = catalog
    pid = standin.add_product(stock=100)
    dead = [uuid.uuid4() for _ in range(10)]
    for order_id in dead:
        await reserve_at(url, order_id, pid, 1)
        await leftovers(orders_app, user=uuid.uuid4(), order_id=order_id, lease_in=-1)
    # a lease well under catalog's answer, yet long enough that a busy machine's pauses (an event
    # loop stalled for a few hundred ms) do not outlast it: renewals must keep the placements alive
    standin.delay = 3.0

    def replica():
        return start_orders(placement_lease=1.5, catalog_timeout=8)

    try:
        async with replica() as a, replica() as b, replica() as c:
            answers = await asyncio.gather(
                *(
                    replica.post("/orders", headers=keys.bearer(), json=body_of(pid, 2))
                    for replica in (a, b, c)
                    for _ in range(4)
                )
            )

            async def orphans_released() -> None:
                assert not any(map(standin.held, map(str, dead)))
                for order_id in dead:
                    assert await placement_state(orders_app, order_id) is None

            await eventually(orphans_released, timeout=15)
    finally:
        standin.delay = 0.0
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers if a.status_code != 201]
    assert all(standin.held(a.json()["id"]) for a in answers)
    assert not set(standin.release_calls) & {a.json()["id"] for a in answers}
    assert standin.stock(pid) == 100 - 12 * 2


async def test_a_placement_catalog_refused_leaves_nothing_behind(orders_app, client, catalog, as_user):
    standin = catalog[0]
    pid = standin.add_product(stock=1)
    resp = await client.post("/orders", headers={**as_user, "Idempotency-Key": "short"}, json=body_of(pid, 2))
    assert_problem(resp, 409)
    order_id = standin.reserve_calls[-1]
    assert order_id not in standin.release_calls  # nothing was reserved: no release (nor tombstone) needed
    assert await placement_state(orders_app, order_id) is None
    assert standin.stock(pid) == 1
