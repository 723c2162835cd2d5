"""Wiring of the auth service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.db import Database
from libs.common.events import EventBus
from libs.common.logging import get_logger
from libs.common.service import Kernel, create_service_app
from services.auth import service, signing
from services.auth.api import router
from services.auth.context import AuthContext, Runtime
from services.auth.mailer import Mailer
from services.auth.models import User
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


def make_passwords(settings: AuthSettings) -> Passwords:
    return Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
    )


@contextlib.asynccontextmanager
async def open_state(kernel: Kernel[AuthSettings]) -> AsyncIterator[Runtime]:
    """A signing key (made on first start), the password hasher and the mailer, drained at shutdown."""
    settings, db = kernel.settings, kernel.db
    assert db is not None, "auth runs with its database"
    await signing.ensure_key(db, settings)
    rt = Runtime(
        settings=settings,
        passwords=make_passwords(settings),
        keys=signing.Keys(db, settings),
        mailer=Mailer(settings),
    )
    await _bootstrap_admin(db, rt)
    try:
        yield rt
    finally:
        await rt.mailer.drain()


def create_app(
    settings: AuthSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    # the shared verifier waits 5 s between JWKS refreshes; ours is configurable so a
    # rotation is picked up by this service's own routes as soon as the settings allow
    return create_service_app(
        settings=settings,
        title="Shop auth service",
        routers=[router],
        migrations=MIGRATIONS,
        state=open_state,
        background=[_purge_sessions_hourly],
        bus=bus,
        redis=redis,
        jwks_min_refresh=settings.jwks_min_refresh_seconds,
        description=service.__doc__ or "",
    )


async def _purge_sessions_hourly(ctx: AuthContext) -> None:
    """Ended sessions are kept a week (to explain a refresh refusal), then deleted."""
    assert ctx.db is not None
    while True:
        async with ctx.db.session() as session:
            removed = await service.purge_sessions(session=session, keep_revoked=timedelta(days=7))
        if removed:
            log.info("sessions_purged", count=removed)
        await asyncio.sleep(3600)


async def _bootstrap_admin(db: Database, rt: Runtime) -> None:
    """In dev, ADMIN_EMAIL/ADMIN_PASSWORD make the first admin if that account is missing."""
    s = rt.settings
    if s.env != "dev" or not s.admin_email or s.admin_password is None:
        return
    email = s.admin_email.strip().lower()
    async with db.session() as session:
        if await session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            return
    async with db.session() as session:
        await service.make_admin(
            session=session,
            passwords=rt.passwords,
            email=email,
            password=s.admin_password.get_secret_value(),
            name="Admin",
        )
    log.info("dev_admin_created", email=email)
