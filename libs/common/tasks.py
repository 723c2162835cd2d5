"""Stopping asyncio tasks for certain.

One ``cancel()`` is not always enough on Python 3.11: an ``asyncio.wait_for`` or
``asyncio.timeout`` whose own timeout fires as the cancellation arrives can swallow it,
and a loop around it (an outbox relay polling, a bus worker waiting for messages) goes on
forever while shutdown waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], *, again_after: float = 1.0) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again those that go on."""
    every = list(tasks)
    pending = {t for t in every if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=again_after)
    for (
        task
    ) in every:  # their errors were logged where they happened; retrieved, so asyncio does not repeat them
        if not task.cancelled():
            task.exception()
