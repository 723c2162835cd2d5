"""Who may connect, and how long: bad tokens refused, logout and expiry end live connections."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import socketio
from realtime_testkit import hang_up, listen, realtime

from libs.common.auth import revoke_session, revoke_user_tokens
from libs.common.testing import Infra, TestKeys, eventually


@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [("expired", "expired"), ("garbage", "malformed"), ("wrong_audience", "not valid"), ("number", "string")],
)
async def test_a_bad_token_is_refused_at_connect_with_a_clear_message(
    infra: Infra, keys: TestKeys, token_kind: str, reason: str
) -> None:
    token = {
        "expired": keys.mint(issued_at=1_000_000, expires_in=60),
        "garbage": "not.a.token",
        "wrong_audience": keys.mint(audience="someone-else"),
        "number": 42,
    }[token_kind]
    async with realtime(infra, keys) as (url, _):
        assert reason in (await refusal(url, token))["message"]


async def refusal(url: str, token: object) -> dict[str, Any]:
    """Connect with ``token``, expecting a refusal; returns what the server said (connect_error)."""
    client = socketio.AsyncClient(reconnection=False)
    said: list[dict[str, Any]] = []
    client.on("connect_error", said.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=5)
    assert not client.connected and said
    assert said[0]["message"].startswith("Authentication failed")
    assert said[0]["data"] == {"status": 401}
    return said[0]


async def test_a_revoked_session_cannot_connect(infra: Infra, keys: TestKeys) -> None:
    sid = uuid.uuid4().hex
    async with realtime(infra, keys) as (url, app):
        await revoke_session(app.state.ctx.redis, app.state.ctx.settings.redis_prefix, sid, ttl_seconds=60)
        assert "session has ended" in (await refusal(url, keys.mint(sid=sid)))["message"]


async def test_logout_disconnects_a_live_connection_within_seconds(infra: Infra, keys: TestKeys) -> None:
    sid = uuid.uuid4().hex
    async with realtime(infra, keys, session_check_interval=2.0) as (url, app):
        ear = await listen(url, {"token": keys.mint(sid=sid)})
        bystander = await listen(url, {"token": keys.mint()})
        await revoke_session(app.state.ctx.redis, app.state.ctx.settings.redis_prefix, sid, ttl_seconds=60)

        async def gone() -> None:
            assert not ear.sio.connected

        await eventually(gone, timeout=5)
        assert "session has ended" in ear.of("session:ended")[0]["reason"]
        assert bystander.sio.connected
        await hang_up(bystander)


async def test_a_blocked_user_is_disconnected(infra: Infra, keys: TestKeys) -> None:
    user_id = uuid.uuid4()
    async with realtime(infra, keys) as (url, app):
        # iat has whole seconds: a token from before the block (as any live one is) stops working
        ear = await listen(url, {"token": keys.mint(user_id=user_id, issued_at=int(time.time()) - 5)})
        await revoke_user_tokens(
            app.state.ctx.redis, app.state.ctx.settings.redis_prefix, user_id, ttl_seconds=60
        )

        async def gone() -> None:
            assert not ear.sio.connected

        await eventually(gone, timeout=5)
        assert ear.of("session:ended")


async def test_auth_refresh_keeps_a_connection_past_the_first_tokens_expiry(
    infra: Infra, keys: TestKeys
) -> None:
    user_id = uuid.uuid4()
    async with realtime(infra, keys) as (url, _):
        ear = await listen(url, {"token": keys.mint(user_id=user_id, expires_in=3)})
        bad = await ear.sio.call("auth:refresh", {"token": "not.a.token"}, timeout=5)
        assert bad["ok"] is False and bad["error"]["status"] == 401
        ack = await ear.sio.call(
            "auth:refresh", {"token": keys.mint(user_id=user_id, expires_in=600)}, timeout=5
        )
        assert ack["ok"] is True
        await asyncio.sleep(4)
        assert ear.sio.connected and ear.of("session:ended") == []
        stranger = await ear.sio.call("auth:refresh", {"token": keys.mint(expires_in=600)}, timeout=5)
        assert stranger["ok"] is False and stranger["error"]["status"] == 403
        await hang_up(ear)


async def test_a_token_left_to_expire_ends_the_connection_with_a_reason(infra: Infra, keys: TestKeys) -> None:
    async with realtime(infra, keys) as (url, _):
        ear = await listen(url, {"token": keys.mint(expires_in=2)})

        async def ended() -> None:
            assert not ear.sio.connected

        await eventually(ended, timeout=10)
        assert "expired" in ear.of("session:ended")[0]["reason"]
