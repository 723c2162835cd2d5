"""Who may see and change which order."""

from __future__ import annotations

import uuid

import pytest

from libs.common.testing import assert_problem


async def test_user_cannot_read_or_cancel_another_users_order(client, keys, place):
    order = await place(keys.bearer())
    intruder = keys.bearer()
    assert_problem(await client.get(f"/orders/{order['id']}", headers=intruder), 404)
    assert_problem(await client.post(f"/orders/{order['id']}/cancel", headers=intruder), 404)
    assert (await client.get("/orders", headers=intruder)).json()["total"] == 0
    # support staff may look at any order
    assert (await client.get(f"/orders/{order['id']}", headers=keys.bearer(role="admin"))).status_code == 200


async def test_unknown_order_is_404(client, as_user):
    assert_problem(await client.get(f"/orders/{uuid.uuid4()}", headers=as_user), 404)
    assert_problem(await client.get("/orders/not-a-uuid", headers=as_user), 422)


async def test_my_orders_are_listed_newest_first_and_paginated(client, as_user, place):
    placed = [await place(as_user) for _ in range(3)]
    first = (await client.get("/orders?page=1&page_size=2", headers=as_user)).json()
    second = (await client.get("/orders?page=2&page_size=2", headers=as_user)).json()
    assert first["total"] == 3 and first["page"] == 1 and first["page_size"] == 2
    ids = [o["id"] for o in first["items"] + second["items"]]
    assert ids == [o["id"] for o in reversed(placed)]
    assert_problem(await client.get("/orders?page_size=1000", headers=as_user), 422)


async def test_owner_can_cancel_an_unpaid_order(client, as_user, user, place, catalog, bus):
    order = await place(as_user, quantity=2)
    resp = await client.post(f"/orders/{order['id']}/cancel", headers=as_user)
    assert resp.status_code == 200, resp.text
    cancelled = resp.json()
    assert cancelled["status"] == "cancelled"
    last = cancelled["status_history"][-1]
    assert (last["from"], last["to"], last["by"]) == ("pending_payment", "cancelled", str(user))
    again = await client.post(f"/orders/{order['id']}/cancel", headers=as_user)
    body = assert_problem(again, 409)
    assert body["allowed"] == [] and body["current_status"] == "cancelled"


async def test_guest_is_401_everywhere(client):
    for method, path in [
        ("GET", "/orders"),
        ("GET", f"/orders/{uuid.uuid4()}"),
        ("POST", f"/orders/{uuid.uuid4()}/cancel"),
        ("GET", "/admin/orders"),
        ("GET", f"/admin/orders/{uuid.uuid4()}"),
        ("PATCH", f"/admin/orders/{uuid.uuid4()}/status"),
    ]:
        assert_problem(await client.request(method, path, json={"status": "paid"}), 401)


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/admin/orders"), ("GET", "/admin/orders/{id}"), ("PATCH", "/admin/orders/{id}/status")],
)
async def test_user_cannot_use_admin_routes(client, as_user, place, method, path):
    order = await place(as_user)
    resp = await client.request(method, path.format(id=order["id"]), headers=as_user, json={"status": "paid"})
    assert_problem(resp, 403)
    assert (await client.get(f"/orders/{order['id']}", headers=as_user)).json()["status"] == "pending_payment"


async def test_a_forged_token_is_401(client, keys):
    token = keys.mint(issuer="someone-else")
    assert_problem(await client.get("/orders", headers={"Authorization": f"Bearer {token}"}), 401)
