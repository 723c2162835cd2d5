"""Throttles on login, change-password, forgot-password and verify-otp: 429 with Retry-After.

Wrong passwords slow down the (account, address) pair that sends them, never the owner
elsewhere; a ceiling over all addresses bounds guessing spread over many of them.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from auth_testkit import PASSWORD, bearer, new_email, sign_in, sign_up, some_ip, via_gateway

from libs.common.testing import assert_problem
from services.auth import throttle
from services.auth.context import AuthContext
from services.auth.settings import AuthSettings

WRONG = "Wrong-pass-1"


def assert_throttled(resp: httpx.Response, *, at_most: int) -> int:
    assert_problem(resp, 429)
    wait = int(resp.headers["retry-after"])
    assert 1 <= wait <= at_most, wait
    return wait


async def login(
    client: httpx.AsyncClient,
    address: str,
    password: str,
    *,
    ip: str | None = None,
    settings: AuthSettings | None = None,
) -> httpx.Response:
    headers = via_gateway(settings, ip) if settings is not None and ip is not None else None
    return await client.post("/auth/login", json={"email": address, "password": password}, headers=headers)


async def test_wrong_passwords_from_elsewhere_do_not_keep_the_owner_out(
    client: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    # was: 5 wrong passwords from anyone locked the owner out for 15 minutes, right password or not
    address = new_email()
    await sign_up(client, email_=address)
    attacker = some_ip()
    for _ in range(5):
        assert_problem(await login(client, address, WRONG, ip=attacker, settings=auth_settings), 401)
    assert_throttled(await login(client, address, WRONG, ip=attacker, settings=auth_settings), at_most=1)
    owner = await login(client, address, PASSWORD)  # the owner, at the client's own address
    assert owner.status_code == 200, owner.text


async def test_a_guessing_address_waits_twice_as_long_after_each_further_failure(
    client: httpx.AsyncClient,
) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    for _ in range(5):
        assert_problem(await login(client, address, WRONG), 401)
    # even the right password waits: from this address the account is being guessed
    assert assert_throttled(await login(client, address, PASSWORD), at_most=1) == 1
    await asyncio.sleep(1.05)
    assert_problem(await login(client, address, WRONG), 401)  # the 6th failure
    assert assert_throttled(await login(client, address, WRONG), at_most=2) == 2
    await asyncio.sleep(2.05)
    ok = await login(client, address, PASSWORD)
    assert ok.status_code == 200, ok.text
    # a success starts the pair's count again
    for _ in range(4):
        assert_problem(await login(client, address, WRONG), 401)


async def test_parallel_guesses_get_no_more_tries_than_sequential_ones(client: httpx.AsyncClient) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    answers = await asyncio.gather(*(login(client, address, WRONG) for _ in range(12)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * 5 + [429] * 7, statuses


async def test_guessing_spread_over_many_addresses_meets_a_ceiling_that_spares_known_addresses(
    client: httpx.AsyncClient, auth_settings: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AuthSettings.model_fields["login_failures_per_account"].default == 100
    monkeypatch.setattr(auth_settings, "login_failures_per_account", 6)
    address = new_email()
    await sign_up(client, email_=address)
    await sign_in(client, address)  # the owner's usual address is now known
    for _ in range(6):  # one guess from each of six addresses: no pair is ever slowed down
        assert_problem(await login(client, address, WRONG, ip=some_ip(), settings=auth_settings), 401)
    stranger = await login(client, address, PASSWORD, ip=some_ip(), settings=auth_settings)
    assert_throttled(stranger, at_most=3600)
    owner = await login(client, address, PASSWORD)
    assert owner.status_code == 200, owner.text


async def test_an_unknown_email_is_slowed_down_the_same_way(client: httpx.AsyncClient) -> None:
    address = new_email()
    for _ in range(5):
        assert_problem(await login(client, address, WRONG), 401)
    assert_throttled(await login(client, address, WRONG), at_most=1)


async def test_a_stolen_token_buys_few_guesses_at_the_password_and_no_lockout(
    client: httpx.AsyncClient,
) -> None:
    address = new_email()
    tokens = await sign_up(client, email_=address)
    body = {"current_password": WRONG, "new_password": "Another-pass-2"}
    for _ in range(5):
        assert_problem(await client.put("/users/change-password", json=body, headers=bearer(tokens)), 400)
    assert_throttled(await client.put("/users/change-password", json=body, headers=bearer(tokens)), at_most=1)
    assert (await login(client, address, PASSWORD)).status_code == 200


async def test_one_address_gets_a_limited_number_of_login_attempts(
    client: httpx.AsyncClient, auth_settings: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert AuthSettings.model_fields["login_attempts_per_ip"].default == 30  # a shared NAT gets room
    monkeypatch.setattr(auth_settings, "login_attempts_per_ip", 4)
    address = new_email()
    await sign_up(client, email_=address)
    for _ in range(4):
        assert (await login(client, address, PASSWORD)).status_code == 200
    assert_throttled(await login(client, address, PASSWORD), at_most=60)
    other = await login(client, address, PASSWORD, ip="192.0.2.99", settings=auth_settings)
    assert other.status_code == 200  # another address is not affected


async def test_a_caller_without_the_gateways_proof_cannot_claim_another_address(
    auth_port: int, auth_settings: AuthSettings, ctx: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # was: any local process could send X-Forwarded-For from 127.0.0.1 and start every per-IP count afresh
    monkeypatch.setattr(auth_settings, "login_attempts_per_ip", 3)
    await throttle.clear(ctx, scope="login-ip", subject="127.0.0.1")
    forged = {"X-Forwarded-Proof": "0" * 64}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{auth_port}", timeout=30) as direct:
            for n in range(3):
                resp = await direct.post(
                    "/auth/login",
                    json={"email": new_email(), "password": WRONG},
                    headers={"X-Forwarded-For": some_ip(), **(forged if n else {})},
                )
                assert_problem(resp, 401)
            resp = await direct.post(
                "/auth/login",
                json={"email": new_email(), "password": WRONG},
                headers={"X-Forwarded-For": some_ip(), "X-Real-IP": some_ip()},
            )
            assert_throttled(resp, at_most=60)
    finally:
        await throttle.clear(ctx, scope="login-ip", subject="127.0.0.1")


async def test_forgot_password_is_throttled_per_email(
    client: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    address = new_email()
    for _ in range(5):
        assert (await client.post("/auth/forgot-password", json={"email": address})).status_code == 202
    assert_throttled(
        await client.post(
            "/auth/forgot-password", json={"email": address}, headers=via_gateway(auth_settings, "192.0.2.78")
        ),
        at_most=900,
    )


async def test_verify_otp_is_throttled_per_address(
    client: httpx.AsyncClient, auth_settings: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_settings, "verify_otp_per_ip", 3)
    for _ in range(3):
        assert_problem(
            await client.post("/auth/verify-otp", json={"email": new_email(), "otp": "123456"}), 400
        )
    assert_throttled(
        await client.post("/auth/verify-otp", json={"email": new_email(), "otp": "123456"}), at_most=900
    )
