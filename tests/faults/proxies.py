"""Cuttable TCP proxies between the running parts and the real servers, on a thread of their own.

The proxies run on their own event loop in a background thread rather than on the test's
loop: the stack's process control (``Stack.stop`` waits for a process synchronously) must
not freeze every part's traffic to PostgreSQL, Redis and RabbitMQ while it waits, or a
graceful shutdown would stall on a proxy nobody is serving.

Besides ``cut``/``restore`` (from ``TcpProxy``), a proxy here can *hold* what its clients
send: bytes from the part towards the server are kept back while the server's answers
still flow. A consumer whose link is held receives a delivery and runs its handler, but
its acknowledgement never leaves, which is how a test lands a crash between "effect
committed" and "ack sent".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from libs.common.testing.tcp_proxy import TcpProxy

T = TypeVar("T")


class HoldingProxy(TcpProxy):
    """A :class:`TcpProxy` that can keep back client-to-server bytes until released."""

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        super().__init__(upstream_host, upstream_port, port=port)
        self._flowing = asyncio.Event()
        self._flowing.set()

    def hold(self) -> None:
        """Stop forwarding what clients send (answers from the server still reach them)."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:  # type: ignore[override]
        peer = writer.get_extra_info("peername") or ("", 0)
        towards_server = peer[1] == self.upstream_port and peer[0] == self.upstream_host
        try:
            while data := await reader.read(65536):
                if towards_server:
                    # held bytes die with the pipe when the proxy is cut: they are never delivered
                    await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()


class ProxyHost:
    """Starts, cuts and restores :class:`HoldingProxy` instances on a dedicated event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fault-proxies", daemon=True)
        self._thread.start()
        self.proxies: list[HoldingProxy] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def add(self, url: str) -> HoldingProxy:
        """A listening proxy to the server of ``url``; ``proxy.url(url)`` is the address to give a part."""

        async def make() -> HoldingProxy:
            plain = TcpProxy.for_url(url)
            proxy = HoldingProxy(plain.upstream_host, plain.upstream_port)
            await proxy.start()
            return proxy

        proxy = self._run(make())
        self.proxies.append(proxy)
        return proxy

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def cut(self, proxies: Iterable[HoldingProxy]) -> None:
        """Drop every connection through ``proxies`` and refuse new ones."""

        async def cut_all() -> None:
            await asyncio.gather(*(p.cut() for p in proxies))

        await self._call(cut_all())

    async def restore(self, proxies: Iterable[HoldingProxy]) -> None:
        """Accept connections again (and forward everything) through ``proxies``."""

        async def restore_all() -> None:
            for p in proxies:
                p.release()
                await p.restore()

        await self._call(restore_all())

    async def hold(self, proxy: HoldingProxy) -> None:
        async def do() -> None:
            proxy.hold()

        await self._call(do())

    def close(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(*(p.close() for p in self.proxies), return_exceptions=True)

        self._run(close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
