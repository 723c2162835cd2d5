"""What each part publishes on the events exchange: the data models and the catalogue of its events.

A producer builds its envelopes from its catalogue here, and a consumer parses the data
into the very same model, so both sides (and the AsyncAPI document) read one definition and
no part imports another. Consumers are tolerant readers: a field they do not know is
ignored, so adding a field never breaks one. Each ``<part>.py`` holds only pydantic models
and its ``EVENTS``; this module finds them through the registry of parts.
"""

from __future__ import annotations

import importlib
import importlib.util

from pydantic import BaseModel

from libs.common.events.bus import PoisonMessage
from libs.common.events.catalogue import EventCatalogue, UndeclaredEvent, parse_data
from libs.common.events.envelope import Envelope
from libs.common.parts import PARTS


def catalogues() -> list[EventCatalogue]:
    """Every producer's catalogue: ``EVENTS`` of ``libs.contracts.<part>`` for each registered part."""
    found = []
    for part in PARTS:
        name = f"{__name__}.{part.name}"
        if importlib.util.find_spec(name) is None:
            continue  # it publishes nothing
        catalogue = getattr(importlib.import_module(name), "EVENTS", None)
        if isinstance(catalogue, EventCatalogue):
            found.append(catalogue)
    return found


def published_model(type_: str) -> type[BaseModel]:
    """The model its producer publishes ``type_`` with; ``UndeclaredEvent`` if no part declares it."""
    for catalogue in catalogues():
        if (declared := catalogue.events.get(type_)) is not None:
            return declared.model
    raise UndeclaredEvent(f"no part declares the event {type_!r}")


def parse(envelope: Envelope) -> BaseModel:
    """The envelope's data as its producer's model, for a consumer that takes many event types.

    Data that does not parse, or an event nobody declares, is a ``PoisonMessage``: the bus
    dead-letters it with the reason (consumers through ``Subscription`` get this already).
    """
    try:
        model = published_model(envelope.type)
    except UndeclaredEvent as exc:
        raise PoisonMessage(str(exc)) from exc
    return parse_data(model, envelope)
