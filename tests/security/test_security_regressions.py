"""Bugs the fuzzer found, pinned so they stay fixed (each test names what a user would have seen)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from libs.common.testing import assert_problem
from tests.security.conftest import PASSWORD, Cast, register


async def test_a_null_address_list_neither_fails_nor_breaks_the_profile_or_the_admin_user_list(
    cast: Cast,
) -> None:
    # was: 500, and the NULL it stored made GET /users/me and every admin GET /admin/users a 500 for good
    shopper = await register(cast.http, "sec-null")
    address = {
        "name": "Ada",
        "line1": "1 Analytical St",
        "city": "London",
        "postal_code": "N1 1AA",
        "country": "GB",
    }
    first = await cast.http.put("/users/me", json={"addresses": [address]}, headers=shopper.auth)
    assert first.status_code == 200, first.text
    resp = await cast.http.put(
        "/users/me", json={"addresses": None, "phone": "+44 20 7946 0000"}, headers=shopper.auth
    )
    assert resp.status_code == 200, resp.text
    assert (
        resp.json()["addresses"] == first.json()["addresses"] and resp.json()["phone"] == "+44 20 7946 0000"
    )
    assert (await cast.http.get("/users/me", headers=shopper.auth)).status_code == 200
    listing = await cast.http.get("/admin/users", params={"q": shopper.email}, headers=cast.admin.auth)
    assert listing.status_code == 200 and listing.json()["total"] == 1, listing.text


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/auth/register",
            {"email": "nul-{tag}@e2e.shop.test", "password": PASSWORD, "name": "Ada\x00"},
            "name",
        ),
        ("POST", "/auth/login", {"email": "a\x00{tag}@e2e.shop.test", "password": PASSWORD}, "email"),
        ("POST", "/auth/forgot-password", {"email": "a\x00{tag}@e2e.shop.test"}, "email"),
        ("PUT", "/users/me", {"name": "Ada\x00"}, "name"),
        ("PUT", "/users/me", {"phone": "0\x00"}, "phone"),
        (
            "PUT",
            "/users/me",
            {
                "addresses": [
                    {
                        "name": "Ada",
                        "line1": "1 A\x00 St",
                        "city": "London",
                        "postal_code": "N1",
                        "country": "GB",
                    }
                ]
            },
            "addresses.0.line1",
        ),
    ],
)
async def test_text_with_a_nul_character_is_a_422_naming_the_field(
    cast: Cast, method: str, path: str, body: dict[str, object], field: str
) -> None:
    # was: 500 (PostgreSQL text and JSONB cannot hold NUL); now the client is told what to fix
    shopper = await register(cast.http, "sec-nul")
    tag = uuid.uuid4().hex[:8]
    sent = {k: v.format(tag=tag) if isinstance(v, str) and "{tag}" in v else v for k, v in body.items()}
    resp = await cast.http.request(method, path, json=sent, headers=shopper.auth)
    problem = assert_problem(resp, 422)
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert (await cast.http.get("/users/me", headers=shopper.auth)).json()["name"] == "Sec sec-nul"


async def test_a_price_filter_beyond_any_price_is_a_422_naming_the_field(gw: httpx.AsyncClient) -> None:
    # was: 500 (asyncpg cannot send a number past bigint); the largest bigint itself is a valid filter
    for field in ("price_min", "price_max"):
        problem = assert_problem(await gw.get("/products", params={field: 2**63}), 422)
        assert [e["field"] for e in problem["errors"]] == [field], problem
    resp = await gw.get("/products", params={"price_min": 2**63 - 1})
    assert resp.status_code == 200 and resp.json()["items"] == [], resp.text


async def test_product_attributes_with_a_number_past_64_bits_are_a_422(cast: Cast) -> None:
    # was: 500 (the attributes check could not serialise the number and raised TypeError)
    box = await cast.sandbox()
    resp = await cast.http.patch(
        f"/admin/products/{box.product['id']}",
        headers=cast.admin.auth,
        json={"attributes": {"weight": [2**70]}},
    )
    problem = assert_problem(resp, 422)
    assert [e["field"] for e in problem["errors"]] == ["attributes"], problem
    assert (await cast.http.get(f"/products/{box.product['id']}")).json()["attributes"] == box.product[
        "attributes"
    ]


async def test_the_published_document_says_every_refusal_is_a_problem(gw: httpx.AsyncClient) -> None:
    # was: only 200/422 documented, 422 as application/json: clients (and schemathesis) saw
    # every 401/403/404/409 and every problem+json body as a broken contract
    doc = (await gw.get("/openapi.json")).json()
    operations = [(m, p, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(operations) > 30
    for method, path, op in operations:
        refusals = {code: r for code, r in op["responses"].items() if code.startswith("4")}
        assert "4XX" in refusals, f"{method.upper()} {path} documents no problem responses"
        for code, response in refusals.items():
            types = set(response.get("content", {}))
            assert "application/json" not in types, (
                f"{method.upper()} {path} {code} is documented as plain JSON"
            )
