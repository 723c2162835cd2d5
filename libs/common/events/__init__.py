"""Domain events: envelope, buses (AMQP and in-process), transactional outbox, inbox."""

from libs.common.events.bus import DeadLetter, EventBus, Handler, InMemoryBus, topic_matches
from libs.common.events.envelope import Envelope
from libs.common.events.inbox import idempotent, mark_processed
from libs.common.events.outbox import OutboxRelay, publish_in
from libs.common.events.tables import add_event_tables

__all__ = [
    "DeadLetter",
    "Envelope",
    "EventBus",
    "Handler",
    "InMemoryBus",
    "OutboxRelay",
    "add_event_tables",
    "idempotent",
    "mark_processed",
    "publish_in",
    "topic_matches",
]
