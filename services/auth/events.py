"""Events the auth service publishes (it consumes none); the model and catalogue are in ``libs.contracts.auth``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.common.events import Envelope
from libs.contracts.auth import EVENTS, UserRegistered

if TYPE_CHECKING:
    from services.auth.models import User


def user_registered(user: User) -> Envelope:
    return EVENTS.envelope(
        "user.registered", UserRegistered(user_id=user.id, email=user.email, name=user.name)
    )
