"""Rate limits per client IP and per user, and what happens when Redis is gone."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_testkit import gateway_client, gateway_settings

from libs.common.testing import Infra, TestKeys, assert_problem
from libs.common.testing.apps import free_port

TIGHT = {"default": {"rate": 0.5, "burst": 3}, "auth": {"rate": 0.5, "burst": 1}}


async def test_client_over_its_burst_gets_429_with_retry_after(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(infra, keys, upstreams, rate_limits=TIGHT)
    async with gateway_client(settings, client_ip="10.1.0.1") as client:
        for _ in range(3):
            assert (await client.get("/products")).status_code == 200
        resp = await client.get("/products")
        body = assert_problem(resp, 429)
        assert int(resp.headers["retry-after"]) >= 1 and body["retry_after"] >= 1
    async with gateway_client(settings, client_ip="10.1.0.2") as other:
        assert (await other.get("/products")).status_code == 200, "another address has its own bucket"


async def test_signed_in_user_has_a_bucket_of_their_own_behind_a_busy_address(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(infra, keys, upstreams, rate_limits=TIGHT)
    async with gateway_client(settings, client_ip="10.2.0.1") as client:
        for _ in range(3):
            await client.get("/products")
        assert_problem(await client.get("/products"), 429)
        assert (await client.get("/products", headers=keys.bearer())).status_code == 200
        assert (await client.get("/cart", headers=keys.bearer())).status_code == 200


async def test_a_missing_or_refused_token_is_a_401_even_past_the_budget(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    # was: 429 once the address's budget was spent, where the caller needed to hear "sign in"
    settings = gateway_settings(infra, keys, upstreams, rate_limits=TIGHT)
    async with gateway_client(settings, client_ip="10.5.0.1") as client:
        for _ in range(3):
            assert (await client.get("/products")).status_code == 200
        assert_problem(await client.get("/products"), 429)  # the budget is spent
        assert_problem(await client.get("/orders"), 401)
        assert_problem(await client.get("/orders", headers={"Authorization": "Bearer guess"}), 401)
        assert_problem(await client.get("/admin/orders", headers=keys.bearer(role="user")), 403)
        # a valid token is authenticated first, then limited per user: never refused as a guest
        assert (await client.get("/cart", headers=keys.bearer())).status_code == 200


async def test_refusals_spend_none_of_the_addresss_budget(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(infra, keys, upstreams, rate_limits=TIGHT)
    async with gateway_client(settings, client_ip="10.6.0.1") as client:
        for _ in range(10):
            assert_problem(await client.get("/orders", headers={"Authorization": "Bearer guess"}), 401)
        for _ in range(3):
            assert (await client.get("/products")).status_code == 200


async def test_auth_routes_have_their_own_stricter_limit(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(infra, keys, upstreams, rate_limits=TIGHT)
    async with gateway_client(settings, client_ip="10.3.0.1") as client:
        assert (await client.post("/auth/login", json={})).status_code == 200
        assert_problem(await client.post("/auth/login", json={}), 429)
        assert (await client.get("/products")).status_code == 200, "browsing is limited separately"


async def test_redis_down_lets_public_routes_through_but_refuses_tokens(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    settings = gateway_settings(
        infra, keys, upstreams, rate_limits=TIGHT, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    async with gateway_client(settings, client_ip="10.4.0.1") as client:
        for _ in range(5):
            assert (await client.get("/products")).status_code == 200  # rate limiting fails open
        assert_problem(await client.get("/cart", headers=keys.bearer()), 503)  # revocation fails closed


async def admitted_until_refused(client: Any, *, most: int = 100) -> int:
    """Guest reads until the first 429: how many got through."""
    for n in range(most):
        if (await client.get("/products")).status_code == 429:
            return n
    raise AssertionError(f"{most} requests and never limited")


async def test_replicas_sharing_a_callers_bucket_let_through_no_more_than_its_burst(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    # a burst of 40 is spent through leases of 4 tokens (gateway/ratelimit.py): each replica
    # answers most requests without Redis, yet every one it lets through came out of the one bucket
    limits = {"default": {"rate": 0.01, "burst": 40}, "auth": {"rate": 0.01, "burst": 40}}
    settings = gateway_settings(infra, keys, upstreams, rate_limits=limits)
    async with (
        gateway_client(settings, client_ip="10.7.0.1") as one,
        gateway_client(settings, client_ip="10.7.0.1") as two,
    ):
        codes: list[int] = []
        for _ in range(30):  # the caller alternates between replicas, as a load balancer spreads it
            codes.append((await one.get("/products")).status_code)
            codes.append((await two.get("/products")).status_code)
        assert codes.count(200) == 40 and set(codes) == {200, 429}, codes
        assert codes[-2:] == [429, 429], "once the bucket is empty, neither replica lets the caller in"
        assert_problem(await two.get("/products"), 429)


async def test_tokens_a_replica_held_come_back_when_the_caller_moves_on(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any], monkeypatch: Any
) -> None:
    from gateway import ratelimit

    monkeypatch.setattr(ratelimit, "LEASE_SECONDS", 0.2)
    limits = {"default": {"rate": 0.01, "burst": 40}, "auth": {"rate": 0.01, "burst": 40}}
    settings = gateway_settings(infra, keys, upstreams, rate_limits=limits)
    async with (
        gateway_client(settings, client_ip="10.8.0.1") as one,
        gateway_client(settings, client_ip="10.8.0.1") as two,
    ):
        assert (await one.get("/products")).status_code == 200  # the first replica now holds 3 tokens
        at_two = await admitted_until_refused(two)
        assert at_two == 36, "the tokens held by the first replica are not the second's to spend"
        await asyncio.sleep(0.3)  # the caller is gone from the first replica past its lease
        back_at_one = await admitted_until_refused(one)
        assert 1 + at_two + back_at_one == 40, "the held tokens went back to the bucket, none lost"


async def test_a_burst_sent_all_at_once_gets_the_whole_burst_and_no_more(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    # was: every request arriving while no lease was held took a lease of its own, so 60 at once
    # emptied the bucket into leases after 10 requests and the rest were refused
    limits = {"default": {"rate": 0.01, "burst": 40}, "auth": {"rate": 0.01, "burst": 40}}
    settings = gateway_settings(infra, keys, upstreams, rate_limits=limits)
    async with gateway_client(settings, client_ip="10.9.0.1") as client:
        at_once = await asyncio.gather(*(client.get("/products") for _ in range(60)))
        after = [await client.get("/products") for _ in range(10)]
        codes = [r.status_code for r in (*at_once, *after)]
        assert codes.count(200) == 40 and set(codes) == {200, 429}, codes
