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


async def test_sweepers_of_several_replicas_cancel_each_due_order_once(orders_app, client, keys, place, bus):
    """Every replica runs the payment-timeout sweeper: racing copies cancel each order once, announce it once."""
    import uuid

    import sqlalchemy as sa

    from services.orders import service as order_service
    from services.orders.models import Order

    callers = [keys.bearer(user_id=uuid.uuid4(), role="user") for _ in range(6)]
    orders = [await place(caller) for caller in callers]
    db = orders_app[0].state.ctx.db
    async with db.session() as session, session.begin():
        await session.execute(
            sa.update(Order)
            .where(Order.id.in_([uuid.UUID(o["id"]) for o in orders]))
            .values(payment_due_at=sa.func.now() - sa.text("interval '1 minute'"))
        )

    async def replica() -> int:
        swept = 0
        for _ in range(5):
            async with db.session() as session:
                swept += await order_service.cancel_unpaid(session=session, batch=2)
        return swept

    # four copies besides the app's own sweeper, two orders a batch, all at once
    await asyncio.gather(*(replica() for _ in range(4)))

    for order, caller in zip(orders, callers, strict=True):

        async def cancelled_once(order=order, caller=caller) -> None:
            seen = (await client.get(f"/orders/{order['id']}", headers=caller)).json()
            assert seen["status"] == "cancelled"
            assert [h["to"] for h in seen["status_history"]].count("cancelled") == 1
            assert len(bus.of(order["id"], "order.status_changed")) == 1

        await eventually(cancelled_once)
    await asyncio.sleep(0.5)  # a second announcement would have arrived by now
    assert all(len(bus.of(o["id"], "order.status_changed")) == 1 for o in orders)
