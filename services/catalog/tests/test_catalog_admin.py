"""Admin management: who may do it, validation, slugs, cycles, soft delete, stock changes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from catalog_helpers import Builder, word

from libs.common.testing import TestKeys, assert_problem

ADMIN_ROUTES = [
    ("POST", "/admin/categories", {"name": "Refused"}),
    ("PUT", "/admin/categories/{cat}", {"name": "Refused"}),
    ("PATCH", "/admin/categories/{cat}", {"name": "Refused"}),
    ("DELETE", "/admin/categories/{cat}", None),
    ("POST", "/admin/products", {"name": "Refused", "price": 1, "sku": "REFUSED-1", "category_id": "{cat}"}),
    (
        "PUT",
        "/admin/products/{prod}",
        {"name": "Refused", "price": 1, "sku": "REFUSED-2", "category_id": "{cat}"},
    ),
    ("PATCH", "/admin/products/{prod}", {"price": 1}),
    ("DELETE", "/admin/products/{prod}", None),
    ("POST", "/admin/products/{prod}/stock", {"delta": 5}),
    ("GET", "/admin/products/{prod}", None),
    ("POST", "/admin/products/{prod}/variants", {"sku": "REFUSED-3", "price": 1}),
    ("PATCH", "/admin/products/{prod}/variants/{var}", {"price": 1}),
    ("DELETE", "/admin/products/{prod}/variants/{var}", None),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
async def test_guests_and_users_are_refused_on_admin_routes_and_nothing_changes(
    client: httpx.AsyncClient, build: Builder, keys: TestKeys, method: str, path: str, body: Any
) -> None:
    cat = await build.category()
    prod = await build.product(cat["id"])
    ids = {"cat": cat["id"], "prod": prod["id"], "var": prod["variants"][0]["id"]}
    url, payload = _fill(path, ids), _fill(body, ids)
    guest = await client.request(method, url, json=payload)
    assert_problem(guest, 401)
    as_user = await client.request(method, url, json=payload, headers=keys.bearer(role="user"))
    assert_problem(as_user, 403)
    forged = await client.request(method, url, json=payload, headers={"Authorization": "Bearer not-a-token"})
    assert_problem(forged, 401)
    assert (await client.get(f"/products/{prod['id']}")).json() == prod
    assert (await client.get(f"/categories/{cat['id']}")).json()["name"] == cat["name"]
    search = await client.get("/products", params={"q": "Refused", "category": cat["id"]})
    assert search.json()["total"] == 0


async def test_product_validation_names_the_field(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    base = {"name": "Valid", "price": 100, "sku": f"V-{word()}", "category_id": cat["id"]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"price": -1}, "price"),
        ({"price": 1.5}, "price"),
        ({"stock": -3}, "stock"),
        ({"name": "  "}, "name"),
        ({"currency": "dollars"}, "currency"),
        ({"images": ["not a url"]}, "images.0"),
        ({"sku": "has space"}, "sku"),
        ({"slug": "Bad Slug!"}, "slug"),
        ({"unknown": 1}, "unknown"),
        ({"category_id": "nope"}, "category_id"),
        ({"name": "nul\x00byte"}, "name"),
        ({"attributes": {"k": "nul\x00"}}, "attributes"),
        ({"description": "x" * 10_001}, "description"),
    ]
    for override, field in cases:
        body = assert_problem(
            await client.post("/admin/products", json={**base, **override}, headers=admin), 422
        )
        assert any(e["field"].startswith(field) for e in body["errors"]), (override, body)
    unknown = await client.post(
        "/admin/products", json={**base, "category_id": str(uuid.uuid4())}, headers=admin
    )
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "category_id"
    cheaper = await client.post("/admin/products", json={**base, "compare_at_price": 50}, headers=admin)
    assert_problem(cheaper, 422)
    assert (await client.get("/products", params={"category": cat["id"]})).json()["total"] == 0


async def test_duplicate_sku_or_slug_is_a_409_naming_the_field(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    first = await build.product(cat["id"])
    dup_sku = await client.post(
        "/admin/products",
        json={"name": "Other", "price": 1, "sku": first["sku"], "category_id": cat["id"]},
        headers=admin,
    )
    assert assert_problem(dup_sku, 409)["errors"][0]["field"] == "sku"
    dup_slug = await client.post(
        "/admin/products",
        json={
            "name": "Other",
            "price": 1,
            "sku": f"S-{word()}",
            "slug": first["slug"],
            "category_id": cat["id"],
        },
        headers=admin,
    )
    assert assert_problem(dup_slug, 409)["errors"][0]["field"] == "slug"
    second = await build.product(cat["id"])
    clash = await client.patch(f"/admin/products/{second['id']}", json={"sku": first["sku"]}, headers=admin)
    assert assert_problem(clash, 409)["errors"][0]["field"] == "sku"
    other_cat = await build.category()
    taken = await client.patch(
        f"/admin/categories/{other_cat['id']}", json={"slug": cat["slug"]}, headers=admin
    )
    assert assert_problem(taken, 409)["errors"][0]["field"] == "slug"


async def test_slugs_are_generated_unique_and_stay_when_renamed(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    name = f"Garden Chairs {word()}"
    a = await build.category(name=name)
    b = await build.category(name=name)
    assert a["slug"] == name.lower().replace(" ", "-") and b["slug"] == a["slug"] + "-2"
    renamed = await client.patch(f"/admin/categories/{a['id']}", json={"name": "Patio"}, headers=admin)
    assert renamed.json()["slug"] == a["slug"] and renamed.json()["name"] == "Patio"
    p1 = await build.product(a["id"], name="Crème Brûlée Set")
    p2 = await build.product(a["id"], name="Crème Brûlée Set")
    assert p1["slug"].startswith("creme-brulee-set") and p1["slug"] != p2["slug"]


async def test_category_parent_cannot_make_a_cycle(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    top = await build.category()
    mid = await build.category(parent_id=top["id"])
    leaf = await build.category(parent_id=mid["id"])
    for parent in (leaf["id"], mid["id"], top["id"]):
        resp = await client.patch(f"/admin/categories/{top['id']}", json={"parent_id": parent}, headers=admin)
        assert assert_problem(resp, 422)["errors"][0]["field"] == "parent_id"
    unknown = await client.post(
        "/admin/categories", json={"name": "X", "parent_id": str(uuid.uuid4())}, headers=admin
    )
    assert_problem(unknown, 422)
    moved = await client.patch(
        f"/admin/categories/{leaf['id']}", json={"parent_id": top["id"]}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["parent_id"] == top["id"]
    to_root = await client.patch(f"/admin/categories/{leaf['id']}", json={"parent_id": None}, headers=admin)
    assert to_root.json()["parent_id"] is None


async def test_deleting_a_category_with_products_is_a_409_saying_how_many(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    child = await build.category(parent_id=cat["id"])
    await build.product(cat["id"])
    await build.product(cat["id"], is_active=False)
    body = assert_problem(await client.delete(f"/admin/categories/{cat['id']}", headers=admin), 409)
    assert "2 products" in body["detail"] and "1 sub-category" in body["detail"]
    assert body["product_count"] == 2 and body["subcategory_count"] == 1
    assert (await client.get(f"/categories/{cat['id']}")).status_code == 200
    assert (await client.delete(f"/admin/categories/{child['id']}", headers=admin)).status_code == 204
    assert_problem(await client.get(f"/categories/{child['id']}"), 404)
    assert_problem(await client.delete(f"/admin/categories/{child['id']}", headers=admin), 404)


async def test_deleting_a_product_is_a_soft_delete(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    assert (await client.delete(f"/admin/products/{p['id']}", headers=admin)).status_code == 204
    kept = (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()
    assert kept["deleted"] is True and kept["deleted_at"] and kept["version"] == 2 and kept["sku"] == p["sku"]
    assert_problem(await client.get(f"/products/{p['id']}"), 404)
    assert_problem(await client.delete(f"/admin/products/{p['id']}", headers=admin), 404)
    assert_problem(await client.patch(f"/admin/products/{p['id']}", json={"price": 1}, headers=admin), 404)
    # a category whose only products are deleted may go; the kept product loses the link
    assert (await client.delete(f"/admin/categories/{cat['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()["category_id"] is None


async def test_patch_put_and_every_change_bumps_the_version(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    other = await build.category()
    p = await build.product(cat["id"], description="old", attributes={"size": "M"})
    patched = (
        await client.patch(f"/admin/products/{p['id']}", json={"price": 2500, "stock": 9}, headers=admin)
    ).json()
    assert patched["price"] == 2500 and patched["stock"] == 9 and patched["description"] == "old"
    assert patched["version"] == 2 and patched["updated_at"] > p["updated_at"]
    same = (await client.patch(f"/admin/products/{p['id']}", json={"price": 2500}, headers=admin)).json()
    assert same["version"] == 2  # nothing changed, nothing bumped
    replaced = await client.put(
        f"/admin/products/{p['id']}",
        json={"name": "Renamed", "price": 300, "sku": p["sku"], "category_id": other["id"]},
        headers=admin,
    )
    body = replaced.json()
    assert replaced.status_code == 200, replaced.text
    assert body["description"] == "" and body["attributes"] == {} and body["stock"] == 9  # stock kept
    assert body["category_id"] == other["id"] and body["slug"] == p["slug"] and body["version"] == 3
    stocked = (await client.post(f"/admin/products/{p['id']}/stock", json={"delta": 4}, headers=admin)).json()
    assert stocked["stock"] == 13 and stocked["version"] == 4
    null_name = await client.patch(f"/admin/products/{p['id']}", json={"name": None}, headers=admin)
    assert_problem(null_name, 422)
    assert_problem(
        await client.patch(f"/admin/products/{uuid.uuid4()}", json={"price": 1}, headers=admin), 404
    )
    put_cat = await client.put(f"/admin/categories/{other['id']}", json={"name": "Replaced"}, headers=admin)
    assert put_cat.json()["name"] == "Replaced" and put_cat.json()["slug"] == other["slug"]


async def test_stock_delta_never_goes_below_zero(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], stock=3)
    body = assert_problem(
        await client.post(f"/admin/products/{p['id']}/stock", json={"delta": -4}, headers=admin), 409
    )
    assert body["available"] == 3
    assert (await client.get(f"/products/{p['id']}")).json()["stock"] == 3
    down = await client.post(f"/admin/products/{p['id']}/stock", json={"delta": -3}, headers=admin)
    assert down.json()["stock"] == 0
    assert_problem(
        await client.post(f"/admin/products/{p['id']}/stock", json={"delta": 0}, headers=admin), 422
    )
    assert_problem(await client.patch(f"/admin/products/{p['id']}", json={"stock": -1}, headers=admin), 422)
