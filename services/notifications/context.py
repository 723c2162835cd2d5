"""Notifications' running context, typed once: its settings, the mail sender's wake-up signal and the
webhook sender's state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends

from libs.common.service import Kernel, ServiceContext, service_context
from services.notifications.settings import NotificationsSettings
from services.notifications.webhook_security import WebhookState, open_webhooks


@dataclass
class Sender:
    """Wakes the sender loop when a delivery is committed, so a mail goes out without waiting a poll."""

    webhooks: WebhookState
    due: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.due.set()


@contextlib.asynccontextmanager
async def open_sender(kernel: Kernel[Any]) -> AsyncIterator[Sender]:
    async with open_webhooks(kernel.settings) as webhooks:
        yield Sender(webhooks=webhooks)


NotificationsContext = ServiceContext[NotificationsSettings, Sender]
Ctx = Annotated[NotificationsContext, Depends(service_context)]
