"""Who may pass: tokens checked at the gateway before anything reaches a service."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway_testkit import seen_headers
from redis.asyncio import Redis

from libs.common.auth import revoke_session
from libs.common.testing import Infra, TestKeys, assert_problem


async def test_guest_gets_401_on_a_user_route(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/users/me")
    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"] == "Bearer"


async def test_signed_in_user_reaches_user_route_with_token_passed_on(
    gw: httpx.AsyncClient, keys: TestKeys
) -> None:
    headers = keys.bearer()
    resp = await gw.get("/cart", headers=headers)
    assert resp.status_code == 200, resp.text
    assert seen_headers(resp.json())["authorization"] == [headers["Authorization"]]


async def test_non_bearer_authorization_is_401(gw: httpx.AsyncClient) -> None:
    assert_problem(await gw.get("/cart", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)


async def test_alg_none_token_is_401(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "sid": "s",
        "jti": "j",
        "iat": now,
        "exp": now + 600,
        "iss": keys.issuer,
        "aud": keys.audience,
    }
    token = jwt.encode(claims, "", algorithm="none", headers={"kid": keys.kid})
    assert_problem(await gw.get("/admin/users", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_token_with_tampered_payload_is_401(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    header, _, signature = keys.mint(role="user").split(".")
    forged = jwt.utils.base64url_encode(b'{"sub":"%s","role":"admin"}' % str(uuid.uuid4()).encode()).decode()
    resp = await gw.get("/admin/users", headers={"Authorization": f"Bearer {header}.{forged}.{signature}"})
    assert_problem(resp, 401)


async def test_expired_token_is_401(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    token = keys.mint(issued_at=int(time.time()) - 3600, expires_in=60)
    body = assert_problem(await gw.get("/users/me", headers={"Authorization": f"Bearer {token}"}), 401)
    assert "expired" in body["detail"]


async def test_token_for_another_audience_is_401(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    assert_problem(await gw.get("/orders", headers=keys.bearer(audience="another-app")), 401)


async def test_token_signed_with_a_stranger_key_is_401(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = jwt.decode(keys.mint(), options={"verify_signature": False})
    token = jwt.encode(claims, stranger, algorithm="RS256", headers={"kid": keys.kid})
    assert_problem(await gw.get("/orders", headers={"Authorization": f"Bearer {token}"}), 401)


async def test_user_gets_403_on_admin_route(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    for path in ("/admin/users", "/admin/orders"):
        assert_problem(await gw.get(path, headers=keys.bearer(role="user")), 403)
    assert_problem(await gw.post("/admin/products", headers=keys.bearer(role="user"), json={}), 403)
    assert_problem(await gw.post("/admin/products/abc/stock", headers=keys.bearer(), json={"stock": 1}), 403)


async def test_admin_reaches_admin_route(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    resp = await gw.patch(
        "/admin/orders/abc/status", headers=keys.bearer(role="admin"), json={"status": "paid"}
    )
    # orders is stopped in these tests: reaching it at all is the point
    assert_problem(resp, 503)
    resp = await gw.post("/admin/products/abc/stock", headers=keys.bearer(role="admin"), json={"stock": 1})
    assert resp.status_code == 200 and resp.json()["path"] == "/admin/products/abc/stock"


async def test_revoked_session_is_refused_at_the_gateway(
    gw: httpx.AsyncClient, keys: TestKeys, infra: Infra
) -> None:
    sid = uuid.uuid4().hex
    headers = keys.bearer(sid=sid)
    assert (await gw.get("/wishlist", headers=headers)).status_code == 200
    redis = Redis.from_url(infra.redis_url)
    try:
        await revoke_session(redis, infra.redis_prefix, sid, ttl_seconds=60)
    finally:
        await redis.aclose()
    assert_problem(await gw.get("/wishlist", headers=headers), 401)


async def test_public_route_passes_a_bad_token_on_for_the_service_to_judge(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/categories", headers={"Authorization": "Bearer garbage"})
    assert resp.status_code == 200
    assert seen_headers(resp.json())["authorization"] == ["Bearer garbage"]


async def test_internal_routes_are_never_routed(gw: httpx.AsyncClient, keys: TestKeys) -> None:
    for path in ("/internal/secret", "/internal/carts/abc", "/internal", "/products/../internal/secret"):
        assert_problem(
            await gw.get(path, headers={**keys.bearer(role="admin"), "X-Internal-Token": "x"}), 404
        )
    assert_problem(await gw.post("/internal/reservations", json={}), 404)


async def test_unknown_path_is_404_and_wrong_method_405(gw: httpx.AsyncClient) -> None:
    assert_problem(await gw.get("/nowhere"), 404)
    resp = await gw.put("/products")
    assert_problem(resp, 405)
    assert resp.headers["allow"] == "GET, HEAD"


async def test_a_literal_path_allows_only_its_own_methods_not_a_templates(
    gw: httpx.AsyncClient, keys: TestKeys
) -> None:
    # /cart/clear also fits /cart/{item_id} (PUT, DELETE); the document lists DELETE alone for it
    for method in ("OPTIONS", "PUT"):
        resp = await gw.request(method, "/cart/clear", headers=keys.bearer())
        assert_problem(resp, 405, "method-not-allowed")
        assert resp.headers["allow"] == "DELETE"
    assert (await gw.delete("/cart/clear", headers=keys.bearer())).status_code == 200
    assert (await gw.put("/cart/some-item", headers=keys.bearer())).status_code == 200
