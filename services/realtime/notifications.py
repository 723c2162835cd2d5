"""Domain events turned into Socket.IO notifications, with per-room sequence numbers and replay.

Each room has a counter (``INCR``) and a stream capped at exactly ``replay_buffer`` entries
(``XADD MAXLEN``) whose entry ids are the sequence numbers, written together by one Lua
script so two instances never interleave them.
Only the instance that consumed an event numbers it, and the same script publishes it on
the Socket.IO manager's Redis channel, which every instance (this one included) listens
to: numbering and publishing are one atomic step, so every instance sees a room's
notifications in sequence order even when events are handled concurrently or by several
instances, and every client gets each once however many instances run.

A client that comes back with the last sequence it saw is "held" while its missed
notifications are replayed: live notifications for it are parked by the manager and sent
after the replay, minus those the replay already covered, so it sees each one once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import socketio
from redis.asyncio import Redis

from libs.common.events import Envelope
from libs.common.logging import get_logger
from services.realtime.schemas import NotificationBody, Resync

PUBLIC = "public"
ADMINS = "admins"
NAMESPACE = "/"
log = get_logger(__name__)
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE as a client without decode_responses reads it

# event type -> (socket event, audience: everyone, admins, or admins + the owning user)
ROUTES: dict[str, tuple[str, str]] = {
    "category.created": ("category:added", "public"),
    "category.updated": ("category:updated", "public"),
    "category.deleted": ("category:deleted", "public"),
    "product.created": ("product:added", "public"),
    "product.updated": ("product:updated", "public"),
    "product.deleted": ("product:deleted", "public"),
    "stock.changed": ("stock:updated", "public"),
    "order.created": ("order:created", "admins"),
    "user.registered": ("user:registered", "admins"),
    "order.status_changed": ("order:statusUpdated", "owner"),
    "payment.succeeded": ("payment:succeeded", "owner"),
    "payment.failed": ("payment:failed", "owner"),
    "payment.refunded": ("payment:refunded", "owner"),
}

# seq and stream entry in one step: entry id "<seq>-0", so the stream is ordered by seq;
# exact trimming (not ~) so "the last N" is a promise a client can rely on
# and the manager message published in the same step, its payload completed with the seq
_NUMBER_STORE_PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], seq .. '-0', 'event', ARGV[2], 'payload', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5] .. seq .. ARGV[6])
return seq
"""
# no instance has this host id, so every instance, the publishing one too, delivers the message
_PUBLISHER_HOST_ID = "realtime-notifier"


def manager_message(name: str, room: str, base: dict[str, Any]) -> tuple[bytes, bytes]:
    """A python-socketio manager ``emit`` message split where the payload's seq goes."""
    message = orjson.dumps({"method": "emit", "event": name, "binary": False, "namespace": NAMESPACE,
                            "room": room, "skip_sid": None, "callback": None, "host_id": _PUBLISHER_HOST_ID,
                            "data": [base]})
    assert message.endswith(b"}]}") and base, "the payload is the message's last, non-empty member"
    return message[:-3] + b',"seq":', b"}]}"


def user_room(user_id: object) -> str:
    return f"user:{user_id}"


def rooms_for(envelope: Envelope) -> tuple[str, list[str]] | None:
    """The socket event and rooms of a domain event (None: nobody is told)."""
    route = ROUTES.get(envelope.type)
    if route is None:
        return None
    name, audience = route
    if audience == "public":
        return name, [PUBLIC]
    if audience == "admins":
        return name, [ADMINS]
    owner = envelope.data.get("user_id")
    return name, [ADMINS, user_room(owner)] if owner else [ADMINS]


def _is_notification(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("seq"), int) and isinstance(data.get("room"), str)


class ReplayingRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """The Redis client manager, able to park a connection's live notifications during its replay."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._held: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """python-socketio's listener, retrying every second instead of backing off to a minute.

        Notifications published while this instance is not subscribed reach its clients only
        by a replay, so after a Redis outage it should listen again as soon as Redis answers.
        """
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                async for message in self.pubsub.listen():
                    yield message
            except Exception as exc:
                log.warning("socketio_redis_listen_failed", error=type(exc).__name__)
                await asyncio.sleep(1)

    def hold(self, sid: str) -> None:
        self._held.setdefault(sid, [])

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        room, data = message.get("room"), message.get("data")
        payload = data[0] if isinstance(data, list) and len(data) == 1 else data
        if self._held and room is not None and _is_notification(payload):
            namespace = message.get("namespace") or NAMESPACE
            parked = [sid for sid, _ in self.get_participants(namespace, room) if sid in self._held]
            if parked:
                for sid in parked:
                    self._held[sid].append((str(message["event"]), cast(dict[str, Any], payload)))
                skip = message.get("skip_sid")
                skip = list(skip) if isinstance(skip, list) else ([skip] if skip else [])
                message = {**message, "skip_sid": skip + parked}
        await super()._handle_emit(message)

    async def send_local(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """Emit to one connection of this instance, bypassing the queue and the hold."""
        await self.emit(event, payload, namespace=NAMESPACE, room=sid, ignore_queue=True)

    async def release(self, sid: str, replayed_up_to: dict[str, int]) -> None:
        """Send what was parked for ``sid`` (after what the replay covered), then stop holding it."""
        while (parked := self._held.get(sid)):
            self._held[sid] = []
            for event, payload in parked:
                if payload["seq"] > replayed_up_to.get(payload["room"], 0):
                    await self.send_local(sid, event, payload)
        # no await between the emptiness check and the removal: nothing parked can be lost
        self._held.pop(sid, None)

    def forget(self, sid: str) -> None:
        self._held.pop(sid, None)


class Notifier:
    """Numbers, buffers and emits notifications; answers replays."""

    def __init__(self, sio: socketio.AsyncServer, redis: Redis, prefix: str, buffer: int,
                 dedupe_ttl: int = 86400) -> None:
        self.sio = sio
        self.redis = redis
        self.prefix = prefix
        self.buffer = buffer
        self.dedupe_ttl = dedupe_ttl
        self._store = redis.register_script(_NUMBER_STORE_PUBLISH)

    def _key(self, *parts: str) -> str:
        return self.prefix + "realtime:" + ":".join(parts)

    async def handle(self, envelope: Envelope) -> None:
        """Emit an event once, however often the broker delivers it (event ids kept a day in Redis)."""
        target = rooms_for(envelope)
        if target is None:
            return
        seen = self._key("seen", str(envelope.id))
        if not await self.redis.set(seen, "1", nx=True, ex=self.dedupe_ttl):
            return
        name, rooms = target
        try:
            for room in rooms:
                base = NotificationBody(event_id=envelope.id, type=envelope.type, room=room,
                                        occurred_at=envelope.occurred_at, data=envelope.data).model_dump(mode="json")
                head, tail = manager_message(name, room, base)
                await self._store(keys=[self._key("seq", room), self._key("stream", room)],
                                  args=[self.buffer, name, orjson.dumps(base), self.sio.manager.channel, head, tail])
        except BaseException:
            # let the broker's redelivery try again rather than lose the notification
            await asyncio.shield(self.redis.delete(seen))
            raise

    async def replay(self, sid: str, room: str, last_seq: int) -> int:
        """Send ``sid`` what ``room`` had after ``last_seq`` (or ``resync``); returns the last seq covered."""
        manager: ReplayingRedisManager = self.sio.manager
        stream = self._key("stream", room)
        current = int(await self.redis.get(self._key("seq", room)) or 0)
        if last_seq >= current:
            if last_seq > current:  # the client saw numbers this deployment no longer has
                await manager.send_local(sid, "resync", Resync(room=room, last_seq=current).model_dump(
                    exclude_none=True))
            return current
        oldest = cast(StreamEntries, await self.redis.xrange(stream, count=1))
        oldest_seq = _seq_of(oldest[0][0]) if oldest else current + 1
        if last_seq + 1 < oldest_seq:
            await manager.send_local(sid, "resync", Resync(room=room, oldest_seq=oldest_seq,
                                                           last_seq=current).model_dump(exclude_none=True))
            return current
        covered = last_seq
        missed = cast(StreamEntries, await self.redis.xrange(stream, min=f"{last_seq + 1}-0", count=self.buffer))
        for entry_id, fields in missed:
            seq = _seq_of(entry_id)
            await manager.send_local(sid, fields[b"event"].decode(), {**orjson.loads(fields[b"payload"]), "seq": seq})
            covered = seq
        return covered


def _seq_of(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0])
