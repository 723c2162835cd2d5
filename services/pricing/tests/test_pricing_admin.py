"""Admin REST of pricing: promotions, shipping zones (methods inside) and tax rates, who may use it,
what it refuses, and the events each change publishes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pricing_testkit import BusTap, Shop

from libs.common.testing import assert_problem, eventually

PROMOTION = {
    "name": "Summer sale",
    "code": "summer10",
    "stackable": False,
    "rules": {"min_subtotal": 5000, "usage_limit": 100, "usage_limit_per_customer": 1},
    "action": {"type": "percent_off", "value": 1000},
}
ZONE = {
    "name": "Germany",
    "countries": ["DE"],
    "methods": [
        {
            "name": "Standard",
            "amount": 490,
            "currency": "EUR",
            "free_over": 5000,
            "estimate": {"min_days": 2, "max_days": 4},
        },
        {"name": "Express", "amount": 1290, "currency": "EUR"},
    ],
}
RATE = {"name": "VAT", "country": "DE", "rate_bp": 1900, "applies_to_shipping": True}

ADMIN_ROUTES = [
    ("GET", "/admin/promotions", None),
    ("POST", "/admin/promotions", PROMOTION),
    ("GET", "/admin/shipping-zones", None),
    ("POST", "/admin/shipping-zones", ZONE),
    ("GET", "/admin/tax-rates", None),
    ("POST", "/admin/tax-rates", RATE),
    ("PATCH", f"/admin/tax-rates/{uuid.uuid4()}", {"rate_bp": 700}),
    ("DELETE", f"/admin/promotions/{uuid.uuid4()}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_guests_and_customers_cannot_use_the_admin_routes(
    shop: Shop, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert_problem(await shop.client.request(method, path, json=body), 401)
    _, customer = shop.customer()
    assert_problem(await shop.client.request(method, path, json=body, headers=customer), 403)
    listing = await shop.client.get("/admin/promotions", headers=shop.admin)
    assert listing.json()["total"] == 0, "a refused call changed nothing"


async def test_only_the_shops_own_services_may_ask_for_a_quote(shop: Shop) -> None:
    body = {
        "currency": "EUR",
        "shipping_address": {"country": "DE"},
        "lines": [{"product_id": str(uuid.uuid4()), "unit_price": 1000, "quantity": 1}],
    }
    assert_problem(await shop.client.post("/internal/quotes", json=body), 403)
    assert_problem(await shop.client.post("/internal/quotes", json=body, headers=shop.admin), 403)
    assert_problem(
        await shop.client.post("/internal/quotes", json=body, headers={"X-Internal-Token": "guess"}), 403
    )
    assert (await shop.quote(body)).status_code == 200


async def test_a_coupon_is_created_read_changed_and_deleted(shop: Shop, tap: BusTap) -> None:
    created = await shop.create("/admin/promotions", PROMOTION)
    assert created["code"] == "SUMMER10" and created["currency"] == "EUR" and created["times_used"] == 0
    assert created["action"] == {"type": "percent_off", "value": 1000}
    pid = created["id"]
    got = await shop.client.get(f"/admin/promotions/{pid}", headers=shop.admin)
    assert got.json() == created

    patched = await shop.client.patch(
        f"/admin/promotions/{pid}",
        headers=shop.admin,
        json={"is_active": False, "action": {"type": "amount_off", "value": 500}},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["is_active"] is False and patched.json()["action"] == {
        "type": "amount_off",
        "value": 500,
    }
    assert patched.json()["rules"]["usage_limit"] == 100, "PATCH keeps what it does not name"

    replaced = await shop.client.put(
        f"/admin/promotions/{pid}",
        headers=shop.admin,
        json={"name": "Autumn", "action": {"type": "free_shipping"}},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["code"] is None and replaced.json()["rules"]["usage_limit"] is None, (
        "PUT sets all again"
    )

    listing = await shop.client.get("/admin/promotions", params={"q": "autumn"}, headers=shop.admin)
    assert [p["id"] for p in listing.json()["items"]] == [pid]
    assert (await shop.client.delete(f"/admin/promotions/{pid}", headers=shop.admin)).status_code == 204
    assert_problem(await shop.client.get(f"/admin/promotions/{pid}", headers=shop.admin), 404)

    async def published() -> None:
        kinds = [e.type for e in tap.events if e.data.get("id") == pid]
        assert kinds == [
            "promotion.created",
            "promotion.updated",
            "promotion.updated",
            "promotion.deleted",
        ], kinds

    await eventually(published)


async def test_a_code_is_used_by_one_live_promotion_and_freed_by_deleting_it(shop: Shop) -> None:
    first = await shop.create("/admin/promotions", PROMOTION)
    body = assert_problem(
        await shop.client.post(
            "/admin/promotions", json=PROMOTION | {"code": "Summer10"}, headers=shop.admin
        ),
        409,
    )
    assert body["errors"][0]["field"] == "code"
    await shop.client.delete(f"/admin/promotions/{first['id']}", headers=shop.admin)
    await shop.create("/admin/promotions", PROMOTION)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": {"type": "percent_off", "value": 10001}}, "action.percent_off.value"),
        ({"action": {"type": "percent_off", "value": 12.5}}, "action.percent_off.value"),
        ({"action": {"type": "amount_off", "value": 0}}, "action.amount_off.value"),
        ({"action": {"type": "buy_x_get_y", "buy": 0, "get": 1}}, "action.buy_x_get_y.buy"),
        ({"action": {"type": "double_points"}}, "action"),
        ({"code": "no spaces"}, "code"),
        ({"currency": "EUX"}, "currency"),
        ({"rules": {"min_subtotal": -1}}, "rules.min_subtotal"),
        ({"rules": {"usage_limit": 0}}, "rules.usage_limit"),
        (
            {"rules": {"starts_at": "2026-07-01T00:00:00Z", "ends_at": "2026-06-01T00:00:00Z"}},
            "rules.ends_at",
        ),
        ({"rules": {"starts_at": "2026-07-01T00:00:00"}}, "rules.starts_at"),
        ({"name": ""}, "name"),
        ({"surprise": True}, "surprise"),
    ],
)
async def test_a_bad_promotion_is_a_422_naming_the_field(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    body = assert_problem(
        await shop.client.post("/admin/promotions", json=PROMOTION | change, headers=shop.admin), 422
    )
    assert field in [e["field"] for e in body["errors"]], body["errors"]
    assert (await shop.client.get("/admin/promotions", headers=shop.admin)).json()["total"] == 0


async def test_a_shipping_zone_keeps_sent_methods_adds_new_ones_and_drops_the_rest(
    shop: Shop, tap: BusTap
) -> None:
    zone = await shop.create("/admin/shipping-zones", ZONE)
    assert [m["name"] for m in zone["methods"]] == ["Standard", "Express"]
    assert zone["methods"][0]["estimate"] == {"min_days": 2, "max_days": 4}
    standard = zone["methods"][0]
    resp = await shop.client.patch(
        f"/admin/shipping-zones/{zone['id']}",
        headers=shop.admin,
        json={
            "countries": ["DE", "AT"],
            "methods": [
                {"id": standard["id"], "name": "Standard", "amount": 590, "currency": "EUR"},
                {"name": "Pickup", "amount": 0, "currency": "EUR"},
            ],
        },
    )
    assert resp.status_code == 200, resp.text
    methods = resp.json()["methods"]
    assert [(m["name"], m["amount"]) for m in methods] == [("Standard", 590), ("Pickup", 0)]
    assert methods[0]["id"] == standard["id"]
    assert resp.json()["countries"] == ["DE", "AT"]

    stranger = await shop.client.patch(
        f"/admin/shipping-zones/{zone['id']}",
        headers=shop.admin,
        json={"methods": [{"id": str(uuid.uuid4()), "name": "Ghost", "amount": 1, "currency": "EUR"}]},
    )
    assert assert_problem(stranger, 422)["errors"][0]["field"] == "methods.0.id"

    listed = await shop.client.get("/admin/shipping-zones", params={"country": "at"}, headers=shop.admin)
    assert [z["id"] for z in listed.json()] == [zone["id"]]
    assert (
        await shop.client.delete(f"/admin/shipping-zones/{zone['id']}", headers=shop.admin)
    ).status_code == 204
    assert_problem(await shop.client.get(f"/admin/shipping-zones/{zone['id']}", headers=shop.admin), 404)

    async def published() -> None:
        kinds = [e.type for e in tap.events if e.data.get("id") == zone["id"]]
        assert kinds == ["shipping.zone_created", "shipping.zone_updated", "shipping.zone_deleted"], kinds

    await eventually(published)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"countries": ["XX"]}, "countries.0"),
        ({"countries": ["DEU"]}, "countries.0"),
        ({"countries": []}, "countries"),
        ({"countries": ["DE", "de"]}, "countries"),
        ({"methods": [{"name": "Standard", "amount": 490, "currency": "EURO"}]}, "methods.0.currency"),
        ({"methods": [{"name": "Standard", "amount": 490, "currency": "ZZZ"}]}, "methods.0.currency"),
        ({"methods": [{"name": "Standard", "amount": -1, "currency": "EUR"}]}, "methods.0.amount"),
        ({"methods": [{"name": "Standard", "amount": 4.9, "currency": "EUR"}]}, "methods.0.amount"),
        (
            {
                "methods": [
                    {
                        "name": "Standard",
                        "amount": 490,
                        "currency": "EUR",
                        "estimate": {"min_days": 5, "max_days": 2},
                    }
                ]
            },
            "methods.0.estimate.max_days",
        ),
    ],
)
async def test_a_bad_shipping_zone_is_a_422_naming_the_field(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    body = assert_problem(
        await shop.client.post("/admin/shipping-zones", json=ZONE | change, headers=shop.admin), 422
    )
    assert field in [e["field"] for e in body["errors"]], body["errors"]


async def test_tax_rates_are_data_an_admin_edits(shop: Shop, tap: BusTap) -> None:
    rate = await shop.create("/admin/tax-rates", RATE)
    assert (rate["country"], rate["region"], rate["rate_bp"]) == ("DE", None, 1900)
    regional = await shop.create(
        "/admin/tax-rates", {"name": "PST", "country": "ca", "region": "BC", "rate_bp": 700}
    )
    assert regional["country"] == "CA"
    dup = await shop.client.post("/admin/tax-rates", json=RATE | {"name": "vat"}, headers=shop.admin)
    assert assert_problem(dup, 409)["errors"][0]["field"] == "name"

    patched = await shop.client.patch(
        f"/admin/tax-rates/{rate['id']}", json={"rate_bp": 700}, headers=shop.admin
    )
    assert patched.status_code == 200 and patched.json()["rate_bp"] == 700 and patched.json()["name"] == "VAT"
    only_de = await shop.client.get("/admin/tax-rates", params={"country": "DE"}, headers=shop.admin)
    assert [r["id"] for r in only_de.json()] == [rate["id"]]
    assert (await shop.client.delete(f"/admin/tax-rates/{rate['id']}", headers=shop.admin)).status_code == 204
    assert_problem(await shop.client.get(f"/admin/tax-rates/{rate['id']}", headers=shop.admin), 404)

    async def published() -> None:
        kinds = [e.type for e in tap.events if e.data.get("id") == rate["id"]]
        assert kinds == ["tax.rate_created", "tax.rate_updated", "tax.rate_deleted"], kinds

    await eventually(published)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"country": "Germany"}, "country"),
        ({"rate_bp": 10001}, "rate_bp"),
        ({"rate_bp": 19.5}, "rate_bp"),
        ({"rate_bp": -1}, "rate_bp"),
        ({"name": "x" * 101}, "name"),
        ({"name": "V\u0000AT"}, "name"),
    ],
)
async def test_a_bad_tax_rate_is_a_422_naming_the_field(
    shop: Shop, change: dict[str, Any], field: str
) -> None:
    body = assert_problem(
        await shop.client.post("/admin/tax-rates", json=RATE | change, headers=shop.admin), 422
    )
    assert field in [e["field"] for e in body["errors"]], body["errors"]
    assert (await shop.client.get("/admin/tax-rates", headers=shop.admin)).json() == []


async def test_anyone_sees_the_shipping_methods_for_an_address(shop: Shop) -> None:
    await shop.create("/admin/shipping-zones", ZONE)
    await shop.create(
        "/admin/shipping-zones",
        {
            "name": "Berlin same day",
            "countries": ["DE"],
            "postal_prefixes": ["10"],
            "methods": [{"name": "Courier", "amount": 990, "currency": "EUR"}],
        },
    )
    berlin = await shop.client.get("/shipping-methods", params={"country": "de", "postal_code": "10117"})
    assert [m["name"] for m in berlin.json()] == ["Standard", "Courier", "Express"]
    munich = await shop.client.get("/shipping-methods", params={"country": "DE", "postal_code": "80331"})
    assert [m["name"] for m in munich.json()] == ["Standard", "Express"]
    assert (await shop.client.get("/shipping-methods", params={"country": "FR"})).json() == []
    bad = await shop.client.get("/shipping-methods", params={"country": "XX"})
    assert assert_problem(bad, 422)["errors"][0]["field"] == "country"
