"""The read-model follows catalog's events over RabbitMQ; order.created empties what was bought."""

from __future__ import annotations

import asyncio
import uuid

from cart_testkit import Shop

from libs.common.events import Envelope


async def test_a_price_change_shows_in_the_cart(shop: Shop) -> None:
    p = await shop.known(price=1000)
    _, me = shop.user()
    await shop.add(me, p["id"], 2)
    await shop.publish("product.updated", {**p, "price": 1500, "name": "Lamp, new", "version": 2})

    [line] = (cart := await shop.cart(me))["items"]
    assert (line["unit_price"], line["added_unit_price"], line["name"]) == (1500, 1000, "Lamp, new")
    assert line["line_total"] == 3000 and cart["subtotal"] == 3000


async def test_a_stale_product_event_does_not_overwrite_a_newer_one(shop: Shop) -> None:
    p = await shop.known(price=1000)
    _, me = shop.user()
    await shop.add(me, p["id"])
    await shop.publish("product.updated", {**p, "price": 3000, "version": 3})
    await shop.publish("product.updated", {**p, "price": 2000, "version": 2})
    await shop.publish("product.updated", {**p, "price": 9999, "version": 3})  # same version: a duplicate

    assert (await shop.cart(me))["items"][0]["unit_price"] == 3000
    held = await shop.read_model(p["id"])
    assert held is not None and (held.version, held.price) == (3, 3000)


async def test_a_deleted_product_makes_its_line_unavailable(shop: Shop) -> None:
    gone, kept = await shop.known(price=500), await shop.known(price=200)
    _, me = shop.user()
    await shop.add(me, gone["id"], 2)
    await shop.add(me, kept["id"], 1)
    await shop.publish("product.deleted", {**gone, "deleted": True, "version": 2})

    cart = await shop.cart(me)
    by_product = {i["product_id"]: i for i in cart["items"]}
    assert by_product[gone["id"]]["availability"] == "unavailable"
    assert by_product[kept["id"]]["availability"] == "available"
    assert cart["subtotal"] == 200  # what cannot be bought is not counted


async def test_a_deactivated_product_makes_its_line_unavailable(shop: Shop) -> None:
    p = await shop.known()
    _, me = shop.user()
    await shop.add(me, p["id"])
    await shop.publish("product.updated", {**p, "is_active": False, "version": 2})
    assert (await shop.cart(me))["items"][0]["availability"] == "unavailable"


async def test_stock_falling_to_zero_marks_the_line_insufficient(shop: Shop) -> None:
    p = await shop.known(stock=10)
    _, me = shop.user()
    await shop.add(me, p["id"], 3)
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 2, "version": 2})
    assert (await shop.cart(me))["items"][0]["availability"] == "insufficient_stock"
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 0, "version": 3})
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 50, "version": 2})  # stale

    [line] = (await shop.cart(me))["items"]
    assert (line["availability"], line["stock"]) == ("insufficient_stock", 0)


async def test_stock_coming_back_makes_the_line_available_again(shop: Shop) -> None:
    p = await shop.known(stock=1)
    _, me = shop.user()
    await shop.add(me, p["id"], 1)
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 0, "version": 2})
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 4, "version": 3})
    assert (await shop.cart(me))["items"][0]["availability"] == "available"


async def test_order_created_delivered_twice_removes_the_items_once(shop: Shop) -> None:
    a, b = await shop.known(stock=20), await shop.known(stock=20)
    uid, me = shop.user()
    _, other = shop.user()
    await shop.add(me, a["id"], 5)
    await shop.add(me, b["id"], 1)
    await shop.add(other, a["id"], 5)
    order = Envelope.new("order.created", {
        "order_id": str(uuid.uuid4()), "user_id": str(uid), "status": "pending_payment", "currency": "EUR",
        "items": [{"product_id": a["id"], "name": a["name"], "unit_price": 1999, "quantity": 2, "line_total": 3998},
                  {"product_id": b["id"], "name": b["name"], "unit_price": 1999, "quantity": 1, "line_total": 1999}],
    }, producer="orders")

    await shop.publish("order.created", {}, envelope=order)
    await shop.ctx.bus.publish(order)  # redelivered: same event id
    await asyncio.sleep(0.5)

    [left] = (await shop.cart(me))["items"]
    assert (left["product_id"], left["quantity"]) == (a["id"], 3)
    assert (await shop.cart(other))["items"][0]["quantity"] == 5
    assert await shop.ctx.bus.dead_letters("cart") == []


async def test_an_unusable_event_is_skipped_without_blocking_the_queue(shop: Shop) -> None:
    p = await shop.known(price=100)
    _, me = shop.user()
    await shop.add(me, p["id"])
    await shop.publish("product.updated", {"id": p["id"], "price": "lots"})
    await shop.publish("stock.changed", {"product_id": "nope"})
    await shop.publish("product.updated", {**p, "price": 150, "version": 2})
    assert (await shop.cart(me))["items"][0]["unit_price"] == 150
    assert await shop.ctx.bus.dead_letters("cart") == []
