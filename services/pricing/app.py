"""Wiring of the pricing service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import create_service_app
from services import pricing
from services.pricing.api import admin_router, internal_router, router
from services.pricing.handlers import SUBSCRIPTIONS
from services.pricing.settings import PricingSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: PricingSettings | None = None, *, bus: EventBus | None = None,
               redis: Redis | None = None) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(settings=settings, title="Shop pricing service",
                              routers=[router, admin_router, internal_router], migrations=MIGRATIONS,
                              subscriptions=SUBSCRIPTIONS, bus=bus, redis=redis,
                              description=pricing.__doc__ or "")
