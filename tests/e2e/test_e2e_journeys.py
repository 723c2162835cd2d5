"""End-to-end journeys: every part a separate process, driven only through the gateway."""

from __future__ import annotations

import asyncio
import re
import uuid

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
        mails = stack.mail.to(user.email)
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
    done = await gw.post("/auth/reset-password", json={"reset_token": reset_token, "new_password": "Brand-new-pass-2"})
    assert done.status_code in (200, 204), done.text
    assert_problem(await gw.get("/users/me", headers={"Authorization": f"Bearer {old_token}"}), 401)
    assert (await gw.post("/auth/refresh", json={"refresh_token": user.refresh})).status_code == 401
    user.password = "Brand-new-pass-2"
    await user.login()


async def test_an_order_paid_while_orders_is_down_becomes_paid_once(gw: httpx.AsyncClient, stack: Stack) -> None:
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
        resp = await gw.post("/orders", headers={**b.auth, "Idempotency-Key": uuid.uuid4().hex},
                             json={"shipping_address": ADDRESS,
                                   "items": [{"product_id": product["id"], "quantity": 1}]})
        assert resp.status_code in (201, 409), resp.text
        return resp.status_code

    codes = await asyncio.gather(*(attempt(b) for b in buyers))
    assert codes.count(201) == 5 and codes.count(409) == 25
    assert (await gw.get(f"/products/{product['id']}")).json()["stock"] == 0
