"""Cart and wishlist lines per variant: choosing one, carrying its SKU and title, following its events."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from cart_testkit import Shop, product

from libs.common.testing import assert_problem
from services.cart.models import CartItem, WishlistEntry


def tee(**overrides: Any) -> dict[str, Any]:
    """A T-shirt in two sizes and one colour, as catalog shows it."""
    pid = str(uuid.uuid4())

    def v(size: str, price: int, stock: int, position: int) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "sku": f"TEE-{size}-{pid[:6]}",
            "title": f"{size} / Red",
            "options": {"Size": size, "Colour": "Red"},
            "price": price,
            "compare_at_price": None,
            "stock": stock,
            "is_active": True,
            "image_id": None,
            "position": position,
        }

    return product(
        id=pid,
        name=f"Tee {pid[:6]}",
        price=1900,
        stock=5,
        options=[{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Red"]}],
        variants=[v("S", 1900, 2, 0), v("M", 2100, 3, 1)],
        **overrides,
    )


async def add(shop: Shop, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return await shop.client.post("/cart", json=body, headers=headers)


async def test_a_product_with_several_variants_needs_one_chosen_and_the_line_names_it(shop: Shop) -> None:
    p = tee()
    await shop.publish("product.created", p)
    small, medium = p["variants"]
    _, me = shop.user()
    vague = await add(shop, me, {"product_id": p["id"], "quantity": 1})
    problem = assert_problem(vague, 422, "variant-required")
    assert problem["options"] == ["Colour", "Size"]
    assert [e["field"] for e in problem["errors"]] == ["variant_id"]
    assert (await shop.cart(me))["items"] == []

    made = await add(shop, me, {"variant_id": medium["id"], "quantity": 2})
    assert made.status_code == 201, made.text
    also = await add(shop, me, {"product_id": p["id"], "variant_id": small["id"]})
    assert also.status_code == 201, also.text
    lines = {ln["title"]: ln for ln in also.json()["items"]}
    m = lines["M / Red"]
    assert (m["product_id"], m["variant_id"], m["sku"], m["options"]) == (
        p["id"],
        medium["id"],
        medium["sku"],
        {"Size": "M", "Colour": "Red"},
    )
    assert (m["unit_price"], m["quantity"], m["line_total"], m["stock"]) == (2100, 2, 4200, 3)
    assert lines["S / Red"]["unit_price"] == 1900
    assert also.json()["subtotal"] == 4200 + 1900
    # more than the variant holds is refused, naming it
    over = assert_problem(
        await add(shop, me, {"variant_id": small["id"], "quantity": 2}), 409, "insufficient-stock"
    )
    assert (over["variant_id"], over["available"], over["in_cart"]) == (small["id"], 2, 1)
    wrong = await add(shop, me, {"product_id": p["id"], "variant_id": str(uuid.uuid4())})
    assert [e["field"] for e in assert_problem(wrong, 422)["errors"]] == ["variant_id"]


async def test_a_single_variant_product_is_added_by_product_id(shop: Shop) -> None:
    p = await shop.known(price=1500, stock=4)
    _, me = shop.user()
    resp = await shop.add(me, p["id"], 1)
    assert resp.status_code == 201, resp.text
    [line] = resp.json()["items"]
    (only,) = p["variants"]
    assert (line["variant_id"], line["sku"], line["title"]) == (only["id"], p["sku"], "Default")
    again = await add(shop, me, {"variant_id": only["id"]})
    assert again.status_code == 200 and again.json()["items"][0]["quantity"] == 2


async def test_the_lines_follow_variant_price_stock_and_retirement_by_events(shop: Shop) -> None:
    p = tee()
    await shop.publish("product.created", p)
    small, medium = p["variants"]
    _, me = shop.user()
    await add(shop, me, {"variant_id": small["id"], "quantity": 2})
    await add(shop, me, {"variant_id": medium["id"], "quantity": 1})
    # an order elsewhere took one S: only S moved
    await shop.publish(
        "stock.changed",
        {
            "product_id": p["id"],
            "stock": 4,
            "version": 2,
            "variants": [{"id": small["id"], "sku": small["sku"], "stock": 1}],
        },
    )
    lines = {ln["title"]: ln for ln in (await shop.cart(me))["items"]}
    assert (lines["S / Red"]["stock"], lines["S / Red"]["availability"]) == (1, "insufficient_stock")
    assert (lines["M / Red"]["stock"], lines["M / Red"]["availability"]) == (3, "available")
    # M's price changes, then S is retired (left out of the product's variants)
    await shop.publish(
        "product.updated",
        {**p, "version": 3, "variants": [{**small, "stock": 1}, {**medium, "price": 2500}]},
    )
    lines = {ln["title"]: ln for ln in (await shop.cart(me))["items"]}
    assert lines["M / Red"]["unit_price"] == 2500
    await shop.publish("product.updated", {**p, "version": 4, "variants": [{**medium, "price": 2500}]})
    cart = await shop.cart(me)
    lines = {ln["title"]: ln for ln in cart["items"]}
    assert lines["S / Red"]["availability"] == "unavailable"
    assert cart["subtotal"] == 2500  # what cannot be bought is not counted
    gone = await add(shop, me, {"variant_id": small["id"]})
    assert assert_problem(gone, 409, "product-unavailable")["variant_id"] == small["id"]
    # a stale event changes nothing
    await shop.publish("product.updated", {**p, "version": 3, "variants": [small, medium]})
    assert {ln["title"]: ln for ln in (await shop.cart(me))["items"]}["S / Red"][
        "availability"
    ] == "unavailable"


async def test_a_line_from_before_variants_stands_for_the_only_variant(shop: Shop) -> None:
    p = await shop.known(price=700, stock=9)
    (only,) = p["variants"]
    user_id, me = shop.user()
    assert shop.ctx.db is not None
    async with shop.ctx.db.session() as s, s.begin():
        s.add(
            CartItem(
                user_id=user_id,
                product_id=uuid.UUID(p["id"]),
                quantity=2,
                added_unit_price=700,
                currency="EUR",
            )
        )
        s.add(WishlistEntry(user_id=user_id, product_id=uuid.UUID(p["id"])))
    [line] = (await shop.cart(me))["items"]
    assert (line["variant_id"], line["sku"], line["title"]) == (only["id"], p["sku"], "Default")
    # adding the product again is the same line, which now names its variant
    more = await shop.add(me, p["id"], 1)
    assert more.status_code == 200, more.text
    assert [(ln["variant_id"], ln["quantity"]) for ln in more.json()["items"]] == [(only["id"], 3)]
    async with shop.ctx.db.session() as s:
        stored = await s.scalar(sa.select(CartItem.variant_id).where(CartItem.user_id == user_id))
    assert str(stored) == only["id"]
    again = await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    assert again.status_code == 200, again.text
    [entry] = (await shop.client.get("/wishlist", headers=me)).json()["items"]
    assert (entry["variant_id"], entry["title"]) == (only["id"], "Default")


async def test_wishlist_keeps_a_variant_or_the_product_as_a_whole(shop: Shop) -> None:
    p = tee()
    await shop.publish("product.created", p)
    medium = p["variants"][1]
    _, me = shop.user()
    whole = await shop.client.post("/wishlist", json={"product_id": p["id"]}, headers=me)
    assert whole.status_code == 201, whole.text
    assert whole.json()["variant_id"] is None and whole.json()["price"] == 1900
    one = await shop.client.post(
        "/wishlist", json={"product_id": p["id"], "variant_id": medium["id"]}, headers=me
    )
    assert one.status_code == 201, one.text
    assert (one.json()["variant_id"], one.json()["sku"], one.json()["title"], one.json()["price"]) == (
        medium["id"],
        medium["sku"],
        "M / Red",
        2100,
    )
    same = await shop.client.post(
        "/wishlist", json={"product_id": p["id"], "variant_id": medium["id"]}, headers=me
    )
    assert same.status_code == 200 and same.json()["id"] == one.json()["id"]
    listed = (await shop.client.get("/wishlist", headers=me)).json()
    assert listed["count"] == 2


async def test_the_cart_read_and_the_cart_a_change_answers_are_the_same_to_the_byte(shop: Shop) -> None:
    # GET /cart (and the orders service's read) come from one statement, a change's answer from the
    # ORM: every kind of line must be shown alike by both
    tees = [tee() for _ in range(3)]
    for p in tees:
        await shop.publish("product.created", p)
    single = await shop.known(price=700, stock=9)
    hidden = await shop.known(price=800, stock=4)
    dollars = await shop.known(price=900, stock=1)
    user_id, me = shop.user()
    chosen = [tees[0]["variants"][1], tees[0]["variants"][0], tees[1]["variants"][0]]
    for variant, quantity in zip(chosen, (2, 1, 2), strict=True):
        assert (await add(shop, me, {"variant_id": variant["id"], "quantity": quantity})).status_code == 201
    for p in (single, hidden, dollars):
        assert (await shop.add(me, p["id"])).status_code == 201
    assert shop.ctx.db is not None
    async with shop.ctx.db.session() as s, s.begin():
        # from before variants: of a product with several live variants, and of one with one
        s.add(
            CartItem(
                user_id=user_id,
                product_id=uuid.UUID(tees[2]["id"]),
                quantity=1,
                added_unit_price=1,
                currency="EUR",
            )
        )
        await s.execute(
            sa.update(CartItem).where(CartItem.product_id == uuid.UUID(single["id"])).values(variant_id=None)
        )
    small, medium = tees[0]["variants"]
    await shop.publish("product.updated", {**tees[0], "version": 2, "variants": [{**medium, "stock": 1}]})
    await shop.publish("product.updated", {**hidden, "version": 2, "is_active": False})
    await shop.publish("product.updated", {**dollars, "version": 2, "currency": "USD"})
    await shop.publish(
        "stock.changed",
        {
            "product_id": tees[1]["id"],
            "stock": 0,
            "version": 2,
            "variants": [{"id": tees[1]["variants"][0]["id"], "sku": "x", "stock": 0}],
        },
    )

    read = await shop.client.get("/cart", headers=me)
    assert read.status_code == 200, read.text
    lines = {(ln["product_id"], ln["sku"]): ln for ln in read.json()["items"]}
    assert len(lines) == 7
    assert lines[(tees[0]["id"], medium["sku"])]["availability"] == "insufficient_stock"
    assert lines[(tees[0]["id"], small["sku"])]["availability"] == "unavailable"  # retired
    assert lines[(tees[1]["id"], tees[1]["variants"][0]["sku"])]["availability"] == "out_of_stock"
    vague = lines[(tees[2]["id"], None)]
    assert (vague["variant_id"], vague["title"], vague["options"], vague["unit_price"]) == (
        None,
        None,
        {},
        1900,
    )
    assert lines[(single["id"], single["sku"])]["variant_id"] == single["variants"][0]["id"]
    assert lines[(hidden["id"], hidden["sku"])]["availability"] == "unavailable"
    assert lines[(dollars["id"], dollars["sku"])]["availability"] == "unavailable"
    # what cannot be bought is left out; what is short of stock is not
    assert read.json()["subtotal"] == 2 * 2100 + 2 * 1900 + 1900 + 700
    line = lines[(single["id"], single["sku"])]
    changed = await shop.client.put(f"/cart/{line['id']}", json={"quantity": 1}, headers=me)
    assert changed.status_code == 200, changed.text
    assert changed.content == read.content
    internal = await shop.client.get(f"/internal/carts/{user_id}", headers=shop.internal)
    assert internal.content == read.content
