"""Wiring of the auth service."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.auth import TokenVerifier
from libs.common.events import EventBus
from libs.common.logging import get_logger
from libs.common.service import ServiceContext, create_service_app
from services.auth import service, signing
from services.auth.api import router
from services.auth.mailer import Mailer
from services.auth.models import User
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def make_passwords(settings: AuthSettings) -> Passwords:
    return Passwords(memory_kib=settings.argon2_memory_kib, time_cost=settings.argon2_time_cost,
                     parallelism=settings.argon2_parallelism)


def create_app(settings: AuthSettings | None = None, *, bus: EventBus | None = None,
               redis: Redis | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def start(ctx: ServiceContext) -> None:
        assert ctx.db is not None
        await signing.ensure_key(ctx.db, settings)
        rt = service.Runtime(settings=settings, passwords=make_passwords(settings),
                             keys=signing.Keys(ctx.db, settings), mailer=Mailer(settings))
        ctx.extras["auth"] = rt
        # the shared verifier waits 5 s between JWKS refreshes; ours is configurable so a
        # rotation is picked up by this service's own routes as soon as the settings allow
        ctx.verifier = TokenVerifier(jwks_url=settings.jwks_url, issuer=settings.jwt_issuer,
                                     audience=settings.jwt_audience, redis=ctx.redis,
                                     redis_prefix=settings.redis_prefix, http=ctx.http,
                                     min_refresh_interval=settings.jwks_min_refresh_seconds)
        await _bootstrap_admin(ctx, rt)

    async def stop(ctx: ServiceContext) -> None:
        if (rt := ctx.extras.get("auth")) is not None:
            await rt.mailer.drain()

    return create_service_app(settings=settings, title="Shop auth service", routers=[router],
                              migrations=MIGRATIONS, on_startup=[start], on_shutdown=[stop],
                              background=[_purge_sessions_hourly], bus=bus,
                              redis=redis, description=service.__doc__ or "")


async def _purge_sessions_hourly(ctx: ServiceContext) -> None:
    """Ended sessions are kept a week (to explain a refresh refusal), then deleted."""
    assert ctx.db is not None
    while True:
        async with ctx.db.session() as session:
            removed = await service.purge_sessions(session=session, keep_revoked=timedelta(days=7))
        if removed:
            log.info("sessions_purged", count=removed)
        await asyncio.sleep(3600)


async def _bootstrap_admin(ctx: ServiceContext, rt: service.Runtime) -> None:
    """In dev, ADMIN_EMAIL/ADMIN_PASSWORD make the first admin if that account is missing."""
    s = rt.settings
    if s.env != "dev" or not s.admin_email or s.admin_password is None:
        return
    assert ctx.db is not None
    email = s.admin_email.strip().lower()
    async with ctx.db.session() as session:
        if await session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            return
    async with ctx.db.session() as session:
        await service.make_admin(session=session, passwords=rt.passwords, email=email,
                                 password=s.admin_password.get_secret_value(), name="Admin")
    log.info("dev_admin_created", email=email)
