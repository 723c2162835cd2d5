"""The events a service may publish, each with the pydantic model of its ``data``.

A service builds its envelopes only through its catalogue, so an event that is not
declared cannot be published and a field that is not in the model cannot slip into
``data``. The AsyncAPI document (``libs.asyncapi``) is generated from
the same declarations, which is what keeps it honest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from libs.common.events.bus import PoisonMessage
from libs.common.events.envelope import Envelope

M = TypeVar("M", bound=BaseModel)


class UndeclaredEvent(LookupError):
    """A service tried to publish a routing key its catalogue does not declare."""


class EventType(NamedTuple):
    """One routing key's payload model and a line saying what happened."""

    model: type[BaseModel]
    summary: str


@dataclass(frozen=True)
class EventCatalogue:
    """The routing keys one producer publishes on the events exchange."""

    producer: str
    events: Mapping[str, EventType]

    def envelope(
        self, type_: str, data: BaseModel | Mapping[str, Any], *, correlation_id: str | None = None
    ) -> Envelope:
        """The envelope of ``type_`` whose ``data`` is checked against its declared model.

        A mapping keeps exactly the keys it has (optional fields it leaves out stay out of
        the message, as consumers have always seen them); keys the model does not declare
        are refused, so a new field is a model change, and therefore a document change.
        """
        declared = self.events.get(type_)
        if declared is None:
            raise UndeclaredEvent(f"{self.producer} does not declare the event {type_!r}")
        model = declared.model
        if isinstance(data, BaseModel):
            if not isinstance(data, model):
                raise TypeError(f"{type_} carries {model.__name__}, not {type(data).__name__}")
            payload = data
        else:
            known = {f.alias or name for name, f in model.model_fields.items()} | set(model.model_fields)
            unknown = set(data) - known
            if unknown:
                raise ValueError(
                    f"{type_} data has undeclared fields {sorted(unknown)}: add them to {model.__name__}"
                )
            payload = model.model_validate(dict(data))
        body = payload.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return Envelope.new(type_, body, producer=self.producer, correlation_id=correlation_id)


def parse_data(model: type[M], envelope: Envelope) -> M:
    """``envelope.data`` as ``model``; data that does not parse is a ``PoisonMessage`` naming every bad field.

    The one rule for a consumer: no retry can fix such data, so the bus dead-letters it at
    once with this message; fields the model does not know are ignored (tolerant reader).
    """
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
        )
        raise PoisonMessage(f"{envelope.type} data is not a valid {model.__name__}: {fields}") from exc
