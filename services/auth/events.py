"""Events the auth service publishes (it consumes none)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from pydantic import BaseModel

from libs.common.events import Envelope
from libs.common.events.catalogue import EventCatalogue, EventType

if TYPE_CHECKING:
    from services.auth.models import User


class UserRegistered(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str


EVENTS = EventCatalogue(producer="auth", events={
    "user.registered": EventType(UserRegistered, "A new customer account was created."),
})


def user_registered(user: User) -> Envelope:
    return EVENTS.envelope("user.registered", UserRegistered(user_id=user.id, email=user.email, name=user.name))
