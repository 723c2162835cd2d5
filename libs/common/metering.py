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
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``rate`` messages a second sustained, bursts of ``burst``."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

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
    """One bucket per connection and one per owner (a user, an address), shared by its connections here."""

    def __init__(self, *, rate: float, burst: int, user_rate: float, user_burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.user_rate, self.user_burst = user_rate, user_burst
        self._sockets: dict[str, TokenBucket] = {}
        self._users: dict[str, TokenBucket] = {}
        self._user_of: dict[str, str] = {}
        self._connections_of: dict[str, int] = {}
        self.closing: set[str] = set()

    def allow(self, sid: str, user: str | None) -> bool:  # sid: the connection; user: its owner
        """Whether ``sid`` may send one more message now; False also for a connection being closed."""
        if sid in self.closing:
            return False
        socket = self._sockets.setdefault(sid, TokenBucket(self.rate, self.burst))
        if user is not None:
            if self._user_of.get(sid) != user:
                self._release(sid)
                self._user_of[sid] = user
                self._connections_of[user] = self._connections_of.get(user, 0) + 1
            shared = self._users.setdefault(user, TokenBucket(self.user_rate, self.user_burst))
            if not shared.take():
                return False
        return socket.take()

    def forget(self, sid: str) -> None:
        self._sockets.pop(sid, None)
        self.closing.discard(sid)
        self._release(sid)

    def _release(self, sid: str) -> None:
        user = self._user_of.pop(sid, None)
        if user is not None:
            self._connections_of[user] -= 1
            if not self._connections_of[user]:
                del self._connections_of[user]
                self._users.pop(user, None)
