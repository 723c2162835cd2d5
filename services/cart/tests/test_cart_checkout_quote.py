"""POST /checkout/quote: the caller's cart priced by the real pricing service (on loopback) for an
address: shipping, tax and a coupon, and a coupon that does not apply saying why."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from cart_testkit import FakeCatalog, Shop

from libs.common.testing import Infra, TestKeys, assert_problem, running_app, serve_app, settings_for
from services.auth import addresses
from services.auth.app import create_app as create_auth
from services.auth.models import User
from services.auth.schemas import AddressIn
from services.auth.settings import AuthSettings
from services.cart.app import create_app as create_cart
from services.cart.settings import CartSettings
from services.pricing.app import create_app as create_pricing
from services.pricing.settings import PricingSettings

ADDRESS = {
    "name": "Ada",
    "line1": "Main St 1",
    "city": "Springfield",
    "region": "CA",
    "postal_code": "90001",
    "country": "US",
}


@pytest_asyncio.fixture(scope="module")
async def pricing(infra: Infra, keys: TestKeys) -> AsyncIterator[str]:
    async with serve_app(
        create_pricing(settings_for(PricingSettings, infra, keys, default_currency="EUR"))
    ) as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def auth(infra: Infra) -> AsyncIterator[tuple[Any, str]]:
    """The real auth service: the address book a quote may name an entry of."""
    app = create_auth(settings_for(AuthSettings, infra, email_backend="log"))
    async with serve_app(app) as url:
        yield app.state.ctx, url


@pytest_asyncio.fixture(scope="module")
async def checkout(
    infra: Infra, keys: TestKeys, catalog: FakeCatalog, pricing: str, auth: tuple[Any, str]
) -> AsyncIterator[Shop]:
    app = create_cart(
        settings_for(
            CartSettings, infra, keys, catalog_url=catalog.url, pricing_url=pricing, auth_url=auth[1]
        )
    )
    async with running_app(app) as client:
        yield Shop(client=client, ctx=app.state.ctx, catalog=catalog, keys=keys)


async def configure(pricing: str, keys: TestKeys, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=pricing) as admin:
        resp = await admin.post(path, json=body, headers=keys.bearer(role="admin"))
        assert resp.status_code == 201, resp.text
        return dict(resp.json())


async def test_a_customer_sees_shipping_tax_and_a_coupon_on_their_cart(
    checkout: Shop, pricing: str, keys: TestKeys
) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    await configure(
        pricing,
        keys,
        "/admin/shipping-zones",
        {
            "name": f"US {tag}",
            "countries": ["US"],
            "regions": ["CA"],
            "methods": [{"name": f"Ground {tag}", "amount": 500, "currency": "EUR"}],
        },
    )
    await configure(
        pricing,
        keys,
        "/admin/tax-rates",
        {
            "name": f"CA tax {tag}",
            "country": "US",
            "region": "CA",
            "rate_bp": 1000,
            "applies_to_shipping": False,
        },
    )
    await configure(
        pricing,
        keys,
        "/admin/promotions",
        {"name": "Ten off", "code": f"TEN{tag}", "action": {"type": "amount_off", "value": 1_000}},
    )
    await configure(
        pricing,
        keys,
        "/admin/promotions",
        {
            "name": "Big",
            "code": f"BIG{tag}",
            "rules": {"min_subtotal": 100_000},
            "action": {"type": "amount_off", "value": 1_000},
        },
    )
    lamp = await checkout.known(price=2_500, currency="EUR")
    customer = keys.bearer(user_id=uuid.uuid4())
    assert (await checkout.add(customer, lamp["id"], 2)).status_code == 201

    resp = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"shipping_address": ADDRESS, "coupon_code": f"ten{tag}"}
    )
    assert resp.status_code == 200, resp.text
    b = resp.json()["breakdown"]
    assert (b["subtotal"], b["discount_total"], b["shipping_method"]["name"]) == (
        5_000,
        1_000,
        f"Ground {tag}",
    )
    assert b["tax_total"] == 400 and b["total"] == 5_000 - 1_000 + b["shipping_total"] + 400
    assert resp.json()["coupon"]["applied"] is True

    short = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"shipping_address": ADDRESS, "coupon_code": f"BIG{tag}"}
    )
    body = assert_problem(short, 422)
    assert (body["reason"], body["shortfall"], body["errors"][0]["field"]) == (
        "minimum_not_met",
        95_000,
        "coupon_code",
    )
    assert body["quote"]["breakdown"]["discount_total"] == 0, "the totals without the code come along"


async def test_a_quote_needs_a_signed_in_customer_a_cart_and_an_address_the_shop_ships_to(
    checkout: Shop, pricing: str, keys: TestKeys
) -> None:
    assert_problem(await checkout.client.post("/checkout/quote", json={"shipping_address": ADDRESS}), 401)
    customer = keys.bearer(user_id=uuid.uuid4())
    empty = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"shipping_address": ADDRESS}
    )
    assert assert_problem(empty, 422)["title"] == "Empty cart"
    lamp = await checkout.known(price=900, currency="EUR")
    assert (await checkout.add(customer, lamp["id"])).status_code == 201
    bad = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"shipping_address": ADDRESS | {"country": "XX"}}
    )
    assert assert_problem(bad, 422)["errors"][0]["field"] == "shipping_address.country"
    tag = uuid.uuid4().hex[:6]
    await configure(
        pricing,
        keys,
        "/admin/shipping-zones",
        {
            "name": f"DE {tag}",
            "countries": ["DE"],
            "methods": [{"name": "Post", "amount": 400, "currency": "EUR"}],
        },
    )
    nowhere = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"shipping_address": ADDRESS | {"country": "NZ"}}
    )
    assert assert_problem(nowhere, 422)["errors"][0]["field"] == "shipping_address.country"


async def test_a_quote_for_a_saved_address_prices_that_address_and_only_the_callers(
    checkout: Shop, pricing: str, keys: TestKeys, auth: tuple[Any, str]
) -> None:
    tag = uuid.uuid4().hex[:6]
    await configure(
        pricing,
        keys,
        "/admin/shipping-zones",
        {
            "name": f"FR {tag}",
            "countries": ["FR"],
            "methods": [{"name": f"Colissimo {tag}", "amount": 650, "currency": "EUR"}],
        },
    )
    user_id = uuid.uuid4()
    async with auth[0].db.session() as session:
        async with session.begin():
            session.add(
                User(id=user_id, email=f"{user_id}@example.com", name="Ada", password_hash="x", addresses=[])
            )
        saved = await addresses.add(
            session=session,
            user_id=user_id,
            body=AddressIn.model_validate(
                ADDRESS | {"country": "FR", "region": None, "postal_code": "75001"}
            ),
        )
    customer = keys.bearer(user_id=user_id)
    lamp = await checkout.known(price=1_000, currency="EUR")
    assert (await checkout.add(customer, lamp["id"])).status_code == 201
    resp = await checkout.client.post("/checkout/quote", headers=customer, json={"address_id": str(saved.id)})
    assert resp.status_code == 200, resp.text
    assert resp.json()["breakdown"]["shipping_method"]["name"] == f"Colissimo {tag}"

    stranger = keys.bearer(user_id=uuid.uuid4())
    assert (await checkout.add(stranger, lamp["id"])).status_code == 201
    theirs = await checkout.client.post(
        "/checkout/quote", headers=stranger, json={"address_id": str(saved.id)}
    )
    assert assert_problem(theirs, 422)["errors"][0]["field"] == "address_id"
    both = await checkout.client.post(
        "/checkout/quote", headers=customer, json={"address_id": str(saved.id), "shipping_address": ADDRESS}
    )
    assert_problem(both, 422)
