"""Wiring: a service app (health, metrics, bus) with the Socket.IO server in front of it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis.asyncio import Redis

from libs.common.events import Envelope, EventBus
from libs.common.events.topology import CONSUMERS
from libs.common.service import Kernel, create_service_app
from services.realtime.console import console_router, same_origin_or_listed
from services.realtime.context import RealtimeContext
from services.realtime.notifications import Notifier
from services.realtime.server import build_server, watch_sessions
from services.realtime.settings import RealtimeSettings, get_settings


def create_app(
    settings: RealtimeSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> Any:
    """The ASGI app: ``/socket.io/`` to Socket.IO, everything else to the service app."""
    settings = settings or get_settings()

    def running() -> RealtimeContext:  # the lifespan sets it before a client can connect
        context: RealtimeContext = api.state.ctx
        return context

    sio = build_server(running, settings)
    # pages served through this origin (the console) may open its socket without being listed
    sio.eio.cors_allowed_origins = same_origin_or_listed(settings.cors_origins)

    @contextlib.asynccontextmanager
    async def open_notifier(kernel: Kernel[RealtimeSettings]) -> AsyncIterator[Notifier]:
        yield Notifier(
            sio,
            kernel.redis,
            settings.redis_prefix,
            settings.replay_buffer,
            replay_limit=settings.replay_limit,
            http=kernel.http,
            catalog_url=settings.catalog_url,
        )

    async def start(ctx: RealtimeContext) -> None:
        async def on_event(envelope: Envelope) -> None:
            await ctx.state.handle(envelope)

        ctx.bus.subscribe(settings.service_name, CONSUMERS["realtime"], on_event)

    async def deliver(ctx: RealtimeContext) -> None:
        await ctx.state.deliver()

    async def watchdog(ctx: RealtimeContext) -> None:
        await watch_sessions(sio, ctx, settings.session_check_interval)

    api = create_service_app(
        settings=settings,
        title="Shop realtime",
        routers=[],
        migrations=None,
        state=open_notifier,
        on_startup=[start],
        background=[deliver, watchdog],
        bus=bus,
        redis=redis,
        description="Socket.IO notifications and admin commands at /socket.io/.",
    )
    api.include_router(console_router())  # the admin console page at /console/
    asgi = socketio.ASGIApp(sio, other_asgi_app=api, socketio_path="socket.io")
    asgi.state = api.state
    asgi.fastapi = api
    return asgi
