"""The shop's low-stock threshold (one setting every admin shares) and the variants at or below it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from catalog_helpers import Builder, EventTap, word

from libs.common.testing import TestKeys, assert_problem, eventually


@pytest.fixture
async def threshold_kept(client: httpx.AsyncClient, admin: dict[str, str]) -> Any:
    """Puts the shop's threshold back as it was: it is one value for the whole run."""
    before = (await client.get("/admin/settings/stock", headers=admin)).json()["low_stock_threshold"]
    yield before
    await client.patch("/admin/settings/stock", json={"low_stock_threshold": before}, headers=admin)


async def test_an_admin_sets_the_threshold_for_every_admin_and_the_change_is_an_event(
    client: httpx.AsyncClient, keys: TestKeys, event_tap: EventTap, threshold_kept: int
) -> None:
    admin_id = uuid.uuid4()
    admin = keys.bearer(role="admin", user_id=admin_id)
    before = (await client.get("/admin/settings/stock", headers=admin)).json()
    resp = await client.patch("/admin/settings/stock", json={"low_stock_threshold": 3}, headers=admin)
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["low_stock_threshold"] == 3 and after["version"] == before["version"] + 1
    assert after["updated_by"] == str(admin_id)
    # another admin reads the same value
    other = keys.bearer(role="admin")
    assert (await client.get("/admin/settings/stock", headers=other)).json() == after

    async def told() -> None:
        # by this admin: a whole-system stack in the same run publishes its own on the same exchange
        [event] = event_tap.of("settings.stock_updated", updated_by=admin_id)
        assert event.data == after and event.producer == "catalog"

    await eventually(told)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"low_stock_threshold": -1}, "low_stock_threshold"),
        ({"low_stock_threshold": "five"}, "low_stock_threshold"),
        ({"low_stock_threshold": 1.5}, "low_stock_threshold"),
        ({"low_stock_threshold": None}, "low_stock_threshold"),
        ({"low_stock_threshold": 10**7}, "low_stock_threshold"),
        ({}, "low_stock_threshold"),
        ({"low_stock_threshold": 4, "currency": "EUR"}, "currency"),
    ],
)
async def test_a_bad_threshold_is_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, Any], field: str, threshold_kept: int
) -> None:
    before = (await client.get("/admin/settings/stock", headers=admin)).json()
    problem = assert_problem(await client.patch("/admin/settings/stock", json=body, headers=admin), 422)
    assert [e["field"] for e in problem["errors"]] == [field]
    assert (await client.get("/admin/settings/stock", headers=admin)).json() == before


async def test_guests_and_customers_cannot_read_or_set_the_threshold_or_list_low_stock(
    client: httpx.AsyncClient, admin: dict[str, str], user: dict[str, str], threshold_kept: int
) -> None:
    before = (await client.get("/admin/settings/stock", headers=admin)).json()
    for headers, status in (({}, 401), (user, 403), ({"Authorization": "Bearer forged"}, 401)):
        assert_problem(await client.get("/admin/settings/stock", headers=headers), status)
        assert_problem(
            await client.patch("/admin/settings/stock", json={"low_stock_threshold": 0}, headers=headers),
            status,
        )
        assert_problem(await client.get("/admin/low-stock", headers=headers), status)
    assert (await client.get("/admin/settings/stock", headers=admin)).json() == before


async def test_low_stock_lists_live_variants_at_or_below_the_threshold_fewest_first(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], threshold_kept: int
) -> None:
    cat = await build.category()
    sizes = {"name": "Size", "values": ["S", "M", "L"]}
    made = await client.post(
        "/admin/products",
        json={
            "name": f"Shirt {word()}",
            "sku": f"SHIRT-{word()}",
            "category_id": cat["id"],
            "options": [sizes],
            "variants": [
                {"sku": f"S-{word()}", "options": {"Size": s}, "price": 900, "stock": n}
                for s, n in (("S", 0), ("M", 2), ("L", 9))
            ],
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    shirt = made.json()
    mug = await build.product(cat["id"], name=f"Mug {word()}", stock=3)
    hidden = await build.product(cat["id"], stock=1, is_active=False)
    gone = await build.product(cat["id"], stock=0)
    assert (await client.delete(f"/admin/products/{gone['id']}", headers=admin)).status_code == 204
    mine = {shirt["id"], mug["id"], hidden["id"], gone["id"]}

    async def low(**params: Any) -> tuple[int, list[tuple[str, str, int]]]:
        resp = await client.get("/admin/low-stock", params={"page_size": 100, **params}, headers=admin)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        return page["threshold"], [
            (i["name"], i["title"], i["stock"]) for i in page["items"] if i["product_id"] in mine
        ]

    set_to = await client.patch("/admin/settings/stock", json={"low_stock_threshold": 2}, headers=admin)
    assert set_to.status_code == 200, set_to.text
    assert await low() == (2, [(shirt["name"], "S", 0), (shirt["name"], "M", 2)])
    await client.patch("/admin/settings/stock", json={"low_stock_threshold": 3}, headers=admin)
    assert await low() == (3, [(shirt["name"], "S", 0), (shirt["name"], "M", 2), (mug["name"], "", 3)])
    assert await low(at_most=0) == (0, [(shirt["name"], "S", 0)])
    # restocked, the small size leaves the list; a retired size does too
    small = next(v for v in shirt["variants"] if v["options"] == {"Size": "S"})
    medium = next(v for v in shirt["variants"] if v["options"] == {"Size": "M"})
    await client.post(
        f"/admin/products/{shirt['id']}/stock", json={"delta": 10, "variant_id": small["id"]}, headers=admin
    )
    retired = await client.delete(f"/admin/products/{shirt['id']}/variants/{medium['id']}", headers=admin)
    assert retired.status_code == 204, retired.text
    assert await low() == (3, [(mug["name"], "", 3)])
    assert_problem(await client.get("/admin/low-stock", params={"at_most": -1}, headers=admin), 422)
