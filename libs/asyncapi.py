"""An AsyncAPI 3.0 document built from the pydantic models the code itself publishes and validates.

The document is generated, never written by hand: the domain events come from each
producer's :class:`~libs.common.events.catalogue.EventCatalogue` (the only way a service
builds an envelope) and their consumers from the topology, and the Socket.IO messages
from :class:`SocketMessage` declarations that point at the models the realtime service
uses. Nothing here knows a particular service; the shop's own document is assembled by
``python -m services.asyncapi``. It lives beside the runtime kernel (``libs.common``), not
in it: no running part needs it, only the documentation build and its drift test.

Conventions of the document:
- one channel per routing key on the topic exchange, with an AMQP binding; its message
  is the envelope whose ``type`` is that key and whose ``data`` is the event's model;
- one channel for the Socket.IO endpoint; each Socket.IO event is a message whose
  ``name`` is the event name. Server-to-client notifications are ``send`` operations,
  client-to-server commands ``receive`` operations with a ``reply`` (the acknowledgement).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from libs.common.events.bus import topic_matches
from libs.common.events.catalogue import EventCatalogue
from libs.common.events.envelope import Envelope

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
SOCKET_CHANNEL = "socketio"
_KEY = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class SocketMessage:
    """One Socket.IO event: who sends it, the model of its payload and of its acknowledgement.

    ``relays`` names the domain event a notification carries: its payload is ``payload``
    (the notification wrapper) with ``data`` being that event's model. ``ack`` lists the
    shapes the acknowledgement can take (empty: the event is not acknowledged).
    """

    name: str
    sender: Literal["server", "client"]
    payload: type[BaseModel] | None
    summary: str
    relays: str | None = None
    ack: tuple[type[BaseModel], ...] = ()
    audience: str | None = None


@dataclass(frozen=True)
class SocketContract:
    """The Socket.IO endpoint: its path and every event either side may send."""

    path: str
    messages: tuple[SocketMessage, ...]
    description: str = ""
    extra_schemas: tuple[type[BaseModel], ...] = field(default=())


def message_id(kind: Literal["event", "socket"], name: str) -> str:
    """A component key for a routing key or a Socket.IO event name (``:`` is not allowed in keys)."""
    return f"{kind}.{name.replace(':', '.')}"


def build_asyncapi(
    *,
    title: str,
    version: str,
    description: str,
    exchange: str,
    catalogues: Iterable[EventCatalogue],
    consumers: Mapping[str, list[str]],
    socket: SocketContract | None = None,
    servers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every event in ``catalogues`` and every message of ``socket``.

    Raises ``ValueError`` when two producers declare the same routing key or a
    notification relays an event nobody declares: either would make the document wrong.
    """
    catalogues = list(catalogues)
    events: dict[str, tuple[str, Any]] = {}
    for catalogue in catalogues:
        for key, declared in catalogue.events.items():
            if key in events:
                raise ValueError(f"{key} is declared by both {events[key][0]} and {catalogue.producer}")
            events[key] = (catalogue.producer, declared)

    # server-sent and published shapes as they are serialised; client-sent as they are validated
    wanted: dict[type[BaseModel], JsonSchemaMode] = {Envelope: "serialization"}
    for _, declared in events.values():
        wanted[declared.model] = "serialization"
    if socket is not None:
        for msg in socket.messages:
            mode: JsonSchemaMode = "serialization" if msg.sender == "server" else "validation"
            for model in ([msg.payload] if msg.payload else []) + list(msg.ack):
                wanted.setdefault(model, "serialization" if model in msg.ack else mode)
        for model in socket.extra_schemas:
            wanted.setdefault(model, "serialization")
    refs, schemas = _schemas(wanted)

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for key in sorted(events):
        producer, declared = events[key]
        mid, cid = message_id("event", key), f"event.{key}"
        messages[mid] = {
            "name": key,
            "title": key,
            "summary": declared.summary,
            "contentType": "application/json",
            "payload": _with_data(refs[Envelope], refs[declared.model], {"type": {"const": key}}),
            "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": key, "bindingVersion": "0.3.0"}},
            "x-producer": producer,
        }
        channels[cid] = {
            "address": key,
            "title": key,
            "description": f"Routing key `{key}` on the topic exchange `{exchange}`.",
            "messages": {mid: {"$ref": f"#/components/messages/{mid}"}},
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": exchange,
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        channel_ref = {"$ref": f"#/channels/{cid}"}
        message_ref = [{"$ref": f"#/channels/{cid}/messages/{mid}"}]
        operations[f"{producer}.send.{key}"] = {
            "action": "send",
            "channel": channel_ref,
            "messages": message_ref,
            "summary": f"{producer} publishes {key} through its outbox.",
            "x-service": producer,
        }
        for consumer in sorted(consumers):
            if any(topic_matches(pattern, key) for pattern in consumers[consumer]):
                operations[f"{consumer}.receive.{key}"] = {
                    "action": "receive",
                    "channel": channel_ref,
                    "messages": message_ref,
                    "summary": f"{consumer} consumes {key} from the queue {consumer}.events (inbox, retries, DLQ).",
                    "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
                    "x-service": consumer,
                }

    if socket is not None:
        _socket(socket, events, refs, channels, operations, messages)

    doc: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": "application/json",
    }
    if servers:
        doc["servers"] = dict(servers)
    doc.update(
        {
            "channels": channels,
            "operations": operations,
            "components": {"messages": messages, "schemas": schemas},
        }
    )
    problems = check_asyncapi3(doc)
    if problems:
        raise ValueError("the generated document is not valid AsyncAPI 3: " + "; ".join(problems))
    return doc


def _socket(
    socket: SocketContract,
    events: Mapping[str, tuple[str, Any]],
    refs: Mapping[type[BaseModel], str],
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
) -> None:
    own: dict[str, Any] = {}
    for msg in socket.messages:
        mid = message_id("socket", msg.name)
        if msg.relays is not None:
            if msg.relays not in events or msg.payload is None:
                raise ValueError(f"{msg.name} relays {msg.relays}, which no producer declares")
            payload = _with_data(
                refs[msg.payload], refs[events[msg.relays][1].model], {"type": {"const": msg.relays}}
            )
        else:
            payload = {"$ref": refs[msg.payload]} if msg.payload else {"type": "null"}
        summary = msg.summary + (f" Sent to: {msg.audience}." if msg.audience else "")
        messages[mid] = {
            "name": msg.name,
            "title": msg.name,
            "summary": summary,
            "contentType": "application/json",
            "payload": payload,
        }
        if msg.relays:
            messages[mid]["x-relays"] = msg.relays
        own[mid] = {"$ref": f"#/components/messages/{mid}"}
        operation: dict[str, Any] = {
            "action": "send" if msg.sender == "server" else "receive",
            "channel": {"$ref": f"#/channels/{SOCKET_CHANNEL}"},
            "messages": [{"$ref": f"#/channels/{SOCKET_CHANNEL}/messages/{mid}"}],
            "summary": summary,
        }
        if msg.ack:
            ack_id = f"{mid}.ack"
            ack = [{"$ref": refs[m]} for m in msg.ack]
            messages[ack_id] = {
                "name": f"{msg.name} (ack)",
                "title": f"{msg.name} acknowledgement",
                "summary": f"The Socket.IO acknowledgement of {msg.name}.",
                "contentType": "application/json",
                "payload": ack[0] if len(ack) == 1 else {"oneOf": ack},
            }
            own[ack_id] = {"$ref": f"#/components/messages/{ack_id}"}
            operation["reply"] = {
                "channel": {"$ref": f"#/channels/{SOCKET_CHANNEL}"},
                "messages": [{"$ref": f"#/channels/{SOCKET_CHANNEL}/messages/{ack_id}"}],
            }
        side = "send" if msg.sender == "server" else "receive"
        operations[f"socket.{side}.{msg.name.replace(':', '.')}"] = operation
    channels[SOCKET_CHANNEL] = {
        "address": socket.path,
        "title": "Socket.IO",
        "description": socket.description,
        "messages": own,
    }


def _schemas(
    wanted: Mapping[type[BaseModel], JsonSchemaMode],
) -> tuple[dict[type[BaseModel], str], dict[str, Any]]:
    keys, top = models_json_schema(
        [(m, mode) for m, mode in wanted.items()], ref_template=SCHEMAS + "{model}"
    )
    refs = {model: keys[(model, mode)]["$ref"] for model, mode in wanted.items()}
    return refs, dict(sorted(top.get("$defs", {}).items()))


def _with_data(base_ref: str, data_ref: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The wrapper schema with its ``data`` narrowed to one model (and its ``type`` to one value)."""
    return {
        "allOf": [
            {"$ref": base_ref},
            {"type": "object", "required": ["data"], "properties": {**extra, "data": {"$ref": data_ref}}},
        ]
    }


def check_asyncapi3(doc: Mapping[str, Any]) -> list[str]:
    """What breaks the basic rules of AsyncAPI 3.0 in ``doc`` (empty: nothing found).

    Not a full JSON-schema validation of the specification, but the structure tools
    rely on: version, info, component keys, operation actions, and every local
    ``$ref`` resolving (operation messages pointing into their own channel).
    """
    problems: list[str] = []
    if doc.get("asyncapi") != ASYNCAPI_VERSION:
        problems.append(f"asyncapi must be {ASYNCAPI_VERSION!r}")
    info = doc.get("info") or {}
    if not isinstance(info.get("title"), str) or not isinstance(info.get("version"), str):
        problems.append("info needs a title and a version")
    for section in ("channels", "operations"):
        if not isinstance(doc.get(section), dict) or not doc[section]:
            problems.append(f"{section} must be a non-empty object")
    components = doc.get("components") or {}
    for section in ("messages", "schemas"):
        if not isinstance(components.get(section), dict):
            problems.append(f"components.{section} must be an object")
    for section in ("channels", "operations"):
        for key in doc.get(section) or {}:
            if not _KEY.match(key):
                problems.append(f"{section} key {key!r} has characters AsyncAPI does not allow")
    for section, entries in components.items():
        for key in entries:
            if not _KEY.match(key):
                problems.append(f"components.{section} key {key!r} has characters AsyncAPI does not allow")
    for cid, channel in (doc.get("channels") or {}).items():
        if "address" not in channel:
            problems.append(f"channel {cid} has no address")
    for oid, op in (doc.get("operations") or {}).items():
        if op.get("action") not in ("send", "receive"):
            problems.append(f"operation {oid}: action must be send or receive")
        channel_ref = (op.get("channel") or {}).get("$ref", "")
        for m in op.get("messages", []):
            if not m.get("$ref", "").startswith(channel_ref + "/messages/"):
                problems.append(f"operation {oid}: message {m.get('$ref')} is not one of its channel's")
    for ref in sorted(set(_refs(doc))):
        if _resolve(doc, ref) is None:
            problems.append(f"unresolved $ref {ref}")
    return problems


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(doc: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
