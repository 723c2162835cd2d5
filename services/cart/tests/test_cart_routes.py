"""Cart routes: adding, changing, removing, limits, bad input, who may call what."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from cart_testkit import Shop

from libs.common.testing import assert_problem


async def test_adding_an_unseen_product_fetches_it_from_catalog_once(shop: Shop) -> None:
    p = shop.catalog.add(price=1250, stock=8)
    _, me = shop.user()

    first = await shop.add(me, p["id"], 2)
    assert first.status_code == 201, first.text
    again = await shop.add(me, p["id"], 3)
    assert again.status_code == 200, again.text

    cart = again.json()
    [line] = cart["items"]
    assert line["product_id"] == p["id"] and line["name"] == p["name"]
    assert line["image"] == p["images"][0]
    assert (line["quantity"], line["unit_price"], line["added_unit_price"]) == (5, 1250, 1250)
    assert line["line_total"] == 6250 and line["availability"] == "available"
    assert (cart["item_count"], cart["subtotal"], cart["currency"]) == (5, 6250, "EUR")
    assert await shop.cart(me) == cart
    assert shop.catalog.calls[p["id"]] == 1


async def test_a_product_known_from_events_is_not_fetched_from_catalog(shop: Shop) -> None:
    p = await shop.known()
    _, me = shop.user()
    assert (await shop.add(me, p["id"])).status_code == 201
    assert shop.catalog.calls[p["id"]] == 0


async def test_empty_cart_has_no_items_and_zero_subtotal(shop: Shop) -> None:
    _, me = shop.user()
    assert await shop.cart(me) == {"items": [], "count": 0, "item_count": 0, "subtotal": 0, "currency": "USD"}


async def test_unknown_product_is_a_404_and_changes_nothing(shop: Shop) -> None:
    _, me = shop.user()
    missing = str(uuid.uuid4())
    body = assert_problem(await shop.add(me, missing), 404)
    assert missing in body["detail"]
    assert (await shop.cart(me))["items"] == []


async def test_catalog_failing_on_an_unseen_product_is_a_503(shop: Shop) -> None:
    p = shop.catalog.add()
    shop.catalog.broken.add(p["id"])
    _, me = shop.user()
    assert_problem(await shop.add(me, p["id"]), 503)
    assert (await shop.cart(me))["items"] == []


@pytest.mark.parametrize(
    "payload",
    [
        {"quantity": 0},
        {"quantity": 100},
        {"quantity": -1},
        {"quantity": "abc"},
        {"quantity": "2"},
        {"quantity": 1.5},
        {"quantity": None},
        {"quantity": True},
        {"product_id": "not-a-uuid"},
        {"product_id": None},
        {"extra": 1},
    ],
)
async def test_bad_add_input_is_a_422_naming_the_field_and_changes_nothing(
    shop: Shop, payload: dict[str, Any]
) -> None:
    p = await shop.known()
    _, me = shop.user()
    assert (await shop.add(me, p["id"], 1)).status_code == 201
    body = assert_problem(
        await shop.client.post("/cart", json={"product_id": p["id"], "quantity": 1, **payload}, headers=me),
        422,
    )
    assert body["errors"] and body["errors"][0]["field"] in payload
    [line] = (await shop.cart(me))["items"]
    assert line["quantity"] == 1


async def test_adding_more_than_the_stock_is_a_409_saying_how_many_are_available(shop: Shop) -> None:
    p = await shop.known(stock=3)
    _, me = shop.user()
    assert (await shop.add(me, p["id"], 2)).status_code == 201
    body = assert_problem(await shop.add(me, p["id"], 2), 409)
    assert body["available"] == 3 and body["in_cart"] == 2
    assert "Only 3" in body["detail"]
    assert (await shop.cart(me))["items"][0]["quantity"] == 2


async def test_out_of_stock_product_cannot_be_added(shop: Shop) -> None:
    p = await shop.known(stock=0)
    _, me = shop.user()
    body = assert_problem(await shop.add(me, p["id"]), 409)
    assert body["available"] == 0 and "out of stock" in body["detail"]


async def test_one_product_is_capped_at_99_units(shop: Shop) -> None:
    p = await shop.known(stock=500)
    _, me = shop.user()
    assert (await shop.add(me, p["id"], 99)).status_code == 201
    body = assert_problem(await shop.add(me, p["id"], 1), 409)
    assert body["max_quantity"] == 99 and "99" in body["detail"]
    assert (await shop.cart(me))["items"][0]["quantity"] == 99


@pytest.mark.parametrize("state", [{"is_active": False}, {"deleted": True}])
async def test_inactive_or_deleted_product_cannot_be_added(shop: Shop, state: dict[str, bool]) -> None:
    p = await shop.known(**state)
    _, me = shop.user()
    body = assert_problem(await shop.add(me, p["id"]), 409)
    assert p["name"] in body["detail"]
    assert (await shop.cart(me))["items"] == []


async def test_a_cart_holds_one_currency(shop: Shop) -> None:
    eur, usd = await shop.known(currency="EUR"), await shop.known(currency="USD")
    _, me = shop.user()
    assert (await shop.add(me, eur["id"])).status_code == 201
    body = assert_problem(await shop.add(me, usd["id"]), 409)
    assert body["cart_currency"] == "EUR" and body["product_currency"] == "USD"
    assert [i["product_id"] for i in (await shop.cart(me))["items"]] == [eur["id"]]


async def test_put_sets_the_quantity_and_zero_removes_the_line(shop: Shop) -> None:
    a, b = await shop.known(stock=10, price=100), await shop.known(stock=10, price=300)
    _, me = shop.user()
    await shop.add(me, a["id"], 1)
    cart = (await shop.add(me, b["id"], 1)).json()
    ids = {i["product_id"]: i["id"] for i in cart["items"]}

    resp = await shop.client.put(f"/cart/{ids[a['id']]}", json={"quantity": 4}, headers=me)
    assert resp.status_code == 200, resp.text
    assert resp.json()["subtotal"] == 4 * 100 + 300 and resp.json()["item_count"] == 5

    resp = await shop.client.put(f"/cart/{ids[b['id']]}", json={"quantity": 0}, headers=me)
    assert resp.status_code == 200
    assert [i["product_id"] for i in resp.json()["items"]] == [a["id"]]


@pytest.mark.parametrize("quantity", [100, -1, "abc", 2.5, None])
async def test_bad_put_quantity_is_a_422_and_changes_nothing(shop: Shop, quantity: Any) -> None:
    p = await shop.known()
    _, me = shop.user()
    [line] = (await shop.add(me, p["id"], 2)).json()["items"]
    assert_problem(await shop.client.put(f"/cart/{line['id']}", json={"quantity": quantity}, headers=me), 422)
    assert (await shop.cart(me))["items"][0]["quantity"] == 2


async def test_put_above_the_stock_is_a_409_and_changes_nothing(shop: Shop) -> None:
    p = await shop.known(stock=5)
    _, me = shop.user()
    [line] = (await shop.add(me, p["id"], 2)).json()["items"]
    body = assert_problem(await shop.client.put(f"/cart/{line['id']}", json={"quantity": 6}, headers=me), 409)
    assert body["available"] == 5
    assert (await shop.cart(me))["items"][0]["quantity"] == 2


async def test_delete_removes_one_line_and_clear_empties_the_cart(shop: Shop) -> None:
    a, b, c = await shop.known(), await shop.known(), await shop.known()
    _, me = shop.user()
    for p in (a, b, c):
        cart = (await shop.add(me, p["id"])).json()
    first = cart["items"][0]["id"]

    resp = await shop.client.delete(f"/cart/{first}", headers=me)
    assert resp.status_code == 200
    assert [i["product_id"] for i in resp.json()["items"]] == [b["id"], c["id"]]
    assert_problem(await shop.client.delete(f"/cart/{first}", headers=me), 404)

    resp = await shop.client.delete("/cart/clear", headers=me)
    assert resp.status_code == 200 and resp.json()["items"] == []
    assert (await shop.cart(me))["items"] == []


async def test_malformed_item_id_is_a_422(shop: Shop) -> None:
    _, me = shop.user()
    for resp in (
        await shop.client.put("/cart/abc", json={"quantity": 1}, headers=me),
        await shop.client.delete("/cart/12345", headers=me),
    ):
        body = assert_problem(resp, 422)
        assert body["errors"][0]["field"] == "item_id"


async def test_unknown_item_id_is_a_404(shop: Shop) -> None:
    _, me = shop.user()
    assert_problem(await shop.client.put(f"/cart/{uuid.uuid4()}", json={"quantity": 1}, headers=me), 404)
    assert_problem(await shop.client.delete(f"/cart/{uuid.uuid4()}", headers=me), 404)


async def test_user_cannot_read_change_or_delete_another_users_cart_item(shop: Shop) -> None:
    p = await shop.known()
    _, alice = shop.user()
    _, bob = shop.user()
    [line] = (await shop.add(alice, p["id"], 2)).json()["items"]

    assert (await shop.cart(bob))["items"] == []
    for resp in (
        await shop.client.put(f"/cart/{line['id']}", json={"quantity": 5}, headers=bob),
        await shop.client.put(f"/cart/{line['id']}", json={"quantity": 0}, headers=bob),
        await shop.client.delete(f"/cart/{line['id']}", headers=bob),
    ):
        body = assert_problem(resp, 404)
        assert "your cart" in body["detail"]
    assert (await shop.client.delete("/cart/clear", headers=bob)).status_code == 200
    [still] = (await shop.cart(alice))["items"]
    assert still["id"] == line["id"] and still["quantity"] == 2


async def test_every_cart_route_needs_a_signed_in_user(shop: Shop) -> None:
    item = uuid.uuid4()
    calls = [
        ("GET", "/cart", None),
        ("POST", "/cart", {"product_id": str(uuid.uuid4()), "quantity": 1}),
        ("PUT", f"/cart/{item}", {"quantity": 1}),
        ("DELETE", f"/cart/{item}", None),
        ("DELETE", "/cart/clear", None),
        ("GET", "/wishlist", None),
        ("POST", "/wishlist", {"product_id": str(uuid.uuid4())}),
        ("DELETE", f"/wishlist/{item}", None),
    ]
    bad_tokens = [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        shop.keys.bearer(expires_in=-10),
        shop.keys.bearer(audience="someone-else"),
    ]
    for method, path, body in calls:
        for headers in bad_tokens:
            resp = await shop.client.request(method, path, json=body, headers=headers)
            assert_problem(resp, 401)


async def test_internal_cart_route_answers_the_orders_service_only(shop: Shop) -> None:
    p = await shop.known(price=700)
    uid, me = shop.user()
    await shop.add(me, p["id"], 3)

    resp = await shop.client.get(f"/internal/carts/{uid}", headers=shop.internal)
    assert resp.status_code == 200
    assert resp.json() == await shop.cart(me)
    assert resp.json()["subtotal"] == 2100

    for headers in ({}, {"X-Internal-Token": "wrong"}, me):
        assert_problem(await shop.client.get(f"/internal/carts/{uid}", headers=headers), 403)
    assert_problem(await shop.client.get("/internal/carts/not-a-uuid", headers=shop.internal), 422)


async def test_racing_adds_of_one_product_end_in_one_line_with_every_unit(shop: Shop) -> None:
    p = await shop.known(stock=50)
    _, me = shop.user()
    results = await asyncio.gather(*(shop.add(me, p["id"], 2) for _ in range(6)))
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    [line] = (await shop.cart(me))["items"]
    assert line["quantity"] == 12


async def test_racing_adds_never_pass_the_stock(shop: Shop) -> None:
    p = await shop.known(stock=5)
    _, me = shop.user()
    results = await asyncio.gather(*(shop.add(me, p["id"], 2) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 201, 409, 409, 409]
    assert (await shop.cart(me))["items"][0]["quantity"] == 4
