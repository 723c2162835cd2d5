"""The read-model follows catalog's events over RabbitMQ; order.created empties what was bought."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from cart_testkit import FakeCatalog, Shop, changed

from libs.common.events import Envelope, InMemoryBus
from libs.common.testing import Infra, TestKeys, dead_lettered, running_app, settings_for
from libs.contracts import orders
from services.cart.app import create_app
from services.cart.settings import CartSettings


async def test_a_price_change_shows_in_the_cart(shop: Shop) -> None:
    p = await shop.known(price=1000)
    _, me = shop.user()
    await shop.add(me, p["id"], 2)
    await shop.publish("product.updated", changed(p, price=1500, name="Lamp, new", version=2))

    [line] = (cart := await shop.cart(me))["items"]
    assert (line["unit_price"], line["added_unit_price"], line["name"]) == (1500, 1000, "Lamp, new")
    assert line["line_total"] == 3000 and cart["subtotal"] == 3000


async def test_a_stale_product_event_does_not_overwrite_a_newer_one(shop: Shop) -> None:
    p = await shop.known(price=1000)
    _, me = shop.user()
    await shop.add(me, p["id"])
    await shop.publish("product.updated", changed(p, price=3000, version=3))
    await shop.publish("product.updated", changed(p, price=2000, version=2))
    await shop.publish("product.updated", changed(p, price=9999, version=3))  # same version: a duplicate

    assert (await shop.cart(me))["items"][0]["unit_price"] == 3000
    held = await shop.read_model(p["id"])
    assert held is not None and (held.version, held.price) == (3, 3000)


async def test_a_deleted_product_makes_its_line_unavailable(shop: Shop) -> None:
    gone, kept = await shop.known(price=500), await shop.known(price=200)
    _, me = shop.user()
    await shop.add(me, gone["id"], 2)
    await shop.add(me, kept["id"], 1)
    await shop.publish("product.deleted", changed(gone, deleted=True, version=2))

    cart = await shop.cart(me)
    by_product = {i["product_id"]: i for i in cart["items"]}
    assert by_product[gone["id"]]["availability"] == "unavailable"
    assert by_product[kept["id"]]["availability"] == "available"
    assert cart["subtotal"] == 200  # what cannot be bought is not counted


async def test_a_deactivated_product_makes_its_line_unavailable(shop: Shop) -> None:
    p = await shop.known()
    _, me = shop.user()
    await shop.add(me, p["id"])
    await shop.publish("product.updated", changed(p, is_active=False, version=2))
    assert (await shop.cart(me))["items"][0]["availability"] == "unavailable"


async def test_stock_falling_below_the_quantity_then_to_zero_marks_the_line(shop: Shop) -> None:
    p = await shop.known(stock=10)
    _, me = shop.user()
    await shop.add(me, p["id"], 3)
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 2, "version": 2})
    assert (await shop.cart(me))["items"][0]["availability"] == "insufficient_stock"
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 0, "version": 3})
    await shop.publish("stock.changed", {"product_id": p["id"], "stock": 50, "version": 2})  # stale

    [line] = (await shop.cart(me))["items"]
    assert (line["availability"], line["stock"]) == ("out_of_stock", 0)  # the wishlist's word for it


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
    order = orders.EVENTS.envelope(
        "order.created",
        orders.OrderCreated(
            order_id=uuid.uuid4(),
            user_id=uid,
            status=orders.OrderStatus.pending_payment,
            currency="EUR",
            items=[
                orders.OrderItemPublic(
                    product_id=a["id"], name=a["name"], unit_price=1999, quantity=2, line_total=3998
                ),
                orders.OrderItemPublic(
                    product_id=b["id"], name=b["name"], unit_price=1999, quantity=1, line_total=1999
                ),
            ],
            subtotal=5997,
            total=5997,
            created_at=datetime.now(UTC),
        ),
    )

    await shop.publish("order.created", {}, envelope=order)
    await shop.ctx.bus.publish(order)  # redelivered: same event id
    await asyncio.sleep(0.5)

    [left] = (await shop.cart(me))["items"]
    assert (left["product_id"], left["quantity"]) == (a["id"], 3)
    assert (await shop.cart(other))["items"][0]["quantity"] == 5
    assert str(order.id) not in {d.message_id for d in await shop.ctx.bus.dead_letters("cart")}


async def test_an_event_not_matching_the_producers_model_is_dead_lettered_with_the_reason(shop: Shop) -> None:
    p = await shop.known(price=100)
    uid, me = shop.user()
    await shop.add(me, p["id"], 2)
    bad_price = Envelope.new("product.updated", changed(p, price="lots", version=2), producer="catalog")
    bad_stock = Envelope.new(
        "stock.changed", {"product_id": "nope", "stock": 0, "version": 3}, producer="catalog"
    )
    bad_order = Envelope.new(
        "order.created",
        {"user_id": str(uid), "items": [{"product_id": p["id"], "quantity": 2}]},
        producer="orders",
    )
    for bad in (bad_price, bad_stock, bad_order):
        await shop.ctx.bus.publish(bad)

    assert (
        "price: Input should be a valid integer"
        in (await dead_lettered(shop.ctx.bus, "cart", bad_price.id)).error
    )
    assert (
        "product_id: Input should be a valid UUID"
        in (await dead_lettered(shop.ctx.bus, "cart", bad_stock.id)).error
    )
    assert "order_id: Field required" in (await dead_lettered(shop.ctx.bus, "cart", bad_order.id)).error
    [line] = (await shop.cart(me))["items"]
    assert (line["unit_price"], line["quantity"], line["availability"]) == (100, 2, "available")
    await shop.publish("product.updated", changed(p, price=150, version=2))  # the queue still flows
    assert (await shop.cart(me))["items"][0]["unit_price"] == 150


async def test_on_the_embedded_bus_too_an_event_not_matching_the_model_is_dead_lettered(
    infra: Infra, keys: TestKeys, catalog: FakeCatalog
) -> None:
    bus = InMemoryBus()
    settings = settings_for(CartSettings, infra, keys, catalog_url=catalog.url)
    try:
        async with running_app(create_app(settings, bus=bus)):
            bad = Envelope.new("stock.changed", {"product_id": "nope", "version": 2}, producer="catalog")
            await bus.publish(bad)

            letter = await dead_lettered(bus, "cart", bad.id)
    finally:
        await bus.close()
    assert (
        "product_id: Input should be a valid UUID" in letter.error and "stock: Field required" in letter.error
    )
