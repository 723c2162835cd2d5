"""A tiny per-process cache of public responses (micro-caching the hottest reads).

Public GETs are already cacheable for ``max-age`` seconds by any HTTP cache, so keeping
their bodies here for a much shorter TTL changes nothing a client can rely on, and takes
the database off the path of the most repeated queries. Every write made through this
process clears it; writes made by another replica show within the TTL.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, NamedTuple


class Cached(NamedTuple):
    body: bytes
    etag: str
    route: Any  # the route that made it (its template labels the metrics of a hit)


class ResponseCache:
    """A public answer by request key, for ``ttl`` seconds, at most ``size`` entries."""

    def __init__(self, *, ttl: float, size: int = 2048) -> None:
        self.ttl = ttl
        self.size = size
        self.generation = 0
        self._items: OrderedDict[str, tuple[float, Cached]] = OrderedDict()
        self._lookups: dict[Any, tuple[float, Any]] = {}

    def get(self, key: str) -> Cached | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self._items.pop(key, None)
            return None
        return hit[1]

    def put(self, key: str, body: bytes, etag: str, *, generation: int, route: Any = None) -> None:
        """Keep a body read while ``generation`` was current; a write since then makes it stale."""
        if self.ttl <= 0 or generation != self.generation:
            return
        self._items[key] = (time.monotonic() + self.ttl, Cached(body, etag, route))
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self.generation += 1
        self._items.clear()
        self._lookups.clear()

    def lookup(self, key: Any) -> Any:
        """A value some read worked out (a category's subtree) and kept like a response: None if not kept."""
        hit = self._lookups.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def keep(self, key: Any, value: Any, *, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        if len(self._lookups) >= self.size:
            self._lookups.clear()
        self._lookups[key] = (time.monotonic() + self.ttl, value)
