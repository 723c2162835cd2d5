"""A service built with create_service_app: problem responses, auth dependencies, health, request ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from libs.common.auth import AdminUser, CurrentUser, InternalCaller, OptionalUser
from libs.common.config import CommonSettings
from libs.common.errors import Conflict, NotFound
from libs.common.service import create_service_app, nul_field
from libs.common.testing import Infra, TestKeys, assert_problem, running_app, serve_app, settings_for
from libs.common.testing.apps import free_port

INTERNAL_TOKEN = "internal-secret-of-this-test"


class ItemCreate(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    price: int = Field(ge=0)


router = APIRouter()


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    return {"user_id": str(user.user_id), "role": user.role}


@router.get("/maybe")
async def maybe(user: OptionalUser) -> dict[str, Any]:
    return {"user_id": str(user.user_id) if user else None}


@router.get("/admin/stats")
async def stats(admin: AdminUser) -> dict[str, str]:
    return {"admin": str(admin.user_id)}


@router.get("/internal/ping")
async def internal_ping(_: InternalCaller) -> dict[str, str]:
    return {"caller": "service"}


@router.post("/items", status_code=201)
async def create_item(body: ItemCreate) -> ItemCreate:
    return body


@router.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    if item_id == 409:
        raise Conflict("The item is being edited by someone else.", item_id=item_id)
    if item_id == 0:
        raise Conflict("Sold out.", type_="insufficient-stock", available=0)
    raise NotFound(f"No item {item_id}.")


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("password=hunter2 in /srv/app/secret.py line 42")


def make_app(infra: Infra, keys: TestKeys, **overrides: Any):
    settings = settings_for(
        CommonSettings,
        infra,
        keys,
        service_name="commontest",
        event_bus="memory",
        internal_api_token=INTERNAL_TOKEN,
        **overrides,
    )
    return create_service_app(settings=settings, title="common test", routers=[router])


@pytest_asyncio.fixture(scope="module")
async def client(infra: Infra, keys: TestKeys) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(make_app(infra, keys)) as c:
        yield c


async def test_request_without_token_gets_401_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/me"), 401)
    assert body["title"] == "Unauthorized"


async def test_malformed_authorization_header_is_401_not_a_guest(
    client: httpx.AsyncClient, keys: TestKeys
) -> None:
    assert (await client.get("/maybe")).json() == {"user_id": None}
    assert_problem(await client.get("/maybe", headers={"Authorization": "Basic abc"}), 401)
    resp = await client.get("/maybe", headers={"Authorization": "Bearer garbage"})
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"


async def test_signed_in_user_is_recognised(client: httpx.AsyncClient, keys: TestKeys) -> None:
    resp = await client.get("/me", headers=keys.bearer(user_id="6d9c2f1e-3c1b-4a59-9d59-0a1d3f1c7e11"))
    assert resp.status_code == 200
    assert resp.json() == {"user_id": "6d9c2f1e-3c1b-4a59-9d59-0a1d3f1c7e11", "role": "user"}


async def test_user_cannot_use_an_admin_route(client: httpx.AsyncClient, keys: TestKeys) -> None:
    assert_problem(await client.get("/admin/stats", headers=keys.bearer(role="user")), 403)
    assert_problem(await client.get("/admin/stats"), 401)
    assert (await client.get("/admin/stats", headers=keys.bearer(role="admin"))).status_code == 200


async def test_internal_route_needs_the_service_token(client: httpx.AsyncClient, keys: TestKeys) -> None:
    assert_problem(await client.get("/internal/ping"), 403)
    assert_problem(await client.get("/internal/ping", headers={"X-Internal-Token": "guess"}), 403)
    assert_problem(
        await client.get("/internal/ping", headers={**keys.bearer(role="admin"), "X-Internal-Token": ""}), 403
    )
    resp = await client.get("/internal/ping", headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert resp.status_code == 200 and resp.json() == {"caller": "service"}


async def test_invalid_body_gives_422_with_an_error_per_field(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.post("/items", json={"name": "", "price": -5}), 422)
    fields = {e["field"]: e for e in body["errors"]}
    assert set(fields) == {"name", "price"}
    assert all(e["message"] and e["type"] for e in body["errors"])
    body = assert_problem(await client.post("/items", json={"price": 1}), 422)
    assert [e["field"] for e in body["errors"]] == ["name"]
    body = assert_problem(
        await client.post("/items", content=b"{oops", headers={"content-type": "application/json"}), 422
    )
    assert body["errors"]
    body = assert_problem(await client.get("/items/abc"), 422)
    assert [e["field"] for e in body["errors"]] == ["item_id"]


async def test_unhandled_error_gives_500_problem_without_internals(client: httpx.AsyncClient) -> None:
    resp = await client.get("/boom", headers={"X-Request-ID": "req-boom-1"})
    body = assert_problem(resp, 500)
    assert "hunter2" not in resp.text and "secret.py" not in resp.text and "RuntimeError" not in resp.text
    assert resp.headers["x-request-id"] == "req-boom-1"
    assert body["request_id"] == "req-boom-1"


async def test_domain_errors_map_to_their_status(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/items/7"), 404)
    assert body["detail"] == "No item 7."
    body = assert_problem(await client.get("/items/409"), 409)
    assert body["item_id"] == 409
    assert_problem(await client.get("/no/such/route"), 404)


async def test_every_problem_has_a_stable_type_uri_to_branch_on(client: httpx.AsyncClient) -> None:
    assert (await client.get("/items/7")).json()["type"] == "/problems/not-found"
    assert (await client.get("/items/409")).json()["type"] == "/problems/conflict"
    body = assert_problem(await client.get("/items/0"), 409, "insufficient-stock")
    assert body["type"] == "/problems/insufficient-stock" and body["available"] == 0
    assert assert_problem(await client.post("/items", json={}), 422)["type"] == "/problems/validation-failed"
    assert assert_problem(await client.get("/me"), 401)["type"] == "/problems/unauthorized"
    assert assert_problem(await client.get("/boom"), 500)["type"] == "/problems/internal-error"


def test_a_problem_type_must_be_registered_before_it_is_used() -> None:
    with pytest.raises(ValueError, match="PROBLEM_TYPES"):
        Conflict("Nope.", type_="no-such-type")


async def test_request_id_is_echoed_in_header_and_problem_body(client: httpx.AsyncClient) -> None:
    resp = await client.get("/items/7", headers={"X-Request-ID": "req-42"})
    assert resp.headers["x-request-id"] == "req-42"
    assert resp.json()["request_id"] == "req-42"
    resp = await client.get("/items/7")
    generated = resp.headers["x-request-id"]
    assert generated and resp.json()["request_id"] == generated
    resp = await client.get("/items/7", headers={"X-Request-ID": "x" * 500})
    assert resp.headers["x-request-id"] != "x" * 500


async def test_head_answers_as_get_would_without_the_body(infra: Infra, keys: TestKeys) -> None:
    async with serve_app(make_app(infra, keys)) as url, httpx.AsyncClient(base_url=url) as c:
        got, head = await c.get("/maybe"), await c.head("/maybe")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == got.headers["content-length"] != "0"
        assert head.headers["content-type"] == "application/json"
        missing = await c.head("/items/7")
        assert missing.status_code == 404 and missing.content == b""
        assert (await c.head("/items")).status_code == 405  # POST only: HEAD is not a way in
        assert (await c.head("/me")).status_code == 401
        text = (await c.get("/metrics", headers={"X-Internal-Token": INTERNAL_TOKEN})).text
        assert 'http_requests_total{method="HEAD",route="/maybe",status="200"}' in text


async def test_metrics_count_requests_per_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/items/7")
    await client.get("/items/8")
    text = (await client.get("/metrics", headers={"X-Internal-Token": INTERNAL_TOKEN})).text
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status="404"}' in text
    assert "/items/7" not in text


async def test_ready_when_its_dependencies_answer(client: httpx.AsyncClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json()["checks"] == {"redis": "ok", "broker": "ok"}
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_is_503_naming_redis_when_redis_is_unreachable(infra: Infra, keys: TestKeys) -> None:
    app = make_app(infra, keys, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with running_app(app) as c:
        resp = await c.get("/readyz")
        assert resp.status_code == 503
        checks = resp.json()["checks"]
        assert checks["redis"].startswith("unavailable") and checks["broker"] == "ok"
        # fail closed: with revocation marks unreadable, no token is let through
        assert_problem(await c.get("/me", headers=keys.bearer()), 503)


async def test_a_burst_of_signed_in_requests_waits_for_redis_rather_than_failing(
    infra: Infra, keys: TestKeys
) -> None:
    """Every request reads a revocation mark: 300 at once, through 8 connections, all get in."""
    app = make_app(infra, keys, redis_max_connections=8)
    async with (
        serve_app(app) as base,
        httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=300)) as c,
    ):
        codes = await asyncio.gather(*(c.get("/me", headers=keys.bearer()) for _ in range(300)))
        assert [r.status_code for r in codes] == [200] * 300


@pytest.mark.parametrize(
    ("query", "path_params", "body", "field"),
    [
        (b"q=sho%00es", {}, b"", "q"),
        (b"", {"slug": "a\x00b"}, b"", "slug"),
        (
            b"",
            {},
            b'{"name": "Ada", "addresses": [{"city": "x"}, {"line1": "1 A\\u0000 St"}]}',
            "addresses.1.line1",
        ),
        (b"", {}, b'{"attributes": {"co\\u0000lour": "red"}}', "attributes.colour"),
        (b"", {}, b'"\\u0000"', "body"),
        (b"", {}, b"not json", "body"),
    ],
)
def test_a_nul_is_traced_back_to_the_field_the_client_must_fix(
    query: bytes, path_params: dict[str, str], body: bytes, field: str
) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "query_string": query,
        "headers": [],
        "path_params": path_params,
        "shop.body": [body[:7], body[7:]],
    }
    assert nul_field(Request(scope)) == field
