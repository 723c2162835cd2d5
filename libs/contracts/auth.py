"""Events of the auth service."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from libs.common.events.catalogue import EventCatalogue, EventType


class UserRegistered(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str


EVENTS = EventCatalogue(
    producer="auth",
    events={
        "user.registered": EventType(UserRegistered, "A new customer account was created."),
    },
)
