"""End-to-end journeys: every part a separate process, driven only through the gateway."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from libs.common.testing import assert_problem, eventually
from tests.e2e.shopper import ADDRESS, Shopper, admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


async def test_guest_browses_and_is_refused_admin_routes(gw: httpx.AsyncClient) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, name="Guest visible boot")
    cats = await gw.get("/categories")
    assert cats.status_code == 200 and cats.json()

    async def searchable() -> None:
        found = await gw.get("/products", params={"q": "boots", "page_size": 5})
        assert found.status_code == 200
        assert product["id"] in [p["id"] for p in found.json()["items"]]

    await eventually(searchable)
    page = (await gw.get("/products", params={"page": 1, "page_size": 2, "sort": "price_asc"})).json()
    assert set(page) >= {"items", "total", "page", "page_size"} and len(page["items"]) <= 2
    one = await gw.get(f"/products/{product['slug']}")
    assert one.status_code == 200 and one.json()["id"] == product["id"]
    assert_problem(await gw.post("/admin/products", json={"name": "x"}), 401)
    assert_problem(await gw.get("/admin/orders"), 401)
    assert_problem(await gw.get("/cart"), 401)
    assert_problem(await gw.get("/internal/carts/" + str(uuid.uuid4())), 404)


async def test_forgotten_password_is_reset_by_emailed_code(gw: httpx.AsyncClient, stack: Stack) -> None:
    stack.require_mail()
    user = await customer(gw, "forgetful")
    old_token = user.token
    assert (await gw.post("/auth/forgot-password", json={"email": user.email})).status_code == 202

    async def mailed_code() -> str:
        # notifications welcomes the customer too, in its own time: the code is in auth's mail
        mails = [m for m in stack.mail.to(user.email) if "reset" in str(m["Subject"]).lower()]
        assert mails, "no mail yet"
        mail = mails[-1]
        part = mail.get_payload()[0] if mail.is_multipart() else mail  # type: ignore[index]
        body = part.get_payload(decode=True)  # type: ignore[union-attr]
        assert isinstance(body, bytes), body
        code = re.search(rb"\b(\d{6})\b", body)
        assert code
        return code.group(1).decode()

    otp = await eventually(mailed_code)
    verified = await gw.post("/auth/verify-otp", json={"email": user.email, "otp": otp})
    assert verified.status_code == 200, verified.text
    reset_token = verified.json()["reset_token"]
    done = await gw.post(
        "/auth/reset-password", json={"reset_token": reset_token, "new_password": "Brand-new-pass-2"}
    )
    assert done.status_code in (200, 204), done.text
    assert_problem(await gw.get("/users/me", headers={"Authorization": f"Bearer {old_token}"}), 401)
    assert (await gw.post("/auth/refresh", json={"refresh_token": user.refresh})).status_code == 401
    user.password = "Brand-new-pass-2"
    await user.login()


async def test_an_order_paid_while_orders_is_down_becomes_paid_once(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    stack.require_part_control()
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=3)
    buyer = await customer(gw)
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()

    async def payable() -> None:
        resp = await gw.post("/payment/checkout", json={"order_id": order["id"]}, headers=buyer.auth)
        assert resp.status_code in (200, 201), resp.text

    await eventually(payable, timeout=15, interval=0.2)
    stack.stop("orders")
    try:
        await buyer.pay(order["id"])
    finally:
        stack.start("orders")
        await stack.wait_ready("orders")
    paid = await buyer.wait_status(order["id"], "paid")
    assert [h["to"] for h in paid["status_history"]].count("paid") == 1


async def test_thirty_customers_race_for_five_units(gw: httpx.AsyncClient) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5)
    buyers = await asyncio.gather(*(customer(gw, f"racer{i}") for i in range(30)))

    async def attempt(b: Shopper) -> int:
        resp = await gw.post(
            "/orders",
            headers={**b.auth, "Idempotency-Key": uuid.uuid4().hex},
            json={"shipping_address": ADDRESS, "items": [{"product_id": product["id"], "quantity": 1}]},
        )
        assert resp.status_code in (201, 409), resp.text
        return resp.status_code

    codes = await asyncio.gather(*(attempt(b) for b in buyers))
    assert codes.count(201) == 5 and codes.count(409) == 25
    assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == 0


async def test_a_customer_orders_with_a_saved_address_shipping_tax_and_a_coupon_and_pays_that_total(
    gw: httpx.AsyncClient,
) -> None:
    """Address saved, quote with shipping + tax + coupon, the order placed with that very breakdown,
    paid for exactly its total, the coupon's use visible to the admin. What it configures in pricing
    is removed at the end: a zone for Canada alone would stop every other journey shipping to London."""
    boss = await admin(gw)
    tag = uuid.uuid4().hex[:6].upper()
    created: list[str] = []

    async def configure(path: str, body: dict[str, object]) -> dict[str, Any]:
        resp = await gw.post(path, headers=boss.auth, json=body)
        assert resp.status_code == 201, resp.text
        created.append(f"{path}/{resp.json()['id']}")
        return dict(resp.json())

    try:
        zone = await configure(
            "/admin/shipping-zones",
            {
                "name": f"Ontario {tag}",
                "countries": ["CA"],
                "regions": ["ON"],
                "methods": [
                    {"name": "Ground", "amount": 700, "currency": "USD", "free_over": 100_000},
                    {"name": "Express", "amount": 1_900, "currency": "USD"},
                ],
            },
        )
        await configure(
            "/admin/tax-rates", {"name": "GST", "country": "CA", "rate_bp": 500, "applies_to_shipping": True}
        )
        await configure("/admin/tax-rates", {"name": "HST", "country": "CA", "region": "ON", "rate_bp": 800})
        coupon = await configure(
            "/admin/promotions",
            {
                "name": "Ten percent",
                "code": f"E2E{tag}",
                "rules": {"usage_limit": 10},
                "action": {"type": "percent_off", "value": 1_000},
            },
        )

        methods = await gw.get("/shipping-methods", params={"country": "CA", "region": "ON"})
        assert [m["name"] for m in methods.json()] == ["Ground", "Express"], "guests see what ships there"
        buyer = await customer(gw, "pricing")
        assert_problem(await gw.get("/admin/promotions", headers=buyer.auth), 403)
        product = await make_product(gw, boss, price=2_000)

        async def in_cart() -> None:
            resp = await gw.post(
                "/cart", json={"product_id": product["id"], "quantity": 3}, headers=buyer.auth
            )
            assert resp.status_code in (200, 201), resp.text

        await eventually(in_cart)
        saved = await gw.post(
            "/users/me/addresses",
            headers=buyer.auth,
            json={
                "name": "Ada",
                "line1": "1 Front St",
                "city": "Toronto",
                "region": "ON",
                "postal_code": "M5J 2N8",
                "country": "CA",
            },
        )
        assert saved.status_code == 201, saved.text
        express = zone["methods"][1]["id"]
        choice = {"address_id": saved.json()["id"], "shipping_method_id": express, "coupon_code": f"e2e{tag}"}
        quote = await gw.post("/checkout/quote", headers=buyer.auth, json=choice)
        assert quote.status_code == 200, quote.text
        b = quote.json()["breakdown"]
        # 6000 - 10% = 5400; Express 1900; tax 13% of 5400 = 702, GST 5% of shipping = 95
        assert (b["subtotal"], b["discount_total"], b["shipping_total"]) == (6_000, 600, 1_900)
        assert b["tax_total"] == 702 + 95 and b["total"] == 6_000 - 600 + 1_900 + 797
        assert {t["name"] for t in b["tax_lines"]} == {"GST", "HST"}

        placed = await gw.post(
            "/orders", headers={**buyer.auth, "Idempotency-Key": uuid.uuid4().hex}, json=choice
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["breakdown"] == b and order["total"] == b["total"]
        assert order["shipping_address"]["region"] == "ON" and order["shipping_method"]["name"] == "Express"
        payment = await buyer.pay(order["id"])
        assert payment["amount"] == order["total"] == 8_097
        await buyer.wait_status(order["id"], "paid")

        used = await gw.get(f"/admin/promotions/{coupon['id']}", headers=boss.auth)
        assert used.json()["times_used"] == 1
        usages = await gw.get(f"/admin/promotions/{coupon['id']}/usages", headers=boss.auth)
        assert [u["order_id"] for u in usages.json()["items"]] == [order["id"]]
    finally:
        for path in reversed(created):
            assert (await gw.delete(path, headers=boss.auth)).status_code in (204, 404)


async def test_an_integrators_api_key_does_what_its_scopes_say_until_it_is_revoked(
    gw: httpx.AsyncClient,
) -> None:
    boss = await admin(gw)
    issued = await gw.post(
        "/admin/api-keys", headers=boss.auth, json={"name": "ERP sync", "scopes": ["catalog:write"]}
    )
    assert issued.status_code == 201, issued.text
    key = {"Authorization": f"Bearer {issued.json()['key']}"}
    cat = await gw.post("/admin/categories", headers=key, json={"name": f"ERP {uuid.uuid4().hex[:6]}"})
    assert cat.status_code == 201, cat.text
    product = await gw.post(
        "/admin/products",
        headers=key,
        json={
            "name": f"ERP lamp {uuid.uuid4().hex[:6]}",
            "price": 1_500,
            "currency": "USD",
            "sku": f"ERP-{uuid.uuid4().hex[:8]}",
            "category_id": cat.json()["id"],
            "stock": 4,
        },
    )
    assert product.status_code == 201, product.text
    assert (await gw.get(f"/products/{product.json()['id']}")).json()["stock"] == 4
    assert assert_problem(await gw.get("/admin/orders", headers=key), 403)["scope"] == "orders:read"
    assert_problem(await gw.get("/cart", headers=key), 403)
    assert_problem(
        await gw.post("/admin/api-keys", headers=key, json={"name": "x", "scopes": ["orders:read"]}), 403
    )

    listed = (await gw.get("/admin/api-keys", headers=boss.auth)).json()["items"]
    mine = next(k for k in listed if k["id"] == issued.json()["id"])
    assert mine["last_used_at"] is not None and "key" not in mine
    revoked = await gw.delete(f"/admin/api-keys/{mine['id']}", headers=boss.auth)
    assert revoked.status_code == 200, revoked.text
    again = await gw.patch(f"/admin/products/{product.json()['id']}", headers=key, json={"stock": 9})
    assert_problem(again, 401)
    assert (await gw.get(f"/products/{product.json()['id']}")).json()["stock"] == 4


async def test_a_delivered_order_is_partly_returned_and_refunded_and_the_customer_is_told_each_step(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=10, price=2000)
    buyer = await customer(gw, "returner")
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 3}])).json()
    await buyer.pay(order["id"])
    await buyer.wait_status(order["id"], "paid")
    url = f"/admin/orders/{order['id']}/status"
    for body in (
        {"status": "processing"},
        {
            "status": "shipped",
            "carrier": "UPS",
            "tracking_number": "1Z999AA10123456784",
            "tracking_url": "https://www.ups.com/track?tracknum=1Z999AA10123456784",
        },
        {"status": "delivered"},
    ):
        resp = await gw.patch(url, json=body, headers=boss.auth)
        assert resp.status_code == 200, resp.text
    assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == 7

    asked = await gw.post(
        f"/orders/{order['id']}/returns",
        json={"items": [{"line_id": 0, "quantity": 2, "reason": "too many"}]},
        headers=buyer.auth,
    )
    assert asked.status_code == 201, asked.text
    ret = asked.json()
    for to in ("approved", "received"):
        moved = await gw.patch(f"/admin/returns/{ret['id']}", json={"status": to}, headers=boss.auth)
        assert moved.status_code == 200, moved.text
    amount = moved.json()["refund_amount"]
    assert amount == order["total"] * 2 // 3

    async def refunded() -> None:
        [now] = (await gw.get(f"/orders/{order['id']}/returns", headers=buyer.auth)).json()
        assert now["status"] == "refunded", now
        assert (await buyer.order(order["id"]))["refund_amount"] == amount
        assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == 9  # two units back

    await eventually(refunded, timeout=30)
    if stack.mail is not None:
        number = order["id"][:8].upper()

        async def mailed_once_each() -> None:
            subjects = sorted(str(m["Subject"]) for m in stack.mail.to(buyer.email))
            assert subjects == sorted(
                [
                    "Welcome to Shop, Test Shopper",
                    f"Your Shop order {number} is confirmed",
                    f"Your Shop order {number} is on its way",
                    f"Your Shop order {number} was delivered",
                    f"We received your return request for order {number}",
                    f"Your return for order {number} is approved: please send the items",
                    f"We received the items you returned from order {number}",
                    f"Shop refunded {amount // 100}.{amount % 100:02d} USD for your return from order {number}",
                ]
            ), subjects

        await eventually(mailed_once_each, timeout=30)
