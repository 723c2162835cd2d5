"""Every consumer reads an event as the model its producer publishes (and AsyncAPI documents)."""

from __future__ import annotations

import importlib
import importlib.util
import uuid

import pytest

from libs import contracts
from libs.common.events import Envelope, topic_matches
from libs.common.events.bus import PoisonMessage
from libs.common.parts import PARTS, Part
from libs.common.service import RawData
from libs.contracts.catalog import StockChanged

PUBLISHED = {key: event.model for c in contracts.catalogues() for key, event in c.events.items()}
CONSUMERS = [p for p in PARTS if importlib.util.find_spec(f"{p.module}.handlers") is not None]


def test_the_parts_that_consume_through_the_kernel_are_found() -> None:
    assert {p.name for p in CONSUMERS} >= {"cart", "catalog", "orders", "payments"}


@pytest.mark.parametrize("part", CONSUMERS, ids=lambda p: p.name)
def test_each_subscription_parses_the_model_its_producer_publishes(part: Part) -> None:
    for sub in importlib.import_module(f"{part.module}.handlers").SUBSCRIPTIONS:
        for pattern in sub.patterns:
            models = {PUBLISHED[key] for key in PUBLISHED if topic_matches(pattern, key)}
            # RawData forwards the data unread (webhooks): it reads no producer's model
            assert sub.model is RawData or models == {sub.model}, (
                f"{part.name} reads {pattern} as {sub.model.__name__}, published as {models}"
            )
            assert any(topic_matches(bound, pattern) for bound in part.consumes), (
                f"{part.name} subscribes to {pattern}, outside its queue's bindings {part.consumes}"
            )


def test_a_consumer_of_many_types_parses_each_into_its_producers_model() -> None:
    product_id = uuid.uuid4()
    parsed = contracts.parse(
        Envelope.new(
            "stock.changed",
            {"product_id": str(product_id), "stock": 3, "version": 7, "added_later": "ignored"},
            producer="catalog",
        )
    )
    assert parsed == StockChanged(product_id=product_id, stock=3, version=7)


def test_data_not_matching_its_producers_model_or_an_undeclared_event_is_poison() -> None:
    with pytest.raises(
        PoisonMessage, match=r"stock\.changed data is not a valid StockChanged: stock: Field required"
    ):
        contracts.parse(
            Envelope.new("stock.changed", {"product_id": str(uuid.uuid4()), "version": 1}, producer="catalog")
        )
    with pytest.raises(PoisonMessage, match=r"no part declares the event 'stock\.vanished'"):
        contracts.parse(Envelope.new("stock.vanished", {}, producer="catalog"))
