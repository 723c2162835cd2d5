"""API keys at the gateway: traded at (a stand-in of) auth's internal route, forwarded as a scoped
token, held to their scopes, limited per key, and cheap to refuse when guessed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from fastapi import FastAPI, Header
from gateway_testkit import gateway_client, gateway_settings, seen_headers, upstream_app
from starlette.responses import JSONResponse

from libs.common.apikeys import new_key
from libs.common.auth import revoke_session
from libs.common.redis_client import make_redis
from libs.common.testing import Infra, TestKeys, assert_problem, serve_app

TOKEN = "gateway-test-internal-token"


@dataclass
class KeyAuth:
    """auth's key trade as the gateway calls it: keys in memory, tokens minted with the test keys."""

    keys: TestKeys
    issued: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # key -> (id, scopes)
    trades: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def issue(self, *scopes: str) -> str:
        key, _ = new_key()
        self.issued[key] = (str(uuid.uuid4()), list(scopes))
        return key

    def app(self) -> FastAPI:
        app = upstream_app("auth")

        @app.post("/internal/api-keys/exchange")
        async def exchange(body: dict[str, Any], x_internal_token: str | None = Header(None)) -> JSONResponse:
            if x_internal_token != TOKEN:
                return JSONResponse({"status": 403, "detail": "internal"}, status_code=403)
            self.trades.append(body["key"])
            found = self.issued.get(body["key"])
            if found is None or found[0] in self.revoked:
                return JSONResponse(
                    {"status": 401, "detail": "This is not a valid API key."}, status_code=401
                )
            key_id, scopes = found
            token = self.keys.mint(
                user_id=key_id, role="admin", sid=key_id, expires_in=300, scp=" ".join(scopes)
            )
            return JSONResponse(
                {"access_token": token, "expires_in": 300, "key_id": key_id, "scopes": scopes}
            )

        # ahead of the stand-in's catch-all echo, which would answer it otherwise
        app.router.routes.insert(0, app.router.routes.pop())
        return app


@pytest_asyncio.fixture
async def key_auth(keys: TestKeys) -> AsyncIterator[tuple[KeyAuth, str]]:
    standin = KeyAuth(keys)
    async with serve_app(standin.app()) as url:
        yield standin, url


def settings(infra, keys, upstreams, url: str, **extra: Any):
    return gateway_settings(infra, keys, upstreams, auth_url=url, internal_api_token=TOKEN, **extra)


async def test_a_scoped_key_reaches_its_admin_routes_as_a_token_and_nothing_else(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], key_auth: tuple[KeyAuth, str]
) -> None:
    auth, url = key_auth
    key = auth.issue("catalog:write")
    async with gateway_client(settings(infra, keys, upstreams, url)) as client:
        as_key = {"Authorization": f"Bearer {key}"}
        made = await client.patch("/admin/categories/lamps", headers=as_key, json={"name": "Lamps"})
        assert made.status_code == 200, made.text
        forwarded = seen_headers(made.json())["authorization"][0]
        assert key not in forwarded and forwarded.startswith("Bearer ey"), (
            "the key itself never leaves the gateway"
        )
        assert (
            await client.get("/admin/products/x", headers=as_key)
        ).status_code == 200  # write implies read

        orders = await client.get("/admin/orders", headers=as_key)
        assert assert_problem(orders, 403)["scope"] == "orders:read"
        assert_problem(await client.get("/cart", headers=as_key), 403)  # a customer's route
        assert_problem(
            await client.post("/admin/api-keys", headers=as_key, json={}), 403
        )  # keys make no keys
        assert_problem(await client.patch(f"/admin/users/{uuid.uuid4()}", headers=as_key, json={}), 403)
        public = await client.get("/products?echo=1", headers=as_key)
        assert public.status_code == 200 and "authorization" not in seen_headers(public.json())
    assert auth.trades == [key], "one trade served every request"


async def test_a_revoked_key_is_refused_at_its_next_request(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], key_auth: tuple[KeyAuth, str]
) -> None:
    auth, url = key_auth
    key = auth.issue("catalog:write")
    s = settings(infra, keys, upstreams, url)
    async with gateway_client(s) as client:
        as_key = {"Authorization": f"Bearer {key}"}
        assert (await client.patch("/admin/categories/lamps", headers=as_key, json={})).status_code == 200
        key_id = auth.issued[key][0]
        auth.revoked.add(key_id)
        redis = make_redis(s.redis_url)
        try:  # what auth's revocation does: the key's session ends everywhere
            await revoke_session(redis, s.redis_prefix, key_id, ttl_seconds=60)
        finally:
            await redis.aclose()
        assert_problem(await client.patch("/admin/categories/lamps", headers=as_key, json={}), 401)


async def test_guessed_keys_spend_the_guessers_budget_and_cost_auth_at_most_one_lookup_each(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], key_auth: tuple[KeyAuth, str]
) -> None:
    auth, url = key_auth
    tight = {"default": {"rate": 0.01, "burst": 5}}
    async with gateway_client(
        settings(infra, keys, upstreams, url, rate_limits=tight), client_ip="10.9.8.7"
    ) as client:
        codes = []
        for _ in range(20):
            guess, _ = new_key()
            resp = await client.get("/admin/orders", headers={"Authorization": f"Bearer {guess}"})
            codes.append(resp.status_code)
        assert codes == [401] * 5 + [429] * 15
        assert len(auth.trades) == 5
        junk = await client.get("/admin/products/x", headers={"Authorization": "Bearer sk_short"})
        assert_problem(junk, 429)


async def test_each_key_has_its_own_rate_limit(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], key_auth: tuple[KeyAuth, str]
) -> None:
    auth, url = key_auth
    busy, quiet = auth.issue("catalog:read"), auth.issue("catalog:read")
    tight = {"default": {"rate": 0.01, "burst": 3}}
    async with gateway_client(settings(infra, keys, upstreams, url, rate_limits=tight)) as client:
        codes = [
            (await client.get("/admin/products/x", headers={"Authorization": f"Bearer {busy}"})).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        other = await client.get("/admin/products/x", headers={"Authorization": f"Bearer {quiet}"})
        assert other.status_code == 200
