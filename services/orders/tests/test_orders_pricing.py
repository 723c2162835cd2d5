"""An order's price is pricing's breakdown (shipping, tax, coupon), made once at placement and kept.

Pricing is the real service on loopback; the configuration each test makes (a zone, a rate, a
coupon for Canada) is removed afterwards, so the other orders tests keep a shop with none.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from orders_standins import ADDRESS

from libs.common.testing import TestKeys, assert_problem, eventually
from libs.common.testing.apps import free_port

ONTARIO = {**ADDRESS, "city": "Toronto", "region": "ON", "postal_code": "M5V 2T6", "country": "CA"}


class Pricing:
    """The pricing service as its admin sets it up; what is created is deleted at the end."""

    def __init__(self, url: str, keys: TestKeys) -> None:
        self.http = httpx.AsyncClient(base_url=url, headers=keys.bearer(role="admin"), timeout=10)
        self.created: list[str] = []

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.http.post(path, json=body)
        assert resp.status_code == 201, resp.text
        self.created.append(f"{path}/{resp.json()['id']}")
        return dict(resp.json())

    async def change(self, path: str, body: dict[str, Any]) -> None:
        resp = await self.http.patch(path, json=body)
        assert resp.status_code == 200, resp.text

    async def usages(self, promotion_id: str) -> int:
        resp = await self.http.get(f"/admin/promotions/{promotion_id}")
        assert resp.status_code == 200, resp.text
        return int(resp.json()["times_used"])


@pytest_asyncio.fixture
async def shop(pricing: str, keys: TestKeys) -> AsyncIterator[dict[str, Any]]:
    admin = Pricing(pricing, keys)
    code = f"SAVE{uuid.uuid4().hex[:8].upper()}"
    zone = await admin.create(
        "/admin/shipping-zones",
        {
            "name": "Canada",
            "countries": ["CA"],
            "methods": [
                {"name": "Post", "amount": 900, "currency": "EUR"},
                {"name": "Courier", "amount": 2_500, "currency": "EUR"},
            ],
        },
    )
    # federal and Ontario's share add up for an Ontario address (13%), goods and shipping
    await admin.create(
        "/admin/tax-rates", {"name": "GST", "country": "CA", "rate_bp": 500, "applies_to_shipping": True}
    )
    await admin.create(
        "/admin/tax-rates",
        {"name": "ON PST", "country": "CA", "region": "ON", "rate_bp": 800, "applies_to_shipping": True},
    )
    coupon = await admin.create(
        "/admin/promotions",
        {
            "name": "Ten off",
            "code": code,
            "currency": "EUR",
            "rules": {"min_subtotal": 2_000, "usage_limit": 1},
            "action": {"type": "amount_off", "value": 1_000},
        },
    )
    yield {"admin": admin, "zone": zone, "coupon": coupon, "code": code}
    for path in reversed(admin.created):
        assert (await admin.http.delete(path)).status_code in (204, 404)
    await admin.http.aclose()


def order_body(pid: str, quantity: int, **extra: Any) -> dict[str, Any]:
    return {"shipping_address": ONTARIO, "items": [{"product_id": pid, "quantity": quantity}], **extra}


async def test_an_order_is_charged_its_breakdown_with_shipping_tax_and_coupon(
    client, catalog, as_user, shop, bus
) -> None:
    pid = catalog[0].add_product(price=1_500, stock=10)
    courier = shop["zone"]["methods"][1]["id"]
    resp = await client.post(
        "/orders",
        headers=as_user,
        json=order_body(pid, 2, shipping_method_id=courier, coupon_code=shop["code"].lower()),
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    b = order["breakdown"]
    # 3000 - 1000 off = 2000 of goods at 13% = 260; courier 2500 at 13% = 325
    assert (b["subtotal"], b["discount_total"], b["shipping_total"], b["tax_total"]) == (
        3_000,
        1_000,
        2_500,
        585,
    )
    assert b["total"] == 3_000 - 1_000 + 2_500 + 585 == order["total"]
    assert [d["code"] for d in b["discounts"]] == [shop["code"]]
    assert {t["name"]: t["amount"] for t in b["tax_lines"]} == {"GST": 225, "ON PST": 360}
    assert order["shipping_method"]["name"] == "Courier" and order["shipping_address"]["region"] == "ON"
    assert order["subtotal"] == 3_000
    # payments charges what the event says

    async def announced() -> dict[str, Any]:
        events = bus.of(order["id"], "order.created")
        assert events, "order.created not seen yet"
        return dict(events[0].data)

    created = await eventually(announced)
    assert created["total"] == order["total"] and created["breakdown"]["total"] == order["total"]
    assert await shop["admin"].usages(shop["coupon"]["id"]) == 1


async def test_a_price_or_rule_change_after_placement_changes_nothing_on_the_order(
    client, catalog, as_user, shop
) -> None:
    pid = catalog[0].add_product(price=2_000, stock=10)
    placed = (await client.post("/orders", headers=as_user, json=order_body(pid, 1))).json()
    post = shop["zone"]["methods"][0]
    await shop["admin"].change(
        f"/admin/shipping-zones/{shop['zone']['id']}",
        {"methods": [{"id": post["id"], "name": "Post", "amount": 5_000, "currency": "EUR"}]},
    )
    catalog[0].products[pid]["price"] = 9_999
    again = (await client.get(f"/orders/{placed['id']}", headers=as_user)).json()
    assert again["breakdown"] == placed["breakdown"] and again["total"] == placed["total"]
    assert placed["breakdown"]["shipping_total"] == 900


async def test_a_coupon_that_does_not_apply_is_a_422_saying_why_and_holds_no_stock(
    client, catalog, as_user, shop
) -> None:
    pid = catalog[0].add_product(price=500, stock=3)
    resp = await client.post("/orders", headers=as_user, json=order_body(pid, 3, coupon_code=shop["code"]))
    problem = assert_problem(resp, 422)
    assert problem["reason"] == "minimum_not_met" and problem["shortfall"] == 500
    assert [e["field"] for e in problem["errors"]] == ["coupon_code"]
    assert catalog[0].stock(pid) == 3  # the reservation was given back
    listed = (await client.get("/orders", headers=as_user)).json()
    assert all(o["items"][0]["product_id"] != pid for o in listed["items"])


async def test_the_last_use_of_a_code_is_spent_once_and_comes_back_when_its_order_is_cancelled(
    client, catalog, keys, shop
) -> None:
    pid = catalog[0].add_product(price=2_500, stock=10)
    first, second = (keys.bearer(user_id=uuid.uuid4(), role="user") for _ in range(2))
    body = order_body(pid, 1, coupon_code=shop["code"])
    won = await client.post("/orders", headers=first, json=body)
    assert won.status_code == 201, won.text
    lost = await client.post("/orders", headers=second, json=body)
    assert assert_problem(lost, 422)["reason"] == "used_up"
    assert catalog[0].stock(pid) == 9
    cancelled = await client.post(f"/orders/{won.json()['id']}/cancel", headers=first)
    assert cancelled.status_code == 200, cancelled.text

    async def given_back() -> None:
        assert await shop["admin"].usages(shop["coupon"]["id"]) == 0

    await eventually(given_back, timeout=15)
    again = await client.post("/orders", headers=second, json=body)
    assert again.status_code == 201, again.text
    assert again.json()["breakdown"]["discount_total"] == 1_000


async def test_pricing_unreachable_is_a_503_with_retry_after_and_the_stock_goes_back(
    start_orders, catalog, keys
) -> None:
    pid = catalog[0].add_product(price=700, stock=2)
    headers = keys.bearer(user_id=uuid.uuid4(), role="user")
    async with start_orders(pricing_url=f"http://127.0.0.1:{free_port()}", catalog_timeout=1.0) as client:
        resp = await client.post("/orders", headers=headers, json=order_body(pid, 2))
        assert_problem(resp, 503)
        assert resp.headers["Retry-After"]
        assert (await client.get("/orders", headers=headers)).json()["total"] == 0
    assert catalog[0].stock(pid) == 2
