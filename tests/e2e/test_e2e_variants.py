"""Variants end to end (issue 15): an admin makes a two-option product over the socket and gives it
pictures, a guest filters by option and sees facets, customers buy single variants through the
gateway and sockets hear which variant's stock moved."""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from libs.common.testing import assert_problem, eventually
from tests.e2e.shopper import ADDRESS, Listener, Shopper, admin, customer
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


def tee_variant(size: str, colour: str, stock: int, price: int = 2000) -> dict[str, Any]:
    return {
        "sku": f"TEE-{size}-{colour}-{uuid.uuid4().hex[:6]}",
        "options": {"Size": size, "Colour": colour},
        "price": price,
        "stock": stock,
    }


def picture(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (900, 600), rgb).save(out, format="PNG")
    return out.getvalue()


def media_path(url: str) -> str:
    """The gateway's path of an image URL (a stack's public URL may name another host or port)."""
    return "/media/" + url.split("/media/", 1)[1]


async def stock_by_title(gw: httpx.AsyncClient, product_id: str) -> dict[str, int]:
    resp = await gw.get(f"/products/{product_id}")
    assert resp.status_code == 200, resp.text
    return {v["title"]: v["stock"] for v in resp.json()["variants"]}


async def test_a_two_option_product_made_over_the_socket_is_filtered_faceted_and_sold_per_variant(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    boss = await admin(gw)
    cat = await gw.post("/admin/categories", json={"name": f"Tees {uuid.uuid4().hex[:6]}"}, headers=boss.auth)
    assert cat.status_code == 201, cat.text
    console = await Listener(stack.gateway, boss.token).connect()
    try:
        ack = await console.command(
            "product:add",
            {
                "name": f"Tee {uuid.uuid4().hex[:6]}",
                "sku": f"TEE-{uuid.uuid4().hex[:8]}",
                "currency": "USD",
                "category_id": cat.json()["id"],
                "options": [
                    {"name": "Size", "values": ["S", "M"]},
                    {"name": "Colour", "values": ["Red", "Blue"]},
                ],
                "variants": [
                    tee_variant("S", "Red", 5),
                    tee_variant("M", "Red", 5, price=2200),
                    tee_variant("M", "Blue", 1, price=2400),
                ],
            },
        )
        assert ack["ok"] is True, ack
        product = ack["data"]
        # the socket command reaches catalog's own validation: a duplicate combination is its 422
        bad = await console.command(
            "product:update",
            {"id": product["id"], "variants": [tee_variant("S", "Red", 1), tee_variant("S", "Red", 1)]},
        )
        assert bad["ok"] is False and bad["error"]["status"] == 422, bad
        assert [e["field"] for e in bad["error"]["errors"]] == ["variants.1.options"]
    finally:
        await console.close()
    assert (product["price"], product["stock"]) == (2000, 11)
    variants = {v["title"]: v for v in product["variants"]}
    medium_blue = variants["M / Blue"]

    # pictures go by REST (a socket message carries no file): one per colour, the red one shown for M / Red
    uploaded = {}
    for colour, rgb in (("Red", (200, 30, 30)), ("Blue", (30, 60, 200))):
        resp = await gw.post(
            f"/admin/products/{product['id']}/images",
            files={"file": (f"{colour}.png", picture(rgb), "image/png")},
            data={"alt": f"{colour} tee"},
            headers=boss.auth,
        )
        assert resp.status_code == 201, resp.text
        uploaded[colour] = resp.json()
    red, blue = uploaded["Red"], uploaded["Blue"]
    linked = await gw.patch(
        f"/admin/products/{product['id']}/images/{red['id']}",
        json={"variant_id": variants["M / Red"]["id"]},
        headers=boss.auth,
    )
    assert linked.status_code == 200, linked.text
    shown = (await gw.get(f"/products/{product['id']}")).json()["media"]
    assert [(m["id"], m["alt"], m["variant_id"]) for m in shown] == [
        (red["id"], "Red tee", variants["M / Red"]["id"]),
        (blue["id"], "Blue tee", None),
    ]
    for url, size in ((red["url"], (900, 600)), (red["thumbnails"]["small"], (200, 133))):
        served = await gw.get(media_path(url))
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        assert "immutable" in served.headers["cache-control"]
        assert Image.open(io.BytesIO(served.content)).size == size
    # deleting a picture takes its files with it
    gone = await gw.delete(f"/admin/products/{product['id']}/images/{blue['id']}", headers=boss.auth)
    assert gone.status_code == 204, gone.text
    for url in (blue["url"], *blue["thumbnails"].values()):
        assert (await gw.get(media_path(url))).status_code == 404

    async def filtered_with_facets() -> dict[str, Any]:
        resp = await gw.get(
            "/products", params={"category": cat.json()["id"], "option.Colour": "Blue", "facets": "true"}
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert [p["id"] for p in page["items"]] == [product["id"]]
        return page

    page = await eventually(filtered_with_facets)
    # facets count products in the filtered set, by every value their variants have
    assert page["facets"]["options"]["Size"] == [{"value": "M", "count": 1}, {"value": "S", "count": 1}]
    assert page["facets"]["price"] == {"min": 2000, "max": 2000}
    assert page["facets"]["categories"][0]["count"] == 1

    buyer = await customer(gw)
    vague = await gw.post("/cart", json={"product_id": product["id"], "quantity": 1}, headers=buyer.auth)
    assert assert_problem(vague, 422, "variant-required")["options"] == ["Colour", "Size"]
    medium_red = variants["M / Red"]

    async def added() -> dict[str, Any]:
        resp = await gw.post(
            "/cart", json={"variant_id": medium_red["id"], "quantity": 2}, headers=buyer.auth
        )
        assert resp.status_code == 201, resp.text  # cart learns the product from catalog's event
        return resp.json()

    cart = await eventually(added)
    [line] = cart["items"]
    assert (line["variant_id"], line["sku"], line["title"], line["unit_price"]) == (
        medium_red["id"],
        medium_red["sku"],
        "M / Red",
        2200,
    )
    guest = await Listener(stack.gateway).connect()
    try:
        placed = (await buyer.place_order()).json()
        # a guest's socket hears that M / Red alone moved
        told = await guest.wait_for("stock:updated", {"product_id": product["id"]})
        assert told["data"]["variants"] == [{"id": medium_red["id"], "sku": medium_red["sku"], "stock": 3}]
        assert told["data"]["stock"] == 9
    finally:
        await guest.close()
    [item] = placed["items"]
    assert (item["variant_id"], item["sku"], item["title"], item["quantity"]) == (
        medium_red["id"],
        medium_red["sku"],
        "M / Red",
        2,
    )
    # that variant's stock alone dropped
    assert await stock_by_title(gw, product["id"]) == {"S / Red": 5, "M / Red": 3, "M / Blue": 1}

    # the race for the last M / Blue: exactly one of five buyers gets it
    buyers: list[Shopper] = list(await asyncio.gather(*(customer(gw, "racer") for _ in range(5))))
    answers = await asyncio.gather(
        *(
            gw.post(
                "/orders",
                json={
                    "shipping_address": ADDRESS,
                    "items": [{"product_id": product["id"], "variant_id": medium_blue["id"], "quantity": 1}],
                },
                headers={**b.auth, "Idempotency-Key": uuid.uuid4().hex},
            )
            for b in buyers
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409, 409], [a.text for a in answers]
    assert await stock_by_title(gw, product["id"]) == {"S / Red": 5, "M / Red": 3, "M / Blue": 0}


async def test_a_change_to_one_variants_stock_tells_sockets_which_variant(
    gw: httpx.AsyncClient, stack: Stack
) -> None:
    boss = await admin(gw)
    cat = await gw.post(
        "/admin/categories", json={"name": f"Socks {uuid.uuid4().hex[:6]}"}, headers=boss.auth
    )
    assert cat.status_code == 201, cat.text
    guest = await Listener(stack.gateway).connect()
    try:
        made = await gw.post(
            "/admin/products",
            json={
                "name": f"Sock {uuid.uuid4().hex[:6]}",
                "sku": f"SOCK-{uuid.uuid4().hex[:8]}",
                "currency": "USD",
                "category_id": cat.json()["id"],
                "options": [{"name": "Size", "values": ["S", "M"]}, {"name": "Colour", "values": ["Red"]}],
                "variants": [tee_variant("S", "Red", 4), tee_variant("M", "Red", 6)],
            },
            headers=boss.auth,
        )
        assert made.status_code == 201, made.text
        product = made.json()
        small, medium = (
            next(v for v in product["variants"] if v["title"] == t) for t in ("S / Red", "M / Red")
        )
        # the product's notification carries its options and variants
        added = await guest.wait_for("product:added", {"id": product["id"]})
        assert added["data"]["options"] == product["options"]
        assert {(v["id"], v["sku"], v["title"], v["stock"]) for v in added["data"]["variants"]} == {
            (small["id"], small["sku"], "S / Red", 4),
            (medium["id"], medium["sku"], "M / Red", 6),
        }

        changed = await gw.post(
            f"/admin/products/{product['id']}/stock",
            json={"delta": -2, "variant_id": medium["id"]},
            headers=boss.auth,
        )
        assert changed.status_code == 200, changed.text
        told = await guest.wait_for("stock:updated", {"product_id": product["id"]})
        # the product's total and the one variant that moved, by id and SKU; S / Red is not named
        assert told["data"]["stock"] == 8
        assert told["data"]["variants"] == [{"id": medium["id"], "sku": medium["sku"], "stock": 4}]
    finally:
        await guest.close()
