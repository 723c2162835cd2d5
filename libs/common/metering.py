"""Messages a client may send over a long-lived connection: token buckets per connection and per owner.

A rate limit per HTTP request does not see what travels inside a websocket: one
connection can carry thousands of messages a second, each costing the server a handler
run. The realtime service meters each Socket.IO connection and each signed-in user; the
gateway's relay meters each websocket and each client address. The buckets live in the
process's memory: a connection is served by one process for its whole life, and an owner
with connections on several processes gets each one's allowance, which is still bounded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``rate`` messages a second sustained, bursts of ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def rested(self) -> bool:
        """Whether the bucket is full again (forgetting it changes nothing)."""
        return self.tokens < 0 or self.tokens + (time.monotonic() - self.stamp) * self.rate >= self.burst

    def take(self) -> bool:
        now = time.monotonic()
        if self.tokens < 0:
            self.tokens = self.burst
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class MessageMeter:
    """One bucket per connection, and one per owner (a user, an address) shared by its connections here.

    ``owner_limits`` names the kinds of owner and their (rate, burst); a message must find a
    token in the connection's bucket and in the bucket of every owner it is attributed to.
    """

    def __init__(self, *, rate: float, burst: int, owner_limits: Mapping[str, tuple[float, int]]) -> None:
        self.rate, self.burst = rate, burst
        self.owner_limits = dict(owner_limits)
        self._connections: dict[str, TokenBucket] = {}
        self._owners: dict[tuple[str, str], TokenBucket] = {}
        self._owners_of: dict[str, set[tuple[str, str]]] = {}
        self._connections_of: dict[tuple[str, str], int] = {}
        self.closing: set[str] = set()
        self._pruned_at = time.monotonic()

    def allow(self, connection: str, **owners: str | None) -> bool:
        """Whether ``connection`` may send one more message now; False also for a connection being closed."""
        if connection in self.closing:
            return False
        own = self._connections.setdefault(connection, TokenBucket(self.rate, self.burst))
        held = self._owners_of.setdefault(connection, set())
        allowed = True
        for kind, name in owners.items():
            if name is None:
                continue
            key = (kind, name)
            if key not in held:
                held.add(key)
                self._connections_of[key] = self._connections_of.get(key, 0) + 1
            rate, burst = self.owner_limits[kind]
            allowed = self._owners.setdefault(key, TokenBucket(rate, burst)).take() and allowed
        return own.take() and allowed

    def forget(self, connection: str) -> None:
        self._connections.pop(connection, None)
        self.closing.discard(connection)
        for key in self._owners_of.pop(connection, set()):
            self._connections_of[key] -= 1
            if not self._connections_of[key]:
                del self._connections_of[key]
        self._forget_rested_owners()

    def _forget_rested_owners(self) -> None:
        """Drop the buckets of owners with no connection left once they are full again.

        Not before: an owner that reconnects must not find a fresh allowance.
        """
        now = time.monotonic()
        if now - self._pruned_at < 10:
            return  # now and then, not at every disconnect
        self._pruned_at = now
        for key, bucket in list(self._owners.items()):
            if key not in self._connections_of and bucket.rested():
                del self._owners[key]
