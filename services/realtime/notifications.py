"""Domain events turned into Socket.IO notifications, with per-room sequence numbers and replay.

Storing: one Lua script marks the event seen, numbers it in each of its rooms (``INCR``),
appends it to the room's stream (capped at exactly ``replay_buffer``, entry id = seq, for
replays) and to the feed every instance reads. One atomic step, so a process killed
half-way cannot leave an event marked seen but never stored, two instances never
interleave a room's numbers, and the feed holds every room's notifications in sequence
order.

Delivering: each instance reads the feed (``XREAD``, a plain Redis stream) and emits to its
own connections with python-socketio's public ``emit``; rooms are therefore shared between
instances through the feed, not through python-socketio's message-queue manager, whose
internals we would otherwise have to override. A reader that lost Redis for a moment
continues from the last entry it read, so nothing published meanwhile is skipped.

Redis may come back empty (a restart without persistence). Two things keep clients right:
a missing room counter restarts from the current time in milliseconds, not from 1, so a
room's numbers never go backwards; and an ``epoch`` key, which vanishes with the data, tells
every reader that what it had not read yet may be gone, so it sends ``resync`` for every
room of every connection it holds.

A client that comes back with the last number it saw is "held" while its missed
notifications are replayed: live notifications for it are parked and sent after the
replay, minus those the replay already covered, so it sees each one once, in order. A gap
is replayed once per room and connection and at most ``replay_limit`` notifications; a
larger one gets ``resync``.

Reading: an event's data is parsed into its producer's model (``libs.contracts.parse``, the
one rule every consumer follows) before anything is stored, so data that does not parse, or
an event no part declares, is dead-lettered with the reason and reaches no socket. What is
relayed is that model as the producer serialises it (the shape AsyncAPI documents): a field
this build does not know yet is left out, and lax input (``"2"`` for an int) goes out typed.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import orjson
import socketio
from pydantic import BaseModel
from redis.asyncio import Redis

from libs import contracts
from libs.common import tracing
from libs.common.errors import ServiceUnavailable
from libs.common.events import Envelope
from libs.common.logging import get_logger
from libs.common.unavailable import REDIS, outages
from libs.contracts.catalog import ProductPublic, StockChanged
from services.realtime.schemas import NotificationBody, Resync

PUBLIC = "public"
ADMINS = "admins"
NAMESPACE = "/"
log = get_logger(__name__)
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]  # XRANGE as a client without decode_responses reads it

# event type -> (socket event, audience: everyone, admins, or admins + the owning user);
# every event realtime's queue is bound to and some part declares has a route (a test says so)
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
    "order.fulfilled": ("order:fulfilled", "owner"),
    # a return's every step, to the admins and the customer (DESIGN: return:updated)
    **{
        f"return.{s}": ("return:updated", "owner")
        for s in ("requested", "approved", "rejected", "received", "refunded")
    },
    "payment.succeeded": ("payment:succeeded", "owner"),
    "payment.failed": ("payment:failed", "owner"),
    "payment.refunded": ("payment:refunded", "owner"),
    # what admins change in pricing, and each use of a promotion, reach the console live
    "promotion.created": ("promotion:added", "admins"),
    "promotion.updated": ("promotion:updated", "admins"),
    "promotion.deleted": ("promotion:deleted", "admins"),
    "promotion.claimed": ("promotion:claimed", "admins"),
    "promotion.released": ("promotion:released", "admins"),
    "shipping.zone_created": ("shippingZone:added", "admins"),
    "shipping.zone_updated": ("shippingZone:updated", "admins"),
    "shipping.zone_deleted": ("shippingZone:deleted", "admins"),
    "tax.rate_created": ("taxRate:added", "admins"),
    "tax.rate_updated": ("taxRate:updated", "admins"),
    "tax.rate_deleted": ("taxRate:deleted", "admins"),
    # the low-stock threshold every admin's dashboard lists by
    "settings.stock_updated": ("settings:stockUpdated", "admins"),
    # an integrator's endpoint failed too often and was turned off (notifications' webhooks)
    "webhook.disabled": ("webhook:disabled", "admins"),
}

# KEYS: seen, epoch, feed, then (seq, stream) per room; ARGV: dedupe ttl, buffer, feed length,
# a fresh epoch, the socket event, the event's W3C traceparent ('' when not tracing), then
# (room, payload) per room. Returns the seqs ({} if seen).
# Redis does not undo a script's writes when a later command in it fails, so the event is
# marked seen last: a failure half-way means a redelivery stores it again, never that it is lost.
# Exact trimming of a room's stream (not ~): "the last N" is a promise a client can rely on.
_STORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {} end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[4]) end
local seqs = {}
for i = 1, (#KEYS - 3) / 2 do
  local counter, stream = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  local room, payload = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('EXISTS', counter) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', counter, now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
  end
  local seq = redis.call('INCR', counter)
  redis.call('XADD', stream, 'MAXLEN', ARGV[2], seq .. '-0', 'event', ARGV[5], 'payload', payload)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'room', room, 'seq', seq, 'event', ARGV[5],
             'payload', payload, 'trace', ARGV[6])
  seqs[i] = seq
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return seqs
"""
# KEYS: room counters. Starts a missing one as _STORE would (at the current time in ms), so a room
# nothing was numbered in yet has a head a joining client can resume from; returns every head.
_HEADS = """
for _, counter in ipairs(KEYS) do
  if redis.call('EXISTS', counter) == 0 then
    local now = redis.call('TIME')
    redis.call('SET', counter, now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)))
  end
end
return redis.call('MGET', unpack(KEYS))
"""
# KEYS: the visibility hash; ARGV: product id, version, "1" visible / "0" hidden. Keeps the newest;
# returns what was known before ("<version>:<0|1>", or false).
_SEEN_VISIBILITY = """
local known = redis.call('HGET', KEYS[1], ARGV[1])
if known then
  local version = tonumber(string.match(known, '^(%d+)'))
  if version and version > tonumber(ARGV[2]) then return known end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return known
"""


def user_room(user_id: object) -> str:
    return f"user:{user_id}"


def _visible(product: dict[str, Any]) -> bool:
    """Whether guests may see a product catalog's REST answered with (its rule: active and not deleted)."""
    return product.get("is_active") is True


@dataclass
class _Connection:
    """What this instance knows of one of its connections."""

    joined_at: dict[str, int] = field(default_factory=dict)  # room -> its seq when the connection joined
    replayed: set[str] = field(default_factory=set)  # rooms whose gap was already replayed
    parked: list[tuple[str, dict[str, Any]]] | None = None  # live notifications held during a replay


class Notifier:
    """Numbers and stores notifications, delivers the feed to this instance's connections, answers replays."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        redis: Redis,
        prefix: str,
        buffer: int,
        *,
        replay_limit: int = 500,
        feed_length: int = 10000,
        dedupe_ttl: int = 86400,
        http: httpx.AsyncClient | None = None,
        catalog_url: str = "",
    ) -> None:
        self.sio = sio
        self.redis = redis
        self.prefix = prefix
        self.buffer = buffer
        self.replay_limit = replay_limit
        self.feed_length = feed_length
        self.dedupe_ttl = dedupe_ttl
        self.http = http
        self.catalog_url = catalog_url
        self.connections: dict[str, _Connection] = {}
        self.holding: set[str] = set()  # connections whose live notifications are parked (a replay runs)
        self._store = redis.register_script(_STORE)
        self._heads = redis.register_script(_HEADS)
        self._remember_visibility = redis.register_script(_SEEN_VISIBILITY)

    def _key(self, *parts: str) -> str:
        return self.prefix + "realtime:" + ":".join(parts)

    # --- storing ---------------------------------------------------------------------------

    async def handle(self, envelope: Envelope) -> None:
        """Store an event's notification once, however often the broker delivers it (ids kept a day).

        ``PoisonMessage`` (the bus dead-letters it) before anything is stored or marked seen if
        the data is not what its producer publishes, or no part declares the event.
        """
        data = contracts.parse(envelope)
        target = await self._target(envelope.type, data)
        if target is None:
            return
        name, rooms, redacted = target
        published = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
        keys = [self._key("seen", str(envelope.id)), self._key("epoch"), self._key("feed")]
        # the consumer span's context, so the emit from the feed (maybe by another instance) joins the trace
        traceparent = tracing.current_headers().get("traceparent", "") if tracing.enabled() else ""
        args: list[Any] = [
            self.dedupe_ttl,
            self.buffer,
            self.feed_length,
            uuid.uuid4().hex,
            name,
            traceparent,
        ]
        for room in rooms:
            body = NotificationBody(
                event_id=envelope.id,
                type=envelope.type,
                room=room,
                occurred_at=envelope.occurred_at,
                data=redacted.get(room, published),
            )
            keys += [self._key("seq", room), self._key("stream", room)]
            args += [room, orjson.dumps(body.model_dump(mode="json"))]
        await self._store(keys=keys, args=args)

    async def _target(
        self, type_: str, data: BaseModel
    ) -> tuple[str, list[str], dict[str, dict[str, Any]]] | None:
        """The socket event and rooms of a domain event (None: nobody is told), and any room's redacted data."""
        route = ROUTES.get(type_)
        if route is None:
            return None
        name, audience = route
        if isinstance(data, ProductPublic):
            return await self._product_target(name, data)
        if isinstance(data, StockChanged):
            # guests hear only what REST shows them; admins hear everything
            return name, [PUBLIC] if await self._stock_public(data) else [ADMINS], {}
        if audience == "public":
            return name, [PUBLIC], {}
        if audience == "admins":
            return name, [ADMINS], {}
        owner = getattr(data, "user_id", None)  # every owner-routed model has one (a test says so)
        return name, [ADMINS, user_room(owner)] if owner else [ADMINS], {}

    async def _product_target(
        self, name: str, product: ProductPublic
    ) -> tuple[str, list[str], dict[str, dict[str, Any]]]:
        """Public while the product is; when guests saw it and it stops being, they learn only that it went.

        Visible is REST's rule (active, not deleted), except that the deletion of a product
        guests saw is news to them too.
        """
        version, visible = product.version, product.is_active
        # a deleted product's stock is nobody's business but the admins'
        shown = visible and not product.deleted
        before: bytes | None = await self._remember_visibility(
            keys=[self._key("visible")], args=[str(product.id), version, "1" if shown else "0"]
        )
        if visible:
            return name, [PUBLIC], {}
        known_version, _, was_shown = (before or b"0:0").partition(b":")
        if was_shown == b"1" and int(known_version) < version:
            # admins first: a console that hears both copies keeps the first (they share the event id)
            gone = {"id": str(product.id), "is_active": False, "version": version}
            return name, [ADMINS, PUBLIC], {PUBLIC: gone}
        return name, [ADMINS], {}

    async def _stock_public(self, stock: StockChanged) -> bool:
        product_id = str(stock.product_id)
        known = await self.redis.hget(self._key("visible"), product_id)
        if known is None:
            return await self._ask_catalog(product_id)
        return cast(bytes, known).endswith(b":1")

    async def _ask_catalog(self, product_id: str) -> bool:
        """Whether the public catalog shows the product; an unreachable catalog makes the event wait."""
        if self.http is None or not self.catalog_url:
            return False
        try:
            resp = await self.http.get(f"{self.catalog_url}/products/{product_id}", timeout=5)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable("The catalog could not say whether the product is public.") from exc
        if resp.status_code >= 500:
            raise ServiceUnavailable("The catalog could not say whether the product is public.")
        if resp.status_code != 200:
            return False
        product = resp.json()
        visible = _visible(product)
        if isinstance(product.get("version"), int):
            await self._remember_visibility(
                keys=[self._key("visible")], args=[product_id, product["version"], "1" if visible else "0"]
            )
        return visible

    # --- delivering --------------------------------------------------------------------------

    async def _epoch_and_oldest(self) -> tuple[bytes, bytes | None]:
        """Redis's epoch (set if missing) and the feed's oldest entry id, in one round trip."""
        key = self._key("epoch")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, uuid.uuid4().hex, nx=True)
            pipe.get(key)
            pipe.xrange(self._key("feed"), count=1)
            _, epoch, oldest = await pipe.execute()
        return cast(bytes, epoch or b""), oldest[0][0] if oldest else None

    async def deliver(self, *, block_ms: int = 1000) -> None:
        """Read the feed for ever and emit each notification to this instance's connections.

        After a Redis error it tries again at once (then within at most half a second), and
        continues from the last entry it read.
        """
        last_id: bytes | None = None
        epoch: bytes | None = None
        pause = 0.0
        while True:
            try:
                current, oldest = await self._epoch_and_oldest()
                if epoch is not None and current != epoch:
                    log.warning("realtime_redis_lost_its_data")
                    await self._resync_everyone()
                    last_id = b"0-0"  # the feed is a new one: all of it is unread
                elif (
                    last_id not in (None, b"0-0")
                    and oldest is not None
                    and _stream_id(oldest) > _stream_id(last_id)
                ):
                    # this reader fell further behind than the feed keeps: what was trimmed is gone
                    log.warning("realtime_feed_overrun", last_read=last_id, oldest=oldest)
                    await self._resync_everyone()
                    last_id = None
                epoch = current
                if last_id is None:  # start at the end: what came before is the replays' business
                    newest = cast(StreamEntries, await self.redis.xrevrange(self._key("feed"), count=1))
                    last_id = newest[0][0] if newest else b"0-0"
                batches = cast(
                    list[tuple[bytes, StreamEntries]],
                    await self.redis.xread({self._key("feed"): last_id}, count=500, block=block_ms),
                )
                pause = 0.0
                outages.up(REDIS)
                for _stream, entries in batches or []:
                    for entry_id, fields in entries:
                        last_id = entry_id
                        await self._emit_live(fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # an outage is logged once (and its end once); anything else is a bug, logged each time
                if outages.note(exc, where="realtime feed reader", probes={REDIS: self.redis.ping}) is None:
                    log.exception("realtime_feed_read_failed")
                await asyncio.sleep(pause)
                pause = min(0.5, pause * 2 or 0.05)

    async def _emit_live(self, fields: dict[bytes, bytes]) -> None:
        room = fields[b"room"].decode()
        event = fields[b"event"].decode()
        payload = {**orjson.loads(fields[b"payload"]), "seq": int(fields[b"seq"])}
        held = [sid for sid in self.holding if room in self.sio.rooms(sid, NAMESPACE)]
        for sid in held:
            cast(list[tuple[str, dict[str, Any]]], self.connections[sid].parked).append((event, payload))
        if tracing.enabled():
            traceparent = fields.get(b"trace", b"").decode()
            with tracing.emitting(event, room, traceparent, part="realtime"):
                await self.sio.emit(event, payload, room=room, skip_sid=held or None, namespace=NAMESPACE)
        else:
            await self.sio.emit(event, payload, room=room, skip_sid=held or None, namespace=NAMESPACE)

    async def _resync_everyone(self) -> None:
        """Redis lost what this instance had not read yet: every connection must refetch each of its rooms."""
        for sid in list(self.connections):
            for room in self.sio.rooms(sid, NAMESPACE):
                if room != sid:
                    await self.sio.emit(
                        "resync", Resync(room=room).model_dump(exclude_none=True), to=sid, namespace=NAMESPACE
                    )

    # --- connections and replays -------------------------------------------------------------

    def connected(self, sid: str, *, hold: bool) -> None:
        self.connections[sid] = _Connection()
        if hold:
            self.hold(sid)

    def disconnected(self, sid: str) -> None:
        self.connections.pop(sid, None)
        self.holding.discard(sid)

    async def joined(self, sid: str, rooms: list[str]) -> None:
        """Note where each room's sequence stood when ``sid`` joined it: a later resume replays up to there."""
        conn = self.connections.get(sid)
        if conn is None or not rooms:
            return
        try:
            heads = await self._heads(keys=[self._key("seq", room) for room in rooms])
        except Exception as exc:  # Redis away: a guest still connects; a later resume may repeat some
            if outages.note(exc, where="realtime join") is None:
                raise
            return
        for room, head in zip(rooms, heads, strict=True):
            conn.joined_at[room] = int(head or 0)

    def joined_heads(self, sid: str, rooms: list[str]) -> dict[str, int]:
        """The numbers ``rooms`` stood at when ``sid`` joined them (those that could be read)."""
        conn = self.connections.get(sid)
        if conn is None:
            return {}
        return {room: conn.joined_at[room] for room in rooms if room in conn.joined_at}

    def hold(self, sid: str) -> None:
        conn = self.connections.get(sid)
        if conn is not None and conn.parked is None:
            conn.parked = []
            self.holding.add(sid)

    async def release(self, sid: str, replayed_up_to: dict[str, int]) -> None:
        """Send what was parked for ``sid`` (after what the replay covered), then stop holding it."""
        conn = self.connections.get(sid)
        while conn is not None and conn.parked:
            parked, conn.parked = conn.parked, []
            for event, payload in parked:
                if payload["seq"] > replayed_up_to.get(payload["room"], 0):
                    await self.sio.emit(event, payload, to=sid, namespace=NAMESPACE)
        # no await between the emptiness check and this: nothing parked can be lost
        if conn is not None:
            conn.parked = None
        self.holding.discard(sid)

    async def replay_gaps(self, sid: str, last_seq: dict[str, Any], *, on_connect: bool) -> dict[str, int]:
        """Replay each of ``sid``'s rooms after the number given, once per room; returns the seqs covered."""
        conn = self.connections.get(sid)
        covered: dict[str, int] = {}
        if conn is None:
            return covered
        joined = set(self.sio.rooms(sid, NAMESPACE))
        for room, seq in last_seq.items():
            if room not in joined or room in conn.replayed or room == sid:
                continue
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                continue
            conn.replayed.add(room)
            # on an open connection everything after joining was sent live: replay only what came before
            up_to = None if on_connect else conn.joined_at.get(room)
            covered[room] = await self.replay(sid, room, seq, up_to=up_to)
        return covered

    async def replay(self, sid: str, room: str, last_seq: int, *, up_to: int | None = None) -> int:
        """Send ``sid`` what ``room`` had after ``last_seq`` (or ``resync``); returns the last seq covered."""
        current = int(await self.redis.get(self._key("seq", room)) or 0)
        end = current if up_to is None else min(up_to, current)
        if last_seq >= end:
            if last_seq > current:  # the client saw numbers this deployment no longer has
                await self._resync(sid, room, last_seq=current)
            return end
        stream = self._key("stream", room)
        oldest = cast(StreamEntries, await self.redis.xrange(stream, count=1))
        oldest_seq = _seq_of(oldest[0][0]) if oldest else current + 1
        if last_seq + 1 < oldest_seq or end - last_seq > self.replay_limit:
            await self._resync(sid, room, last_seq=current, oldest_seq=oldest_seq)
            return end
        covered = last_seq
        missed = cast(
            StreamEntries,
            await self.redis.xrange(stream, min=f"{last_seq + 1}-0", max=f"{end}-0", count=self.replay_limit),
        )
        for entry_id, fields in missed:
            seq = _seq_of(entry_id)
            await self.sio.emit(
                fields[b"event"].decode(),
                {**orjson.loads(fields[b"payload"]), "seq": seq},
                to=sid,
                namespace=NAMESPACE,
            )
            covered = seq
        return covered

    async def _resync(self, sid: str, room: str, **numbers: int) -> None:
        await self.sio.emit(
            "resync", Resync(room=room, **numbers).model_dump(exclude_none=True), to=sid, namespace=NAMESPACE
        )


def _stream_id(entry_id: bytes) -> tuple[int, int]:
    ms, _, n = entry_id.partition(b"-")
    return int(ms), int(n or 0)


def _seq_of(entry_id: bytes | str) -> int:
    raw = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(raw.split("-", 1)[0])
