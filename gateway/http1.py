"""Forwarding over the gateway's own keep-alive HTTP/1.1 connections, answers parsed by httptools.

aiohttp's client was a third of the gateway's CPU on a proxied read (py-spy, bench/cost.py): per
request it builds a request object, a multidict of headers, URL objects, timers and a response
whose body goes through a stream reader. Forwarding needs less: the request written as one
buffer, the answer's status and headers as they arrive, its body handed on. The upstreams are
the shop's own plain-HTTP parts, so that is all this speaks. A body the client streams (no
length, or past ``SMALL_BODY``) still goes through aiohttp, which writes it while it reads the
answer; so does any ``https`` upstream.

The same contract as the other forwarders (gateway/proxy.py): ``UpstreamRefused`` when no
connection could be made, ``UpstreamTimeout`` when the answer does not come within the time
limit, ``UpstreamUnavailable`` when the connection drops before an answer. A kept connection
the upstream closed while idle is retried once on a new one for a safe method (nothing of it
was read, so it was never served).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httptools
from starlette.types import Send

from gateway.proxy import (
    SMALL_BODY,
    AiohttpForwarder,
    RequestBody,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    response_headers,
)

# a kept connection idle longer than this is closed rather than reused: the services' servers
# close theirs after 30 s (libs/common/runner.py), and one closing as it is reused costs a retry
IDLE_SECONDS = 15.0
# an answer's body read ahead of the client by more than this pauses reading from the upstream
READ_AHEAD = 256 * 1024
# methods a request may carry without a body and without saying Content-Length: 0 (as aiohttp)
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an upstream, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.head_only = False
        self._start()

    def _start(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.length: int | None = None
        self.keep_alive = False
        self.until_close = False
        self.headed: asyncio.Future[None] | None = None  # resolved once the answer's headers are in
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.done = False
        self.error: Exception | None = None
        self.received = False
        self.waiter: asyncio.Future[None] | None = None

    def send_request(self, data: bytes, *, head_only: bool) -> asyncio.Future[None]:
        """Writes the request; the future resolves when the answer's headers are in."""
        self._start()
        self.head_only = head_only
        headed = self.headed = asyncio.get_running_loop().create_future()
        if self.closed or self.transport is None or self.transport.is_closing():
            self._fail(UpstreamUnavailable("the kept connection was closed"))
        else:
            self.transport.write(data)
        return headed

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        if self.headed is None:  # nothing asked: an upstream talking out of turn is not kept
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamUnavailable(f"unreadable answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headed is not None and self.headed.done() and self.until_close and exc is None:
            self.done = True  # a body without length or chunks ends with its connection
            self._wake()
            return
        self._fail(UpstreamUnavailable("the connection closed before the answer was whole"))

    # --- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue): the real one follows
            self.headers = []
            return
        self.status = status
        # asked now: once the answer is complete the parser has reset and says no
        self.keep_alive = self.parser.should_keep_alive()
        chunked = False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                try:
                    self.length = int(value)
                except ValueError:
                    self.length = None
            elif lowered == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        self.until_close = self.length is None and not chunked and status not in (204, 304)
        if self.head_only:  # a HEAD answer has no body, whatever its headers say
            self.done = True
            self.until_close = False
        if self.headed is not None and not self.headed.done():
            self.headed.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_AHEAD and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of an interim answer
            return
        self.done = True
        self._wake()

    # --- for the forwarder -------------------------------------------------------------------

    def take(self) -> bytes:
        """The body read so far, handed on; reading resumes if it was paused."""
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return body

    async def more(self, time_limit: float, *, whole: bool = False) -> None:
        """Until more body (``whole``: its end), or a failure; ``UpstreamTimeout`` after
        ``time_limit`` s of silence."""
        if self.done or self.error is not None or (self.chunks and not whole):
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(time_limit):
                await self.waiter
        except TimeoutError:
            raise UpstreamTimeout from None
        finally:
            self.waiter = None

    def reusable(self) -> bool:
        return self.done and not self.closed and not self.head_only and self.error is None and self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        if self.done:
            return
        self.error = error
        if self.headed is not None and not self.headed.done():
            self.headed.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class Http1Forwarder:
    """Keep-alive connections per upstream origin, at most ``max_connections`` in use at once."""

    def __init__(self, *, connect_timeout: float, max_connections: int) -> None:
        self.connect_timeout = connect_timeout
        self._in_use = asyncio.Semaphore(max_connections)
        self._idle: dict[str, list[_Connection]] = {}
        self._origins: dict[str, tuple[str, int, str]] = {}  # "http://host:port" -> host, port, Host
        # bodies streamed from the client, and any https upstream
        self._streaming = AiohttpForwarder(connect_timeout=connect_timeout, max_connections=max_connections)

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
        streamed = body is not None and (body.declared is None or body.declared > SMALL_BODY)
        if streamed or not url.startswith("http://"):
            await self._streaming.forward(
                method=method, url=url, headers=headers, body=body, time_limit=time_limit, send=send
            )
            return
        cut = url.find("/", 7)
        origin, target = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        host, port, host_header = self._origin(origin)
        payload = await body.read_small() if body is not None else b""
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers if name != "content-length")
        if payload or method not in _BODILESS:
            lines.append(f"Content-Length: {len(payload)}\r\n")
        lines.append("\r\n")
        request = "".join(lines).encode("latin-1") + payload
        head_only = method == "HEAD"
        async with self._in_use:
            for attempt in (1, 2):
                conn, reused = await self._connection(origin, host, port)
                try:
                    headed = conn.send_request(request, head_only=head_only)
                    try:
                        async with asyncio.timeout(time_limit):
                            await headed
                    except TimeoutError:
                        raise UpstreamTimeout from None
                except UpstreamUnavailable:
                    conn.close()
                    if reused and not conn.received and method in _SAFE and attempt == 1:
                        continue  # closed by the upstream while it was kept: never served
                    raise
                except BaseException:
                    conn.close()
                    raise
                break
            try:
                await self._relay(conn, time_limit, send)
            finally:
                if conn.reusable():
                    conn.idle_since = time.monotonic()
                    conn.headed = None
                    self._idle.setdefault(origin, []).append(conn)
                else:
                    conn.close()

    async def _relay(self, conn: _Connection, time_limit: float, send: Send) -> None:
        start = {
            "type": "http.response.start",
            "status": conn.status,
            "headers": response_headers(conn.headers),
        }
        if conn.done or (conn.length is not None and conn.length <= SMALL_BODY):
            while not conn.done:  # small: read whole and sent in one message
                await conn.more(time_limit, whole=True)
                if conn.error is not None:
                    raise conn.error
            await send(start)
            await send({"type": "http.response.body", "body": conn.take()})
            return
        await send(start)
        while True:
            await conn.more(time_limit)
            if conn.error is not None:
                raise conn.error
            if conn.chunks:
                await send({"type": "http.response.body", "body": conn.take(), "more_body": True})
            if conn.done and not conn.chunks:
                await send({"type": "http.response.body", "body": b""})
                return

    async def _connection(self, origin: str, host: str, port: int) -> tuple[_Connection, bool]:
        """A kept connection to ``origin`` (the most recently used) or a new one."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_SECONDS:
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Connection, host, port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamRefused from exc
        return conn, False

    def _origin(self, origin: str) -> tuple[str, int, str]:
        known = self._origins.get(origin)
        if known is None:
            parts = urlsplit(origin)
            known = self._origins[origin] = (parts.hostname or "", parts.port or 80, parts.netloc)
        return known

    async def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        await self._streaming.close()
