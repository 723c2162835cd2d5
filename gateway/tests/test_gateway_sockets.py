"""Socket.IO through the gateway: long-polling as HTTP, the websocket upgrade relayed frame by frame."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import httpx
from gateway_testkit import GENEROUS, gateway_settings

from gateway.app import create_app
from libs.common.testing import Infra, TestKeys, eventually, serve_app


async def test_socketio_long_polling_reaches_realtime(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/socket.io/?EIO=4&transport=polling&t=abc")
    assert resp.status_code == 200
    assert resp.json()["path"] == "/socket.io/" and resp.json()["query"] == "EIO=4&transport=polling&t=abc"


async def test_websocket_frames_are_relayed_both_ways(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    app = create_app(gateway_settings(infra, keys, upstreams))
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with session.ws_connect(url) as ws:
            for text in ("hello", "héllo 日本"):
                await ws.send_str(text)
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == f"echo echo: {text}"


async def test_more_websockets_than_a_connection_pool_holds_are_all_relayed(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    """Each relayed socket keeps its upstream connection open: 150 at once must all get through."""
    app = create_app(gateway_settings(infra, keys, upstreams))
    async with (
        serve_app(app) as base,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
    ):
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        sockets = await asyncio.wait_for(asyncio.gather(*(session.ws_connect(url) for _ in range(150))), 20)
        try:
            for i, ws in enumerate(sockets):
                await ws.send_str(f"n{i}")
            replies = [await ws.receive(timeout=10) for ws in sockets]
            assert [m.data for m in replies] == [f"echo echo: n{i}" for i in range(150)]
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))


async def test_past_its_socket_capacity_the_gateway_says_try_again_later(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    app = create_app(gateway_settings(infra, keys, upstreams, max_websockets=2))
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        first, second = await session.ws_connect(url), await session.ws_connect(url)
        third = await session.ws_connect(url)
        assert (await third.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
        assert third.close_code == 1013
        await first.close()

        async def accepted_again() -> bool:
            ws = await session.ws_connect(url)
            await ws.send_str("back")
            msg = await ws.receive(timeout=5)
            await ws.close()
            return msg.type == aiohttp.WSMsgType.TEXT and msg.data == "echo echo: back"

        assert await eventually(accepted_again, timeout=5)
        await second.close()


async def test_a_websocket_flooding_frames_is_closed_with_a_reason(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    limits = {**GENEROUS, "socket_message": {"rate": 5, "burst": 20}}
    app = create_app(gateway_settings(infra, keys, upstreams, rate_limits=limits))
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        flooder, calm = await session.ws_connect(url), await session.ws_connect(url)
        for i in range(100):
            await flooder.send_str(f"n{i}")
        echoes = 0
        while (msg := await flooder.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
            echoes += 1
        assert msg.type == aiohttp.WSMsgType.CLOSE and flooder.close_code == 1008
        assert msg.extra == "Too many messages on this websocket" and echoes <= 21
        await calm.send_str("still here")  # another socket has its own allowance
        assert (await calm.receive(timeout=5)).data == "echo echo: still here"
        await calm.close()


async def test_one_address_cannot_get_round_the_limit_with_many_websockets(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    limits = {
        **GENEROUS,
        "socket_message": {"rate": 5, "burst": 50},
        "socket_message_address": {"rate": 5, "burst": 60},
    }
    app = create_app(gateway_settings(infra, keys, upstreams, rate_limits=limits))
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        sockets = [await session.ws_connect(url) for _ in range(4)]
        for i in range(30):
            for ws in sockets:
                if not ws.closed:
                    await ws.send_str(f"n{i}")
        codes = []
        for ws in sockets:
            while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                if msg.data == "echo echo: n29":
                    break
            codes.append(ws.close_code)
        assert 1008 in codes, codes
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_one_user_cannot_get_round_the_limit_with_many_websockets(
    infra: Infra, keys: TestKeys, upstreams: dict[str, Any]
) -> None:
    """The user is read from the Socket.IO CONNECT packet's token; a forged token attributes nothing."""
    limits = {
        **GENEROUS,
        "socket_message": {"rate": 5, "burst": 100},
        "socket_message_address": {"rate": 5, "burst": 1000},
        "socket_message_user": {"rate": 1, "burst": 40},
    }
    app = create_app(gateway_settings(infra, keys, upstreams, rate_limits=limits))
    user_id = str(uuid.uuid4())
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

        async def sends(token: str, frames: int) -> int | None:
            """Opens a websocket as ``token``'s user, sends ``frames`` frames; its close code (None: still open)."""
            ws = await session.ws_connect(url)
            await ws.send_str("40" + json.dumps({"token": token}))
            for i in range(frames):
                await ws.send_str(f"n{i}")
            while (msg := await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                if msg.data == f"echo echo: n{frames - 1}":
                    await ws.close()
                    return None
            return ws.close_code

        assert await sends(keys.mint(user_id=user_id), 25) is None
        assert await sends(keys.mint(user_id=user_id), 25) == 1008  # the same user's 41st message
        assert await sends(keys.mint(), 25) is None  # another user has an allowance of its own
        forged = keys.mint(user_id=user_id)[:-4] + "AAAA"
        assert await sends(forged, 25) is None  # not attributed to the user it names
