"""The status machine under an admin's hand: legal moves recorded and published, others refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from libs.common.testing import assert_problem, eventually


async def test_illegal_moves_are_refused_with_the_allowed_ones(client, as_user, as_admin, place):
    order = await place(as_user)
    url = f"/admin/orders/{order['id']}/status"
    body = assert_problem(await client.patch(url, json={"status": "shipped"}, headers=as_admin), 409)
    assert body["allowed"] == ["paid", "cancelled"] and body["current_status"] == "pending_payment"
    assert (await client.patch(url, json={"status": "cancelled"}, headers=as_admin)).status_code == 200
    final = assert_problem(await client.patch(url, json={"status": "paid"}, headers=as_admin), 409)
    assert final["allowed"] == []
    assert_problem(await client.patch(url, json={"status": "lost"}, headers=as_admin), 422)
    assert_problem(
        await client.patch(f"/admin/orders/{uuid.uuid4()}/status", json={"status": "paid"}, headers=as_admin),
        404,
    )


async def test_admin_moves_are_kept_in_history_and_each_publishes_one_event(
    client, keys, as_user, place, bus
):
    admin_id = uuid.uuid4()
    admin = keys.bearer(user_id=admin_id, role="admin")
    order = await place(as_user, quantity=2, price=300)
    url = f"/admin/orders/{order['id']}/status"
    moves = ["paid", "processing", "shipped", "delivered"]
    for to in moves:
        resp = await client.patch(url, json={"status": to, "reason": f"now {to}"}, headers=admin)
        assert resp.status_code == 200, resp.text
    history = resp.json()["status_history"]
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "pending_payment"),
        ("pending_payment", "paid"),
        ("paid", "processing"),
        ("processing", "shipped"),
        ("shipped", "delivered"),
    ]
    assert all(h["by"] == str(admin_id) for h in history[1:])
    assert history[-1]["reason"] == "now delivered"
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert seen["status"] == "delivered" and seen["status_history"] == history

    async def one_event_per_move() -> None:
        events = bus.of(order["id"], "order.status_changed")
        assert [e.data["to"] for e in events] == moves
        assert events[0].data["from"] == "pending_payment" and events[0].data["by"] == str(admin_id)
        assert events[0].data["total"] == 600 and events[0].data["currency"] == "EUR"

    await eventually(one_event_per_move)


async def test_admin_can_cancel_a_paid_order_but_not_a_shipped_one(client, as_user, as_admin, place):
    paid = await place(as_user)
    url = f"/admin/orders/{paid['id']}/status"
    await client.patch(url, json={"status": "paid"}, headers=as_admin)
    user_cancel = await client.post(f"/orders/{paid['id']}/cancel", headers=as_user)
    assert assert_problem(user_cancel, 409)["current_status"] == "paid"
    resp = await client.patch(url, json={"status": "cancelled", "reason": "out of stock"}, headers=as_admin)
    assert resp.status_code == 200 and resp.json()["status_history"][-1]["reason"] == "out of stock"

    shipped = await place(as_user)
    url = f"/admin/orders/{shipped['id']}/status"
    for to in ("paid", "processing", "shipped"):
        await client.patch(url, json={"status": to}, headers=as_admin)
    body = assert_problem(await client.patch(url, json={"status": "cancelled"}, headers=as_admin), 409)
    assert body["allowed"] == ["delivered"]


async def test_admin_lists_orders_filtered_by_status_user_and_date(client, keys, as_admin, place):
    buyer = uuid.uuid4()
    headers = keys.bearer(user_id=buyer)
    first = await place(headers)
    second = await place(headers)
    await client.patch(f"/admin/orders/{first['id']}/status", json={"status": "cancelled"}, headers=as_admin)

    by_user = (await client.get("/admin/orders", params={"user_id": str(buyer)}, headers=as_admin)).json()
    assert [o["id"] for o in by_user["items"]] == [second["id"], first["id"]] and by_user["total"] == 2
    cancelled = (
        await client.get(
            "/admin/orders", params={"user_id": str(buyer), "status": "cancelled"}, headers=as_admin
        )
    ).json()
    assert [o["id"] for o in cancelled["items"]] == [first["id"]]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    later = (await client.get("/admin/orders", params={"created_from": future}, headers=as_admin)).json()
    assert later["total"] == 0
    window = (
        await client.get(
            "/admin/orders",
            params={"user_id": str(buyer), "created_from": past, "created_to": future},
            headers=as_admin,
        )
    ).json()
    assert window["total"] == 2
    paged = (await client.get("/admin/orders", params={"page_size": 1}, headers=as_admin)).json()
    assert len(paged["items"]) == 1 and paged["total"] >= 2
    assert_problem(await client.get("/admin/orders", params={"status": "nope"}, headers=as_admin), 422)


async def test_admin_finds_orders_by_number_and_customers_and_sees_the_moves_allowed(
    client, keys, as_admin, place
):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    first = await place(keys.bearer(user_id=ada))
    second = await place(keys.bearer(user_id=bob))

    async def ids(**params) -> list[str]:
        found = await client.get("/admin/orders", params=params, headers=as_admin)
        assert found.status_code == 200, found.text
        return [o["id"] for o in found.json()["items"]]

    # the number as printed ("#1a2b3c4d"), in either case, finds that order alone
    assert await ids(q="#" + first["id"][:8].upper()) == [first["id"]]
    assert await ids(q=second["id"]) == [second["id"]]
    both = await ids(user_id=[str(ada), str(bob)])
    assert both == [second["id"], first["id"]]
    assert_problem(await client.get("/admin/orders", params={"q": "x' or 1=1"}, headers=as_admin), 422)

    listed = (await client.get("/admin/orders", params={"q": first["id"]}, headers=as_admin)).json()
    assert listed["items"][0]["allowed_moves"] == ["paid", "cancelled"]
    url = f"/admin/orders/{first['id']}"
    moved = await client.patch(url + "/status", json={"status": "paid"}, headers=as_admin)
    assert moved.json()["allowed_moves"] == ["processing", "cancelled"]
    one = (await client.get(url, headers=as_admin)).json()
    assert one["status"] == "paid" and one["allowed_moves"] == ["processing", "cancelled"]
    assert [h["to"] for h in one["status_history"]] == ["pending_payment", "paid"]
    assert_problem(await client.get(f"/admin/orders/{uuid.uuid4()}", headers=as_admin), 404)
    # customers never see the admin's moves
    assert "allowed_moves" not in (await client.get(url.replace("/admin", ""), headers=as_admin)).json()


async def test_concurrent_moves_of_one_order_apply_once(client, as_user, as_admin, place, bus):
    order = await place(as_user)
    url = f"/admin/orders/{order['id']}/status"
    answers = await asyncio.gather(
        *(client.patch(url, json={"status": "paid"}, headers=as_admin) for _ in range(10))
    )
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert [h["to"] for h in seen["status_history"]] == ["pending_payment", "paid"]

    async def one_event() -> None:
        assert len(bus.of(order["id"], "order.status_changed")) == 1

    await eventually(one_event)
