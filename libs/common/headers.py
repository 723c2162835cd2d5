"""Header values every part reads the same way: one parser each, so the gateway and the
services cannot disagree about what they accept.
"""

from __future__ import annotations

from collections.abc import Iterable

# what an X-Request-ID may hold: it lands in logs, problem bodies and event correlation ids,
# so nothing that could forge a log line or a header (no spaces, quotes or control characters)
REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")
REQUEST_ID_MAX = 128


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The caller's ``X-Request-ID`` (ASGI raw headers) when it is sane, else ``None`` (make one)."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            rid = value.decode("latin-1")
            if 0 < len(rid) <= REQUEST_ID_MAX and all(c in REQUEST_ID_CHARS for c in rid):
                return rid
    return None


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag``: the weak comparison of RFC 9110 13.1.2
    (``W/`` ignored), ``*`` matching any current representation."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(",") if tag.strip())
