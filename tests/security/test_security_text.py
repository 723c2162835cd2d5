"""Invalid Unicode is a 422 naming the field, for every string of every operation the gateway publishes.

Walked from the gateway's merged ``/openapi.json``, so an operation or a field added to any
service is checked by the next run without a new test: every string a JSON body can hold
(nested objects, lists and maps included) gets a lone surrogate, and every query parameter
bytes that are not UTF-8. The answer must be a 422 problem whose ``errors`` name exactly
that field, from a caller the route admits (the admin), so it is the text that was refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import httpx
import pytest
import socketio

from libs.common.testing import assert_problem
from tests.e2e.external import ExternalStack
from tests.e2e.shopper import Listener
from tests.e2e.stack import Stack
from tests.security.conftest import PASSWORD, Cast, register

BAD = "@@not-unicode@@"
SURROGATE = '"b\\ud800@example.com"'  # a lone high surrogate, as JSON escapes it
NOT_UTF8 = "%ED%A0%80"  # the same surrogate as UTF-8 bytes: not valid UTF-8
Field = tuple[str, ...]


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = doc
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def string_fields(
    doc: dict[str, Any], schema: dict[str, Any], path: Field = (), depth: int = 0
) -> list[Field]:
    """Every place a string can sit in a document of ``schema``, as a path of keys and list indexes."""
    schema = _resolve(doc, schema)
    if depth > 6:
        return []
    found: list[Field] = []
    for option in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        found += [f for f in string_fields(doc, option, path, depth + 1) if f not in found]
    kind = schema.get("type")
    if kind == "string" and path not in found:
        found.append(path)
    elif kind == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            found += string_fields(doc, sub, (*path, name), depth + 1)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            found += string_fields(doc, extra, (*path, "key"), depth + 1)
    elif kind == "array" and isinstance(schema.get("items"), dict):
        found += string_fields(doc, schema["items"], (*path, "0"), depth + 1)
    return found


def body_with_bad_text(field: Field) -> bytes:
    """A JSON document holding invalid text at ``field`` and nothing else."""
    node: Any = BAD
    for key in reversed(field):
        node = [node] if key == "0" else {key: node}
    return json.dumps(node).replace(f'"{BAD}"', SURROGATE).encode()


async def _send(http: httpx.AsyncClient, method: str, url: str, **kw: Any) -> httpx.Response:
    for _ in range(5):  # a long walk may meet the gateway's rate limit: wait as told, never count it
        resp = await http.request(method, url, **kw)
        if resp.status_code != 429:
            return resp
        await asyncio.sleep(float(resp.headers.get("retry-after", "1")))
    return resp


def _expect(resp: httpx.Response, field: str, what: str, failures: list[str]) -> None:
    if resp.status_code != 422:
        failures.append(f"{what}: {resp.status_code} {resp.text[:160]}")
        return
    named = [e["field"] for e in assert_problem(resp, 422)["errors"]]
    if named != [field]:
        failures.append(f"{what}: 422 naming {named}, not {field}")


async def test_invalid_unicode_anywhere_in_any_operation_is_a_422_naming_the_field(cast: Cast) -> None:
    # was: a 500 on register, login, forgot-password and verify-otp (and wherever else text met UTF-8)
    doc = (await cast.http.get("/openapi.json")).json()
    headers = {**cast.admin.auth, "Idempotency-Key": uuid.uuid4().hex}
    failures: list[str] = []
    checked = {"body fields": 0, "query parameters": 0, "operations": 0}
    for template, item in doc["paths"].items():
        path = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), template)
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            checked["operations"] += 1
            for param in op.get("parameters", []):
                if param.get("in") == "query":
                    resp = await _send(
                        cast.http, method, f"{path}?{param['name']}={NOT_UTF8}", headers=headers
                    )
                    _expect(resp, param["name"], f"{method.upper()} {template}?{param['name']}", failures)
                    checked["query parameters"] += 1
            media = op.get("requestBody", {}).get("content", {}).get("application/json")
            for field in string_fields(doc, media["schema"]) if media else []:
                resp = await _send(
                    cast.http,
                    method,
                    path,
                    content=body_with_bad_text(field),
                    headers={**headers, "Content-Type": "application/json"},
                )
                _expect(
                    resp,
                    ".".join(field) or "body",
                    f"{method.upper()} {template} {'.'.join(field)}",
                    failures,
                )
                checked["body fields"] += 1
    assert not failures, "\n".join(failures)
    # the walk walked something: every part publishes operations with text in them
    assert checked["operations"] > 30 and checked["body fields"] > 40 and checked["query parameters"] > 10, (
        checked
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/auth/register", {"email": BAD, "password": PASSWORD, "name": "Ada"}),
        ("/auth/login", {"email": BAD, "password": PASSWORD}),
        ("/auth/forgot-password", {"email": BAD}),
        ("/auth/verify-otp", {"email": BAD, "otp": "123456"}),
    ],
)
async def test_an_email_with_a_lone_surrogate_is_a_422_not_a_500(
    cast: Cast, path: str, body: dict[str, str]
) -> None:
    # was: 500 on all four (the address met UTF-8 in Redis or PostgreSQL, after validation had passed it)
    raw = json.dumps(body).replace(f'"{BAD}"', SURROGATE).encode()
    resp = await cast.http.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert [e["field"] for e in assert_problem(resp, 422)["errors"]] == ["email"]


async def test_a_refused_text_changes_nothing(cast: Cast) -> None:
    shopper = await register(cast.http, "sec-text")
    raw = b'{"name": "Ada", "phone": "0\\udfff"}'
    resp = await cast.http.put(
        "/users/me", content=raw, headers={**shopper.auth, "Content-Type": "application/json"}
    )
    assert [e["field"] for e in assert_problem(resp, 422)["errors"]] == ["phone"]
    me = (await cast.http.get("/users/me", headers=shopper.auth)).json()
    assert me["name"] == "Sec sec-text" and me["phone"] is None
    # and a path that is not UTF-8 is refused as such, not looked up as something else
    assert [e["field"] for e in assert_problem(await cast.http.get("/products/%FFlamp"), 422)["errors"]] == [
        "path"
    ]


async def test_an_admin_socket_command_with_invalid_text_is_refused_with_a_422(
    stack: Stack | ExternalStack, cast: Cast
) -> None:
    # was: no acknowledgement at all (relaying the payload to the catalog failed to encode it)
    box = await cast.sandbox()
    sku = f"SEC-TXT-{uuid.uuid4().hex[:8]}"
    payload = {
        "name": "Sec text lamp",
        "price": 1200,
        "sku": sku,
        "category_id": box.category["id"],
        "attributes": {"colour": "b\ud800"},
    }
    console = await Listener(stack.gateway, cast.admin.token).connect()
    try:
        ack = await console.command("product:add", payload, timeout=5)
        assert ack["ok"] is False and ack["error"]["status"] == 422, ack
        assert [e["field"] for e in ack["error"]["errors"]] == ["attributes.colour"], ack
        retry = await console.command("product:add", {**payload, "request_id": "r\udc80"}, timeout=5)
        assert [e["field"] for e in retry["error"]["errors"]] == ["attributes.colour", "request_id"], retry
    finally:
        await console.close()
    listed = (await cast.http.get("/products", params={"category": box.category["id"]})).json()
    assert all(p["sku"] != sku for p in listed["items"])


async def test_a_socket_token_with_invalid_text_is_refused_as_a_bad_token(
    stack: Stack | ExternalStack, cast: Cast
) -> None:
    # was: UnicodeEncodeError inside the token check (at connect: no answer; auth:refresh: no acknowledgement)
    guest = socketio.AsyncClient(reconnection=False)
    refusals: list[Any] = []
    guest.on("connect_error", refusals.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await guest.connect(
            stack.gateway,
            auth={"token": "ey\ud800.x.y"},
            transports=["websocket"],
            socketio_path="socket.io",
            wait_timeout=10,
        )
    assert len(refusals) == 1 and "malformed" in str(refusals[0]), refusals
    listener = await Listener(stack.gateway, cast.user.token).connect()
    try:
        ack = await listener.command("auth:refresh", {"token": "ey\udfff.x.y"}, timeout=5)
    finally:
        await listener.close()
    assert ack["ok"] is False and ack["error"]["status"] == 401, ack
