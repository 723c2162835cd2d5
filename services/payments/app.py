"""Wiring of the payments service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import Kernel, create_service_app
from services.payments.api import router
from services.payments.context import PaymentsState
from services.payments.handlers import SUBSCRIPTIONS
from services.payments.provider import make_provider
from services.payments.settings import PaymentsSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


@contextlib.asynccontextmanager
async def open_state(kernel: Kernel[PaymentsSettings]) -> AsyncIterator[PaymentsState]:
    provider = make_provider(kernel.settings, kernel.db)
    try:
        yield PaymentsState(provider=provider)
    finally:
        await provider.close()


def create_app(
    settings: PaymentsSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop payments",
        routers=[router],
        migrations=MIGRATIONS,
        state=open_state,
        subscriptions=SUBSCRIPTIONS,
        bus=bus,
        redis=redis,
        description="Payments: Stripe PaymentIntents for payable orders, webhooks, refunds of cancelled orders.",
    )
