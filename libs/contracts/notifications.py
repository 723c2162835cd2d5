"""Events of the notifications service: what happens to the webhooks integrators registered."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from libs.common.events.catalogue import EventCatalogue, EventType


class WebhookDisabled(BaseModel):
    """An endpoint stopped taking deliveries: nothing more is sent to it until an admin turns it back on."""

    id: uuid.UUID
    url: str
    description: str
    consecutive_failures: int = Field(description="failed attempts in a row that disabled it")
    last_error: str | None = Field(description="what the last attempt met (status code or error)")
    disabled_at: datetime


EVENTS = EventCatalogue(
    producer="notifications",
    events={
        "webhook.disabled": EventType(
            WebhookDisabled, "A webhook endpoint failed too many times in a row and was turned off."
        ),
    },
)
