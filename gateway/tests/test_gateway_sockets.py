"""Socket.IO through the gateway: long-polling as HTTP, the websocket upgrade relayed frame by frame."""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from gateway_testkit import gateway_settings

from gateway.app import create_app
from libs.common.testing import Infra, TestKeys, serve_app


async def test_socketio_long_polling_reaches_realtime(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/socket.io/?EIO=4&transport=polling&t=abc")
    assert resp.status_code == 200
    assert resp.json()["path"] == "/socket.io/" and resp.json()["query"] == "EIO=4&transport=polling&t=abc"


async def test_websocket_frames_are_relayed_both_ways(infra: Infra, keys: TestKeys,
                                                      upstreams: dict[str, Any]) -> None:
    app = create_app(gateway_settings(infra, keys, upstreams))
    async with serve_app(app) as base, aiohttp.ClientSession() as session:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with session.ws_connect(url) as ws:
            for text in ("hello", "héllo 日本"):
                await ws.send_str(text)
                msg = await ws.receive(timeout=5)
                assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == f"echo echo: {text}"
