"""Quotes and claims as orders and the cart will use them: shipping, tax and promotions for an address,
coupons that say why they do not apply, claims that are atomic and idempotent on the order id."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pricing_testkit import ADDRESS, BusTap, Shop

from libs.common.testing import assert_problem, eventually
from services.pricing import quotes, seed

ZONE = {
    "name": "Germany",
    "countries": ["DE"],
    "methods": [
        {"name": "Standard", "amount": 490, "currency": "EUR", "free_over": 10_000},
        {"name": "Express", "amount": 1290, "currency": "EUR"},
    ],
}
VAT = {"name": "VAT", "country": "DE", "rate_bp": 1900, "applies_to_shipping": True}
SHIRT, MUG = str(uuid.uuid4()), str(uuid.uuid4())


def cart(**extra: Any) -> dict[str, Any]:
    return {
        "currency": "EUR",
        "shipping_address": ADDRESS,
        "lines": [
            {"product_id": SHIRT, "unit_price": 2_999, "quantity": 2},
            {"product_id": MUG, "unit_price": 1_250, "quantity": 1},
        ],
    } | extra


async def configured(shop: Shop) -> dict[str, Any]:
    zone = await shop.create("/admin/shipping-zones", ZONE)
    await shop.create("/admin/tax-rates", VAT)
    return zone


async def test_a_quote_adds_the_cheapest_shipping_and_the_tax_of_the_address(shop: Shop) -> None:
    zone = await configured(shop)
    resp = await shop.quote(cart())
    assert resp.status_code == 200, resp.text
    b = resp.json()["breakdown"]
    assert (b["subtotal"], b["discount_total"], b["shipping_total"]) == (7_248, 0, 490)
    assert (
        b["shipping_method"]["id"] == zone["methods"][0]["id"] and b["shipping_method"]["name"] == "Standard"
    )
    # per line, half-even: 5998 -> 1139.62 -> 1140; 1250 -> 237.5 -> 238; shipping 490 -> 93.1 -> 93
    assert b["tax_lines"] == [{"name": "VAT", "rate": 1900, "amount": 1_471}]
    assert b["total"] == 7_248 + 490 + 1_471 and b["currency"] == "EUR"
    assert [m["name"] for m in resp.json()["shipping_methods"]] == ["Standard", "Express"]
    assert resp.json()["coupon"] is None


async def test_a_chosen_method_must_deliver_to_the_address(shop: Shop) -> None:
    zone = await configured(shop)
    express = zone["methods"][1]["id"]
    chosen = (await shop.quote(cart(shipping_method_id=express))).json()["breakdown"]
    assert chosen["shipping_total"] == 1_290
    abroad = await shop.quote(cart(shipping_method_id=express, shipping_address=ADDRESS | {"country": "FR"}))
    assert assert_problem(abroad, 422)["errors"][0]["field"] == "shipping_method_id"
    nowhere = await shop.quote(cart(shipping_address=ADDRESS | {"country": "FR"}))
    assert assert_problem(nowhere, 422)["errors"][0]["field"] == "shipping_address.country"


async def test_a_shop_without_zones_or_rates_charges_the_goods_only(shop: Shop) -> None:
    b = (await shop.quote(cart())).json()["breakdown"]
    assert (b["total"], b["shipping_method"], b["tax_lines"]) == (7_248, None, [])


async def test_tax_inclusive_prices_show_the_tax_inside_the_total(shop: Shop, pricing_app: Any) -> None:
    await shop.create("/admin/tax-rates", VAT)
    settings = shop.ctx.settings
    settings.prices_include_tax = True
    try:
        b = (
            await shop.quote(cart(lines=[{"product_id": SHIRT, "unit_price": 11_900, "quantity": 1}]))
        ).json()
    finally:
        settings.prices_include_tax = False
    assert (b["breakdown"]["total"], b["breakdown"]["tax_total"], b["breakdown"]["prices_include_tax"]) == (
        11_900,
        1_900,
        True,
    )


async def test_a_coupon_is_applied_with_automatic_promotions_that_stack(shop: Shop) -> None:
    await configured(shop)
    await shop.create(
        "/admin/promotions", {"name": "Free shipping", "stackable": True, "action": {"type": "free_shipping"}}
    )
    await shop.create(
        "/admin/promotions",
        {
            "name": "Ten off",
            "code": "TEN",
            "stackable": True,
            "action": {"type": "percent_off", "value": 1000},
        },
    )
    resp = (await shop.quote(cart(coupon_code="ten"))).json()
    assert resp["coupon"] == {
        "code": "TEN",
        "applied": True,
        "reason": None,
        "detail": None,
        "shortfall": None,
    }
    b = resp["breakdown"]
    assert [(d["label"], d["code"], d["amount"]) for d in b["discounts"]] == [
        ("Ten off", "TEN", 725),
        ("Free shipping", None, 490),
    ]
    assert b["total"] == b["subtotal"] - b["discount_total"] + b["shipping_total"] + b["tax_total"]


def category(category_id: uuid.UUID, parent_id: uuid.UUID | None, name: str) -> dict[str, Any]:
    """A category as catalog publishes it."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": str(category_id),
        "name": name,
        "slug": name.lower(),
        "description": "",
        "image_url": None,
        "parent_id": None if parent_id is None else str(parent_id),
        "position": 0,
        "product_count": 0,
        "created_at": now,
        "updated_at": now,
    }


def product(product_id: str, category_id: uuid.UUID) -> dict[str, Any]:
    """A product as catalog publishes it."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": product_id,
        "name": "Shirt",
        "slug": "shirt",
        "description": "",
        "price": 2_999,
        "compare_at_price": None,
        "currency": "EUR",
        "sku": "SHIRT-1",
        "category_id": str(category_id),
        "images": [],
        "stock": 5,
        "attributes": {},
        "is_active": True,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def order_created(order_id: uuid.UUID, customer: uuid.UUID) -> dict[str, Any]:
    return {
        "order_id": str(order_id),
        "user_id": str(customer),
        "status": "pending_payment",
        "items": [],
        "subtotal": 1,
        "total": 1,
        "currency": "EUR",
        "created_at": datetime.now(UTC).isoformat(),
    }


async def test_a_promotion_on_a_category_covers_products_in_its_sub_categories(shop: Shop) -> None:
    clothing, shirts = uuid.uuid4(), uuid.uuid4()
    await shop.publish("category.created", category(clothing, None, "Clothing"))
    await shop.publish("category.created", category(shirts, clothing, "Shirts"))
    await shop.publish("product.created", product(SHIRT, shirts))
    await shop.create(
        "/admin/promotions",
        {
            "name": "Clothing -25%",
            "rules": {"category_ids": [str(clothing)]},
            "action": {"type": "percent_off", "value": 2500},
        },
    )
    b = (await shop.quote(cart())).json()["breakdown"]
    assert [ln["discount"] for ln in b["lines"]] == [1_500, 0]


async def test_a_coupon_that_does_not_apply_says_why(shop: Shop) -> None:
    await shop.create(
        "/admin/promotions",
        {
            "name": "Big spender",
            "code": "BIG",
            "rules": {"min_subtotal": 10_000},
            "action": {"type": "amount_off", "value": 1_000},
        },
    )
    await shop.create(
        "/admin/promotions",
        {
            "name": "Old",
            "code": "OLD",
            "rules": {"ends_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
            "action": {"type": "amount_off", "value": 1_000},
        },
    )
    await shop.create(
        "/admin/promotions",
        {
            "name": "Hats",
            "code": "HATS",
            "rules": {"product_ids": [str(uuid.uuid4())]},
            "action": {"type": "percent_off", "value": 1000},
        },
    )
    big = (await shop.quote(cart(coupon_code="BIG"))).json()
    assert big["coupon"]["reason"] == "minimum_not_met" and big["coupon"]["shortfall"] == 2_752
    assert "27.52 EUR" in big["coupon"]["detail"] and big["breakdown"]["discount_total"] == 0
    assert (await shop.quote(cart(coupon_code="OLD"))).json()["coupon"]["reason"] == "expired"
    assert (await shop.quote(cart(coupon_code="HATS"))).json()["coupon"]["reason"] == "not_for_these_items"
    assert (await shop.quote(cart(coupon_code="NOPE"))).json()["coupon"]["reason"] == "unknown_code"


async def test_placing_an_order_claims_its_coupon_once_and_a_retry_gets_the_same_answer(
    shop: Shop, tap: BusTap
) -> None:
    await configured(shop)
    promo = await shop.create(
        "/admin/promotions",
        {
            "name": "Ten off",
            "code": "TEN",
            "rules": {"usage_limit": 5},
            "action": {"type": "percent_off", "value": 1000},
        },
    )
    customer, order = uuid.uuid4(), uuid.uuid4()
    body = cart(coupon_code="TEN", customer_id=str(customer), order_id=str(order))
    first = await shop.quote(body)
    assert first.status_code == 200, first.text
    again = await shop.quote(body)
    assert again.json() == first.json()
    got = (await shop.client.get(f"/admin/promotions/{promo['id']}", headers=shop.admin)).json()
    assert got["times_used"] == 1
    usages = (await shop.client.get(f"/admin/promotions/{promo['id']}/usages", headers=shop.admin)).json()
    assert [(u["order_id"], u["amount"]) for u in usages["items"]] == [(str(order), 725)]
    other = await shop.quote(body | {"lines": [{"product_id": SHIRT, "unit_price": 1, "quantity": 1}]})
    assert assert_problem(other, 409)["title"] == "Order already priced"

    async def published() -> None:
        assert len(tap.of("promotion.claimed", order_id=order)) == 1

    await eventually(published)


async def test_placing_an_order_with_a_coupon_that_does_not_apply_is_refused_with_the_reason(
    shop: Shop,
) -> None:
    await shop.create(
        "/admin/promotions",
        {
            "name": "Big spender",
            "code": "BIG",
            "rules": {"min_subtotal": 10_000},
            "action": {"type": "amount_off", "value": 1_000},
        },
    )
    order = uuid.uuid4()
    resp = await shop.quote(cart(coupon_code="BIG", customer_id=str(uuid.uuid4()), order_id=str(order)))
    body = assert_problem(resp, 422)
    assert (body["reason"], body["shortfall"], body["errors"][0]["field"]) == (
        "minimum_not_met",
        2_752,
        "coupon_code",
    )
    retry = await shop.quote(cart(customer_id=str(uuid.uuid4()), order_id=str(order)))
    assert retry.status_code == 200, "a refused claim stored nothing for the order"


async def test_an_unpaid_order_cancelled_gives_its_coupon_back(shop: Shop, tap: BusTap) -> None:
    promo = await shop.create(
        "/admin/promotions",
        {
            "name": "Once",
            "code": "ONCE",
            "rules": {"usage_limit": 1},
            "action": {"type": "amount_off", "value": 500},
        },
    )
    first_order, second_order, customer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert (await shop.quote(cart(coupon_code="ONCE", order_id=str(first_order)))).status_code == 200
    used_up = await shop.quote(cart(coupon_code="ONCE", order_id=str(second_order)))
    assert assert_problem(used_up, 422)["reason"] == "used_up"

    now = datetime.now(UTC).isoformat()
    await shop.publish("order.created", order_created(first_order, customer))
    await shop.publish(
        "order.status_changed",
        {
            "order_id": str(first_order),
            "user_id": str(customer),
            "from": "pending_payment",
            "to": "cancelled",
            "by": "system",
            "reason": None,
            "at": now,
            "total": 1,
            "currency": "EUR",
        },
    )
    got = (await shop.client.get(f"/admin/promotions/{promo['id']}", headers=shop.admin)).json()
    assert got["times_used"] == 0
    assert (await shop.quote(cart(coupon_code="ONCE", order_id=str(second_order)))).status_code == 200
    released = await shop.client.post(f"/internal/orders/{first_order}/release", headers=shop.internal)
    assert released.json()["released"] == [], "releasing twice gives nothing back twice"

    async def published() -> None:
        assert len(tap.of("promotion.released", order_id=first_order)) == 1

    await eventually(published)


async def test_a_first_order_coupon_is_for_a_customers_first_order_only(shop: Shop) -> None:
    await shop.create(
        "/admin/promotions",
        {
            "name": "Welcome",
            "code": "WELCOME",
            "rules": {"first_order_only": True},
            "action": {"type": "percent_off", "value": 1500},
        },
    )
    customer = uuid.uuid4()
    first = await shop.quote(
        cart(coupon_code="WELCOME", customer_id=str(customer), order_id=str(uuid.uuid4()))
    )
    assert first.status_code == 200, first.text
    # orders has not told pricing of that order yet: pricing's own claim already counts
    second = await shop.quote(cart(coupon_code="WELCOME", customer_id=str(customer)))
    assert second.json()["coupon"]["reason"] == "first_order_only"


async def test_200_customers_racing_for_the_last_50_uses_of_a_code_get_exactly_50(shop: Shop) -> None:
    promo = await shop.create(
        "/admin/promotions",
        {
            "name": "Flash",
            "code": "FLASH",
            "rules": {"usage_limit": 60},
            "action": {"type": "amount_off", "value": 500},
        },
    )
    for _ in range(10):  # ten uses are already gone
        assert (await shop.quote(cart(coupon_code="FLASH", order_id=str(uuid.uuid4())))).status_code == 200
    busy = 0

    async def claim() -> int:
        nonlocal busy
        body = cart(coupon_code="FLASH", customer_id=str(uuid.uuid4()), order_id=str(uuid.uuid4()))
        for _ in range(5):
            resp = await shop.quote(body)
            if resp.status_code != 503:
                break
            # a 503 (every database connection busy: 200 claims in one process on a shared machine)
            # changed nothing; orders would say "try again", so the customer does
            busy += 1
            await asyncio.sleep(0.5)
        if resp.status_code == 422:
            assert resp.json()["reason"] == "used_up", resp.text
        return resp.status_code

    statuses = await asyncio.gather(*(claim() for _ in range(200)))
    assert statuses.count(200) == 50 and statuses.count(422) == 150, (sorted(set(statuses)), busy)
    got = (await shop.client.get(f"/admin/promotions/{promo['id']}", headers=shop.admin)).json()
    assert got["times_used"] == 60
    usages = (
        await shop.client.get(
            f"/admin/promotions/{promo['id']}/usages", params={"page_size": 100}, headers=shop.admin
        )
    ).json()
    assert usages["total"] == 60 and len({u["order_id"] for u in usages["items"]}) == 60


async def test_a_claim_whose_order_never_appeared_is_given_back_by_the_sweeper(shop: Shop) -> None:
    promo = await shop.create(
        "/admin/promotions",
        {
            "name": "Two",
            "code": "TWO",
            "rules": {"usage_limit": 2},
            "action": {"type": "amount_off", "value": 500},
        },
    )
    ghost, real, customer = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for order in (ghost, real):
        assert (await shop.quote(cart(coupon_code="TWO", order_id=str(order)))).status_code == 200
    await shop.publish("order.created", order_created(real, customer))
    assert shop.ctx.db is not None
    async with shop.ctx.db.session() as session:
        assert await quotes.release_unconfirmed(session=session, older_than=timedelta(hours=1)) == 0
        assert await quotes.release_unconfirmed(session=session, older_than=timedelta(0)) == 1
    usages = (await shop.client.get(f"/admin/promotions/{promo['id']}/usages", headers=shop.admin)).json()[
        "items"
    ]
    assert {u["order_id"]: u["released_at"] is not None for u in usages} == {
        str(ghost): True,
        str(real): False,
    }


async def test_a_fresh_shop_is_seeded_with_a_zone_a_rate_and_a_demo_coupon_once(shop: Shop) -> None:
    promo = await shop.create("/admin/promotions", {"name": "Own", "action": {"type": "free_shipping"}})
    assert await seed.seed(shop.ctx.settings) is None, "a shop with its own promotions gets no demo"
    await shop.client.delete(f"/admin/promotions/{promo['id']}", headers=shop.admin)
    settings = shop.ctx.settings
    assert await seed.seed(settings, country="DE", tax_name="VAT", tax_bp=1900) == "WELCOME10"
    assert await seed.seed(settings, country="FR") == "WELCOME10", "the live demo coupon is named again"
    zones = (await shop.client.get("/admin/shipping-zones", headers=shop.admin)).json()
    assert [z["countries"] for z in zones] == [["DE"]], "a configured pricing is left alone"
    resp = await shop.quote(cart(coupon_code="welcome10", customer_id=str(uuid.uuid4())))
    body = resp.json()
    assert body["coupon"]["applied"] is True
    assert [m["name"] for m in body["shipping_methods"]] == ["Standard", "Express"]
    assert body["breakdown"]["shipping_total"] == 0, "free over 50.00"
    assert body["breakdown"]["tax_lines"][0]["rate"] == 1900


async def test_a_code_limited_per_customer_is_refused_to_that_customer_only(shop: Shop) -> None:
    await shop.create(
        "/admin/promotions",
        {
            "name": "Once each",
            "code": "ONCEEACH",
            "rules": {"usage_limit_per_customer": 1},
            "action": {"type": "amount_off", "value": 300},
        },
    )
    ada, bob = str(uuid.uuid4()), str(uuid.uuid4())
    assert (
        await shop.quote(cart(coupon_code="ONCEEACH", customer_id=ada, order_id=str(uuid.uuid4())))
    ).status_code == 200
    again = await shop.quote(cart(coupon_code="ONCEEACH", customer_id=ada, order_id=str(uuid.uuid4())))
    assert assert_problem(again, 422)["reason"] == "used_up_by_customer"
    assert (
        await shop.quote(cart(coupon_code="ONCEEACH", customer_id=bob, order_id=str(uuid.uuid4())))
    ).status_code == 200


async def test_sweepers_of_several_replicas_give_each_unconfirmed_claim_back_once(shop: Shop) -> None:
    """Every replica runs the claims sweeper: racing copies release each claim once, so uses never go below."""
    promo = await shop.create(
        "/admin/promotions",
        {
            "name": "Eight",
            "code": "EIGHT",
            "rules": {"usage_limit": 8},
            "action": {"type": "amount_off", "value": 100},
        },
    )
    for _ in range(8):
        assert (await shop.quote(cart(coupon_code="EIGHT", order_id=str(uuid.uuid4())))).status_code == 200
    db = shop.ctx.db
    assert db is not None

    async def replica() -> int:
        released = 0
        for _ in range(6):
            async with db.session() as session:
                released += await quotes.release_unconfirmed(
                    session=session, older_than=timedelta(0), batch=2
                )
        return released

    assert sum(await asyncio.gather(*(replica() for _ in range(4)))) == 8
    got = (await shop.client.get(f"/admin/promotions/{promo['id']}", headers=shop.admin)).json()
    assert got["times_used"] == 0
    usages = (await shop.client.get(f"/admin/promotions/{promo['id']}/usages", headers=shop.admin)).json()
    assert usages["total"] == 8 and all(u["released_at"] is not None for u in usages["items"])
