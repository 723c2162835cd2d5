"""Wiring of the catalog service."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import ServiceContext, create_service_app
from services.catalog.api import admin_router, internal_router, router
from services.catalog.cache import ResponseCache
from services.catalog.events import SUBSCRIPTIONS
from services.catalog.settings import CatalogSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


async def _no_reset(_: asyncpg.Connection) -> None:
    """Read connections never change session state, so the per-release reset round trip is skipped."""


async def open_read_pool(ctx: ServiceContext) -> None:
    """A plain asyncpg pool for the browsing hot path.

    It skips what the shared SQLAlchemy pool pays per checkout (a pre-ping of three round
    trips, a transaction, statement compilation): on this path that was most of the time.
    """
    ctx.extras["response_cache"] = ResponseCache(ttl=ctx.settings.catalog_response_cache_ttl)  # type: ignore[attr-defined]
    dsn = ctx.settings.db_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    ctx.extras["read_pool"] = await asyncpg.create_pool(
        dsn, min_size=1, max_size=ctx.settings.db_pool_size, reset=_no_reset, command_timeout=30, timeout=5)


async def close_read_pool(ctx: ServiceContext) -> None:
    pool = ctx.extras.pop("read_pool", None)
    if pool is not None:
        await pool.close()


def create_app(settings: CatalogSettings | None = None, *, bus: EventBus | None = None,
               redis: Redis | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings, title="Shop catalog", routers=[router, admin_router, internal_router],
        migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS, bus=bus, redis=redis,
        on_startup=[open_read_pool], on_shutdown=[close_read_pool],
        description="Catalog: categories, products, full-text search, stock and reservations.",
    )
