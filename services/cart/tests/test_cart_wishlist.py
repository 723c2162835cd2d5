"""Wishlist: idempotent adds, current product data, ownership, bad input."""

from __future__ import annotations

import uuid

from cart_testkit import Shop, changed

from libs.common.testing import assert_problem


async def test_adding_a_product_twice_keeps_one_entry(shop: Shop) -> None:
    p = await shop.known(price=4500, stock=0)
    _, me = shop.user()

    first = await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    assert first.status_code == 201, first.text
    again = await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    listed = (await shop.client.get("/wishlist", headers=me)).json()
    assert listed["count"] == listed["item_count"] == 1
    [entry] = listed["items"]
    assert entry["product_id"] == p["id"] and entry["name"] == p["name"]
    assert (entry["price"], entry["currency"], entry["availability"]) == (4500, "EUR", "out_of_stock")


async def test_wishlist_shows_current_product_data(shop: Shop) -> None:
    p = await shop.known(price=1000)
    _, me = shop.user()
    await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    await shop.publish("product.updated", changed(p, name="Better lamp", price=800, version=2))
    [entry] = (await shop.client.get("/wishlist", headers=me)).json()["items"]
    assert (entry["name"], entry["price"]) == ("Better lamp", 800)


async def test_an_unseen_product_is_fetched_from_catalog_once(shop: Shop) -> None:
    p = shop.catalog.add()
    _, me = shop.user()
    _, other = shop.user()
    assert (await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)).status_code == 201
    assert (
        await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=other)
    ).status_code == 201
    assert shop.catalog.calls[p["id"]] == 1


async def test_removing_an_entry(shop: Shop) -> None:
    p = await shop.known()
    _, me = shop.user()
    entry = (await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)).json()
    resp = await shop.client.delete(f"/wishlist/{entry['id']}", headers=me)
    assert resp.status_code == 204
    assert (await shop.client.get("/wishlist", headers=me)).json() == {
        "items": [],
        "count": 0,
        "item_count": 0,
    }
    assert_problem(await shop.client.delete(f"/wishlist/{entry['id']}", headers=me), 404)


async def test_bad_wishlist_input_is_refused_and_changes_nothing(shop: Shop) -> None:
    _, me = shop.user()
    for body in ({}, {"product_id": "abc"}, {"product_id": 5}):
        assert_problem(await shop.client.post("/wishlist", json=body, headers=me), 422)
    assert_problem(
        await shop.client.post("/wishlist", json={"product_id": str(uuid.uuid4())}, headers=me), 404
    )
    hidden = await shop.known(is_active=False)
    assert_problem(await shop.client.post("/wishlist", json={"product_id": hidden["id"]}, headers=me), 409)
    assert_problem(await shop.client.delete("/wishlist/not-a-uuid", headers=me), 422)
    assert (await shop.client.get("/wishlist", headers=me)).json()["count"] == 0


async def test_user_cannot_read_or_delete_another_users_wishlist_entry(shop: Shop) -> None:
    p = await shop.known()
    _, alice = shop.user()
    _, bob = shop.user()
    entry = (await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=alice)).json()

    assert (await shop.client.get("/wishlist", headers=bob)).json()["count"] == 0
    body = assert_problem(await shop.client.delete(f"/wishlist/{entry['id']}", headers=bob), 404)
    assert "your wishlist" in body["detail"]
    [kept] = (await shop.client.get("/wishlist", headers=alice)).json()["items"]
    assert kept["id"] == entry["id"]


async def test_cart_and_wishlist_share_one_list_shape_and_one_availability_vocabulary(shop: Shop) -> None:
    sold_out, plenty = await shop.known(stock=0), await shop.known(stock=5)
    _, me = shop.user()
    for p in (sold_out, plenty):
        await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    await shop.add(me, plenty["id"], 2)
    await shop.publish("stock.changed", {"product_id": plenty["id"], "stock": 0, "version": 2})
    wishlist = (await shop.client.get("/wishlist", headers=me)).json()
    cart = await shop.cart(me)
    assert {"items", "count", "item_count"} <= set(wishlist) and {"items", "count", "item_count"} <= set(cart)
    assert (cart["count"], cart["item_count"], wishlist["count"]) == (1, 2, 2)
    # the same product, sold out, in the same words in both
    assert cart["items"][0]["availability"] == "out_of_stock"
    assert {e["availability"] for e in wishlist["items"]} == {"out_of_stock"}
