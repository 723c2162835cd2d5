"""Small assertions and waits that read like the behaviour under test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from libs.common.errors import PROBLEM_BASE, PROBLEM_TYPES
from libs.common.events import DeadLetter, EventBus

T = TypeVar("T")


def assert_problem(resp: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``, a registered ``type`` (the slug ``type_``
    when given) and no internals; returns its body."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text}"
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers["content-type"]
    body = resp.json()
    assert body["status"] == status and body["title"] and "detail" in body, body
    slug = str(body.get("type", "")).removeprefix(PROBLEM_BASE)
    assert body.get("type") == PROBLEM_BASE + slug and slug in PROBLEM_TYPES, body
    assert type_ is None or slug == type_, (type_, body)
    text = resp.text.lower()
    assert "traceback" not in text and "sqlalchemy" not in text and "asyncpg" not in text, body
    return body


async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05
) -> T:
    """Retry ``check`` until it stops raising AssertionError (or returns truthy); bounded."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result is None or result:
                return result
            raise AssertionError(f"condition still false: {result!r}")
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


async def dead_lettered(
    bus: EventBus, consumer: str, event_id: object, *, timeout: float = 10.0
) -> DeadLetter:
    """Wait until the event sits in ``consumer``'s dead-letter queue; returns it (``error`` says why)."""

    async def parked() -> DeadLetter:
        found = [d for d in await bus.dead_letters(consumer) if d.message_id == str(event_id)]
        assert found, f"event {event_id} is not in {consumer}'s dead-letter queue"
        return found[0]

    return await eventually(parked, timeout=timeout, interval=0.2)
