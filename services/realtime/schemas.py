"""What travels over the socket besides the admin commands (those are in commands.py).

The server builds its payloads from these models and the AsyncAPI document is generated
from them, so the two cannot disagree. What a client sends at connect, with ``resume``
and with ``auth:refresh`` is read leniently on purpose (a bad ``last_seq`` entry is
ignored rather than refusing the connection); the models say what is understood.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class NotificationBody(BaseModel):
    """A notification as the room's replay buffer keeps it: its number is added when it is sent."""

    event_id: uuid.UUID = Field(description="the domain event's id: de-duplicate on it")
    type: str = Field(description="the domain event's routing key, e.g. order.created")
    room: str = Field(description="public, admins or user:<id>")
    occurred_at: datetime
    data: dict[str, Any]


class Notification(NotificationBody):
    """Every server -> client notification: a domain event, numbered per room."""

    seq: int = Field(ge=1, description="position in the room's sequence; send it back as last_seq")


class SessionEnded(BaseModel):
    """Sent just before the server disconnects a revoked or expired session."""

    reason: str


class Resync(BaseModel):
    """The gap is older than the replay buffer (or unknown here): refetch over REST."""

    room: str
    last_seq: int | None = Field(None, description="the room's current sequence number")
    oldest_seq: int | None = Field(None, description="the oldest number the buffer still holds")


class RoomsJoined(BaseModel):
    """Where each room this connection joined without a number of its own stood when it joined.

    Without it, a client that had heard nothing yet in a room (a customer's own room before
    their first order) could not resume it after a drop: what was sent meanwhile would be lost.
    """

    rooms: dict[str, int] = Field(
        description="{room: its sequence number when this connection joined it}; keep each as that "
        "room's last_seq until a notification brings a higher one"
    )


class ConnectAuth(BaseModel):
    """The ``auth`` object of the CONNECT packet; without a token the client is a guest.

    A bad token refuses the connection with ``{message, data: {status}}``.
    """

    token: str | None = Field(None, description="an access token (JWT)")
    last_seq: dict[str, int] | None = Field(
        None, description="{room: last seq seen}: what was missed is replayed before anything new"
    )


class Resume(RootModel[dict[str, int]]):
    """``{room: last seq seen}``, as ``auth.last_seq`` but on an open connection."""


class AuthRefresh(BaseModel):
    """A fresh access token for the same user, without reconnecting."""

    token: str


class Problem(BaseModel):
    """RFC 9457 problem fields; a refused command carries the owning service's problem unchanged."""

    model_config = ConfigDict(extra="allow")

    status: int
    title: str
    detail: str
    errors: list[dict[str, Any]] | None = Field(None, description="per-field errors of a 422")


class Refused(BaseModel):
    ok: Literal[False] = False
    error: Problem


class Done(BaseModel):
    """A command's answer: ``data`` is the owning service's body (null after a delete)."""

    ok: Literal[True] = True
    data: Any = None


class Resumed(BaseModel):
    ok: Literal[True] = True


class TokenExpiry(BaseModel):
    expires_at: int = Field(description="expiry of the new token, seconds since the epoch")


class TokenRefreshed(BaseModel):
    ok: Literal[True] = True
    data: TokenExpiry


class Command(BaseModel):
    """An admin command: every other field is the owning service's request body, checked by that service."""

    model_config = ConfigDict(extra="allow")

    request_id: str | None = Field(
        None,
        max_length=128,
        description=(
            "retry key: a repeat gets the first answer; the same key with another payload is refused (422)"
        ),
    )


class CategoryAddCommand(Command):
    """The body of catalog's POST /admin/categories (name, description, parent_id, image_url, position...)."""


class ProductAddCommand(Command):
    """The body of catalog's POST /admin/products (name, price, currency, sku, category_id, stock...,
    and ``options`` with ``variants``: each variant's sku, options, price, stock)."""


class ResourceCommand(Command):
    """Names the resource; it goes into the route's path."""

    id: uuid.UUID


class CategoryUpdateCommand(ResourceCommand):
    """``id`` plus the fields of catalog's PATCH /admin/categories/{id} body."""


class ProductUpdateCommand(ResourceCommand):
    """``id`` plus the fields of catalog's PATCH /admin/products/{id} body (``variants`` replaces the
    list: with an id updated, without added, left out retired)."""


class PromotionAddCommand(Command):
    """The body of pricing's POST /admin/promotions (name, code, stackable, rules, action...)."""


class PromotionUpdateCommand(ResourceCommand):
    """``id`` plus the fields of pricing's PATCH /admin/promotions/{id} body."""


class OrderStatusCommand(Command):
    """``order_id`` plus the body of orders' PATCH /admin/orders/{id}/status (status, reason; shipping
    also carrier, tracking_number, tracking_url)."""

    order_id: uuid.UUID
    carrier: str | None = Field(None, description="when shipping")
    tracking_number: str | None = Field(None, description="when shipping")
    tracking_url: str | None = Field(None, description="when shipping: http(s)")
