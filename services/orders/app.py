"""Wiring of the orders service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.logging import get_logger
from libs.common.service import Kernel, create_service_app
from services.orders import idempotency
from services.orders import service as order_service
from services.orders.api import admin_router, router
from services.orders.context import OrdersContext, OrdersState
from services.orders.handlers import SUBSCRIPTIONS
from services.orders.placements import tend_placements
from services.orders.settings import OrdersSettings, get_settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = get_logger(__name__)


async def sweep_unpaid_orders(ctx: OrdersContext) -> None:
    """Cancel orders left unpaid past the payment timeout, and forget expired idempotency keys."""
    settings = ctx.settings
    assert ctx.db is not None
    rounds = 0
    while True:
        async with ctx.db.session() as session:
            cancelled = await order_service.cancel_unpaid(session=session, batch=settings.order_sweep_batch)
            if cancelled:
                log.info("unpaid_orders_cancelled", count=cancelled)
            if rounds % 100 == 0:
                await idempotency.purge_expired(session)
        rounds += 1
        if cancelled < settings.order_sweep_batch:
            await asyncio.sleep(settings.order_sweep_interval)


@contextlib.asynccontextmanager
async def open_state(_: Kernel[OrdersSettings]) -> AsyncIterator[OrdersState]:
    yield OrdersState()


def create_app(
    settings: OrdersSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop orders",
        routers=[router, admin_router],
        migrations=MIGRATIONS,
        state=open_state,
        subscriptions=SUBSCRIPTIONS,
        background=[sweep_unpaid_orders, tend_placements],
        bus=bus,
        redis=redis,
        description="Orders: placing with stock reservation, status machine, payment facts.",
    )
