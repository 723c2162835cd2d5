"""What unpaid orders may hold (issue 21): per-line and per-order quantities, open unpaid orders per
account, a shorter hold for large orders. Each refusal is a problem saying what to change, and
reserves nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from orders_standins import ADDRESS

from libs.common.testing import assert_problem, eventually


def body_of(*lines: tuple[str, int]) -> dict[str, Any]:
    return {"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": q} for pid, q in lines]}


async def test_more_of_one_product_than_a_line_allows_is_refused(client, catalog, as_user):
    pid = catalog[0].add_product(stock=1000)
    calls = len(catalog[0].reserve_calls)
    resp = await client.post("/orders", headers=as_user, json=body_of((pid, 21)))
    problem = assert_problem(resp, 422)
    assert problem["title"] == "Quantity limit exceeded"
    assert problem["over"] == [{"product_id": pid, "requested": 21, "limit": 20}]
    assert len(catalog[0].reserve_calls) == calls and catalog[0].stock(pid) == 1000


async def test_lines_of_one_product_are_added_up_before_the_line_limit(client, catalog, as_user):
    pid = catalog[0].add_product(stock=1000)
    resp = await client.post("/orders", headers=as_user, json=body_of((pid, 15), (pid, 15)))
    assert assert_problem(resp, 422)["over"][0]["requested"] == 30


async def test_more_units_than_an_order_allows_are_refused_from_the_cart_too(
    client, catalog, cart, user, as_user
):
    pids = [catalog[0].add_product(stock=1000) for _ in range(6)]
    cart[0].put(user, *((pid, 20) for pid in pids))  # 120 units, each line within its limit
    resp = await client.post("/orders", headers=as_user, json={"shipping_address": ADDRESS})
    problem = assert_problem(resp, 422)
    assert (problem["title"], problem["units"], problem["limit"]) == ("Order too large", 120, 100)
    assert all(catalog[0].stock(pid) == 1000 for pid in pids)


async def test_an_account_cannot_hold_more_unpaid_orders_than_the_limit(start_orders, catalog, keys):
    pid = catalog[0].add_product(stock=100)
    headers = keys.bearer()
    async with start_orders(order_max_open_unpaid=2) as client:
        first_key = {**headers, "Idempotency-Key": "first"}
        first = await client.post("/orders", headers=first_key, json=body_of((pid, 1)))
        second = await client.post(
            "/orders", headers={**headers, "Idempotency-Key": "second"}, json=body_of((pid, 1))
        )
        assert first.status_code == second.status_code == 201
        third_key = {**headers, "Idempotency-Key": "third"}
        refused = await client.post("/orders", headers=third_key, json=body_of((pid, 1)))
        problem = assert_problem(refused, 409)
        assert (problem["title"], problem["open_unpaid"], problem["limit"]) == (
            "Too many unpaid orders",
            2,
            2,
        )
        assert catalog[0].stock(pid) == 98
        # a repeat of an accepted request still gets its order, limit or not
        again = await client.post("/orders", headers=first_key, json=body_of((pid, 1)))
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        # the refusal was not the key's answer: once an order is cancelled, the same key goes through
        assert (await client.post(f"/orders/{first.json()['id']}/cancel", headers=headers)).status_code == 200
        third = await client.post("/orders", headers=third_key, json=body_of((pid, 1)))
        assert third.status_code == 201, third.text
    assert catalog[0].stock(pid) == 97  # the cancelled order's unit is catalog's to give back (by event)


async def test_concurrent_orders_of_one_account_cannot_pass_the_unpaid_limit_together(
    start_orders, catalog, keys
):
    pid = catalog[0].add_product(stock=100)
    headers = keys.bearer()
    async with start_orders(order_max_open_unpaid=3) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/orders",
                    headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    json=body_of((pid, 1)),
                )
                for _ in range(10)
            )
        )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] * 3 + [409] * 7, (codes, [a.text[:300] for a in answers if a.status_code != 201])
    assert catalog[0].stock(pid) == 97


async def test_a_large_order_is_held_unpaid_for_less_time(start_orders, catalog, keys):
    pid = catalog[0].add_product(stock=100)
    headers = keys.bearer()
    async with start_orders(
        order_large_units=5, order_large_payment_timeout=1, order_payment_timeout=60, order_sweep_interval=0.1
    ) as client:
        large = (await client.post("/orders", headers=headers, json=body_of((pid, 6)))).json()
        small = (await client.post("/orders", headers=headers, json=body_of((pid, 5)))).json()
        held = {
            o["id"]: (
                datetime.fromisoformat(o["payment_due_at"]) - datetime.fromisoformat(o["created_at"])
            ).total_seconds()
            for o in (large, small)
        }
        assert held == {large["id"]: 1, small["id"]: 60}

        async def large_cancelled() -> None:
            seen = (await client.get(f"/orders/{large['id']}", headers=headers)).json()
            assert seen["status"] == "cancelled", seen["status"]

        await eventually(large_cancelled, timeout=10)
        assert (await client.get(f"/orders/{small['id']}", headers=headers)).json()[
            "status"
        ] == "pending_payment"


async def test_the_issues_denial_of_inventory_is_capped_at_what_the_limits_allow(client, catalog, as_user):
    """Issue 21: one account asked for 5,121 units of 40 products at once, and repeated it 25 times."""
    pids = [catalog[0].add_product(stock=1000) for _ in range(40)]
    greedy = body_of(*((pid, 128) for pid in pids))  # 5,120 units
    assert (
        assert_problem(await client.post("/orders", headers=as_user, json=greedy), 422)["title"]
        == "Quantity limit exceeded"
    )
    most = body_of(*((pid, 20) for pid in pids[:5]))  # 100 units: the most one order may hold
    codes = [
        (
            await client.post("/orders", headers={**as_user, "Idempotency-Key": uuid.uuid4().hex}, json=most)
        ).status_code
        for _ in range(25)
    ]
    assert codes == [201] * 5 + [409] * 20
    held = sum(1000 - catalog[0].stock(pid) for pid in pids)
    assert held == 500  # 5 open unpaid orders of 100 units, each held 10 minutes instead of 30
