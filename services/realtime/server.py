"""The Socket.IO server: who connects, which rooms they join, and what they may send."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from libs.common.auth import Principal
from libs.common.errors import DomainError, Unauthorized
from libs.common.logging import get_logger
from libs.common.metering import MessageMeter
from libs.common.textcheck import text_fields, unicode_errors
from libs.common.unavailable import outages
from services.realtime.commands import COMMANDS, fingerprint, once, perform, refused, refused_by
from services.realtime.context import RealtimeContext
from services.realtime.notifications import ADMINS, NAMESPACE, PUBLIC, Notifier, user_room
from services.realtime.schemas import Resumed, Resync, RoomsJoined, SessionEnded, TokenExpiry, TokenRefreshed
from services.realtime.settings import RealtimeSettings

log = get_logger(__name__)
FLOODED = "Too many messages on this connection; it was closed. Reconnect and send fewer."


def build_server(ctx: Callable[[], RealtimeContext], settings: RealtimeSettings) -> socketio.AsyncServer:
    """A server whose handlers reach the running service through ``ctx()``.

    It keeps python-socketio's default (in-process) client manager: notifications reach
    every instance through the Redis feed (notifications.py), not through the manager.
    """
    sio = socketio.AsyncServer(
        async_mode="asgi", cors_allowed_origins=settings.cors_origins, logger=False, engineio_logger=False
    )
    meter = MessageMeter(
        rate=settings.message_rate,
        burst=settings.message_burst,
        owner_limits={"user": (settings.user_message_rate, settings.user_message_burst)},
    )
    replays: set[asyncio.Task[None]] = set()

    def notifier() -> Notifier:
        return ctx().state

    async def verify(token: Any) -> Principal:
        """The token's principal; ``DomainError`` (401/503) when it cannot be trusted."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("The token must be a non-empty string.")
        return await ctx().verifier.verify(token)

    async def principal_of(sid: str) -> Principal | None:
        try:
            return (await sio.get_session(sid)).get("principal")
        except KeyError:  # already disconnected
            return None

    async def flooded(sid: str) -> dict[str, Any] | None:
        """None if ``sid`` may send this message; otherwise the connection is being closed, and why."""
        principal = await principal_of(sid)
        if meter.allow(sid, user=str(principal.user_id) if principal else None):
            return None
        if sid not in meter.closing:
            meter.closing.add(sid)
            log.warning("socket_flood_closed", sid=sid, user_id=str(principal.user_id) if principal else None)
            eio_sid = sio.manager.eio_sid_from_sid(sid, NAMESPACE)
            await sio.emit("session:ended", SessionEnded(reason=FLOODED).model_dump(), to=sid)
            await sio.disconnect(sid)
            if (
                eio_sid is not None
            ):  # the whole transport: a fresh CONNECT on it would start a fresh allowance
                await sio.eio.disconnect(eio_sid)
        return refused(429, "Too many requests", FLOODED)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        rooms = [PUBLIC]
        principal: Principal | None = None
        if auth.get("token") is not None:
            try:
                principal = await verify(auth["token"])
            except DomainError as exc:
                raise Refused(f"Authentication failed: {exc.detail}", {"status": exc.status}) from exc
            rooms.append(user_room(principal.user_id))
            if principal.is_admin:
                rooms.append(ADMINS)
        await sio.save_session(sid, {"principal": principal})
        last_seq = auth.get("last_seq")
        # held before joining: nothing live may overtake the replay
        notifier().connected(sid, hold=isinstance(last_seq, dict))
        for room in rooms:
            await sio.enter_room(sid, room)
        await notifier().joined(sid, rooms)
        if isinstance(last_seq, dict):
            start_replay(sid, last_seq)
        unnumbered = [room for room in rooms if not (isinstance(last_seq, dict) and room in last_seq)]
        if unnumbered:
            start(tell_joined(sid, unnumbered))

    @sio.event
    async def disconnect(sid: str, *_: Any) -> None:
        notifier().disconnected(sid)
        meter.forget(sid)

    def start(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        replays.add(task)
        task.add_done_callback(replays.discard)

    def start_replay(sid: str, last_seq: dict[str, Any]) -> None:
        start(replay(sid, last_seq, on_connect=True))

    async def connected(sid: str) -> None:
        """Until the CONNECT packet has reached the client: nothing may go before it."""
        for _ in range(200):
            if sio.manager.is_connected(sid, NAMESPACE):
                return
            await asyncio.sleep(0.01)

    async def tell_joined(sid: str, rooms: list[str]) -> None:
        """Give the client a number for each room it has none for, so it can resume them after a drop."""
        await connected(sid)
        heads = notifier().joined_heads(sid, rooms)
        if heads:
            await sio.emit("rooms:joined", RoomsJoined(rooms=heads).model_dump(), to=sid, namespace=NAMESPACE)

    async def replay(sid: str, last_seq: dict[str, Any], *, on_connect: bool) -> None:
        covered: dict[str, int] = {}
        try:
            if on_connect:
                await connected(sid)
            covered = await notifier().replay_gaps(sid, last_seq, on_connect=on_connect)
        except Exception as exc:  # a failed replay must not leave the connection deaf
            if outages.note(exc, where="realtime replay") is None:
                log.exception("replay_failed", sid=sid)
            for room in set(sio.rooms(sid, NAMESPACE)).intersection(last_seq):  # only the caller's rooms
                await sio.emit("resync", Resync(room=room).model_dump(exclude_none=True), to=sid)
        finally:
            await notifier().release(sid, covered)

    @sio.on("resume")
    async def resume(sid: str, data: Any = None) -> dict[str, Any]:
        if (flood := await flooded(sid)) is not None:
            return flood
        if not isinstance(data, dict):
            return refused(422, "Validation failed", 'resume takes {room: last_seq}, e.g. {"public": 40}.')
        notifier().hold(sid)
        await replay(sid, data, on_connect=False)
        return Resumed(ok=True).model_dump()

    @sio.on("auth:refresh")
    async def refresh(sid: str, data: Any = None) -> dict[str, Any]:
        if (flood := await flooded(sid)) is not None:
            return flood
        current = await principal_of(sid)
        token = data.get("token") if isinstance(data, dict) else None
        try:
            principal = await verify(token)
        except DomainError as exc:
            return refused_by(exc)
        if current is not None and principal.user_id != current.user_id:
            return refused(
                403, "Forbidden", "The new token belongs to another user; reconnect to switch users."
            )
        entered = []
        if current is None:
            entered.append(user_room(principal.user_id))
        if principal.is_admin:
            entered.append(ADMINS)
        elif current is not None and current.is_admin:
            await sio.leave_room(sid, ADMINS)
        for room in entered:
            await sio.enter_room(sid, room)
        await notifier().joined(sid, entered)
        session = await sio.get_session(sid)
        session["principal"] = principal
        await sio.save_session(sid, session)
        return TokenRefreshed(ok=True, data=TokenExpiry(expires_at=principal.expires_at)).model_dump()

    @sio.on("*")
    async def unknown(event: str, sid: str, data: Any = None) -> dict[str, Any]:
        if (flood := await flooded(sid)) is not None:
            return flood
        return refused(404, "Not found", f"There is no {event!r} event; see the AsyncAPI document.")

    def command(name: str) -> None:
        async def handler(sid: str, data: Any = None) -> dict[str, Any]:
            if (flood := await flooded(sid)) is not None:
                return flood
            principal = await principal_of(sid)
            if principal is None or not principal.is_admin:
                return refused(403, "Forbidden", "Only admins may send this command.")
            if principal.expires_at <= time.time():
                return refused(401, "Unauthorized", "The access token expired; send auth:refresh first.")
            if bad := text_fields(data):  # as every HTTP route does (libs/common/textcheck.py)
                return refused(
                    422, "Validation failed", "Text must be valid Unicode.", errors=unicode_errors(bad)
                )
            urls = {
                "catalog_url": settings.catalog_url,
                "orders_url": settings.orders_url,
                "pricing_url": settings.pricing_url,
            }

            async def run() -> dict[str, Any]:
                return await perform(
                    name=name,
                    payload=data,
                    token=principal.token,
                    http=ctx().http,
                    base_urls=urls,
                    timeout=settings.command_timeout,
                )

            request_id = data.get("request_id") if isinstance(data, dict) else None
            if request_id is None:
                return await run()
            if not isinstance(request_id, str) or not 0 < len(request_id) <= 128:
                return refused(
                    422,
                    "Validation failed",
                    "request_id must be a string of 1 to 128 characters.",
                    errors=[{"field": "request_id", "message": "1 to 128 characters", "type": "string_type"}],
                )
            key = ctx().key("realtime", "cmd", principal.user_id, name, request_id)
            return await once(
                ctx().redis, key, run, fingerprint=fingerprint(name, data), ttl=settings.command_result_ttl
            )

        sio.on(name, handler)

    for name in COMMANDS:
        command(name)
    return sio


async def watch_sessions(sio: socketio.AsyncServer, ctx: RealtimeContext, interval: float) -> None:
    """Disconnect this instance's connections whose session was revoked or whose token expired."""
    while True:
        await asyncio.sleep(interval)
        notifier = ctx.state
        for sid in list(notifier.connections):
            try:
                principal: Principal | None = (await sio.get_session(sid)).get("principal")
            except KeyError:
                continue
            if principal is None:
                continue
            reason = None
            if principal.expires_at <= time.time():
                reason = "The access token expired; reconnect with a fresh one or send auth:refresh in time."
            else:
                try:
                    await ctx.verifier.verify(principal.token)
                except DomainError as exc:
                    # 503 (Redis down) keeps the connection: revocation is checked again next round
                    if exc.status == 401:
                        reason = exc.detail
            if reason:
                await sio.emit("session:ended", SessionEnded(reason=reason).model_dump(), to=sid)
                await sio.disconnect(sid)
