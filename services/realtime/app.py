"""Wiring: a service app (health, metrics, bus) with the Socket.IO server in front of it."""

from __future__ import annotations

from typing import Any

import socketio
from redis.asyncio import Redis

from libs.common.events import Envelope, EventBus
from libs.common.events.topology import CONSUMERS
from libs.common.service import ServiceContext, create_service_app
from services.realtime.console import console_router, same_origin_or_listed
from services.realtime.notifications import Notifier
from services.realtime.server import build_server, watch_sessions
from services.realtime.settings import RealtimeSettings, get_settings


def create_app(settings: RealtimeSettings | None = None, *, bus: EventBus | None = None,
               redis: Redis | None = None) -> Any:
    """The ASGI app: ``/socket.io/`` to Socket.IO, everything else to the service app."""
    settings = settings or get_settings()
    holder: dict[str, socketio.AsyncServer] = {}

    async def start(ctx: ServiceContext) -> None:
        notifier = Notifier(holder["sio"], ctx.redis, settings.redis_prefix, settings.replay_buffer,
                            replay_limit=settings.replay_limit, http=ctx.http, catalog_url=settings.catalog_url)
        ctx.extras["notifier"] = notifier

        async def on_event(envelope: Envelope) -> None:
            await notifier.handle(envelope)

        ctx.bus.subscribe(settings.service_name, CONSUMERS["realtime"], on_event)

    async def deliver(ctx: ServiceContext) -> None:
        await ctx.extras["notifier"].deliver()

    async def watchdog(ctx: ServiceContext) -> None:
        await watch_sessions(holder["sio"], ctx, settings.session_check_interval)

    api = create_service_app(settings=settings, title="Shop realtime", routers=[], migrations=None,
                             on_startup=[start], background=[deliver, watchdog], bus=bus, redis=redis,
                             description="Socket.IO notifications and admin commands at /socket.io/.")
    api.include_router(console_router())  # the admin console page at /console/
    holder["sio"] = build_server(api, settings)
    # pages served through this origin (the console) may open its socket without being listed
    holder["sio"].eio.cors_allowed_origins = same_origin_or_listed(settings.cors_origins)
    asgi = socketio.ASGIApp(holder["sio"], other_asgi_app=api, socketio_path="socket.io")
    asgi.state = api.state  # type: ignore[attr-defined]
    asgi.fastapi = api  # type: ignore[attr-defined]
    return asgi
