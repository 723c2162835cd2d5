"""Placing an order: prices from catalog, reservation all-or-nothing, nothing stored on failure."""

from __future__ import annotations

import uuid

from orders_standins import ADDRESS, CartStandIn, CatalogStandIn

from libs.common.testing import assert_problem, eventually, serve_app


async def test_order_from_cart_is_pending_payment_with_catalogs_prices(
    client, catalog, cart, user, as_user, bus
):
    standin, _ = catalog
    book = standin.add_product(name="Book", price=1999, stock=5)
    pen = standin.add_product(name="Pen", price=250, stock=50)
    cart[0].put(user, (book, 2), (pen, 3))

    resp = await client.post("/orders", json={"shipping_address": ADDRESS}, headers=as_user)

    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "pending_payment" and order["user_id"] == str(user)
    lines = {i["product_id"]: i for i in order["items"]}
    assert lines[book] == {
        "product_id": book,
        "variant_id": standin.variant_of(book),
        "sku": f"SKU-{book[:8]}",
        "title": "Default",
        "name": "Book",
        "unit_price": 1999,
        "quantity": 2,
        "line_total": 3998,
    }
    assert lines[pen]["line_total"] == 750
    assert order["subtotal"] == order["total"] == 4748 and order["currency"] == "EUR"
    assert order["shipping_address"]["country"] == "GB"
    [first] = order["status_history"]
    assert first["from"] is None and first["to"] == "pending_payment" and first["by"] == str(user)
    assert standin.stock(book) == 3 and standin.stock(pen) == 47

    fetched = await client.get(f"/orders/{order['id']}", headers=as_user)
    assert fetched.status_code == 200 and fetched.json() == order

    async def created_event_published() -> None:
        [event] = bus.of(order["id"], "order.created")
        assert event.producer == "orders" and event.data["total"] == 4748 and len(event.data["items"]) == 2

    await eventually(created_event_published)


async def test_explicit_items_are_ordered_instead_of_the_cart(client, catalog, as_user):
    pid = catalog[0].add_product(price=500, stock=3)
    resp = await client.post(
        "/orders",
        headers=as_user,
        json={
            "shipping_address": {**ADDRESS, "country": "de", "line2": "Hinterhaus", "phone": "+49 30 123456"},
            "items": [{"product_id": pid, "quantity": 1}, {"product_id": pid, "quantity": 2}],
        },
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert [(i["product_id"], i["quantity"]) for i in order["items"]] == [(pid, 3)]
    assert order["total"] == 1500 and order["shipping_address"]["country"] == "DE"
    assert catalog[0].stock(pid) == 0


async def test_empty_cart_is_refused_and_nothing_is_reserved(client, catalog, cart, user, as_user):
    cart[0].put(user)
    calls = len(catalog[0].reserve_calls)
    resp = await client.post("/orders", json={"shipping_address": ADDRESS}, headers=as_user)
    assert "empty" in assert_problem(resp, 422)["detail"]
    assert len(catalog[0].reserve_calls) == calls
    assert (await client.get("/orders", headers=as_user)).json()["total"] == 0


async def test_invalid_shipping_address_is_refused_with_the_fields_to_fix(client, catalog, as_user):
    pid = catalog[0].add_product()
    resp = await client.post(
        "/orders",
        headers=as_user,
        json={
            "shipping_address": {**ADDRESS, "country": "XX", "postal_code": ""},
            "items": [{"product_id": pid, "quantity": 1}],
        },
    )
    fields = {e["field"] for e in assert_problem(resp, 422)["errors"]}
    assert {"shipping_address.country", "shipping_address.postal_code"} <= fields
    missing = await client.post(
        "/orders", headers=as_user, json={"items": [{"product_id": pid, "quantity": 1}]}
    )
    assert_problem(missing, 422)
    assert catalog[0].stock(pid) == 10


async def test_short_stock_names_each_short_item_and_stores_nothing(client, catalog, as_user):
    standin = catalog[0]
    plenty = standin.add_product(stock=10)
    scarce = standin.add_product(stock=1)
    gone = standin.add_product(stock=0)
    resp = await client.post(
        "/orders",
        headers=as_user,
        json={
            "shipping_address": ADDRESS,
            "items": [
                {"product_id": plenty, "quantity": 2},
                {"product_id": scarce, "quantity": 3},
                {"product_id": gone, "quantity": 1},
            ],
        },
    )
    body = assert_problem(resp, 409)
    assert sorted(body["short"], key=lambda s: s["available"]) == [
        {"product_id": gone, "requested": 1, "available": 0},
        {"product_id": scarce, "requested": 3, "available": 1},
    ]
    assert scarce in body["detail"] and gone in body["detail"]
    assert (standin.stock(plenty), standin.stock(scarce)) == (10, 1)
    assert (await client.get("/orders", headers=as_user)).json()["total"] == 0


async def test_unknown_product_is_refused(client, as_user):
    resp = await client.post(
        "/orders",
        headers=as_user,
        json={"shipping_address": ADDRESS, "items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]},
    )
    assert_problem(resp, 422)


async def test_catalog_stopped_is_503_and_nothing_is_stored(start_orders, keys, cart):
    down = CatalogStandIn()
    pid = down.add_product()
    async with serve_app(down.app()) as url:
        pass  # started and stopped: its port now refuses connections
    user = uuid.uuid4()
    headers = keys.bearer(user_id=user)
    cart[0].put(user, (pid, 1))
    async with start_orders(catalog_url=url) as client:
        resp = await client.post("/orders", json={"shipping_address": ADDRESS}, headers=headers)
        assert "catalog" in assert_problem(resp, 503)["detail"]
        assert (await client.get("/orders", headers=headers)).json()["total"] == 0
    assert down.reservations == {}


async def test_slow_catalog_releases_the_reservation_it_may_have_made(start_orders, keys):
    slow = CatalogStandIn()
    slow.delay = 2.0
    pid = slow.add_product(stock=4)
    headers = keys.bearer()
    async with serve_app(slow.app()) as url, start_orders(catalog_url=url, catalog_timeout=0.3) as client:
        resp = await client.post(
            "/orders",
            headers=headers,
            json={"shipping_address": ADDRESS, "items": [{"product_id": pid, "quantity": 3}]},
        )
        assert resp.status_code in (503, 504), resp.text
        assert_problem(resp, resp.status_code)
        assert slow.release_calls and not any(map(slow.held, slow.reservations)) and slow.stock(pid) == 4
        assert (await client.get("/orders", headers=headers)).json()["total"] == 0


async def test_guest_cannot_place_an_order(client):
    resp = await client.post("/orders", json={"shipping_address": ADDRESS})
    assert_problem(resp, 401)


async def test_cart_unreachable_is_503(start_orders, keys):
    gone = CartStandIn()
    async with serve_app(gone.app()) as url:
        pass
    async with start_orders(cart_url=url) as client:
        resp = await client.post("/orders", json={"shipping_address": ADDRESS}, headers=keys.bearer())
        assert_problem(resp, 503)
