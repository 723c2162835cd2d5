"""The event documentation the gateway serves: the committed AsyncAPI file and a page made from it.

The gateway reaches the services only over HTTP, so it does not import their models;
``asyncapi.json`` beside this module is generated from them (``make asyncapi``) and a
test fails when it drifts. The page is plain HTML rendered here, with no script or
third-party asset, so it works offline and behind any content security policy.
"""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("asyncapi.json")
JSON_PATH = "/docs/asyncapi.json"
PAGE_PATH = "/docs/events"


@lru_cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


@lru_cache
def page() -> str:
    return render(document())


def _schema(node: Any) -> str:
    return f"<pre>{escape(json.dumps(node, indent=2, sort_keys=True))}</pre>"


def _links(node: Any) -> str:
    """The component schemas a payload refers to, as links to their section."""
    text = json.dumps(node)
    names = sorted({part.split('"')[0] for part in text.split("#/components/schemas/")[1:]})
    return ", ".join(f'<a href="#schema-{escape(n)}">{escape(n)}</a>' for n in names)


def render(doc: dict[str, Any]) -> str:
    """One page: the domain events, the Socket.IO messages each way, then every schema."""
    messages = doc["components"]["messages"]
    ops = doc["operations"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(doc['info']['title'])}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
        "pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;font-size:.85rem}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem;vertical-align:top;"
        "text-align:left}code{background:#f0f0f0}</style></head><body>",
        f"<h1>{escape(doc['info']['title'])} <small>AsyncAPI {escape(doc['asyncapi'])}</small></h1>",
        f"<p>{escape(doc['info'].get('description', ''))}</p>",
        f"<p>Machine-readable: <a href='{JSON_PATH}'>{JSON_PATH}</a>. REST: <a href='/docs'>/docs</a>.</p>",
        "<h2 id='events'>Domain events (RabbitMQ)</h2>",
        "<table><tr><th>routing key</th><th>producer</th><th>consumers</th><th>what happened</th>"
        "<th>data</th></tr>",
    ]
    for cid, channel in doc["channels"].items():
        if not cid.startswith("event."):
            continue
        key = channel["address"]
        (mid,) = channel["messages"]
        msg = messages[mid]
        senders = [
            o["x-service"]
            for o in ops.values()
            if o["action"] == "send" and o["channel"]["$ref"] == f"#/channels/{cid}"
        ]
        receivers = [
            o["x-service"]
            for o in ops.values()
            if o["action"] == "receive" and o["channel"]["$ref"] == f"#/channels/{cid}"
        ]
        data = msg["payload"]["allOf"][1]["properties"]["data"]
        out.append(
            f"<tr id='event-{escape(key)}'><td><code>{escape(key)}</code></td>"
            f"<td>{escape(', '.join(senders))}</td><td>{escape(', '.join(receivers))}</td>"
            f"<td>{escape(msg.get('summary', ''))}</td><td>{_links(data)}</td></tr>"
        )
    out.append("</table>")
    envelope_ref = "<a href='#schema-Envelope'>Envelope</a>"
    out.append(
        f"<p>Every message is the {envelope_ref} (JSON) whose <code>type</code> is the routing key "
        "and whose <code>data</code> is the schema named in the table.</p>"
    )
    for cid, channel in doc["channels"].items():
        if cid.startswith("event."):
            continue
        out.append(
            f"<h2 id='socket'>{escape(channel.get('title', cid))} at <code>{escape(channel['address'])}"
            f"</code></h2><p>{escape(channel.get('description', ''))}</p>"
        )
        for action, heading in (("send", "Server to client"), ("receive", "Client to server")):
            out.append(
                f"<h3>{heading}</h3><table><tr><th>event</th><th>what it is</th><th>payload</th>"
                "<th>acknowledgement</th></tr>"
            )
            for op in ops.values():
                if op["action"] != action or op["channel"]["$ref"] != f"#/channels/{cid}":
                    continue
                mid = op["messages"][0]["$ref"].rsplit("/", 1)[1]
                msg = messages[mid]
                ack = ""
                if "reply" in op:
                    ack = _links(messages[op["reply"]["messages"][0]["$ref"].rsplit("/", 1)[1]]["payload"])
                out.append(
                    f"<tr id='socket-{escape(msg['name'])}'><td><code>{escape(msg['name'])}</code></td>"
                    f"<td>{escape(msg.get('summary', ''))}</td><td>{_links(msg['payload'])}</td>"
                    f"<td>{ack}</td></tr>"
                )
            out.append("</table>")
    out.append("<h2 id='schemas'>Schemas</h2>")
    for name, schema in doc["components"]["schemas"].items():
        out.append(f"<h3 id='schema-{escape(name)}'>{escape(name)}</h3>{_schema(schema)}")
    out.append("</body></html>")
    return "\n".join(out)
