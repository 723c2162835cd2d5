"""Wiring of the catalog service."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.logging import get_logger
from libs.common.service import Kernel, create_service_app
from services.catalog.api import CachedReads, GuestBrowse, admin_router, internal_router, router
from services.catalog.cache import ResponseCache
from services.catalog.context import CatalogContext, CatalogState
from services.catalog.handlers import SUBSCRIPTIONS
from services.catalog.media import open_store
from services.catalog.settings import CatalogSettings, get_settings
from services.catalog.trash import sweep

UPLOAD_PATH = re.compile(r"/admin/products/[^/]+/images")
MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def _no_reset(_: asyncpg.Connection) -> None:
    """Read connections never change session state, so the per-release reset round trip is skipped."""


@contextlib.asynccontextmanager
async def open_state(kernel: Kernel[CatalogSettings]) -> AsyncIterator[CatalogState]:
    """A plain asyncpg pool for the browsing hot path, and the public reads' micro-cache.

    The pool skips what the shared SQLAlchemy pool pays per checkout (a pre-ping of three
    round trips, a transaction, statement compilation): on this path that was most of the time.
    """
    settings = kernel.settings
    dsn = settings.db_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=settings.db_pool_size,
        reset=_no_reset,
        command_timeout=30,
        timeout=5,
        # JIT compiles for hundreds of ms whenever a plan's estimate looks big (facets' jsonb_each_text
        # always does); these reads take milliseconds
        server_settings={"jit": "off"},
    )
    store = open_store(settings)
    if store.enabled:
        try:  # a fresh dev or test server has no bucket yet; a real one is provisioned
            await store.ensure_bucket()
        except Exception as exc:  # storage down at start: uploads answer 503 until it is back
            log.warning("media_bucket_unchecked", error=str(exc)[:200])
    try:
        yield CatalogState(
            read_pool=pool,
            response_cache=ResponseCache(ttl=settings.catalog_response_cache_ttl),
            media=store,
        )
    finally:
        await pool.close()


async def sweep_media(ctx: CatalogContext) -> None:
    """Remove image objects whose deletion storage refused at the time (services/catalog/trash.py)."""
    assert ctx.db is not None
    while True:
        async with ctx.db.session() as session:
            removed = await sweep(session, ctx.state.media)
        if removed:
            log.info("media_swept", count=removed)
        await asyncio.sleep(ctx.settings.media_sweep_interval)


def create_app(
    settings: CatalogSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop catalog",
        routers=[router, admin_router, internal_router],
        migrations=MIGRATIONS,
        state=open_state,
        subscriptions=SUBSCRIPTIONS,
        background=[sweep_media],
        bus=bus,
        redis=redis,
        description="Catalog: categories, products, full-text search, stock and reservations.",
        # images are up to 10 MB (DESIGN.md section 10); every other body keeps the 1 MB cap
        body_limits=[("POST", UPLOAD_PATH, settings.media_max_body_bytes)],
        # the last is outermost: a cached answer first, then a browse made without routing
        fast_paths=[GuestBrowse, CachedReads],
    )
