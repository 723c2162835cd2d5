"""A producer's event catalogue: only declared events, only declared fields, data as consumers see it."""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel, Field, ValidationError

from libs.common.events.catalogue import EventCatalogue, EventType, UndeclaredEvent


class Shipped(BaseModel):
    order_id: uuid.UUID
    from_: str | None = Field(None, alias="from")
    note: str | None = None


CATALOGUE = EventCatalogue(producer="orders", events={"order.shipped": EventType(Shipped, "It left.")})


def test_an_undeclared_event_cannot_be_published() -> None:
    with pytest.raises(UndeclaredEvent, match=r"order\.lost"):
        CATALOGUE.envelope("order.lost", {"order_id": uuid.uuid4()})


def test_a_field_the_model_does_not_declare_is_refused() -> None:
    with pytest.raises(ValueError, match="courier"):
        CATALOGUE.envelope("order.shipped", {"order_id": uuid.uuid4(), "courier": "x"})
    with pytest.raises(ValidationError):
        CATALOGUE.envelope("order.shipped", {"order_id": "not a uuid"})


def test_data_keeps_exactly_the_keys_given_with_json_values_and_aliases() -> None:
    order_id = uuid.uuid4()
    env = CATALOGUE.envelope("order.shipped", {"order_id": order_id, "from": "paid"})
    assert env.type == "order.shipped" and env.producer == "orders"
    assert env.data == {"order_id": str(order_id), "from": "paid"}
    env = CATALOGUE.envelope("order.shipped", Shipped(order_id=order_id, note=None))
    assert env.data == {"order_id": str(order_id), "note": None}
