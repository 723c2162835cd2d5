"""Browsing: filters, sorts, pagination, full-text search, visibility and HTTP caching."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from catalog_helpers import Builder, word

from libs.common.testing import assert_problem


async def ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    resp = await client.get("/products", params=params)
    assert resp.status_code == 200, resp.text
    return [p["id"] for p in resp.json()["items"]]


async def test_category_filter_includes_sub_categories_by_id_or_slug(
    client: httpx.AsyncClient, build: Builder
) -> None:
    top = await build.category()
    mid = await build.category(parent_id=top["id"])
    leaf = await build.category(parent_id=mid["id"])
    other = await build.category()
    a = await build.product(top["id"])
    b = await build.product(mid["id"])
    c = await build.product(leaf["id"])
    await build.product(other["id"])
    assert set(await ids(client, category=top["id"])) == {a["id"], b["id"], c["id"]}
    assert set(await ids(client, category=mid["slug"])) == {b["id"], c["id"]}
    assert set(await ids(client, category=leaf["slug"])) == {c["id"]}


async def test_unknown_category_filter_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/products", params={"category": "no-such-category-" + word()}), 404)


async def test_price_range_and_stock_filters_alone_and_combined(
    client: httpx.AsyncClient, build: Builder
) -> None:
    cat = await build.category()
    cheap, mid, dear, sold_out = await build.products(
        cat["id"], [{"price": 500}, {"price": 1500}, {"price": 5000}, {"price": 1500, "stock": 0}]
    )
    base = {"category": cat["id"]}
    assert set(await ids(client, **base, price_min=1000)) == {mid["id"], dear["id"], sold_out["id"]}
    assert set(await ids(client, **base, price_max=1500)) == {cheap["id"], mid["id"], sold_out["id"]}
    assert set(await ids(client, **base, price_min=1000, price_max=2000)) == {mid["id"], sold_out["id"]}
    assert set(await ids(client, **base, in_stock="true")) == {cheap["id"], mid["id"], dear["id"]}
    assert set(await ids(client, **base, in_stock="false")) == {sold_out["id"]}
    assert set(await ids(client, **base, price_min=1000, price_max=2000, in_stock="true")) == {mid["id"]}
    assert_problem(await client.get("/products", params={**base, "price_min": 10, "price_max": 5}), 422)
    assert_problem(await client.get("/products", params={**base, "price_min": -1}), 422)


async def test_each_sort_orders_deterministically(client: httpx.AsyncClient, build: Builder) -> None:
    cat = await build.category()
    made = []
    for name, price in (("Banana", 300), ("apple", 100), ("Cherry", 300), ("Date", 200)):
        made.append(await build.product(cat["id"], name=f"{name} {word()}", price=price))
    by_id = {p["id"]: p for p in made}
    base = {"category": cat["id"]}
    newest = await ids(client, **base, sort="newest")
    assert newest == [p["id"] for p in reversed(made)]
    assert await ids(client, **base) == newest  # newest is the default without q
    asc = [by_id[i]["price"] for i in await ids(client, **base, sort="price_asc")]
    assert asc == [100, 200, 300, 300]
    desc = await ids(client, **base, sort="price_desc")
    assert [by_id[i]["price"] for i in desc] == [300, 300, 200, 100]
    tied = sorted(p["id"] for p in made if p["price"] == 300)
    assert (await ids(client, **base, sort="price_asc"))[2:] == tied
    names = [by_id[i]["name"].split()[0] for i in await ids(client, **base, sort="name")]
    assert [n.lower() for n in names] == ["apple", "banana", "cherry", "date"]
    assert_problem(await client.get("/products", params={"sort": "cheapest"}), 422)


async def test_pagination_over_many_equal_prices_never_repeats_or_skips(
    client: httpx.AsyncClient, build: Builder
) -> None:
    cat = await build.category()
    made = await build.products(cat["id"], [{"price": 999 if i % 4 else 500} for i in range(45)])
    for sort in ("price_asc", "price_desc", "name", "newest"):
        seen: list[str] = []
        page = 1
        while True:
            resp = await client.get(
                "/products", params={"category": cat["id"], "sort": sort, "page": page, "page_size": 7}
            )
            body = resp.json()
            assert body["total"] == 45 and body["page"] == page and body["page_size"] == 7
            if not body["items"]:
                break
            seen += [p["id"] for p in body["items"]]
            page += 1
        assert len(seen) == len(set(seen)) == 45, sort
        assert set(seen) == {p["id"] for p in made}


async def test_page_size_is_limited_to_100(client: httpx.AsyncClient) -> None:
    resp = await client.get("/products", params={"page_size": 100})
    assert resp.status_code == 200 and resp.json()["page_size"] == 100
    body = assert_problem(await client.get("/products", params={"page_size": 101}), 422)
    assert body["errors"][0]["field"] == "page_size"
    assert_problem(await client.get("/products", params={"page": 0}), 422)


async def test_search_finds_stemmed_words(client: httpx.AsyncClient, build: Builder) -> None:
    cat = await build.category()
    tag = word()
    shoe = await build.product(cat["id"], name=f"Running Shoe {tag}")
    await build.product(cat["id"], name=f"Running Sock {tag}")
    assert await ids(client, q=f"shoes {tag}") == [shoe["id"]]
    assert shoe["id"] in await ids(client, q=f"{tag} running", category=cat["id"])


async def test_search_covers_sku_and_description(client: httpx.AsyncClient, build: Builder) -> None:
    cat = await build.category()
    tag = word()
    sku = f"ZX-{tag}"
    p = await build.product(cat["id"], sku=sku, description=f"Handmade from {tag}berry wood")
    assert await ids(client, q=sku) == [p["id"]]
    assert await ids(client, q=f"{tag}berry") == [p["id"]]


async def test_name_match_ranks_above_description_match(client: httpx.AsyncClient, build: Builder) -> None:
    cat = await build.category()
    tag = word()
    in_description = await build.product(cat["id"], name="Plain mug", description=f"Goes well with a {tag}")
    in_name = await build.product(cat["id"], name=f"The {tag} teapot", description="Porcelain")
    assert await ids(client, q=tag) == [in_name["id"], in_description["id"]]
    assert await ids(client, q=tag, sort="relevance") == [in_name["id"], in_description["id"]]
    assert await ids(client, q=tag, sort="price_asc", category=cat["id"]) != []


@pytest.mark.parametrize(
    "q",
    [
        "'",
        "%",
        "&|!",
        "a & | ! ( ) : * <->",
        '"unterminated',
        "x" * 5000,
        "drop table products;--",
        "\\",
        "shoe\x00s",
        "-",
        "or or or",
    ],
)
async def test_hostile_search_input_is_harmless(client: httpx.AsyncClient, q: str) -> None:
    resp = await client.get("/products", params={"q": q})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"items", "total", "page", "page_size"}


async def test_guests_never_see_inactive_or_deleted_products(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    tag = word()
    visible = await build.product(cat["id"], name=f"Visible {tag}")
    hidden = await build.product(cat["id"], name=f"Hidden {tag}", is_active=False)
    deleted = await build.product(cat["id"], name=f"Deleted {tag}")
    assert (await client.delete(f"/admin/products/{deleted['id']}", headers=admin)).status_code == 204
    assert await ids(client, category=cat["id"]) == [visible["id"]]
    assert await ids(client, q=tag) == [visible["id"]]
    for p in (hidden, deleted):
        assert_problem(await client.get(f"/products/{p['id']}"), 404)
        assert_problem(await client.get(f"/products/{p['slug']}"), 404)
    seen_by_admin = await client.get(f"/products/{hidden['id']}", headers=admin)
    assert seen_by_admin.status_code == 200 and seen_by_admin.json()["is_active"] is False
    assert "no-store" in seen_by_admin.headers["cache-control"]
    cats = (await client.get("/categories", params={"flat": "true"})).json()
    assert next(c for c in cats if c["id"] == cat["id"])["product_count"] == 1


async def test_product_lookup_by_id_or_slug(client: httpx.AsyncClient, build: Builder) -> None:
    cat = await build.category()
    p = await build.product(
        cat["id"],
        name="Fancy Lamp",
        attributes={"colour": "red"},
        images=["https://img.example.com/lamp.jpg"],
        compare_at_price=1500,
    )
    by_id = (await client.get(f"/products/{p['id']}")).json()
    by_slug = (await client.get(f"/products/{p['slug']}")).json()
    assert by_id == by_slug == p
    assert p["slug"].startswith("fancy-lamp")
    assert p["attributes"] == {"colour": "red"} and p["images"] == ["https://img.example.com/lamp.jpg"]
    assert p["version"] == 1 and p["currency"] == "USD" and p["compare_at_price"] == 1500
    assert_problem(await client.get("/products/no-such-product"), 404)


async def test_categories_tree_counts_active_products_including_sub_categories(
    client: httpx.AsyncClient, build: Builder
) -> None:
    top = await build.category()
    child = await build.category(parent_id=top["id"], position=2)
    first = await build.category(parent_id=top["id"], position=1)
    await build.product(top["id"])
    await build.product(child["id"])
    await build.product(child["id"])
    await build.product(child["id"], is_active=False)
    tree = (await client.get("/categories")).json()
    node = next(c for c in tree if c["id"] == top["id"])
    assert node["product_count"] == 3
    assert [c["id"] for c in node["children"]] == [first["id"], child["id"]]
    assert node["children"][1]["product_count"] == 2
    flat = (await client.get("/categories", params={"flat": "true"})).json()
    assert {c["id"] for c in flat} >= {top["id"], child["id"], first["id"]}
    assert all("children" not in c for c in flat)
    one = (await client.get(f"/categories/{child['slug']}")).json()
    assert one["id"] == child["id"] and one["product_count"] == 2 and one["parent_id"] == top["id"]
    assert_problem(await client.get("/categories/nope-" + word()), 404)


async def test_public_reads_send_etag_and_answer_304(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    for path in (
        "/categories",
        f"/categories/{cat['id']}",
        f"/products?category={cat['id']}",
        f"/products/{p['id']}",
    ):
        first = await client.get(path)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert "max-age" in first.headers["cache-control"] and "public" in first.headers["cache-control"]
        again = await client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert (await client.get(path, headers={"If-None-Match": '"other"'})).status_code == 200
    etag = (await client.get(f"/products/{p['id']}")).headers["etag"]
    await client.patch(f"/admin/products/{p['id']}", json={"price": 1234}, headers=admin)
    changed = await client.get(f"/products/{p['id']}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["price"] == 1234


async def test_a_cached_guest_answer_is_only_ever_given_to_guests(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    # cached public reads are answered before routing (api.CachedReads): a caller with a token
    # must still get the route's own answer
    cat = await build.category()
    p = await build.product(cat["id"])
    path = f"/products/{p['id']}"
    guest = await client.get(path, headers={"X-Request-ID": "guest-read-1"})
    cached = await client.get(path, headers={"X-Request-ID": "guest-read-2"})
    assert cached.content == guest.content and cached.headers["etag"] == guest.headers["etag"]
    assert cached.headers["x-request-id"] == "guest-read-2"
    assert cached.headers["content-type"] == "application/json" and cached.headers["vary"] == "Authorization"
    boss = await client.get(path, headers=admin)
    assert boss.status_code == 200 and boss.headers["cache-control"] == "private, no-store"
    assert_problem(await client.get(path, headers={"Authorization": "Bearer not-a-token"}), 401)
    head = await client.head(path)
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == guest.headers["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/products/%00",
        "/categories/%00",
        "/products?category=%00",
        "/products/" + "x" * 3000,
        "/categories/'%3B--",
        "/products?category=a%20b",
    ],
)
async def test_hostile_lookups_are_plain_404s(client: httpx.AsyncClient, path: str) -> None:
    assert_problem(await client.get(path), 404)


async def test_a_guest_browse_answered_before_routing_is_the_routes_own_answer(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str]
) -> None:
    # a guest's browse with plain parameters is answered before routing (api.GuestBrowse); a caller
    # with a token goes through the route. The parameters are sent in the other order to the
    # route, so neither answer comes from the other's cache entry.
    top = await build.category()
    cat = await build.category(parent_id=top["id"])
    await build.products(cat["id"], [{"price": 500 + 100 * i, "stock": i % 2} for i in range(7)])
    cases = [
        f"category={top['slug']}&price_min=600&price_max=1100&sort=price_asc",
        f"category={cat['id']}&page=2&page_size=3&in_stock=1",
        f"category={top['id']}&facets=true&in_stock=false&price_max=0900",
        f"category={cat['slug']}&price_min=90000",  # nothing matches
        f"category={cat['slug']}&page=9&sort=name&unknown=x",  # past the last page
    ]
    for query in cases:
        guest = await client.get(f"/products?{query}")
        routed = await client.get("/products?" + "&".join(query.split("&")[::-1]), headers=admin)
        assert guest.status_code == routed.status_code == 200, guest.text
        assert guest.content == routed.content, query
        for header in ("content-type", "etag", "cache-control", "vary"):
            assert guest.headers[header] == routed.headers[header], header
    assert (await client.get(f"/products?{cases[1]}")).json()["total"] == 3
    # spellings only the route reads (pydantic's) are still read alike
    plain = await client.get(
        "/products", params={"category": cat["id"], "price_min": 700, "in_stock": "true"}
    )
    spelled = await client.get(
        "/products", params={"category": cat["id"], "price_min": "+700", "in_stock": "yes"}
    )
    assert spelled.json()["items"] == plain.json()["items"] and plain.json()["total"] == 2
    # and what is not valid is the route's 422, naming the field
    for bad, field in (
        ({"price_min": "abc"}, "price_min"),
        ({"page_size": "0"}, "page_size"),
        ({"sort": "cheapest"}, "sort"),
        ({"facets": "maybe"}, "facets"),
        ({"option.Size": ""}, "option.Size"),
    ):
        body = assert_problem(await client.get("/products", params=bad), 422)
        assert body["errors"][0]["field"] == field, body
    assert_problem(await client.get("/products", params={"category": "no-such-" + word()}), 404)


async def test_a_listed_product_reads_as_its_own_page(client: httpx.AsyncClient, build: Builder) -> None:
    # a page's products are written as JSON by PostgreSQL (browse._ITEM): text escaped and
    # times written exactly as the product's own page writes them
    cat = await build.category()
    odd = 'Odd "quoted" \\ back\tslash, é 漢字 😀 \u2028 </script> '
    made = await build.product(cat["id"], name=odd + word(), description=odd * 3, compare_at_price=None)
    listed = await client.get("/products", params={"category": cat["id"]})
    (item,) = listed.json()["items"]
    own = (await client.get(f"/products/{made['id']}")).json()
    shared = [key for key in item if key in own]
    assert len(shared) >= 20 and {k: item[k] for k in shared} == {k: own[k] for k in shared}
    assert orjson.dumps(odd)[1:-1] in listed.content
