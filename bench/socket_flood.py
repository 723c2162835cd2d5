"""What one client can make the realtime service (and the gateway's relay) do by flooding its socket.

Starts the realtime service in this process on loopback (and the gateway in front of it),
on the local Redis and RabbitMQ under throw-away names, fills the public room with
``--backlog`` notifications, then, speaking the Engine.IO/Socket.IO wire protocol over a
raw websocket so every byte is counted:

- a guest sends ``--resumes`` ``resume {"public": 0}`` packets at once and we count the
  messages and bytes it gets back within ``--window`` seconds (and whether it was closed);
- a signed-in customer sends ``--commands`` admin commands and ``--refreshes`` bad
  ``auth:refresh`` packets as fast as it can; we count how many were answered, per second.

Bounded: a few seconds per figure, loopback only, everything it made is removed.

    python bench/socket_flood.py [--via gateway|direct] [--resumes 150] [--backlog 350]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.app import create_app as create_gateway  # noqa: E402
from gateway.settings import GatewaySettings  # noqa: E402
from libs.common.events import Envelope  # noqa: E402
from libs.common.testing import Infra, TestKeys, serve_app, settings_for  # noqa: E402
from services.realtime.app import create_app as create_realtime  # noqa: E402
from services.realtime.settings import RealtimeSettings  # noqa: E402

UNLIMITED = {"rate": 1_000_000, "burst": 1_000_000}


class RawSocket:
    """A Socket.IO client on a bare websocket: what it sends and receives is counted in bytes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages = 0
        self.bytes = 0
        self.acks = 0
        self.last_ack_at = 0.0
        self.closed_with: str | None = None
        self.events: dict[str, int] = {}

    @classmethod
    async def open(cls, session: aiohttp.ClientSession, base: str, auth: dict[str, Any] | None) -> RawSocket:
        ws = await session.ws_connect(
            base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", max_msg_size=0
        )
        sock = cls(ws)
        opened = await ws.receive(timeout=5)
        assert opened.type == aiohttp.WSMsgType.TEXT and opened.data.startswith("0"), opened
        await ws.send_str("40" + (json.dumps(auth) if auth else ""))
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"no connect answer: {msg}")
            if msg.data.startswith("40"):
                return sock
            if msg.data.startswith("44"):
                raise RuntimeError(f"refused: {msg.data}")

    async def drain(self, seconds: float) -> None:
        """Count what arrives for ``seconds`` (answering pings), or until the server closes."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                return
            if msg.type != aiohttp.WSMsgType.TEXT:
                self.closed_with = self.closed_with or f"websocket closed ({self.ws.close_code})"
                return
            self.messages += 1
            self.bytes += len(msg.data.encode())
            if msg.data == "1":  # Engine.IO close: the server dropped the whole connection
                self.closed_with = self.closed_with or "closed by the server"
                return
            if msg.data == "2":
                await self.ws.send_str("3")
            elif msg.data.startswith("43"):
                self.acks += 1
                self.last_ack_at = time.monotonic()
            elif msg.data.startswith("42"):
                name, *args = json.loads(msg.data[2:])
                self.events[name] = self.events.get(name, 0) + 1
                if name == "session:ended":
                    self.closed_with = f"session:ended: {args[0]['reason']}"
            elif msg.data.startswith("41"):
                self.closed_with = self.closed_with or "disconnected by the server"

    async def send_event(self, ack_id: int, name: str, payload: Any) -> bool:
        try:
            await self.ws.send_str(f"42{ack_id}" + json.dumps([name, payload]))
            return True
        except (ConnectionError, RuntimeError):
            return False


async def flood_resumes(base: str, resumes: int, window: float, last_seq: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        guest = await RawSocket.open(session, base, None)
        started = time.monotonic()
        for i in range(resumes):
            await guest.send_event(i, "resume", {"public": last_seq})
        await guest.drain(window)
        took = time.monotonic() - started
        await guest.ws.close()
        return {
            "resumes_sent": resumes,
            "messages_back": guest.messages,
            "bytes_back": guest.bytes,
            "notifications_back": sum(v for k, v in guest.events.items() if k == "category:updated"),
            "seconds": round(took, 2),
            "closed": guest.closed_with,
        }


async def flood_commands(base: str, token: str, name: str, payload: Any, count: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        user = await RawSocket.open(session, base, {"token": token})
        started = time.monotonic()
        sent = 0
        for i in range(count):
            if not await user.send_event(i, name, payload):
                break
            sent += 1
        await user.drain(3.0)
        took = time.monotonic() - started
        await user.ws.close()
        return {
            "command": name,
            "sent": sent,
            "answered": user.acks,
            "seconds": round(took, 2),
            "answered_per_second": round(user.acks / max(user.last_ack_at - started, 0.001))
            if user.acks
            else 0,
            "closed": user.closed_with,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--via", choices=("gateway", "direct"), default="gateway")
    parser.add_argument("--resumes", type=int, default=150)
    parser.add_argument("--backlog", type=int, default=350)
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--refreshes", type=int, default=1000)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    infra, keys = Infra.from_env(), TestKeys()
    rt_settings = settings_for(
        RealtimeSettings, infra, keys, events_queue_prefix=f"{infra.queue_prefix}flood.", replay_buffer=1000
    )
    realtime = create_realtime(rt_settings)
    results: dict[str, Any] = {"via": args.via}
    try:
        async with serve_app(realtime) as rt_url, contextlib.AsyncExitStack() as stack:
            base = rt_url
            if args.via == "gateway":
                gw_settings = settings_for(
                    GatewaySettings,
                    infra,
                    keys,
                    realtime_url=rt_url,
                    rate_limits={"default": UNLIMITED, "auth": UNLIMITED, "socket": UNLIMITED},
                )
                base = await stack.enter_async_context(serve_app(create_gateway(gw_settings)))
            product_id = str(uuid.uuid4())
            first_seq: list[int] = []
            async with aiohttp.ClientSession() as session:  # where the room's numbers start
                watcher = await RawSocket.open(session, base, None)
                await realtime.state.ctx.bus.publish(
                    Envelope.new("category.updated", {"id": product_id, "name": "Lamps"}, producer="bench")
                )
                while not first_seq:
                    msg = await watcher.ws.receive(timeout=10)
                    if msg.type == aiohttp.WSMsgType.TEXT and msg.data.startswith("42"):
                        first_seq.append(json.loads(msg.data[2:])[1]["seq"])
                await watcher.ws.close()
            for i in range(args.backlog - 1):
                await realtime.state.ctx.bus.publish(
                    Envelope.new(
                        "category.updated",
                        {"id": product_id, "name": f"Lamps {i}", "description": "x" * 40},
                        producer="bench",
                    )
                )
            await asyncio.sleep(2.0)
            results["resume_flood"] = await flood_resumes(base, args.resumes, args.window, first_seq[0] - 1)
            token = keys.mint()
            results["command_flood"] = await flood_commands(
                base,
                token,
                "product:add",
                {"name": "x", "price": 1, "sku": "x", "category_id": product_id},
                args.commands,
            )
            results["refresh_flood"] = await flood_commands(
                base, token, "auth:refresh", {"token": "bad"}, args.refreshes
            )
    finally:
        keys.close()
        await infra.cleanup()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
