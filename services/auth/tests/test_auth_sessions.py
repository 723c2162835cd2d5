"""Refresh rotation with reuse detection, logout, change-password: sessions end everywhere at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from auth_testkit import PASSWORD, bearer, new_email, sign_in, sign_up

from libs.common.errors import Unauthorized
from libs.common.testing import assert_problem
from services.auth.context import AuthContext
from services.auth.models import RefreshToken
from services.auth.service import purge_sessions, token_hash


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient) -> None:
    first = await sign_up(client)
    resp = await refresh(client, first["refresh_token"])
    assert resp.status_code == 200, resp.text
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"] and second["token_type"] == "bearer"
    assert (await client.get("/users/me", headers=bearer(second))).status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_rotated_refresh_token_kills_the_whole_session(client: httpx.AsyncClient) -> None:
    first = await sign_up(client)
    second = (await refresh(client, first["refresh_token"])).json()
    replay = await refresh(client, first["refresh_token"])
    assert "already used" in assert_problem(replay, 401)["detail"]
    # the thief's replay also ends the legitimate holder's newer tokens
    assert_problem(await refresh(client, second["refresh_token"]), 401)
    assert_problem(await client.get("/users/me", headers=bearer(second)), 401)
    assert_problem(await client.get("/users/me", headers=bearer(first)), 401)


async def test_reuse_in_one_session_leaves_other_sessions_alone(client: httpx.AsyncClient) -> None:
    address = new_email()
    first = await sign_up(client, email_=address)
    other = await sign_in(client, address)
    await refresh(client, first["refresh_token"])
    await refresh(client, first["refresh_token"])
    assert (await client.get("/users/me", headers=bearer(other))).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200


async def test_garbage_refresh_token_is_refused(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "not-a-token"), 401)
    assert_problem(await client.post("/auth/refresh", json={}), 422)


async def test_logout_kills_the_access_and_refresh_tokens_at_once(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    resp = await client.post("/auth/logout", headers=bearer(tokens))
    assert resp.status_code == 204
    assert "ended" in assert_problem(await client.get("/users/me", headers=bearer(tokens)), 401)["detail"]
    assert_problem(await refresh(client, tokens["refresh_token"]), 401)


async def test_logout_marks_the_session_revoked_for_every_verifier(
    client: httpx.AsyncClient, ctx: AuthContext
) -> None:
    tokens = await sign_up(client)
    await client.post("/auth/logout", headers=bearer(tokens))
    with pytest.raises(Unauthorized):
        await ctx.verifier.verify(tokens["access_token"])


async def test_logout_needs_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/auth/logout"), 401)
    assert_problem(await client.post("/auth/logout", headers={"Authorization": "Bearer nonsense"}), 401)


async def test_change_password_ends_other_sessions_but_keeps_this_one(client: httpx.AsyncClient) -> None:
    address = new_email()
    mine = await sign_up(client, email_=address)
    other = await sign_in(client, address)
    resp = await client.put(
        "/users/change-password",
        headers=bearer(mine),
        json={"current_password": PASSWORD, "new_password": "New-password-42"},
    )
    assert resp.status_code == 204, resp.text
    assert (await client.get("/users/me", headers=bearer(mine))).status_code == 200
    assert (await refresh(client, mine["refresh_token"])).status_code == 200
    assert_problem(await client.get("/users/me", headers=bearer(other)), 401)
    assert_problem(await refresh(client, other["refresh_token"]), 401)
    assert_problem(await client.post("/auth/login", json={"email": address, "password": PASSWORD}), 401)
    await sign_in(client, address, "New-password-42")


async def test_change_password_refuses_a_wrong_current_or_weak_new_password(
    client: httpx.AsyncClient,
) -> None:
    tokens = await sign_up(client)
    wrong = await client.put(
        "/users/change-password",
        headers=bearer(tokens),
        json={"current_password": "Nope-nope-1", "new_password": "New-password-42"},
    )
    assert "current password" in assert_problem(wrong, 400)["detail"]
    weak = await client.put(
        "/users/change-password",
        headers=bearer(tokens),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert assert_problem(weak, 422)["errors"][0]["field"] == "new_password"
    assert_problem(
        await client.put(
            "/users/change-password", json={"current_password": PASSWORD, "new_password": "New-password-42"}
        ),
        401,
    )
    assert (await client.get("/users/me", headers=bearer(tokens))).status_code == 200


async def test_two_racing_registrations_of_one_email_give_one_account(client: httpx.AsyncClient) -> None:
    address = new_email()
    body = {"email": address, "password": PASSWORD, "name": "Racer"}
    results = await asyncio.gather(*(client.post("/auth/register", json=body) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]


async def test_racing_refreshes_with_one_token_never_fork_the_session(client: httpx.AsyncClient) -> None:
    tokens = await sign_up(client)
    results = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(3)))
    codes = sorted(r.status_code for r in results)
    assert codes == [200, 401, 401], codes
    winner = next(r.json() for r in results if r.status_code == 200)
    # a duplicate use is treated as theft: the session ends, so no two holders keep going
    assert_problem(await refresh(client, winner["refresh_token"]), 401)


async def test_ended_sessions_are_purged_with_their_refresh_tokens(
    client: httpx.AsyncClient, ctx: AuthContext
) -> None:
    tokens = await sign_up(client)
    await client.post("/auth/logout", headers=bearer(tokens))
    assert ctx.db is not None
    async with ctx.db.session() as session:
        assert await purge_sessions(session=session, keep_revoked=timedelta(0)) >= 1
    async with ctx.db.session() as session:
        left = await session.scalar(
            sa.select(sa.func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.token_hash == token_hash(tokens["refresh_token"]))
        )
    assert left == 0
    assert_problem(await refresh(client, tokens["refresh_token"]), 401)
