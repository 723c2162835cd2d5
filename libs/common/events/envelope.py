"""The envelope every domain event travels in (DESIGN.md section 5)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from libs.common.logging import correlation_id_var, request_id_var


class Envelope(BaseModel):
    """A past-tense fact: ``type`` is the routing key, ``data`` the resource."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    correlation_id: str | None = None
    data: dict[str, Any]

    @classmethod
    def new(
        cls, type: str, data: Any, *, producer: str, version: int = 1, correlation_id: str | None = None
    ) -> Envelope:
        """Build an event; ``data`` may hold UUIDs, datetimes or models, stored as JSON values."""
        cid = correlation_id or correlation_id_var.get() or request_id_var.get()
        return cls(
            type=type, data=to_jsonable_python(data), producer=producer, version=version, correlation_id=cid
        )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        return cls.model_validate(orjson.loads(body))
