"""Every consumer reads an event as the model its producer publishes (and AsyncAPI documents)."""

from __future__ import annotations

import importlib
import importlib.util

import pytest

from libs.common.events import topic_matches
from libs.common.parts import PARTS, Part
from services.asyncapi import catalogues

PUBLISHED = {key: event.model for c in catalogues() for key, event in c.events.items()}
CONSUMERS = [p for p in PARTS if importlib.util.find_spec(f"{p.module}.handlers") is not None]


def test_the_parts_that_consume_through_the_kernel_are_found() -> None:
    assert {p.name for p in CONSUMERS} >= {"cart", "catalog", "orders", "payments"}


@pytest.mark.parametrize("part", CONSUMERS, ids=lambda p: p.name)
def test_each_subscription_parses_the_model_its_producer_publishes(part: Part) -> None:
    for sub in importlib.import_module(f"{part.module}.handlers").SUBSCRIPTIONS:
        for pattern in sub.patterns:
            models = {PUBLISHED[key] for key in PUBLISHED if topic_matches(pattern, key)}
            assert models == {sub.model}, f"{part.name} reads {pattern} as {sub.model.__name__}, published as {models}"
            assert any(topic_matches(bound, pattern) for bound in part.consumes), \
                f"{part.name} subscribes to {pattern}, outside its queue's bindings {part.consumes}"
