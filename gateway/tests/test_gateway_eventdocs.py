"""The event documentation: generated from the models, complete, valid AsyncAPI 3, and served.

The completeness checks read the services' source for what they publish, emit and
handle, so a new event or socket message that bypasses the declarations fails here.
"""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import httpx
import pytest

from gateway import eventdocs
from gateway.app import create_app
from gateway.settings import GatewaySettings
from libs.asyncapi import check_asyncapi3
from libs.common.events.bus import topic_matches
from libs.common.events.topology import CONSUMERS
from libs.contracts import catalogues
from services import asyncapi
from services.realtime.commands import COMMANDS
from services.realtime.notifications import ROUTES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for p in sorted((ROOT / "services").rglob("*.py"))
    if "tests" not in p.parts and "migrations" not in p.parts
]
CONSUMING = ["cart", "catalog", "orders", "payments"]
# Socket.IO's own lifecycle event: nothing a client sends or receives as a message
BUILT_IN = {"disconnect", "*"}  # "*": python-socketio's catch-all for events no handler names


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(eventdocs.DOCUMENT.read_text())


def _routing_keys(doc: dict) -> set[str]:
    return {c["address"] for cid, c in doc["channels"].items() if cid.startswith("event.")}


def _socket_names(doc: dict) -> set[str]:
    return {
        m["name"]
        for mid, m in doc["components"]["messages"].items()
        if mid.startswith("socket.") and not mid.endswith(".ack")
    }


def _calls(path: Path) -> list[ast.Call]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)]


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def test_committed_document_is_what_the_models_generate() -> None:
    assert eventdocs.DOCUMENT.read_text() == asyncapi.render(), (
        "gateway/asyncapi.json is stale: run `make asyncapi` and commit the result"
    )


def test_document_keeps_to_asyncapi_3(doc: dict) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert check_asyncapi3(doc) == []
    assert {op["action"] for op in doc["operations"].values()} == {"send", "receive"}
    assert doc["components"]["messages"] and doc["components"]["schemas"]
    # every event message is the envelope narrowed to its own type and data model
    envelope = doc["components"]["schemas"]["Envelope"]
    assert {"id", "type", "version", "occurred_at", "producer", "correlation_id", "data"} <= set(
        envelope["properties"]
    )
    created = doc["components"]["messages"]["event.order.created"]["payload"]["allOf"]
    assert created[0] == {"$ref": "#/components/schemas/Envelope"}
    assert created[1]["properties"]["type"] == {"const": "order.created"}
    assert created[1]["properties"]["data"] == {"$ref": "#/components/schemas/OrderCreated"}
    binding = doc["channels"]["event.order.created"]["bindings"]["amqp"]
    assert binding["is"] == "routingKey" and binding["exchange"]["name"] == "shop.events"


def test_services_build_envelopes_only_through_their_catalogues() -> None:
    direct = [
        f"{p.relative_to(ROOT)}:{c.lineno}"
        for p in SOURCES
        for c in _calls(p)
        if isinstance(c.func, ast.Attribute)
        and c.func.attr == "new"
        and isinstance(c.func.value, ast.Name)
        and c.func.value.id == "Envelope"
    ]
    assert direct == [], "publish through the service's EVENTS catalogue, so the event is documented"


def test_every_published_and_consumed_routing_key_is_documented(doc: dict) -> None:
    keys = _routing_keys(doc)
    published = {key for catalogue in catalogues() for key in catalogue.events}
    assert published == keys
    for producer in catalogues():
        for key in producer.events:
            assert f"{producer.producer}.send.{key}" in doc["operations"]
    patterns = [p for ps in CONSUMERS.values() for p in ps]
    for name in CONSUMING:
        patterns += [
            p for s in importlib.import_module(f"services.{name}.handlers").SUBSCRIPTIONS for p in s.patterns
        ]
    for pattern in patterns:
        assert any(topic_matches(pattern, key) for key in keys), f"{pattern} matches no documented event"
    for consumer, consumed in CONSUMERS.items():
        for key in keys:
            if any(topic_matches(p, key) for p in consumed):
                assert f"{consumer}.receive.{key}" in doc["operations"]
    assert set(ROUTES) <= keys


def test_every_socket_event_realtime_emits_or_handles_is_documented(doc: dict) -> None:
    literal: set[str] = set()
    for path in (ROOT / "services" / "realtime").glob("*.py"):
        for call in _calls(path):
            name = _name(call)
            args = [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if name in ("on", "emit") and args:
                literal.add(args[0])
            elif (
                name == "send_local"
                and len(call.args) >= 2
                and isinstance(call.args[1], ast.Constant)
                and isinstance(call.args[1].value, str)
            ):
                literal.add(call.args[1].value)
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.AsyncFunctionDef) and any(
                isinstance(d, ast.Attribute) and d.attr == "event" for d in fn.decorator_list
            ):
                literal.add(fn.name)
    assert {"resume", "auth:refresh", "resync", "session:ended", "connect"} <= literal, (
        "the scan found too little"
    )
    names = _socket_names(doc)
    assert literal - BUILT_IN <= names
    assert {name for name, _ in ROUTES.values()} <= names
    assert set(COMMANDS) <= names
    for command in [*COMMANDS, "resume", "auth:refresh"]:
        op = doc["operations"][f"socket.receive.{command.replace(':', '.')}"]
        assert op["action"] == "receive" and op["reply"]["messages"], command
    ack = doc["components"]["messages"]["socket.product.add.ack"]["payload"]["oneOf"]
    assert ack == [{"$ref": "#/components/schemas/Done"}, {"$ref": "#/components/schemas/Refused"}]
    note = doc["components"]["schemas"]["Notification"]
    assert {"event_id", "type", "seq", "room", "occurred_at", "data"} <= set(note["required"])
    auth = doc["components"]["schemas"]["ConnectAuth"]["properties"]
    assert {"token", "last_seq"} <= set(auth)


async def test_gateway_serves_the_document_and_a_readable_page(doc: dict) -> None:
    app = create_app(GatewaySettings(rate_limit_enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        served = await client.get("/docs/asyncapi.json")
        page = await client.get("/docs/events")
    assert served.status_code == 200 and served.json() == doc
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text
    for key in _routing_keys(doc):
        assert f"<code>{key}</code>" in page.text
    for name in _socket_names(doc):
        assert f"<code>{name}</code>" in page.text
