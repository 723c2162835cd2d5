"""WebSocket passthrough for ``/socket.io/`` to the realtime service.

Socket.IO's long-polling requests are plain HTTP and go through the route table;
the websocket upgrade comes here. The realtime service authenticates the connection
itself (``auth: {token}`` at connect). A client IP's connection attempts count against
the ``socket`` rate-limit group.

The frames are counted, though: a websocket carries any number of messages past the
per-request limits, so each one's client-to-server frames are metered in memory, and so
are each client address's and each user's over all their websockets (``RATE_LIMITS``
groups ``socket_message``, ``socket_message_address``, ``socket_message_user``; the user
is read from the token of the Socket.IO CONNECT packet, signature checked). Past an
allowance the websocket is closed with 1008 and a reason. The allowances are above the
realtime service's own (which answers a flood with a ``session:ended`` the client can
show): this is the backstop for what realtime cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp
import yarl
from starlette.types import Receive, Scope, Send

from gateway.proxy import request_headers
from gateway.settings import GatewaySettings, RateLimit
from gateway.state import Gateway
from libs.common.errors import DomainError
from libs.common.forwarding import proof_header
from libs.common.logging import get_logger
from libs.common.metering import MessageMeter
from libs.common.tasks import cancel_and_wait

log = get_logger(__name__)
PER_SOCKET = RateLimit(rate=30, burst=120)
PER_ADDRESS = RateLimit(rate=100, burst=400)
PER_USER = RateLimit(rate=60, burst=240)
FLOODED = "Too many messages on this websocket"
_WS_OWN = (
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
)


async def proxy_websocket(gw: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    """Relay one websocket between the client and the realtime service until either side closes."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    client_ip = scope["client"][0] if scope.get("client") else "unknown"
    settings = gw.settings
    state = gw.state
    if settings.rate_limit_enabled:
        bucket, limit = settings.limit_for("socket")
        if await state.limiter.retry_after(bucket, f"ip:{client_ip}", rate=limit.rate, burst=limit.burst):
            await send({"type": "websocket.close", "code": 1013})
            return
    if state.open_websockets >= settings.max_websockets:
        log.warning("websocket_refused_at_capacity", open=state.open_websockets)
        # accepted then closed, so the client reads 1013 "try again later" rather than a bare 403
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1013})
        return
    state.open_websockets += 1
    gw.metrics.websockets.inc()
    try:
        await _relay(gw, scope, receive, send, client_ip)
    finally:
        state.open_websockets -= 1
        gw.metrics.websockets.dec()


async def _connect_upstream(
    gw: Gateway, scope: Scope, headers: list[tuple[str, str]]
) -> aiohttp.ClientWebSocketResponse | None:
    """A websocket to a realtime replica: the one holding the session being upgraded, else the next in turn.

    A replica that refuses is set aside and the next one tried: opening a websocket changes nothing.
    """
    replicas = gw.state.replicas["realtime"]
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    target = raw_path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
    tried: list[str] = []
    while len(tried) < len(replicas):
        base = gw.state.socket_sessions.replica_for(scope, exclude=tried) or replicas.pick(exclude=tried)
        tried.append(base)
        url = base.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + target
        try:
            upstream = await gw.state.ws_session.ws_connect(
                yarl.URL(url, encoded=True),
                headers=headers,
                protocols=scope.get("subprotocols") or (),
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5),
                autoping=True,
            )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            replicas.failed(base, type(exc).__name__)
            log.warning("websocket_upstream_unavailable", error=type(exc).__name__, replica=base)
            continue
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("websocket_upstream_unavailable", error=type(exc).__name__, replica=base)
            return None
        replicas.succeeded(base)
        return upstream
    return None


async def _relay(gw: Gateway, scope: Scope, receive: Receive, send: Send, client_ip: str) -> None:
    settings = gw.settings
    forwarded = [("X-Forwarded-For", client_ip), ("X-Forwarded-Proto", "ws"), proof_header(settings)]
    # the realtime service compares the page's Origin with it: a page served by this gateway is same-origin
    forwarded += [("X-Forwarded-Host", v.decode("latin-1")) for k, v in scope["headers"] if k == b"host"][:1]
    headers = request_headers([(k, v) for k, v in scope["headers"] if k not in _WS_OWN], forwarded)
    upstream = await _connect_upstream(gw, scope, headers)
    if upstream is None:
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream.protocol})

    meter = gw.state.socket_meter
    socket_id = str(id(upstream))
    user: str | None = None

    async def client_to_upstream() -> None:
        nonlocal user
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if not meter.allow(socket_id, address=client_ip, user=user):
                log.warning("websocket_flood_closed", client_ip=client_ip, user_id=user)
                await send({"type": "websocket.close", "code": 1008, "reason": FLOODED})
                return
            if user is None and (text := message.get("text")) is not None and text.startswith("40"):
                user = await _user_of_connect(gw, text)
            if message.get("text") is not None:
                await upstream.send_str(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send_bytes(message["bytes"])

    async def upstream_to_client() -> None:
        async for message in upstream:
            out: dict[str, Any] = {"type": "websocket.send"}
            if message.type == aiohttp.WSMsgType.TEXT:
                out["text"] = message.data
            elif message.type == aiohttp.WSMsgType.BINARY:
                out["bytes"] = message.data
            else:
                break
            await send(out)
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": upstream.close_code or 1000})

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        meter.forget(socket_id)
        await cancel_and_wait(tasks)
        await upstream.close()


async def _user_of_connect(gw: Gateway, text: str) -> str | None:
    """The user a Socket.IO CONNECT packet (``40[/ns,]{"token": ...}``) signs in as, if its token is genuine.

    Only the signature and claims are checked (no revocation look-up): this attributes messages
    to a user for metering; realtime decides who may connect.
    """
    body = text[2:]
    if body.startswith("/"):
        body = body.partition(",")[2]
    try:
        auth = json.loads(body) if body else None
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            return None
        return str((await gw.state.identifier.verify(token)).user_id)
    except (ValueError, DomainError):
        return None


def socket_meter(settings: GatewaySettings) -> MessageMeter:
    """The per-socket, per-address and per-user message budgets the relay enforces (GatewayState.socket_meter)."""
    limits = settings.rate_limits
    socket = limits.get("socket_message", PER_SOCKET)
    owners = {
        "address": limits.get("socket_message_address", PER_ADDRESS),
        "user": limits.get("socket_message_user", PER_USER),
    }
    return MessageMeter(
        rate=socket.rate,
        burst=socket.burst,
        owner_limits={kind: (limit.rate, limit.burst) for kind, limit in owners.items()},
    )
