"""What keeps webhooks from reaching inside: targets checked when registered and again at connect time,
and the signature every delivery carries.

A target must be http(s) and resolve only to public addresses (not private, loopback, link-local,
multicast, reserved or unspecified, IPv4 or IPv6, an IPv4-mapped IPv6 address read as its IPv4), unless
WEBHOOK_ALLOW_PRIVATE. The sender connects through :class:`GuardedBackend`, which resolves the host
itself, refuses the same addresses and dials the address it checked, so a name rebound to 127.0.0.1
after it was registered (DNS rebinding) reaches nothing. The connection pool reads no proxy from the
environment, and the sender follows no redirect.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpcore
import httpx

from libs.common.errors import Unprocessable

if TYPE_CHECKING:
    from services.notifications.settings import NotificationsSettings

SECRET_PREFIX = "whsec_"
# host, port -> the addresses it resolves to (injectable: tests stand in for DNS)
Resolver = Callable[[str, int], Awaitable[list[str]]]


# ---------------------------------------------------------------- targets


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (an address literal is itself)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refused_address(address: str) -> str | None:
    """Why a webhook may not reach ``address`` (loopback, private...), or None when it is public."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for kind, hit in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if hit:
            return f"{ip} is a {kind} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def split_target(url: str) -> tuple[str, int]:
    """``url``'s host and port; ``ValueError`` saying what is wrong for anything but http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("only http and https URLs can receive webhooks")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    port = parts.port  # ValueError for a port out of range
    return host, port or (443 if parts.scheme == "https" else 80)


async def check_target(url: str, *, resolve: Resolver, allow_private: bool) -> None:
    """Refuse (422 on ``url``) a target that is not http(s) or resolves to a non-public address."""

    def refuse(message: str) -> Unprocessable:
        return Unprocessable(
            f"The webhook URL cannot be used: {message}.",
            errors=[{"field": "url", "message": message, "type": "value_error"}],
        )

    try:
        host, port = split_target(url)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if allow_private:
        return
    try:
        addresses = await asyncio.wait_for(resolve(host, port), timeout=5)
    except (OSError, TimeoutError) as exc:
        raise refuse(f"{host} does not resolve ({type(exc).__name__})") from None
    if not addresses:
        raise refuse(f"{host} does not resolve")
    for address in addresses:
        if (why := refused_address(address)) is not None:
            raise refuse(f"{host} resolves to {why}" if host != address else why)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<t>.<body>"`` under ``secret``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<sig>[,v1=<sig of the old secret>]``."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets_)])


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses a webhook may reach: resolved here, checked, then dialled as literals."""

    def __init__(self, state: WebhookState) -> None:
        self.state = state
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await asyncio.wait_for(self.state.resolve(host, port), timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({type(exc).__name__})") from exc
        allowed: list[str] = []
        refused: list[str] = []
        for address in addresses:
            why = None if self.state.allow_private else refused_address(address)
            (refused if why else allowed).append(why or address)
        if not allowed:
            raise httpcore.ConnectError(
                f"refused to connect: {'; '.join(refused) or f'{host} has no address'}"
            )
        error: Exception | None = None
        for address in allowed:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@dataclass
class WebhookState:
    """The sender's running state: its wake-up signal, what it has in flight, its connection pool.

    ``resolve`` and ``allow_private`` are read at every check, so a test can stand in for DNS."""

    allow_private: bool
    resolve: Resolver = system_resolve
    due: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: Counter[uuid.UUID] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    pool: httpcore.AsyncConnectionPool | None = None

    def wake(self) -> None:
        self.due.set()


@contextlib.asynccontextmanager
async def open_webhooks(settings: NotificationsSettings) -> AsyncIterator[WebhookState]:
    state = WebhookState(allow_private=settings.webhook_allow_private)
    state.pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=settings.webhook_concurrency,
        keepalive_expiry=30.0,
        retries=0,
        network_backend=GuardedBackend(state),
    )
    try:
        yield state
    finally:
        await state.pool.aclose()
