"""Socket.IO long-polling sessions stay with the realtime replica that opened them."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from urllib.parse import parse_qs

from starlette.types import Message, Scope, Send


class SocketSessions:
    """Which realtime replica holds each Socket.IO session that began with long-polling.

    A polling session lives in one realtime process: its later polls, posts and websocket
    upgrade carry its ``sid`` and must reach that process. The gateway learns the ``sid``
    from the handshake's answer and sends what carries it to the same replica; everything
    else (a websocket opened directly, as most clients do) is spread in turn. This lives in
    the gateway's memory: with several gateways, a balancer in front of them needs affinity
    for ``/socket.io/`` long-polling (or clients use the websocket transport only).
    """

    SID = re.compile(rb'"sid"\s*:\s*"([^"]{1,64})"')

    def __init__(self, *, ttl: float = 3600.0, limit: int = 100_000) -> None:
        self.ttl, self.limit = ttl, limit
        self.where: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @staticmethod
    def sid_of(scope: Scope) -> str | None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("sid")
        return values[0] if values else None

    def replica_for(self, scope: Scope, *, exclude: list[str]) -> str | None:
        """The replica holding the session this request names, if known and not just found dead."""
        sid = self.sid_of(scope)
        found = self.where.get(sid) if sid else None
        if found is None or found[1] < time.monotonic() or found[0] in exclude:
            return None
        return found[0]

    def remember(self, sid: str, base: str) -> None:
        self.where[sid] = (base, time.monotonic() + self.ttl)
        self.where.move_to_end(sid)
        while len(self.where) > self.limit:
            self.where.popitem(last=False)

    def learning(self, scope: Scope, base: str, send: Send) -> Send:
        """``send``, noting the ``sid`` a polling handshake's answer (from ``base``) gives out."""
        if (sid := self.sid_of(scope)) is not None:
            if sid in self.where:
                self.remember(sid, self.where[sid][0])  # still in use: keep it
            return send
        ok = False

        async def send_noting_sid(message: Message) -> None:
            nonlocal ok
            if message["type"] == "http.response.start":
                ok = message["status"] == 200
            elif ok and message["type"] == "http.response.body" and (m := self.SID.search(message["body"])):
                self.remember(m.group(1).decode("latin-1"), base)
                ok = False
            await send(message)

        return send_noting_sid
