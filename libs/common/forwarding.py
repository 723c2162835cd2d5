"""Which address a request came from: only the gateway may say it is someone else's.

A service's port can be reached without the gateway: by any local process in ``make dev``
and ``make up`` (every part listens on 127.0.0.1), by a neighbour container in compose.
Believing ``X-Forwarded-For`` from a peer *address* (uvicorn's ``forwarded_allow_ips``,
127.0.0.1 unless told otherwise) let every such process claim any client address and so
start afresh on every per-address throttle (login attempts, password-reset codes).

A service believes the header only when the request proves it came through the gateway:

- ``X-Forwarded-Proof``, an HMAC of ``INTERNAL_API_TOKEN`` that the gateway adds to every
  request and websocket it relays (the gateway drops every client-sent ``X-Forwarded-*``
  header, this one included). Only a holder of the token can make it, and it gives the
  token itself away to nobody who reads it;
- or a peer in ``TRUSTED_PROXIES``: an address only the gateway has (its fixed address on
  a container network). Loopback addresses there are ignored: every local process has them.

Otherwise every ``X-Forwarded-*`` header is removed, so nothing later in the service can
read a client's claim by mistake. Uvicorn's own handling of these headers is off for the
services (``runner.serve`` and the devserver), so this module is the only place they count.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.config import CommonSettings
from libs.common.logging import get_logger

log = get_logger(__name__)

PROOF_HEADER = "X-Forwarded-Proof"
_PROOF = PROOF_HEADER.lower().encode()
_FORWARDED_FOR = b"x-forwarded-for"
_PREFIX = b"x-forwarded-"
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=4)
def forwarding_proof(internal_api_token: str) -> str:
    """What the gateway sends in ``X-Forwarded-Proof``: derived from the token, not the token."""
    return hmac.new(
        internal_api_token.encode(), b"shop: the gateway forwarded this request", hashlib.sha256
    ).hexdigest()


def proof_header(settings: CommonSettings) -> tuple[str, str]:
    """The header the gateway adds to what it relays."""
    return PROOF_HEADER, forwarding_proof(settings.internal_api_token.get_secret_value())


def trusted_networks(addresses: list[str]) -> list[_Network]:
    """``TRUSTED_PROXIES`` as networks, without the loopback ones (every local process has those)."""
    networks = []
    for entry in addresses:
        network = ipaddress.ip_network(entry.strip(), strict=False)
        if network.is_loopback or network.is_unspecified:
            log.warning(
                "trusted_proxy_ignored",
                entry=entry,
                reason="every local process has a loopback address; the gateway's proof header is used",
            )
            continue
        networks.append(network)
    return networks


class TrustedForwarding:
    """Sets the ASGI client address from the gateway's ``X-Forwarded-For`` and drops anyone else's."""

    def __init__(self, app: ASGIApp, *, settings: CommonSettings) -> None:
        self.app = app
        self.proof = forwarding_proof(settings.internal_api_token.get_secret_value()).encode()
        self.networks = trusted_networks(settings.trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.resolve(scope)
        await self.app(scope, receive, send)

    def resolve(self, scope: Scope) -> Scope:
        """Set the scope's client as the gateway saw it and drop forwarding headers it may not believe.

        In place, not a copy: the middleware around this one reads what routing adds to the scope.
        """
        proved = False
        forwarded: bytes | None = None
        kept = []
        for name, value in scope["headers"]:
            if name == _PROOF:
                proved = proved or hmac.compare_digest(value, self.proof)
                continue  # the proof stops here: no route, log or onward call sees it
            if name == _FORWARDED_FOR:
                forwarded = value
            kept.append((name, value))
        peer = scope.get("client")
        if not proved and not (peer and self._trusted_peer(peer[0])):
            scope["headers"] = [(n, v) for n, v in kept if not n.startswith(_PREFIX)]
            return scope
        scope["headers"] = kept
        if forwarded:
            # the hop the gateway appended is the last one; anything before it is the client's own say
            hop = forwarded.decode("latin-1").rsplit(",", 1)[-1].strip()
            try:
                scope["client"] = (str(ipaddress.ip_address(hop)), 0)
            except ValueError:
                pass
        return scope

    def _trusted_peer(self, host: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)
