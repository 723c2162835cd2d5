"""What passes through: method, path, query, headers and bodies unchanged; what the gateway adds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from gateway_testkit import gateway_client, gateway_settings, seen_headers

from gateway.app import create_app
from libs.common.forwarding import forwarding_proof
from libs.common.testing import Infra, TestKeys, assert_problem, serve_app

LIMIT = 1024 * 1024


async def test_query_string_reaches_the_service_byte_for_byte(gw: httpx.AsyncClient) -> None:
    query = "q=caf%C3%A9+au+lait&tag=a&tag=b&empty=&flag&price_min=10%2C5"
    resp = await gw.get(f"/products?{query}")
    assert resp.status_code == 200
    echo = resp.json()
    assert echo["query"] == query and echo["path"] == "/products" and echo["service"] == "catalog"


async def test_encoded_path_segment_is_forwarded_as_sent(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/products/cr%C3%A8me-br%C3%BBl%C3%A9e")
    assert resp.json()["raw_path"] == "/products/cr%C3%A8me-br%C3%BBl%C3%A9e"


async def test_non_ascii_body_comes_back_unchanged(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    body = '{"name": "Crème brûlée \u2013 日本語 🍮"}'.encode()
    resp = await gw.post(
        "/cart?raw",
        content=body,
        headers={**keys.bearer(), "Content-Type": "application/json; charset=utf-8"},
    )
    assert resp.status_code == 200
    assert resp.content == body
    assert resp.headers["content-type"] == "application/json; charset=utf-8"


async def test_client_identity_headers_are_replaced_by_the_gateways(
    gw: httpx.AsyncClient, keys: TestKeys, infra: Infra, upstreams: dict[str, str]
) -> None:
    forged = {
        "X-Internal-Token": "dev-internal-token-change-me",
        "X-User-Id": "someone",
        "X-User-Role": "admin",
        "Forwarded": "for=6.6.6.6",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Real-IP": "6.6.6.6",
        "X-Custom-Client": "kept",
        "X-Forwarded-Proof": "f" * 64,
    }
    resp = await gw.get("/cart", headers={**keys.bearer(), **forged})
    seen = seen_headers(resp.json())
    for name in ("x-internal-token", "x-user-id", "x-user-role", "forwarded", "x-real-ip"):
        assert name not in seen, name
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    # the proof that makes a service believe X-Forwarded-For is the gateway's alone
    token = gateway_settings(infra, keys, upstreams).internal_api_token.get_secret_value()
    assert seen["x-forwarded-proof"] == [forwarding_proof(token)]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["shop.test"]
    assert seen["x-custom-client"] == ["kept"]
    assert seen["x-request-id"] == [resp.headers["x-request-id"]]


async def test_a_sane_request_id_is_kept_and_an_odd_one_replaced(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/products", headers={"X-Request-ID": "front-42.a:b"})
    assert resp.headers["x-request-id"] == "front-42.a:b"
    assert seen_headers(resp.json())["x-request-id"] == ["front-42.a:b"]
    resp = await gw.get("/products", headers={"X-Request-ID": "two words"})
    assert resp.headers["x-request-id"] != "two words"
    assert seen_headers(resp.json())["x-request-id"] == [resp.headers["x-request-id"]]


async def test_upstream_error_status_headers_and_body_pass_through(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/products/taken?status=409")
    assert resp.status_code == 409
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["x-custom"] == "kept" and resp.headers["cache-control"] == "no-store"
    assert resp.headers.get_list("set-cookie") == ["a=1; Path=/; SameSite=lax", "b=2; Path=/; SameSite=lax"]
    assert resp.json()["detail"] == "Already taken."


async def test_large_and_chunked_responses_stream_back_whole(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB: over the size read at once, so it is streamed
    resp = await gw.put("/cart/item?raw", content=body, headers=keys.bearer())
    assert resp.status_code == 200 and resp.content == body
    answer = bytes(range(256)) * 800  # 200 KiB: read whole and sent at once, though it comes in pieces
    resp = await gw.put("/cart/item?raw", content=answer, headers=keys.bearer())
    assert resp.status_code == 200 and resp.content == answer
    resp = await gw.get("/products/many?stream=300")
    assert resp.status_code == 200 and len(resp.content) == 300 * 4096
    assert resp.content[-4096:].startswith(b"000299")


async def test_requests_one_after_another_share_one_connection_to_the_service(gw: httpx.AsyncClient) -> None:
    # a connection per request would cost both sides a handshake and a new protocol each time
    ports = {(await gw.get(f"/products?n={n}")).json()["client_port"] for n in range(3)}
    assert len(ports) == 1
    assert (await gw.head("/products")).status_code == 200
    assert (await gw.get("/products")).status_code == 200  # after an answer that had no body


async def test_head_request_gets_headers_without_body(gw: httpx.AsyncClient) -> None:
    resp = await gw.head("/products")
    assert resp.status_code == 200 and resp.content == b""


async def test_body_at_the_limit_passes_and_one_byte_more_is_413(
    gw: httpx.AsyncClient, keys: TestKeys
) -> None:
    resp = await gw.post("/cart", content=b"x" * LIMIT, headers=keys.bearer())
    assert resp.status_code == 200 and resp.json()["body_len"] == LIMIT
    body = assert_problem(await gw.post("/cart", content=b"x" * (LIMIT + 1), headers=keys.bearer()), 413)
    assert body["limit"] == LIMIT


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"y" * n


async def test_streamed_body_without_length_is_bounded_too(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    resp = await gw.post("/cart", content=_chunks(LIMIT), headers=keys.bearer())
    assert resp.status_code == 200 and resp.json()["body_len"] == LIMIT
    assert_problem(await gw.post("/cart", content=_chunks(3 * LIMIT), headers=keys.bearer()), 413)


async def test_stopped_service_is_503_problem(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    body = assert_problem(await gw.get("/orders", headers=keys.bearer()), 503)
    assert "orders" in body["detail"] and "127.0.0.1" not in body["detail"]


async def test_slow_service_is_504_problem(gw: httpx.AsyncClient) -> None:
    body = assert_problem(await gw.get("/products/slow?sleep=1.5"), 504)
    assert "catalog" in body["detail"]


async def test_every_answer_says_it_varies_by_origin(gw: httpx.AsyncClient) -> None:
    # a cache between must not hand a browser page an answer given to a call without Origin
    for headers in ({}, {"Origin": "https://shop.example"}):
        assert "Origin" in (await gw.get("/products", headers=headers)).headers["vary"]
        assert "Origin" in (await gw.get("/no-such-route", headers=headers)).headers["vary"]


async def test_cors_preflight_and_response_for_a_configured_origin(gw: httpx.AsyncClient) -> None:
    resp = await gw.options(
        "/cart",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "https://shop.example"
    resp = await gw.get("/products", headers={"Origin": "https://shop.example"})
    assert resp.headers["access-control-allow-origin"] == "https://shop.example"
    resp = await gw.get("/products", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in resp.headers
    refused = assert_problem(
        await gw.options(
            "/cart", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        ),
        400,
    )
    assert "origin" in refused["detail"].lower() and "https://shop.example" in refused["detail"]


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_other_clients_forward_the_same_way(
    kind: str, infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(infra, keys, upstreams, upstream_client=kind)
    async with gateway_client(settings) as client:
        resp = await client.get("/products?a=1&a=2")
        assert resp.status_code == 200 and resp.json()["query"] == "a=1&a=2"
        assert (await client.get("/products/x?status=409")).status_code == 409
        assert_problem(await client.get("/orders", headers=keys.bearer()), 503)
        assert_problem(await client.get("/products/slow?sleep=1.5"), 504)


async def test_date_and_server_headers_are_sent_once(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    # served by uvicorn as in production: the gateway's server sets its own Date and Server
    async with (
        serve_app(create_app(gateway_settings(infra, keys, upstreams))) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        for resp in (await client.get("/products/x"), await client.get("/products/x?status=409")):
            assert len(resp.headers.get_list("date")) == 1, resp.headers
            assert len(resp.headers.get_list("server")) == 1, resp.headers


UPLOAD_LIMIT = 10 * 1024 * 1024 + 64 * 1024  # a 10 MB image and its multipart framing


async def test_only_the_image_upload_route_takes_a_body_past_1_mb(
    gw: httpx.AsyncClient, keys: TestKeys
) -> None:
    admin, images = keys.bearer(role="admin"), f"/admin/products/{uuid.uuid4()}/images"
    nine_mb = b"j" * (9 * 1024 * 1024)
    resp = await gw.post(images, content=nine_mb, headers=admin)
    assert resp.status_code == 200 and resp.json()["body_len"] == len(nine_mb)
    for too_big in (11 * 1024 * 1024, 50 * 1024 * 1024):
        body = assert_problem(await gw.post(images, content=b"j" * too_big, headers=admin), 413)
        assert body["limit"] == UPLOAD_LIMIT
    assert_problem(await gw.post(images, content=_chunks(11 * 1024 * 1024), headers=admin), 413)
    # the customer is refused for who they are, before a byte of their 9 MB is read
    assert_problem(await gw.post(images, content=nine_mb, headers=keys.bearer(role="user")), 403)
    # every other route, the image's own PATCH included, keeps the 1 MB cap
    for method, path in (("PATCH", f"{images}/{uuid.uuid4()}"), ("POST", "/admin/products")):
        resp = await gw.request(method, path, content=b"x" * (LIMIT + 1), headers=admin)
        assert assert_problem(resp, 413)["limit"] == LIMIT
