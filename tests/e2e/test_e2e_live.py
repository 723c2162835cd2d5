"""Live journeys: REST through the gateway plus Socket.IO notifications and admin commands."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from libs.common.testing import eventually
from tests.e2e.shopper import Listener, admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e
TRACKING = {
    "carrier": "DHL",
    "tracking_number": "00340434161094042557",
    "tracking_url": "https://www.dhl.de/track?piececode=00340434161094042557",
}


async def test_customer_buys_and_hears_payment_live(gw: httpx.AsyncClient, stack: Stack) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=10, price=1999)
    buyer = await customer(gw)
    ears = await Listener(stack.gateway, buyer.token).connect()
    try:
        wish = await gw.post("/wishlist", json={"product_id": product["id"]}, headers=buyer.auth)
        assert wish.status_code in (200, 201), wish.text
        cart = await buyer.add_to_cart(product["id"], 1)
        item_id = cart["items"][0]["id"]
        cart = (await gw.put(f"/cart/{item_id}", json={"quantity": 3}, headers=buyer.auth)).json()
        assert cart["subtotal"] == 3 * 1999
        key = uuid.uuid4().hex
        first = (await buyer.place_order(key=key)).json()
        again = await buyer.place_order(key=key, expect=201)
        assert again.json()["id"] == first["id"]
        assert first["status"] == "pending_payment" and first["total"] == 3 * 1999
        await buyer.pay(first["id"])
        await buyer.wait_status(first["id"], "paid")
        await ears.wait_for("payment:succeeded", {"order_id": first["id"]})
        await ears.wait_for("order:statusUpdated", {"order_id": first["id"], "to": "paid"})

        async def cart_emptied() -> None:
            assert (await gw.get("/cart", headers=buyer.auth)).json()["items"] == []

        await eventually(cart_emptied)
        stock = (await gw.get(f"/products/{product['id']}")).json()["stock"]
        assert stock == 7
    finally:
        await ears.close()


async def test_admin_runs_an_order_live_and_only_its_owner_hears(gw: httpx.AsyncClient, stack: Stack) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=5)
    buyer, other = await customer(gw), await customer(gw, "other")
    console = await Listener(stack.gateway, boss.token).connect()
    buyer_ears = await Listener(stack.gateway, buyer.token).connect()
    other_ears = await Listener(stack.gateway, other.token).connect()
    try:
        order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()
        await console.wait_for("order:created", {"order_id": order["id"]})
        await buyer.pay(order["id"])
        await console.wait_for("payment:succeeded", {"order_id": order["id"]})
        await buyer.wait_status(order["id"], "paid")
        for status in ("processing", "shipped", "delivered"):
            command: dict[str, Any] = {"order_id": order["id"], "status": status}
            if status == "shipped":
                command.update(TRACKING)
            ack = await console.command("order:updateStatus", command)
            assert ack["ok"] is True, ack
            await buyer_ears.wait_for("order:statusUpdated", {"order_id": order["id"], "to": status})
        # how it travels: on the order, live to its owner, and in the customer's mail
        await buyer_ears.wait_for("order:fulfilled", {"order_id": order["id"]})
        fulfillment = (await buyer.order(order["id"]))["fulfillment"]
        assert {k: fulfillment[k] for k in TRACKING} == TRACKING
        refused = await console.command(
            "order:updateStatus", {"order_id": order["id"], "status": "pending_payment"}
        )
        assert refused["ok"] is False and refused["error"]["status"] == 409
        not_admin = await buyer_ears.command(
            "order:updateStatus", {"order_id": order["id"], "status": "cancelled"}
        )
        assert not_admin["ok"] is False and not_admin["error"]["status"] == 403
        assert other_ears.events("order:statusUpdated") == [] and other_ears.events("order:created") == []
        assert buyer_ears.events("order:created") == []
        history = [h["to"] for h in (await buyer.order(order["id"]))["status_history"]]
        assert history == ["pending_payment", "paid", "processing", "shipped", "delivered"]
        if stack.mail is not None:

            async def mailed_once_each() -> None:
                subjects = sorted(str(m["Subject"]) for m in stack.mail.to(buyer.email))
                number = order["id"][:8].upper()
                assert subjects == sorted(
                    [
                        "Welcome to Shop, Test Shopper",
                        f"Your Shop order {number} is confirmed",
                        f"Your Shop order {number} is on its way",
                        f"Your Shop order {number} was delivered",
                    ]
                ), subjects

            await eventually(mailed_once_each, timeout=20)
            [shipped] = [m for m in stack.mail.to(buyer.email) if "on its way" in str(m["Subject"])]
            assert TRACKING["tracking_number"] in shipped.as_string()
    finally:
        for ear in (console, buyer_ears, other_ears):
            await ear.close()


async def test_admin_manages_catalog_live_and_carts_follow(gw: httpx.AsyncClient, stack: Stack) -> None:
    boss = await admin(gw)
    buyer = await customer(gw)
    console = await Listener(stack.gateway, boss.token).connect()
    guest = await Listener(stack.gateway, transport="polling").connect()  # the other transport
    try:
        cat = await console.command("category:add", {"name": f"Live {uuid.uuid4().hex[:6]}"})
        assert cat["ok"] is True, cat
        await guest.wait_for("category:added", {"id": cat["data"]["id"]})
        added = await console.command(
            "product:add",
            {
                "name": "Live lamp",
                "price": 4000,
                "currency": "USD",
                "sku": f"LIVE-{uuid.uuid4().hex[:8]}",
                "category_id": cat["data"]["id"],
                "stock": 4,
            },
        )
        assert added["ok"] is True, added
        pid = added["data"]["id"]
        await guest.wait_for("product:added", {"id": pid})
        await buyer.add_to_cart(pid, 2)
        changed = await console.command("product:update", {"id": pid, "price": 3500})
        assert changed["ok"] is True, changed
        await guest.wait_for("product:updated", {"id": pid, "price": 3500})

        async def new_price_in_cart() -> None:
            line = (await gw.get("/cart", headers=buyer.auth)).json()["items"][0]
            assert line["unit_price"] == 3500, line

        await eventually(new_price_in_cart)
        gone = await console.command("product:delete", {"id": pid})
        assert gone["ok"] is True, gone
        await guest.wait_for("product:deleted", {"id": pid})
        refused = await guest.command(
            "product:add", {"name": "x", "price": 1, "sku": "x", "category_id": cat["data"]["id"]}
        )
        assert refused["ok"] is False and refused["error"]["status"] == 403
    finally:
        await console.close()
        await guest.close()


async def test_payments_restarting_between_checkout_and_payment_still_completes(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    stack.require_part_control()
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=3)
    buyer = await customer(gw)
    order = (await buyer.place_order(items=[{"product_id": product["id"], "quantity": 1}])).json()

    async def checkout() -> dict[str, Any]:
        resp = await gw.post("/payment/checkout", json={"order_id": order["id"]}, headers=buyer.auth)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()

    intent = await eventually(checkout, timeout=15, interval=0.2)
    assert intent["status"] != "succeeded" and intent["client_secret"]
    await stack.restart("payments")
    paid_intent = await buyer.pay(order["id"])
    assert paid_intent.get("payment_intent_id", intent["payment_intent_id"]) == intent["payment_intent_id"]
    done = await buyer.wait_status(order["id"], "paid")
    assert [h["to"] for h in done["status_history"]].count("paid") == 1
