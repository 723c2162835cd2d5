"""API keys at the edge: traded at auth for a short-lived scoped token, which never leaves the gateway.

A trade is remembered for a minute (well inside the token's life), so an integrator's steady
traffic costs auth one call a minute per gateway process, and ``last_used_at`` stays that fresh.
Each use still checks the token's revocation like any other, so a revoked key stops at once.
A key auth refused is remembered briefly too, and a key not yet traded spends its caller's
address budget before the gateway asks auth, so guessing keys buys an attacker no amplification:
one request, at most one lookup, on the guesser's own rate limit.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TypeVar

import httpx

from libs.common.apikeys import key_hash, visible_prefix
from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import ServiceUnavailable, Unauthorized
from libs.common.http import call
from libs.common.logging import get_logger

log = get_logger(__name__)
REMEMBER = 60.0  # seconds a trade is used before the key is traded again
REFUSED_FOR = 10.0  # seconds a refused key is answered without asking auth again
MAX_REMEMBERED = 10_000
V = TypeVar("V")


@dataclass(frozen=True)
class _Trade:
    token: str
    until: float


class KeyTrader:
    def __init__(self, http: httpx.AsyncClient, auth_url: str, internal_token: str) -> None:
        self.http = http
        self.url = f"{auth_url.rstrip('/')}/internal/api-keys/exchange"
        self.internal_token = internal_token
        self._trades: dict[str, _Trade] = {}
        self._refused: dict[str, float] = {}
        self._inflight: dict[str, asyncio.Future[str]] = {}

    def known(self, key: str) -> bool:
        """Whether the key was traded recently (no call to auth is needed to serve it)."""
        trade = self._trades.get(key_hash(key))
        return trade is not None and trade.until > time.monotonic()

    def forget(self, key: str) -> None:
        self._trades.pop(key_hash(key), None)

    async def token_for(self, key: str) -> str:
        """The token to forward for ``key``; 401 for a key auth does not accept."""
        if visible_prefix(key) is None:
            raise Unauthorized("This is not a valid API key.")
        digest, now = key_hash(key), time.monotonic()
        trade = self._trades.get(digest)
        if trade is not None and trade.until > now:
            return trade.token
        if self._refused.get(digest, 0.0) > now:
            raise Unauthorized("This is not a valid API key.")
        pending = self._inflight.get(digest)
        if pending is not None:  # one trade per key at a time, however many requests wait on it
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            token = await self._trade(key, digest)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            future.exception()  # read: waiters got it; nobody else needs to
            raise
        else:
            future.set_result(token)
            return token
        finally:
            self._inflight.pop(digest, None)

    async def _trade(self, key: str, digest: str) -> str:
        resp = await call(
            self.http,
            "POST",
            self.url,
            service="auth",
            json={"key": key},
            headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            idempotent=True,
        )
        now = time.monotonic()
        if resp.status_code in (401, 422):
            _remember(self._refused, digest, now + REFUSED_FOR)
            detail = _detail(resp) or "This is not a valid API key."
            raise Unauthorized(detail)
        if resp.status_code != 200:
            log.warning("api_key_trade_failed", status=resp.status_code)
            raise ServiceUnavailable("API keys cannot be checked right now; try again shortly.")
        body = resp.json()
        token = str(body["access_token"])
        life = float(body.get("expires_in") or REMEMBER)
        _remember(self._trades, digest, _Trade(token, now + min(REMEMBER, life / 2)))
        self._refused.pop(digest, None)
        return token


def _remember(table: dict[str, V], digest: str, value: V) -> None:
    if len(table) >= MAX_REMEMBERED:
        del table[next(iter(table))]  # the oldest
    table[digest] = value


def _detail(resp: httpx.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    return str(body.get("detail")) if isinstance(body, dict) and body.get("detail") else None
