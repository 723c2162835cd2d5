"""Wiring of the pricing service."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.logging import get_logger
from libs.common.service import create_service_app
from services import pricing
from services.pricing import quotes
from services.pricing.api import admin_router, internal_router, router
from services.pricing.context import PricingContext
from services.pricing.handlers import SUBSCRIPTIONS
from services.pricing.settings import PricingSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def sweep_unconfirmed_claims(ctx: PricingContext) -> None:
    """Give back, now and then, the promotions of orders that never came to be."""
    settings = ctx.settings
    assert ctx.db is not None
    while True:
        async with ctx.db.session() as session:
            released = await quotes.release_unconfirmed(
                session=session, older_than=timedelta(seconds=settings.pricing_claim_confirm_timeout)
            )
        if released:
            log.info("unconfirmed_claims_released", count=released)
        await asyncio.sleep(settings.pricing_claim_sweep_interval)


def create_app(
    settings: PricingSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop pricing service",
        routers=[router, admin_router, internal_router],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS,
        background=[sweep_unconfirmed_claims],
        bus=bus,
        redis=redis,
        description=pricing.__doc__ or "",
    )
