"""Request and response models of notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from services.notifications.models import EmailDelivery

EmailStatus = Literal["pending", "sent", "failed"]


class EmailPublic(BaseModel):
    """One e-mail as admins see it in the list."""

    id: uuid.UUID
    to: str
    to_name: str
    template: str
    subject: str
    status: EmailStatus = Field(
        description="pending: not accepted by the SMTP server yet (next_attempt_at says when it tries "
        "again); sent: accepted; failed: refused too often, not tried again"
    )
    attempts: int
    last_error: str | None
    event_id: uuid.UUID
    event_type: str
    user_id: uuid.UUID | None
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, row: EmailDelivery) -> EmailPublic:
        return cls(
            id=row.id,
            to=row.to_address,
            to_name=row.to_name,
            template=row.template,
            subject=row.subject,
            status=row.status,
            attempts=row.attempts,
            last_error=row.last_error,
            event_id=row.event_id,
            event_type=row.event_type,
            user_id=row.user_id,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            sent_at=row.sent_at,
        )


class EmailDetail(EmailPublic):
    """One e-mail with both of its parts."""

    text: str
    html: str

    @classmethod
    def of(cls, row: EmailDelivery) -> EmailDetail:
        return cls(**EmailPublic.of(row).model_dump(), text=row.text_body, html=row.html_body)


class EmailPage(BaseModel):
    items: list[EmailPublic]
    total: int
    page: int
    page_size: int


class MailboxMessage(BaseModel):
    """A message the dev SMTP catcher received (``make dev``), whoever sent it."""

    id: str
    to: str
    sender: str = Field(alias="from")
    subject: str
    date: str | None
    text: str | None
    html: str | None

    model_config = {"populate_by_name": True}


class MailboxPage(BaseModel):
    items: list[MailboxMessage]
    total: int
