"""The shop's AsyncAPI document: ``python -m services.asyncapi > gateway/asyncapi.json``.

This is the one place that gathers every service's event catalogue and the realtime
service's socket contract. The gateway serves the committed file rather than importing
the services, as it reaches them only over HTTP; a test regenerates the document and
fails when the committed one has drifted from the models.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from libs.asyncapi import build_asyncapi
from libs.common.events.topology import CONSUMERS
from libs.contracts import catalogues


def document() -> dict[str, Any]:
    from services.realtime.contract import socket_contract

    return build_asyncapi(
        title="Shop events",
        version="1.0.0",
        description="Domain events on RabbitMQ (topic exchange shop.events, routing key = event type, "
        "transactional outbox, idempotent consumers) and the Socket.IO messages of the realtime "
        "service. Generated from the pydantic models the services use.",
        exchange="shop.events",
        catalogues=catalogues(),
        consumers=CONSUMERS,
        socket=socket_contract(),
        servers={
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "the broker (AMQP_URL); every consumer has its queue <service>.events",
            },
            "gateway": {
                "host": "localhost:8000",
                "pathname": "/socket.io/",
                "protocol": "ws",
                "description": "Socket.IO through the gateway (also long-polling over http)",
            },
        },
    )


def render() -> str:
    """The document as committed: stable key order, two-space indent, trailing newline."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
