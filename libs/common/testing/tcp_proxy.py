"""A TCP proxy on loopback that a fault test can cut and restore.

Put it between a client and a real server (RabbitMQ, PostgreSQL, Redis) to simulate
an outage without touching the machine's server: :meth:`TcpProxy.cut` drops every
open connection and stops listening, so new connections are refused;
:meth:`TcpProxy.restore` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from urllib.parse import urlparse, urlunparse


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``upstream_host:upstream_port``."""

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port
        self.connections_made = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        """A proxy to the host and port of a URL such as ``amqp://guest:guest@127.0.0.1:5672/``."""
        parsed = urlparse(url)
        default = {"amqp": 5672, "redis": 6379, "postgresql": 5432, "postgres": 5432}.get(parsed.scheme, 80)
        return cls(parsed.hostname or "127.0.0.1", parsed.port or default)

    def url(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's."""
        parsed = urlparse(url)
        netloc = parsed.netloc.rsplit("@", 1)
        creds = netloc[0] + "@" if len(netloc) == 2 else ""
        return urlunparse(parsed._replace(netloc=f"{creds}127.0.0.1:{self.port}"))

    @property
    def is_cut(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        """Listen (again); the first start picks a free port that later restores reuse."""
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def restore(self) -> None:
        """Accept connections again after :meth:`cut`."""
        await self.start()

    async def cut(self) -> None:
        """Drop every open connection at once and refuse new ones until :meth:`restore`."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._pipes.clear()

    async def close(self) -> None:
        await self.cut()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._server is None:
            client_w.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        self.connections_made += 1
        self._writers |= {client_w, up_w}
        pipes = [
            asyncio.create_task(self._pipe(client_r, up_w)),
            asyncio.create_task(self._pipe(up_r, client_w)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for w in (client_w, up_w):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # one side ended: end the other so the peer sees the connection close
            writer.transport.abort()


@contextlib.asynccontextmanager
async def tcp_proxy(url: str) -> AsyncIterator[TcpProxy]:
    """A started proxy to the server of ``url``; ``proxy.url(url)`` is the address to use instead."""
    proxy = TcpProxy.for_url(url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
