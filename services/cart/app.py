"""Wiring of the cart service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import create_service_app
from services import cart
from services.cart.api import internal_router, router
from services.cart.handlers import SUBSCRIPTIONS
from services.cart.settings import CartSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CartSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop cart service",
        routers=[router, internal_router],
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS,
        bus=bus,
        redis=redis,
        description=cart.__doc__ or "",
    )
