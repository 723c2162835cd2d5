"""The Socket.IO server: who connects, which rooms they join, and what they may send."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import socketio
from fastapi import FastAPI
from socketio.exceptions import ConnectionRefusedError as Refused

from libs.common.auth import Principal
from libs.common.errors import DomainError, Unauthorized
from libs.common.logging import get_logger
from libs.common.service import ServiceContext
from services.realtime.commands import COMMANDS, once, perform, refused
from services.realtime.notifications import (
    ADMINS,
    NAMESPACE,
    PUBLIC,
    Notifier,
    ReplayingRedisManager,
    user_room,
)
from services.realtime.schemas import Resumed, Resync, SessionEnded, TokenExpiry, TokenRefreshed
from services.realtime.settings import RealtimeSettings

log = get_logger(__name__)


def build_server(app: FastAPI, settings: RealtimeSettings) -> socketio.AsyncServer:
    """A server whose handlers reach the running service through ``app.state.ctx``."""
    manager = ReplayingRedisManager(settings.redis_url, channel=f"{settings.redis_prefix}socketio")
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager,
                               cors_allowed_origins=settings.cors_origins, logger=False, engineio_logger=False)
    replays: set[asyncio.Task[None]] = set()

    def ctx() -> ServiceContext:
        return app.state.ctx

    async def verify(token: Any) -> Principal:
        """The token's principal; ``DomainError`` (401/503) when it cannot be trusted."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("The token must be a non-empty string.")
        return await ctx().verifier.verify(token)

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
        if isinstance(last_seq, dict):
            manager.hold(sid)  # before joining: nothing live may overtake the replay
        for room in rooms:
            await sio.enter_room(sid, room)
        if isinstance(last_seq, dict):
            start_replay(sid, last_seq, after_connect=True)

    @sio.event
    async def disconnect(sid: str, *_: Any) -> None:
        manager.forget(sid)

    def start_replay(sid: str, last_seq: dict[str, Any], *, after_connect: bool) -> None:
        task = asyncio.get_running_loop().create_task(replay(sid, last_seq, after_connect=after_connect))
        replays.add(task)
        task.add_done_callback(replays.discard)

    async def replay(sid: str, last_seq: dict[str, Any], *, after_connect: bool) -> None:
        covered: dict[str, int] = {}
        joined: set[str] = set()
        try:
            if after_connect:  # the CONNECT packet must reach the client before anything else
                for _ in range(200):
                    if manager.is_connected(sid, NAMESPACE):
                        break
                    await asyncio.sleep(0.01)
            notifier: Notifier = ctx().extras["notifier"]
            joined = set(sio.rooms(sid, NAMESPACE))
            for room, seq in last_seq.items():
                if room in joined and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
                    covered[room] = await notifier.replay(sid, room, seq)
        except Exception as exc:  # a failed replay must not leave the connection deaf
            log.warning("replay_failed", sid=sid, error=f"{type(exc).__name__}: {exc}")
            joined = joined or set(sio.rooms(sid, NAMESPACE))
            for room in joined.intersection(last_seq):  # only the caller's rooms, however many keys it sent
                await manager.send_local(sid, "resync", Resync(room=room).model_dump(exclude_none=True))
        finally:
            await manager.release(sid, covered)

    @sio.on("resume")
    async def resume(sid: str, data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict):
            return refused(422, "Validation failed", "resume takes {room: last_seq}, e.g. {\"public\": 40}.")
        manager.hold(sid)
        await replay(sid, data, after_connect=False)
        return Resumed(ok=True).model_dump()

    @sio.on("auth:refresh")
    async def refresh(sid: str, data: Any = None) -> dict[str, Any]:
        session = await sio.get_session(sid)
        current: Principal | None = session.get("principal")
        token = data.get("token") if isinstance(data, dict) else None
        try:
            principal = await verify(token)
        except DomainError as exc:
            return refused(exc.status, exc.title, exc.detail)
        if current is not None and principal.user_id != current.user_id:
            return refused(403, "Forbidden", "The new token belongs to another user; reconnect to switch users.")
        if current is None:
            await sio.enter_room(sid, user_room(principal.user_id))
        if principal.is_admin:
            await sio.enter_room(sid, ADMINS)
        elif current is not None and current.is_admin:
            await sio.leave_room(sid, ADMINS)
        session["principal"] = principal
        await sio.save_session(sid, session)
        return TokenRefreshed(ok=True, data=TokenExpiry(expires_at=principal.expires_at)).model_dump()

    def command(name: str) -> None:
        async def handler(sid: str, data: Any = None) -> dict[str, Any]:
            principal: Principal | None = (await sio.get_session(sid)).get("principal")
            if principal is None or not principal.is_admin:
                return refused(403, "Forbidden", "Only admins may send this command.")
            if principal.expires_at <= time.time():
                return refused(401, "Unauthorized", "The access token expired; send auth:refresh first.")
            settings: RealtimeSettings = ctx().settings  # type: ignore[assignment]
            urls = {"catalog_url": settings.catalog_url, "orders_url": settings.orders_url}

            async def run() -> dict[str, Any]:
                return await perform(name=name, payload=data, token=principal.token, http=ctx().http,
                                     base_urls=urls, timeout=settings.command_timeout)

            request_id = data.get("request_id") if isinstance(data, dict) else None
            if isinstance(request_id, str) and 0 < len(request_id) <= 128:
                key = ctx().key("realtime", "cmd", principal.user_id, name, request_id)
                return await once(ctx().redis, key, run, ttl=settings.command_result_ttl)
            return await run()

        sio.on(name, handler)

    for name in COMMANDS:
        command(name)
    return sio


async def watch_sessions(sio: socketio.AsyncServer, ctx: ServiceContext, interval: float) -> None:
    """Disconnect this instance's connections whose session was revoked or whose token expired."""
    while True:
        await asyncio.sleep(interval)
        for sid, _ in list(sio.manager.get_participants(NAMESPACE, PUBLIC)):
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
                # sent straight from this instance, so it is on the wire before the disconnect
                await sio.manager.send_local(sid, "session:ended", SessionEnded(reason=reason).model_dump())
                await sio.disconnect(sid)
