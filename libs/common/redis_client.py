"""The Redis client every part uses: a pool that waits for a free connection rather than failing.

redis-py's async pool refuses a command outright ("Too many connections") once its cap of
connections is in use. Every signed-in request reads a revocation mark and the gateway
counts every request in a bucket, so a burst of a few hundred concurrent requests turned
into 503s (and into unlimited requests where the limiter fails open). A blocking pool
queues those commands for a moment instead, up to the same timeout as a slow server.

A pooled connection that died while Redis was away fails its first command once Redis is
back; one immediate retry on a fresh connection keeps that from reaching a caller as a 503.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def make_redis(url: str, *, timeout: float = 3.0, max_connections: int = 64) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )
    return Redis.from_pool(pool)
