"""Unpaid orders are cancelled by the system after the payment timeout."""

from __future__ import annotations

import asyncio

from orders_standins import ADDRESS

from libs.common.testing import eventually


async def test_unpaid_order_is_cancelled_by_the_system_after_the_timeout(
    start_orders, client, catalog, as_user, bus
):
    pid = catalog[0].add_product(stock=10)
    async with start_orders(order_payment_timeout=1, order_sweep_interval=0.1) as short:
        resp = await short.post(
            "/orders",
            headers=as_user,
            json={"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 1}]},
        )
        assert resp.status_code == 201, resp.text
        order = resp.json()

        async def cancelled() -> dict:
            seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
            assert seen["status"] == "cancelled"
            return seen

        seen = await eventually(cancelled, timeout=10)
    last = seen["status_history"][-1]
    assert (last["from"], last["by"], last["reason"]) == ("pending_payment", "system", "payment timeout")

    async def announced() -> None:
        [event] = bus.of(order["id"], "order.status_changed")
        assert event.data["to"] == "cancelled" and event.data["by"] == "system"

    await eventually(announced)


async def test_a_young_unpaid_order_is_left_alone(start_orders, client, as_user, place):
    async with start_orders(order_payment_timeout=60, order_sweep_interval=0.1):
        order = await place(as_user)
        await asyncio.sleep(0.5)  # several sweeps
        seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert seen["status"] == "pending_payment"
