"""Forwarding one request to an upstream and its answer back, streamed both ways.

Three clients behind one small interface: the gateway's own HTTP/1.1 connections
(gateway/http1.py, the default: the least CPU per request), aiohttp (pooled keep-alive
connections; it carries the bodies a client streams for the default too) and httpx (kept to
measure against: its pool is slow under concurrency, httpx#3215). Each raises :class:`UpstreamUnavailable` or
:class:`UpstreamTimeout` before anything is sent to the client, so the caller can still
answer with a problem; once the upstream's headers are relayed, the body follows as is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import httpx
import yarl
from starlette.types import Receive, Send

# hop-by-hop headers (RFC 9110 section 7.6.1) never cross the gateway; the server answers Expect itself
HOP_BY_HOP = frozenset(
    {
        b"expect",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# identity and forwarding headers the gateway owns: a client must not be able to set them
# (and the W3C trace context: the gateway's own span is the parent upstream, when it traces)
OWNED = frozenset(
    {
        b"x-internal-token",
        b"forwarded",
        b"x-real-ip",
        b"x-request-id",
        b"host",
        b"traceparent",
        b"tracestate",
        b"baggage",
    }
)
# a response this small is read at once and sent in one message: cheaper than streaming it
SMALL_BODY = 256 * 1024


class UpstreamUnavailable(Exception):
    """The upstream could not be reached, or dropped the connection before answering."""


class UpstreamRefused(UpstreamUnavailable):
    """The connection itself failed (refused, or no answer to the connect): nothing was sent."""


class UpstreamTimeout(Exception):
    pass


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


_DROPPED = HOP_BY_HOP | OWNED
_CLIENT_CLAIMS = (b"x-forwarded-", b"x-user-")


def request_headers(raw: list[tuple[bytes, bytes]], extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop and gateway-owned ones, plus the gateway's own."""
    drop = _DROPPED
    for name, value in raw:
        if name == b"connection":  # headers named in Connection are hop-by-hop too
            drop = drop | {v.strip().lower().encode() for v in value.decode("latin-1").split(",")}
    out = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if name not in drop and not name.startswith(_CLIENT_CLAIMS)
    ]
    out.extend(extra)
    return out


# set on every answer by the gateway's own server (and its request-id middleware: the same id the
# upstream saw); passing the upstream's on as well would send each twice
GATEWAY_SETS = frozenset({b"x-request-id", b"date", b"server"})


def response_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower(), value)
        for name, value in raw
        if name.lower() not in HOP_BY_HOP and name.lower() not in GATEWAY_SETS
    ]


class RequestBody:
    """The client's body, read at once when small and declared, else streamed; both bounded."""

    def __init__(self, receive: Receive, *, limit: int, declared: int | None) -> None:
        self.receive = receive
        self.limit = limit
        self.declared = declared
        self.too_large = False
        # the body once read whole: it can be sent again, to another replica
        self.buffered: bytes | None = None

    @property
    def replayable(self) -> bool:
        return self.buffered is not None or (self.declared is not None and self.declared <= SMALL_BODY)

    async def read_small(self) -> bytes:
        if self.buffered is None:
            self.buffered = b"".join([chunk async for chunk in self.stream()])
        return self.buffered

    async def stream(self) -> AsyncIterator[bytes]:
        total = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                # remembered: the client library may wrap the exception raised inside its writer
                self.too_large = True
                raise BodyTooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return


class Forwarder(Protocol):
    async def forward(
        self,
        *,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: RequestBody | None,
        time_limit: float,
        send: Send,
    ) -> None: ...

    async def close(self) -> None: ...


async def _body_payload(body: RequestBody | None) -> bytes | AsyncIterator[bytes] | None:
    if body is None:
        return None
    if body.declared is not None and body.declared <= SMALL_BODY:
        return await body.read_small()
    return body.stream()


class AiohttpForwarder:
    """Pooled keep-alive connections to every upstream, no decompression, no added headers."""

    def __init__(self, *, connect_timeout: float, max_connections: int) -> None:
        self.connect_timeout = connect_timeout
        connector = aiohttp.TCPConnector(
            limit=max_connections, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=60
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            raise_for_status=False,
        )
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        if (t := self._timeouts.get(seconds)) is None:
            t = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=seconds
            )
        return t

    async def forward(
        self,
        *,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: RequestBody | None,
        time_limit: float,
        send: Send,
    ) -> None:
        data = await _body_payload(body)
        try:
            async with asyncio.timeout(time_limit):
                resp = await self.session.request(
                    method,
                    yarl.URL(url, encoded=True),
                    headers=headers,
                    data=data,
                    timeout=self._timeout(time_limit),
                    allow_redirects=False,
                    compress=False,
                )
        except (BodyTooLarge, ClientGone):
            raise
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
            raise UpstreamRefused from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            if body is not None and body.too_large:
                raise BodyTooLarge from exc
            raise UpstreamTimeout from exc
        except (aiohttp.ClientError, OSError) as exc:
            if body is not None and body.too_large:
                raise BodyTooLarge from exc
            raise UpstreamUnavailable from exc
        try:
            if body is not None and body.too_large:
                raise BodyTooLarge
            start = {
                "type": "http.response.start",
                "status": resp.status,
                "headers": response_headers(list(resp.raw_headers)),
            }
            length = resp.content_length
            if method == "HEAD" or (length is not None and length <= SMALL_BODY):
                try:
                    content = await resp.read()
                except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
                    raise UpstreamTimeout from exc
                except aiohttp.ClientError as exc:
                    raise UpstreamUnavailable from exc
                await send(start)
                await send({"type": "http.response.body", "body": content})
                return
            await send(start)
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            resp.release()

    async def close(self) -> None:
        await self.session.close()


class HttpxForwarder:
    """The same with httpx; slower under concurrency, kept for the benchmark's comparison."""

    def __init__(self, *, connect_timeout: float, max_connections: int) -> None:
        self.connect_timeout = connect_timeout
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )

    async def forward(
        self,
        *,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: RequestBody | None,
        time_limit: float,
        send: Send,
    ) -> None:
        data = await _body_payload(body)
        request = self.client.build_request(
            method,
            url,
            headers=headers,
            content=data,
            timeout=httpx.Timeout(time_limit, connect=self.connect_timeout),
        )
        try:
            resp = await self.client.send(request, stream=True)
        except (BodyTooLarge, ClientGone):
            raise
        except (httpx.ConnectTimeout, httpx.ConnectError) as exc:
            raise UpstreamRefused from exc
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout from exc
        except httpx.TransportError as exc:
            if body is not None and body.too_large:
                raise BodyTooLarge from exc
            raise UpstreamUnavailable from exc
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": resp.status_code,
                    "headers": response_headers(resp.headers.raw),
                }
            )
            async for chunk in resp.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await resp.aclose()

    async def close(self) -> None:
        await self.client.aclose()
