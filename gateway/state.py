"""What the gateway holds: its fixed parts, and what its lifespan opens and closes (typed, in one place)."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import httpx
from redis.asyncio import Redis

from gateway.affinity import SocketSessions
from gateway.apikeys import KeyTrader
from gateway.metrics import GatewayMetrics
from gateway.openapi import OpenApiAggregator
from gateway.proxy import Forwarder
from gateway.ratelimit import RateLimiter
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings
from libs.common.auth import TokenVerifier
from libs.common.metering import MessageMeter
from libs.common.replicas import Replicas


@dataclass
class GatewayState:
    """Opened by the app's lifespan, closed at its end."""

    upstreams: dict[str, str]  # each part's first URL (what the OpenAPI merge asks, through ``http``)
    replicas: Replicas  # every part's replicas, which requests are spread over
    redis: Redis
    http: httpx.AsyncClient
    verifier: TokenVerifier
    # signature and claims only, no revocation look-up: used to pick a P route's rate bucket
    identifier: TokenVerifier
    limiter: RateLimiter
    forwarder: Forwarder
    # websocket relays to the realtime service
    ws_session: aiohttp.ClientSession
    # message budgets per websocket and per client address
    socket_meter: MessageMeter
    openapi: OpenApiAggregator
    # which realtime replica holds each long-polling Socket.IO session
    socket_sessions: SocketSessions
    # API keys traded at auth for the tokens forwarded in their place
    keys: KeyTrader
    open_websockets: int = 0


@dataclass
class Gateway:
    """What the pipeline needs: built with the app, its ``state`` filled in while the lifespan runs."""

    settings: GatewaySettings
    table: RouteTable
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    opened: GatewayState | None = None

    @property
    def state(self) -> GatewayState:
        if self.opened is None:
            raise RuntimeError("the gateway is not running: its lifespan has not started")
        return self.opened
