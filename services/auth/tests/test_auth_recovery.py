"""Forgot password: OTP by real SMTP, single-use reset token, every session ends on reset."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from auth_testkit import PASSWORD, Mailbox, bearer, new_email, sign_in, sign_up

from libs.common.testing import assert_problem, eventually
from services.auth import signing
from services.auth.context import AuthContext
from services.auth.settings import AuthSettings

NEW_PASSWORD = "Brand-new-pass-9"


async def ask_code(client: httpx.AsyncClient, mailbox: Mailbox, address: str, count: int = 1) -> str:
    resp = await client.post("/auth/forgot-password", json={"email": address})
    assert resp.status_code == 202, resp.text

    async def arrived() -> None:
        assert len(mailbox.to(address)) >= count

    await eventually(arrived)
    return mailbox.otp_for(address)


async def verify(client: httpx.AsyncClient, address: str, otp: str) -> httpx.Response:
    return await client.post("/auth/verify-otp", json={"email": address, "otp": otp})


def wrong(otp: str) -> str:
    return f"{(int(otp) + 1) % 10**6:06d}"


async def test_full_reset_ends_every_session_and_sets_the_new_password(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = new_email()
    first = await sign_up(client, email_=address)
    second = await sign_in(client, address)
    otp = await ask_code(client, mailbox, address.upper())
    assert mailbox.to(address)[-1]["Subject"] == "Your Shop password reset code"
    resp = await verify(client, address, otp)
    assert resp.status_code == 200, resp.text
    reset = resp.json()
    assert reset["reset_token"] and reset["expires_in"] > 0
    done = await client.post(
        "/auth/reset-password", json={"reset_token": reset["reset_token"], "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    for tokens in (first, second):
        assert_problem(await client.get("/users/me", headers=bearer(tokens)), 401)
        assert_problem(
            await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401
        )
    assert_problem(await client.post("/auth/login", json={"email": address, "password": PASSWORD}), 401)
    fresh = await sign_in(client, address, NEW_PASSWORD)
    me = (await client.get("/users/me", headers=bearer(fresh))).json()
    assert me["email_verified"] is True  # the code proved the mailbox is theirs


async def test_forgot_password_for_an_unknown_email_is_202_and_sends_nothing(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = new_email()
    known = new_email()
    await sign_up(client, email_=known)
    unknown_resp = await client.post("/auth/forgot-password", json={"email": address})
    known_resp = await client.post("/auth/forgot-password", json={"email": known})
    assert unknown_resp.status_code == known_resp.status_code == 202
    assert unknown_resp.json() == known_resp.json()

    async def known_arrived() -> None:
        assert mailbox.to(known)

    await eventually(known_arrived)
    assert mailbox.to(address) == []


async def test_wrong_code_is_refused_and_the_right_one_still_works(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    assert "wrong or has expired" in assert_problem(await verify(client, address, wrong(otp)), 400)["detail"]
    assert_problem(await verify(client, address, "12ab56"), 422)
    assert (await verify(client, address, otp)).status_code == 200


async def test_redis_holds_no_hash_a_guesser_could_check_without_the_signing_key(
    client: httpx.AsyncClient, mailbox: Mailbox, ctx: AuthContext
) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    # redis-py types hgetall for both decode modes; this client answers bytes
    stored: dict[bytes, bytes] = await ctx.redis.hgetall(ctx.key("auth", "otp", address))  # type: ignore[assignment]
    plain = {
        hashlib.sha256(f"{address}:{otp}".encode()).hexdigest(),
        hashlib.sha256(otp.encode()).hexdigest(),
    }
    assert stored[b"hash"].decode() not in plain and otp.encode() not in b"".join(stored.values())
    assert (await verify(client, address, otp)).status_code == 200


async def test_a_code_sent_before_a_key_rotation_still_works(
    client: httpx.AsyncClient, mailbox: Mailbox, ctx: AuthContext
) -> None:
    assert ctx.db is not None
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    new_kid = await signing.rotate(ctx.db, ctx.state.settings)
    assert (await ctx.state.keys.ring()).signing_kid == new_kid  # this test stack has no grace
    assert "wrong or has expired" in assert_problem(await verify(client, address, wrong(otp)), 400)["detail"]
    assert (await verify(client, address, otp)).status_code == 200


async def test_a_code_works_only_once(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    assert (await verify(client, address, otp)).status_code == 200
    assert_problem(await verify(client, address, otp), 400)


async def test_the_sixth_try_is_refused_even_with_the_right_code(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    for _ in range(5):
        assert_problem(await verify(client, address, wrong(otp)), 400)
    assert_problem(await verify(client, address, otp), 400)
    fresh = await ask_code(client, mailbox, address, count=2)  # a new code starts over
    assert (await verify(client, address, fresh)).status_code == 200


async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient, mailbox: Mailbox, auth_settings: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth_settings, "otp_ttl", 1)
    address = new_email()
    await sign_up(client, email_=address)
    otp = await ask_code(client, mailbox, address)
    await asyncio.sleep(2.1)
    assert_problem(await verify(client, address, otp), 400)


async def test_a_reset_token_works_only_once(client: httpx.AsyncClient, mailbox: Mailbox) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    token = (await verify(client, address, await ask_code(client, mailbox, address))).json()["reset_token"]
    ok = await client.post("/auth/reset-password", json={"reset_token": token, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204
    again = await client.post(
        "/auth/reset-password", json={"reset_token": token, "new_password": "Other-pass-77"}
    )
    assert "already used" in assert_problem(again, 400)["detail"]
    await sign_in(client, address, NEW_PASSWORD)


async def test_a_weak_new_password_does_not_use_up_the_reset_token(
    client: httpx.AsyncClient, mailbox: Mailbox
) -> None:
    address = new_email()
    await sign_up(client, email_=address)
    token = (await verify(client, address, await ask_code(client, mailbox, address))).json()["reset_token"]
    weak = await client.post("/auth/reset-password", json={"reset_token": token, "new_password": "password"})
    assert_problem(weak, 422)
    ok = await client.post("/auth/reset-password", json={"reset_token": token, "new_password": NEW_PASSWORD})
    assert ok.status_code == 204


async def test_a_made_up_reset_token_is_refused(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/auth/reset-password", json={"reset_token": "made-up", "new_password": NEW_PASSWORD}
    )
    assert_problem(resp, 400)
