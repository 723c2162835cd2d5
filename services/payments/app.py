"""Wiring of the payments service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import ServiceContext, create_service_app
from services.payments.api import router
from services.payments.events import SUBSCRIPTIONS
from services.payments.provider import make_provider
from services.payments.settings import PaymentsSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: PaymentsSettings | None = None, *, bus: EventBus | None = None,
               redis: Redis | None = None) -> FastAPI:
    settings = settings or get_settings()

    async def open_provider(ctx: ServiceContext) -> None:
        ctx.extras["provider"] = make_provider(settings, ctx.db)

    async def close_provider(ctx: ServiceContext) -> None:
        if (provider := ctx.extras.pop("provider", None)) is not None:
            await provider.close()

    return create_service_app(
        settings=settings, title="Shop payments", routers=[router], migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS, on_startup=[open_provider], on_shutdown=[close_provider], bus=bus, redis=redis,
        description="Payments: Stripe PaymentIntents for payable orders, webhooks, refunds of cancelled orders.",
    )
