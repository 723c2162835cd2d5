"""Events the auth service publishes (it consumes none)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from libs.common.events import Envelope

if TYPE_CHECKING:
    from services.auth.models import User


def user_registered(user: User) -> Envelope:
    return Envelope.new("user.registered", {"user_id": user.id, "email": user.email, "name": user.name},
                        producer="auth")
