"""Token-bucket rate limiting in Redis: one Lua call (one round trip) per request.

Redis down fails open: a lost rate-limit counter costs less than refusing every
customer. (Token revocation, by contrast, fails closed: TokenVerifier answers 503.)
After a failure the limiter stays off for a moment so a dead Redis is not asked per request.
"""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from libs.common.logging import get_logger
from libs.common.unavailable import REDIS, describe, outages

log = get_logger(__name__)

# Redis' own clock, so several gateway instances share one notion of time.
# Returns 0 when allowed, else the milliseconds until one token is back.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(v[1]) or burst
local ts = tonumber(v[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
if tokens < 1 then
  return math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return 0
"""


class RateLimiter:
    """Answers "may this caller make one more request in this group?"."""

    def __init__(self, redis: Redis, prefix: str, *, pause_after_failure: float = 2.0) -> None:
        self.redis = redis
        self.prefix = f"{prefix}gw:rl:"
        self._script = redis.register_script(TOKEN_BUCKET)
        self._pause = pause_after_failure
        self._off_until = 0.0

    async def retry_after(self, bucket: str, caller: str, *, rate: float, burst: int) -> int:
        """0 if the request may pass, else whole seconds to wait (at least 1)."""
        if self._off_until and time.monotonic() < self._off_until:
            return 0
        try:
            wait_ms = int(await self._script(keys=[f"{self.prefix}{bucket}:{caller}"], args=[rate, burst]))
        except (RedisError, OSError) as exc:
            self._off_until = time.monotonic() + self._pause
            if outages.note(exc, where="rate limiter", probes={REDIS: self.redis.ping}) is None:
                log.error("rate_limit_failed", error=describe(exc), exc_info=exc)  # a bug, still failing open
            return 0
        self._off_until = 0.0
        outages.up(REDIS)
        return 0 if wait_ms <= 0 else max(1, math.ceil(wait_ms / 1000))
