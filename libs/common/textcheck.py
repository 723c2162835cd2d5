"""Request bodies are bounded and their text is valid Unicode before any route runs.

Python's JSON parser (the one Starlette uses) accepts a lone UTF-16 surrogate such as
``"\\ud800"``, and pydantic's ``str`` keeps it: the request then fails much later, when
asyncpg, Redis or a hash encodes the text to UTF-8, as a 500. Starlette also decodes a
query string's invalid UTF-8 into U+FFFD without a word, so a client never learns that
what it searched for is not what it sent. One rule here, for every route of every
service: text that is not valid Unicode (a lone surrogate, escaped or encoded, or bytes
that are not UTF-8) in the JSON body, the query string or the path is a 422 naming the
field, before a route, a database or a throttle sees it.

The body is read once, up to ``max_body_bytes`` (the gateway's own cap, so a caller
that reaches a service's port directly gets no more room than through the gateway),
then handed on unchanged: a 413 problem past the cap. A route that takes files (an image
upload) names its own, larger cap in ``larger``, as the gateway's route table does for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.errors import problem_response

# a \uD800-\uDFFF escape: half of a surrogate pair, valid only next to its other half
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_REPORTED = 20
MESSAGE = "is not valid Unicode text (a lone surrogate, or bytes that are not UTF-8)"


# (method, full-path regex, cap in bytes): a route allowed a body other than the service's cap
BodyLimit = tuple[str, re.Pattern[str], int]


class BodyGuard:
    """Refuse a body past ``max_body_bytes`` (413) and invalid text anywhere (422 naming the field)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, larger: Sequence[BodyLimit] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = tuple(larger)

    def limit_for(self, scope: Scope) -> int:
        for method, pattern, limit in self.larger:
            if scope["method"] == method and pattern.fullmatch(scope["path"]):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad = path_fields(scope.get("raw_path")) + query_fields(scope.get("query_string", b""))
        if bad:
            await _refuse_text(bad)(scope, receive, send)
            return
        content_type, declared = _body_headers(scope)
        limit = self.limit_for(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _too_large(limit)(scope, receive, send)
            return
        if body is None:
            return  # the client left before it finished sending: nobody to answer
        if body and (content_type is None or b"json" in content_type):
            bad = json_fields(body)
            if bad:
                await _refuse_text(bad)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)


def _too_large(limit: int) -> Any:
    return problem_response(
        413,
        f"The request body is larger than {limit} bytes; nothing was done.",
        title="Content too large",
        limit=limit,
    )


def json_fields(body: bytes) -> list[str]:
    """Where a JSON body holds invalid text, as dotted field paths (``"body"`` when it cannot tell)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "surrogateescape")  # each stray byte becomes a lone surrogate
    else:
        if not _SURROGATE_ESCAPE.search(body):
            return []  # valid UTF-8 and no escaped surrogate: the common case costs one decode and one scan
    try:
        doc = json.loads(text)
    except ValueError:
        # not JSON: the route's own parser says so, unless the bytes were the trouble
        return ["body"] if _SURROGATE.search(text) else []
    found: list[str] = []
    _walk(doc, (), found)
    return found


def text_fields(value: Any) -> list[str]:
    """Where already-parsed data (e.g. a Socket.IO payload) holds invalid text, as dotted field paths."""
    found: list[str] = []
    _walk(value, (), found)
    return found


def unicode_errors(fields: list[str]) -> list[dict[str, str]]:
    """The ``errors`` of a 422 problem for these fields."""
    return [{"field": f, "message": MESSAGE, "type": "unicode_error"} for f in fields]


def query_fields(query_string: bytes) -> list[str]:
    """The query parameters whose name or value does not decode as UTF-8."""
    if query_string.isascii() and b"%" not in query_string:
        return []
    found = []
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if not (_is_utf8(name) and _is_utf8(value)):
            found.append(_readable(unquote_to_bytes(name.replace(b"+", b" "))) or "query")
    return found[:_MAX_REPORTED]


def path_fields(raw_path: bytes | None) -> list[str]:
    return [] if raw_path is None or _is_utf8(raw_path) else ["path"]


def _is_utf8(encoded: bytes) -> bool:
    if encoded.isascii() and b"%" not in encoded:
        return True
    try:
        unquote_to_bytes(encoded.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _readable(raw: bytes | str) -> str:
    """A field name fit to show: invalid parts as escapes, never as the invalid text itself."""
    text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
    return text.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def _walk(node: Any, path: tuple[str, ...], found: list[str]) -> None:
    if len(found) >= _MAX_REPORTED:
        return
    if isinstance(node, str):
        if _SURROGATE.search(node):
            found.append(".".join(path) or "body")
    elif isinstance(node, dict):
        for key, value in node.items():
            if _SURROGATE.search(key):
                found.append(".".join((*path, _readable(key))))
            else:
                _walk(value, (*path, key), found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, (*path, str(index)), found)


def _refuse_text(fields: list[str]) -> Any:
    return problem_response(
        422,
        f"Text must be valid Unicode: check {', '.join(fields[:5])}.",
        title="Validation failed",
        errors=unicode_errors(fields),
    )


def _body_headers(scope: Scope) -> tuple[bytes | None, int | None]:
    content_type = declared = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.lower()
        elif name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
    return content_type, declared


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body (``_TooLarge`` once it passes ``limit``), or None when the client left."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then whatever comes next (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
