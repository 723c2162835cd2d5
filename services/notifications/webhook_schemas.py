"""Request and response models of webhooks (DESIGN.md section 10, write shapes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.notifications.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

# a routing-key pattern as RabbitMQ reads it: words of the event type, * one word, # any number
Pattern = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=200, pattern=r"^(\*|#|[a-z0-9_]+)(\.(\*|#|[a-z0-9_]+))*$"
    ),
]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


class WebhookCreate(BaseModel):
    url: Url = Field(description="http or https; no private, loopback or link-local target")
    events: list[Pattern] = Field(
        min_length=1,
        max_length=50,
        description="routing-key patterns: order.created, order.*, # (every event)",
    )
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    active: bool = True


class WebhookUpdate(BaseModel):
    url: Url | None = None
    events: list[Pattern] | None = Field(None, min_length=1, max_length=50)
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = Field(None, description="true turns a disabled endpoint back on")


class RotateSecret(BaseModel):
    overlap_seconds: int | None = Field(
        None,
        ge=0,
        le=7 * 24 * 3600,
        description="how long the old secret keeps signing beside the new one (default WEBHOOK_SECRET_OVERLAP)",
    )


class WebhookPublic(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    consecutive_failures: int
    disabled_at: datetime | None
    disabled_reason: str | None
    secret_prefix: str = Field(description="the secret's first characters, to tell secrets apart")
    previous_secret_expires_at: datetime | None = Field(
        description="until when the secret before the last rotation still signs (a second v1)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> WebhookPublic:
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events),
            description=row.description,
            active=row.active,
            consecutive_failures=row.consecutive_failures,
            disabled_at=row.disabled_at,
            disabled_reason=row.disabled_reason,
            secret_prefix=row.secret[:12],
            previous_secret_expires_at=row.previous_secret_expires_at if row.previous_secret else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WebhookWithSecret(WebhookPublic):
    secret: str = Field(description="signs every delivery; shown in this answer only")

    @classmethod
    def of(cls, row: WebhookEndpoint) -> WebhookWithSecret:
        return cls(**WebhookPublic.of(row).model_dump(), secret=row.secret)


class WebhookPage(BaseModel):
    items: list[WebhookPublic]
    total: int
    page: int
    page_size: int


class DeliveryPublic(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus = Field(
        description="pending: not acknowledged yet (next_attempt_at says when it is tried again); "
        "succeeded: the endpoint answered 2xx; failed: given up after WEBHOOK_RETRY_FOR"
    )
    response_code: int | None = Field(description="the last attempt's HTTP status (none: no answer)")
    attempts: int
    duration_ms: int | None = Field(description="how long the last attempt took")
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryPublic:
        return cls(
            id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            status=row.status,
            response_code=row.response_code,
            attempts=row.attempts,
            duration_ms=row.duration_ms,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            delivered_at=row.delivered_at,
        )


class AttemptPublic(BaseModel):
    id: uuid.UUID
    succeeded: bool
    response_code: int | None
    duration_ms: int
    response_body: str | None = Field(
        description="the start of the endpoint's answer (WEBHOOK_RESPONSE_BODY_LIMIT)"
    )
    error: str | None
    started_at: datetime

    @classmethod
    def of(cls, row: WebhookAttempt) -> AttemptPublic:
        return cls(
            id=row.id,
            succeeded=row.succeeded,
            response_code=row.response_code,
            duration_ms=row.duration_ms,
            response_body=row.response_body,
            error=row.error,
            started_at=row.started_at,
        )


class DeliveryDetail(DeliveryPublic):
    payload: str = Field(description="the body POSTed: the event's envelope as published")
    attempt_log: list[AttemptPublic] = Field(description="every attempt, oldest first")


class DeliveryPage(BaseModel):
    items: list[DeliveryPublic]
    total: int
    page: int
    page_size: int
