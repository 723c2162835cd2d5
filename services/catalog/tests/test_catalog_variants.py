"""Options and variants: what a product derives from them, the rules they keep, how admins edit them,
and reservations per variant (0 oversell, one variant's stock alone moves)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from catalog_helpers import Builder, EventTap, word

from libs.common.testing import assert_problem, eventually

SIZES = {"name": "Size", "values": ["S", "M", "L"]}
COLOURS = {"name": "Colour", "values": ["Red", "Blue"]}


def variant(size: str, colour: str, *, price: int = 2000, stock: int = 3, **more: Any) -> dict[str, Any]:
    return {
        "sku": f"TEE-{size}-{colour}-{word()}",
        "options": {"Size": size, "Colour": colour},
        "price": price,
        "stock": stock,
        **more,
    }


async def tee(
    client: httpx.AsyncClient, admin: dict[str, str], category_id: str, variants: list[dict[str, Any]]
) -> dict[str, Any]:
    resp = await client.post(
        "/admin/products",
        json={
            "name": f"Tee {word()}",
            "sku": f"TEE-{word()}",
            "category_id": category_id,
            "options": [SIZES, COLOURS],
            "variants": variants,
        },
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def by_title(product: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["title"]: v for v in product["variants"]}


async def test_a_product_with_options_shows_its_variants_and_derives_price_and_stock(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await tee(
        client,
        admin,
        cat["id"],
        [
            variant("S", "Red", price=1900, stock=2),
            variant("M", "Red", price=2100, stock=4, compare_at_price=2500),
            variant("L", "Blue", price=1500, stock=1, is_active=False),
        ],
    )
    assert p["options"] == [SIZES, COLOURS]
    assert [v["title"] for v in p["variants"]] == ["S / Red", "M / Red", "L / Blue"]
    assert by_title(p)["M / Red"]["compare_at_price"] == 2500
    # first-wave fields: the cheapest active variant's price, the active variants' stock
    assert p["price"] == 1900 and p["stock"] == 6
    public = (await client.get(f"/products/{p['slug']}")).json()
    assert public == p
    listed = (await client.get("/products", params={"category": cat["id"]})).json()["items"]
    assert listed[0]["variants"] == p["variants"] and listed[0]["options"] == p["options"]


async def test_a_first_wave_product_has_one_default_variant(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"], price=1234, stock=7, compare_at_price=1500)
    assert p["options"] == []
    (only,) = p["variants"]
    assert only["sku"] == p["sku"] and only["options"] == {} and only["title"] == "Default"
    assert (only["price"], only["stock"], only["compare_at_price"]) == (1234, 7, 1500)
    # the first-wave fields still edit it
    patched = (
        await client.patch(
            f"/admin/products/{p['id']}",
            json={"price": 999, "stock": 2, "sku": f"NEW-{word()}"},
            headers=admin,
        )
    ).json()
    (only,) = patched["variants"]
    assert (patched["price"], patched["stock"]) == (999, 2)
    assert (only["price"], only["stock"], only["sku"]) == (999, 2, patched["sku"])


async def test_every_variant_rule_is_a_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    taken = await tee(client, admin, cat["id"], [variant("S", "Red")])
    taken_sku = taken["variants"][0]["sku"]
    name = f"Refused {word()}"
    base = {"name": name, "sku": f"B-{word()}", "category_id": cat["id"], "options": [SIZES, COLOURS]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"variants": [{**variant("S", "Red"), "options": {"Size": "S"}}]}, "variants.0.options"),
        ({"variants": [variant("XXL", "Red")]}, "variants.0.options.Size"),
        ({"variants": [variant("S", "Red"), variant("S", "Red")]}, "variants.1.options"),
        (
            {
                "variants": [
                    {**variant("S", "Red"), "sku": "SAME-1"},
                    {**variant("M", "Red"), "sku": "SAME-1"},
                ]
            },
            "variants.1.sku",
        ),
        ({"variants": [{**variant("S", "Red"), "sku": taken_sku}]}, "variants.0.sku"),
        ({"variants": [variant("S", "Red")], "price": 100}, "price"),
        ({"variants": [variant("S", "Red")], "stock": 1}, "stock"),
        ({"variants": []}, "variants"),
        ({"variants": None}, "variants"),
        (
            {
                "options": [{"name": n, "values": ["a"]} for n in ("A", "B", "C", "D")],
                "variants": [{"sku": f"X-{word()}", "options": {n: "a" for n in "ABCD"}, "price": 1}],
            },
            "options",
        ),
        ({"options": [SIZES, SIZES], "variants": [variant("S", "Red")]}, "options.1.name"),
        ({"options": [{"name": "Size", "values": ["S", "S"]}], "variants": []}, "options.0.values"),
        (
            {
                "options": [],
                "variants": [{"sku": f"Y-{word()}", "price": 1}, {"sku": f"Z-{word()}", "price": 2}],
            },
            "variants",
        ),
        ({"variants": [{**variant("S", "Red"), "price": -1}]}, "variants.0.price"),
        ({"variants": [{**variant("S", "Red"), "compare_at_price": 1}]}, "variants.0"),
    ]
    for override, field in cases:
        resp = await client.post("/admin/products", json={**base, **override}, headers=admin)
        problem = assert_problem(resp, 422)
        fields = [e["field"] for e in problem["errors"]]
        assert field in fields, (override, problem)
    listed = await client.get("/products", params={"q": name.split()[1], "category": cat["id"]})
    assert listed.json()["total"] == 0


async def test_admin_adds_a_size_retires_a_colour_and_changes_one_variant(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], event_tap: EventTap
) -> None:
    cat = await build.category()
    p = await tee(
        client,
        admin,
        cat["id"],
        [variant("S", "Red", stock=2), variant("S", "Blue", stock=3), variant("M", "Red", stock=4)],
    )
    pid = p["id"]
    # add a size: the new value joins the option
    xl = await client.post(
        f"/admin/products/{pid}/variants", json=variant("XL", "Blue", price=2600, stock=5), headers=admin
    )
    assert xl.status_code == 201, xl.text
    assert xl.json()["title"] == "XL / Blue"
    after_add = (await client.get(f"/admin/products/{pid}", headers=admin)).json()
    assert after_add["options"][0]["values"] == ["S", "M", "L", "XL"]
    assert after_add["stock"] == 14
    # a known option missing, an unknown option: 422 naming it, nothing added
    bad = await client.post(
        f"/admin/products/{pid}/variants",
        json={"sku": f"B-{word()}", "options": {"Size": "S", "Fit": "Slim"}, "price": 1},
        headers=admin,
    )
    assert [e["field"] for e in assert_problem(bad, 422)["errors"]] == ["options.Fit"]
    dup = await client.post(f"/admin/products/{pid}/variants", json=variant("S", "Red"), headers=admin)
    assert [e["field"] for e in assert_problem(dup, 422)["errors"]] == ["options"]

    # change one variant's price and stock
    red_m = by_title(after_add)["M / Red"]
    changed = await client.patch(
        f"/admin/products/{pid}/variants/{red_m['id']}", json={"price": 1000, "stock": 9}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["price"], changed.json()["stock"]) == (1000, 9)
    now = (await client.get(f"/admin/products/{pid}", headers=admin)).json()
    assert now["price"] == 1000 and now["stock"] == 2 + 3 + 9 + 5
    assert by_title(now)["S / Red"]["stock"] == 2  # the others did not move
    other_sku = by_title(now)["S / Red"]["sku"]
    clash = await client.patch(
        f"/admin/products/{pid}/variants/{red_m['id']}", json={"sku": other_sku}, headers=admin
    )
    assert [e["field"] for e in assert_problem(clash, 422)["errors"]] == ["sku"]

    # retire a colour: Red leaves the options and its variants are left out of the list
    keep = [v for v in now["variants"] if v["options"]["Colour"] != "Red"]
    retired = await client.patch(
        f"/admin/products/{pid}",
        json={
            "options": [
                {"name": "Size", "values": ["S", "M", "L", "XL"]},
                {"name": "Colour", "values": ["Blue"]},
            ],
            "variants": [
                {k: v[k] for k in ("id", "sku", "options", "price", "compare_at_price", "stock", "is_active")}
                for v in keep
            ],
        },
        headers=admin,
    )
    assert retired.status_code == 200, retired.text
    body = retired.json()
    assert [v["title"] for v in body["variants"]] == ["S / Blue", "XL / Blue"]
    assert body["stock"] == 8 and body["price"] == 2000
    # a retired variant cannot be edited; the last live variant cannot be retired
    gone = await client.patch(
        f"/admin/products/{pid}/variants/{red_m['id']}", json={"stock": 1}, headers=admin
    )
    assert_problem(gone, 404)
    blue_s, blue_xl = body["variants"]
    assert (
        await client.delete(f"/admin/products/{pid}/variants/{blue_s['id']}", headers=admin)
    ).status_code == 204
    last = await client.delete(f"/admin/products/{pid}/variants/{blue_xl['id']}", headers=admin)
    assert_problem(last, 409)
    final = (await client.get(f"/products/{pid}")).json()
    assert [v["title"] for v in final["variants"]] == ["XL / Blue"] and final["stock"] == 5

    async def variant_events() -> None:
        assert event_tap.of("variant.created", product_id=pid)
        updated = [e.data["variant"] for e in event_tap.of("variant.updated", product_id=pid)]
        assert any(v["id"] == red_m["id"] and v["price"] == 1000 for v in updated)
        assert len(event_tap.of("variant.retired", product_id=pid)) == 3
        moved = [e.data for e in event_tap.of("stock.changed", product_id=pid)]
        assert any(
            m["variants"] == [{"id": red_m["id"], "sku": red_m["sku"], "stock": 9}] and m["stock"] == 19
            for m in moved
        )

    await eventually(variant_events)


async def test_stock_changes_name_the_variant_when_there_are_several(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await tee(client, admin, cat["id"], [variant("S", "Red", stock=1), variant("M", "Red", stock=1)])
    vague = await client.post(f"/admin/products/{p['id']}/stock", json={"delta": 2}, headers=admin)
    assert [e["field"] for e in assert_problem(vague, 422)["errors"]] == ["variant_id"]
    vague = await client.patch(f"/admin/products/{p['id']}", json={"stock": 2}, headers=admin)
    assert [e["field"] for e in assert_problem(vague, 422)["errors"]] == ["stock"]
    m = by_title(p)["M / Red"]
    moved = await client.post(
        f"/admin/products/{p['id']}/stock", json={"delta": 4, "variant_id": m["id"]}, headers=admin
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["stock"] == 6 and by_title(moved.json())["M / Red"]["stock"] == 5
    below = await client.post(
        f"/admin/products/{p['id']}/stock",
        json={"delta": -2, "variant_id": by_title(p)["S / Red"]["id"]},
        headers=admin,
    )
    assert_problem(below, 409)


async def test_a_put_of_a_product_with_variants_keeps_them(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await tee(
        client, admin, cat["id"], [variant("S", "Red", price=1500), variant("M", "Red", price=1700)]
    )
    body = {"name": "Renamed tee", "sku": p["sku"], "category_id": cat["id"]}
    put = await client.put(f"/admin/products/{p['id']}", json=body, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "Renamed tee" and put.json()["variants"] == p["variants"]
    assert put.json()["price"] == 1500
    priced = await client.put(f"/admin/products/{p['id']}", json={**body, "price": 1}, headers=admin)
    assert [e["field"] for e in assert_problem(priced, 422)["errors"]] == ["price"]


def line(v: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
    return {"variant_id": v["id"], "quantity": quantity}


async def test_three_variants_of_one_unit_each_sell_exactly_three(
    base_url: str, build: Builder, client: httpx.AsyncClient, admin: dict[str, str], internal: dict[str, str]
) -> None:
    cat = await build.category()
    p = await tee(
        client,
        admin,
        cat["id"],
        [variant("S", "Red", stock=1), variant("M", "Red", stock=1), variant("L", "Red", stock=1)],
    )
    variants = p["variants"]
    limits = httpx.Limits(max_connections=60)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as c:
        results = await asyncio.gather(
            *(
                c.post(
                    "/internal/reservations",
                    json={"order_id": str(uuid.uuid4()), "items": [line(variants[n % 3])]},
                    headers=internal,
                )
                for n in range(60)
            )
        )
    statuses = [r.status_code for r in results]
    assert statuses.count(201) == 3 and statuses.count(409) == 57, statuses
    sold = sorted(r.json()["items"][0]["title"] for r in results if r.status_code == 201)
    assert sold == ["L / Red", "M / Red", "S / Red"]
    after = (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()
    assert after["stock"] == 0 and [v["stock"] for v in after["variants"]] == [0, 0, 0]


async def test_a_reservation_moves_only_its_variant_and_a_release_gives_it_back(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], internal: dict[str, str]
) -> None:
    cat = await build.category()
    p = await tee(
        client, admin, cat["id"], [variant("S", "Red", stock=5), variant("M", "Red", stock=5, price=2500)]
    )
    s, m = p["variants"]
    # a product line cannot choose between variants
    vague = await client.post(
        "/internal/reservations",
        json={"order_id": str(uuid.uuid4()), "items": [{"product_id": p["id"], "quantity": 1}]},
        headers=internal,
    )
    assert assert_problem(vague, 422, "variant-required")["products"] == [p["id"]]
    # all or nothing across variants
    too_many = await client.post(
        "/internal/reservations",
        json={"order_id": str(uuid.uuid4()), "items": [line(s, 2), line(m, 6)]},
        headers=internal,
    )
    short = assert_problem(too_many, 409)["short"]
    assert [(x["variant_id"], x["available"]) for x in short] == [(m["id"], 5)]
    order_id = str(uuid.uuid4())
    made = await client.post(
        "/internal/reservations", json={"order_id": order_id, "items": [line(m, 2)]}, headers=internal
    )
    assert made.status_code == 201, made.text
    (item,) = made.json()["items"]
    assert item == {
        "product_id": p["id"],
        "variant_id": m["id"],
        "sku": m["sku"],
        "title": "M / Red",
        "name": p["name"],
        "unit_price": 2500,
        "currency": "USD",
        "quantity": 2,
    }
    after = (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()
    assert [v["stock"] for v in after["variants"]] == [5, 3] and after["stock"] == 8
    # a variant that stopped selling cannot be reserved
    await client.patch(
        f"/admin/products/{p['id']}/variants/{s['id']}", json={"is_active": False}, headers=admin
    )
    off = await client.post(
        "/internal/reservations", json={"order_id": str(uuid.uuid4()), "items": [line(s)]}, headers=internal
    )
    assert assert_problem(off, 422, "product-unavailable")["unavailable"] == [s["id"]]
    released = await client.post(f"/internal/reservations/{order_id}/release", headers=internal)
    assert released.json()["status"] == "released"
    back = (await client.get(f"/admin/products/{p['id']}", headers=admin)).json()
    assert [v["stock"] for v in back["variants"]] == [5, 5] and back["stock"] == 5


async def test_option_filters_and_facets_of_the_filtered_set_in_one_request(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    top = await build.category()
    shirts = await build.category(parent_id=top["id"])
    shoes = await build.category(parent_id=top["id"])
    a = await tee(
        client, admin, shirts["id"], [variant("S", "Red", price=1000), variant("M", "Blue", price=1500)]
    )
    b = await tee(
        client, admin, shirts["id"], [variant("M", "Red", price=3000), variant("L", "Red", price=2000)]
    )
    # c sells M only in a variant that is switched off: it does not count as M
    c = await tee(
        client,
        admin,
        shoes["id"],
        [variant("L", "Blue", price=5000), variant("M", "Blue", price=900, is_active=False)],
    )
    plain = await build.product(shoes["id"], price=700)

    async def page(**params: Any) -> dict[str, Any]:
        resp = await client.get("/products", params={"category": top["id"], **params})
        assert resp.status_code == 200, resp.text
        return resp.json()

    assert {p["id"] for p in (await page(**{"option.Size": "M"}))["items"]} == {a["id"], b["id"]}
    # repeated: any of the values; several options: one variant has them all
    either = await page(**{"option.Size": ["S", "L"]})
    assert {p["id"] for p in either["items"]} == {a["id"], b["id"], c["id"]}
    both = await page(**{"option.Size": "M", "option.Colour": "Red"})
    assert [p["id"] for p in both["items"]] == [b["id"]]  # a has M and Red, but not in one variant
    assert (await page(**{"option.Size": "XXL"}))["total"] == 0

    everything = await page(facets="true")
    assert everything["total"] == 4
    facets = everything["facets"]
    # most products first, then by name
    assert facets["categories"] == sorted(
        [
            {"id": shirts["id"], "name": shirts["name"], "count": 2},
            {"id": shoes["id"], "name": shoes["name"], "count": 2},
        ],
        key=lambda c: c["name"],
    )
    assert facets["options"] == {
        "Colour": [{"value": "Blue", "count": 2}, {"value": "Red", "count": 2}],
        "Size": [{"value": "L", "count": 2}, {"value": "M", "count": 2}, {"value": "S", "count": 1}],
    }
    assert facets["price"] == {"min": 700, "max": 5000}
    del plain
    red = (await page(facets="true", **{"option.Colour": "Red"}))["facets"]
    assert red["categories"] == [{"id": shirts["id"], "name": shirts["name"], "count": 2}]
    assert red["options"]["Size"] == [
        {"value": "M", "count": 2},
        {"value": "L", "count": 1},
        {"value": "S", "count": 1},
    ]
    assert red["price"] == {"min": 1000, "max": 2000}
    nothing = await page(facets="true", **{"option.Size": "XXL"})
    assert nothing["facets"] == {"categories": [], "options": {}, "price": {"min": None, "max": None}}
    assert "facets" not in await page()
    for bad in ({"option.": "M"}, {"option.Size": ""}, {"option.Size": "x" * 101}):
        problem = assert_problem(await client.get("/products", params=bad), 422)
        assert problem["errors"][0]["field"] == next(iter(bad))
    too_many = {f"option.N{i}": "v" for i in range(4)}
    assert_problem(await client.get("/products", params=too_many), 422)
