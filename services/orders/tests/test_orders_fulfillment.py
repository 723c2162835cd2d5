"""Shipping an order: carrier and tracking kept on the order and announced once (order.fulfilled)."""

from __future__ import annotations

import uuid

from libs.common.testing import assert_problem, eventually

TRACKING = {
    "carrier": "DHL",
    "tracking_number": "00340434161094042557",
    "tracking_url": "https://www.dhl.de/track?piececode=00340434161094042557",
}


async def _processing(client, as_user, as_admin, place) -> tuple[dict, str]:
    order = await place(as_user)
    url = f"/admin/orders/{order['id']}/status"
    for to in ("paid", "processing"):
        assert (await client.patch(url, json={"status": to}, headers=as_admin)).status_code == 200
    return order, url


async def test_shipping_keeps_the_tracking_on_the_order_and_announces_it_once(
    client, keys, as_user, place, bus
):
    admin_id = uuid.uuid4()
    admin = keys.bearer(user_id=admin_id, role="admin")
    order, url = await _processing(client, as_user, admin, place)
    resp = await client.patch(url, json={"status": "shipped", **TRACKING}, headers=admin)
    assert resp.status_code == 200, resp.text
    fulfillment = resp.json()["fulfillment"]
    assert {k: fulfillment[k] for k in TRACKING} == TRACKING and fulfillment["shipped_at"]
    # the customer sees it on their order
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert seen["fulfillment"] == fulfillment and seen["status"] == "shipped"
    delivered = await client.patch(url, json={"status": "delivered"}, headers=admin)
    assert delivered.json()["fulfillment"] == fulfillment  # delivering keeps how it travelled

    async def announced_once() -> None:
        [event] = bus.of(order["id"], "order.fulfilled")
        assert event.data["fulfillment"] == fulfillment and event.data["by"] == str(admin_id)
        assert event.data["user_id"] == order["user_id"]

    await eventually(announced_once)


async def test_shipping_without_tracking_is_allowed_and_still_announced(
    client, as_user, as_admin, place, bus
):
    order, url = await _processing(client, as_user, as_admin, place)
    resp = await client.patch(url, json={"status": "shipped"}, headers=as_admin)
    assert resp.status_code == 200
    fulfillment = resp.json()["fulfillment"]
    assert fulfillment["carrier"] is None and fulfillment["tracking_number"] is None

    async def announced() -> None:
        assert len(bus.of(order["id"], "order.fulfilled")) == 1

    await eventually(announced)


async def test_bad_tracking_is_refused_and_changes_nothing(client, as_user, as_admin, place):
    order, url = await _processing(client, as_user, as_admin, place)
    bad = [
        {"status": "shipped", **TRACKING, "tracking_url": "javascript:alert(1)"},
        {"status": "shipped", **TRACKING, "tracking_url": "https:///no-host"},
        {"status": "shipped", **TRACKING, "carrier": "DHL\r\nBcc: x@example.com"},
        {"status": "shipped", **TRACKING, "tracking_number": "x" * 101},
        {"status": "cancelled", "carrier": "DHL"},  # tracking only when shipping
        {"status": "shipped", "courier": "DHL"},
    ]
    for body in bad:
        assert_problem(await client.patch(url, json=body, headers=as_admin), 422)
    seen = (await client.get(f"/orders/{order['id']}", headers=as_user)).json()
    assert seen["status"] == "processing" and seen["fulfillment"] is None
    # a customer cannot ship anything
    assert_problem(await client.patch(url, json={"status": "shipped", **TRACKING}, headers=as_user), 403)
