"""Wiring of the notifications service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from redis.asyncio import Redis

from libs.common.events import EventBus
from libs.common.service import create_service_app
from services import notifications
from services.notifications.api import admin_router
from services.notifications.context import open_sender
from services.notifications.handlers import SUBSCRIPTIONS
from services.notifications.service import run_sender
from services.notifications.settings import NotificationsSettings, get_settings
from services.notifications.webhook_api import webhook_router
from services.notifications.webhook_sender import run_webhook_sender

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NotificationsSettings | None = None, *, bus: EventBus | None = None, redis: Redis | None = None
) -> FastAPI:
    settings = settings or get_settings()
    return create_service_app(
        settings=settings,
        title="Shop notifications service",
        routers=[admin_router, webhook_router],
        state=open_sender,
        migrations=MIGRATIONS,
        subscriptions=SUBSCRIPTIONS,
        background=[run_sender, run_webhook_sender],
        bus=bus,
        redis=redis,
        description=notifications.__doc__ or "",
    )
