"""Token-bucket rate limiting in Redis, spent through small local leases.

The bucket lives in Redis, so every gateway replica draws on the same one. Asking Redis on
every request was a round trip per request (about a tenth of the gateway's CPU on a cached
read), so a replica takes a *lease* of a few tokens at once (a tenth of the burst, at most
``MAX_LEASE``) and spends them locally; only when they run out does it ask again. Every
request let through still spent a token taken from the shared bucket, so N replicas
together never let a caller past its rate and burst. What a lease changes is on the safe
side: tokens one replica holds cannot be spent at another, so a caller spread over
replicas may be refused up to ``lease - 1`` tokens per replica early. A lease lasts
``LEASE_SECONDS``; what is left of it when the caller comes back later is handed back to
the bucket in that same call, and a lease never reclaimed is refilled by the bucket anyway.
A caller's requests arriving while its lease is being taken wait for that one call and
draw on it (or are refused with it) rather than each asking Redis.
A bucket of burst < 20 is asked on every request, as before.

Redis down fails open: a lost rate-limit counter costs less than refusing every
customer. (Token revocation, by contrast, fails closed: TokenVerifier answers 503.)
After a failure the limiter stays off for a moment so a dead Redis is not asked per request.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from libs.common.logging import get_logger
from libs.common.unavailable import REDIS, describe, outages

log = get_logger(__name__)

# Redis' own clock, so several gateway instances share one notion of time.
# ARGV: rate, burst, tokens wanted, unspent tokens of an old lease handed back.
# Returns the tokens granted (1 to wanted) or, when not even one is there, minus the
# milliseconds until one is back.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local back = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + back + math.max(0, now - ts) * rate / 1000)
local granted = math.min(want, math.floor(tokens))
if granted < 1 then
  if back > 0 then
    redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
  end
  return -math.max(1, math.ceil((1 - tokens) * 1000 / rate))
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - granted), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return granted
"""
MAX_LEASE = 50
LEASE_SECONDS = 2.0
MAX_LEASES = 50_000  # callers held at once; past this the expired ones are dropped


def lease_size(burst: int) -> int:
    """Tokens taken from Redis at once for a bucket of this burst (1: every request asks)."""
    return max(1, min(MAX_LEASE, burst // 10))


@dataclass
class _Lease:
    tokens: int
    until: float


class RateLimiter:
    """Answers "may this caller make one more request in this group?"."""

    def __init__(self, redis: Redis, prefix: str, *, pause_after_failure: float = 2.0) -> None:
        self.redis = redis
        self.prefix = f"{prefix}gw:rl:"
        self._script = redis.register_script(TOKEN_BUCKET)
        self._pause = pause_after_failure
        self._off_until = 0.0
        self._leases: dict[str, _Lease] = {}
        self._taking: dict[str, asyncio.Future[int]] = {}  # callers whose lease is being taken

    async def retry_after(self, bucket: str, caller: str, *, rate: float, burst: int) -> int:
        """0 if the request may pass, else whole seconds to wait (at least 1)."""
        key = f"{self.prefix}{bucket}:{caller}"
        while True:
            now = time.monotonic()
            lease = self._leases.get(key)
            if lease is not None and lease.tokens > 0 and now < lease.until:
                lease.tokens -= 1
                return 0
            if self._off_until and now < self._off_until:
                return 0
            taking = self._taking.get(key)
            if taking is None:
                break
            # one lease at a time per caller: a request arriving while it is being taken waits for it
            # (16 at once each taking a lease would empty the bucket 16 times faster, and each asking
            # Redis would be the round trip per request leases are for); refused with it if it was
            wait = await asyncio.shield(taking)
            if wait:
                return wait
        taken = asyncio.get_running_loop().create_future()
        self._taking[key] = taken
        wait = 0
        try:
            wait = await self._take(key, lease, now, rate=rate, burst=burst)
            return wait
        finally:
            del self._taking[key]
            taken.set_result(wait)

    async def _take(self, key: str, lease: _Lease | None, now: float, *, rate: float, burst: int) -> int:
        """A lease from the bucket, its first token spent on this request: 0, or the seconds to wait."""
        # what is left of an expired lease goes back to the bucket in the same call
        back = lease.tokens if lease is not None and lease.tokens > 0 else 0
        if lease is not None:
            lease.tokens = 0
        try:
            answer = int(await self._script(keys=[key], args=[rate, burst, lease_size(burst), back]))
        except (RedisError, OSError) as exc:
            self._off_until = time.monotonic() + self._pause
            if outages.note(exc, where="rate limiter", probes={REDIS: self.redis.ping}) is None:
                log.error("rate_limit_failed", error=describe(exc), exc_info=exc)  # a bug, still failing open
            return 0
        self._off_until = 0.0
        outages.up(REDIS)
        if answer <= 0:
            return max(1, math.ceil(-answer / 1000))
        if answer > 1:
            self._keep(key, answer - 1, now + LEASE_SECONDS)
        return 0

    def _keep(self, key: str, tokens: int, until: float) -> None:
        lease = self._leases.get(key)
        if lease is not None:
            lease.tokens += tokens
            lease.until = until
            return
        if len(self._leases) >= MAX_LEASES:
            now = time.monotonic()
            self._leases = {k: v for k, v in self._leases.items() if v.until > now and v.tokens > 0}
            if len(self._leases) >= MAX_LEASES:
                return  # the caller's request passes; its remaining tokens are left to refill
        self._leases[key] = _Lease(tokens, until)
