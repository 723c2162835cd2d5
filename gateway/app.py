"""The gateway app: its own few routes (health, docs) and the proxy pipeline in front of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from fastapi import FastAPI, Request
from redis.asyncio import Redis
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from gateway import eventdocs, pages
from gateway.affinity import SocketSessions
from gateway.apikeys import KeyTrader
from gateway.http1 import Http1Forwarder
from gateway.openapi import OpenApiAggregator
from gateway.pipeline import ProxyMiddleware, RequestIdMiddleware
from gateway.proxy import AiohttpForwarder, Forwarder, HttpxForwarder
from gateway.ratelimit import RateLimiter
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings, get_settings
from gateway.sockets import socket_meter
from gateway.state import Gateway, GatewayState
from libs.common import tracing
from libs.common.auth import TokenVerifier
from libs.common.errors import install_problem_handlers, problem_response
from libs.common.http import make_client
from libs.common.logging import configure_logging, get_logger
from libs.common.redis_client import make_redis

log = get_logger(__name__)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight answered as problem+json like every other 4xx.

    A request without ``Origin`` (every call not from a browser page) has nothing to allow or
    refuse: its answer only says it varies by Origin, added here without Starlette's header
    objects, built per request and a few hundredths of a proxied request's CPU.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def varying(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary_on_origin(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, varying)

    def preflight_response(self, request_headers: Headers) -> Response:
        resp = super().preflight_response(request_headers)
        if resp.status_code < 400:
            return resp
        reason = bytes(resp.body).decode("utf-8", "replace")
        keep = {k: v for k, v in resp.headers.items() if k.lower().startswith(("access-control-", "vary"))}
        return problem_response(
            resp.status_code,
            f"{reason}; this gateway allows {', '.join(self.allow_origins) or 'no cross-origin pages'}.",
            title="CORS preflight refused",
            headers=keep,
        )


def _vary_on_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``Vary`` with ``Origin`` added, in one header where the first stood (as Starlette's CORS does)."""
    at = [i for i, (name, _) in enumerate(headers) if name == b"vary"]
    if not at:
        headers.append((b"vary", b"Origin"))
        return headers
    value = b", ".join([*(headers[i][1] for i in at), b"Origin"])
    for i in reversed(at[1:]):
        del headers[i]
    headers[at[0]] = (b"vary", value)
    return headers


def _forwarder(settings: GatewaySettings) -> Forwarder:
    connect, most = settings.connect_timeout, settings.max_connections
    if settings.upstream_client == "aiohttp":
        return AiohttpForwarder(connect_timeout=connect, max_connections=most)
    if settings.upstream_client == "httpx":
        return HttpxForwarder(connect_timeout=connect, max_connections=most)
    return Http1Forwarder(connect_timeout=connect, max_connections=most)


def create_app(settings: GatewaySettings | None = None, *, redis: Redis | None = None) -> FastAPI:
    """The gateway. A shared ``redis`` (embedded mode) is used, not owned."""
    settings = settings or get_settings()
    gw = Gateway(settings=settings, table=RouteTable())
    upstreams = {name: url.rstrip("/") for name, url in settings.upstreams().items()}
    replicas = settings.replicas()
    gw.metrics.watch_replicas(replicas)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
        # short timeouts: a hung Redis must not hold every request for long
        r = redis or make_redis(settings.redis_url, timeout=1, max_connections=settings.redis_max_connections)
        http = make_client(timeout=5.0, replicas=replicas)
        common: dict[str, Any] = {
            "jwks_url": settings.jwks_url,
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
            "redis_prefix": settings.redis_prefix,
            "http": http,
        }
        state = GatewayState(
            upstreams=upstreams,
            replicas=replicas,
            redis=r,
            http=http,
            verifier=TokenVerifier(redis=r, **common),
            identifier=TokenVerifier(redis=None, **common),
            limiter=RateLimiter(r, settings.redis_prefix),
            forwarder=_forwarder(settings),
            # aiohttp's default connector holds 100 connections: the 101st socket would wait forever
            ws_session=aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), connector=aiohttp.TCPConnector(limit=0)
            ),
            socket_meter=socket_meter(settings),
            openapi=OpenApiAggregator(
                upstreams=upstreams, table=gw.table, http=http, ttl=settings.openapi_cache_seconds
            ),
            socket_sessions=SocketSessions(),
            keys=KeyTrader(http, upstreams["auth"], settings.internal_api_token.get_secret_value()),
        )
        gw.opened = state
        app.state.gateway = gw
        log.info("gateway_started", port=settings.port, client=settings.upstream_client)
        try:
            yield
        finally:
            gw.opened = None
            await state.forwarder.close()
            await state.ws_session.close()
            await http.aclose()
            if redis is None:
                await r.aclose()

    app = FastAPI(
        title="Shop gateway",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry=tracing.FASTAPI_TELEMETRY,
    )
    install_problem_handlers(app)
    # the last added is the outermost: request id, then CORS (answers preflights), then the proxy
    app.add_middleware(ProxyMiddleware, gateway=gw)
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        max_age=600,
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
    )
    app.add_middleware(RequestIdMiddleware)
    tracing.configure(settings)
    if tracing.enabled():
        tracing.instrument_app(
            app, settings.service_name, edge=True
        )  # outermost: after every other middleware

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        """Ready when Redis and every upstream's own /readyz answer; each is reported."""
        gateway: Gateway = request.app.state.gateway
        http = gateway.state.http
        checks: dict[str, str] = {}

        async def upstream(name: str, base: str) -> None:
            try:
                resp = await http.get(f"{base}/readyz", timeout=2)
                checks[name] = "ok" if resp.status_code == 200 else f"unavailable: {resp.status_code}"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"

        async def ping_redis() -> None:
            try:
                await asyncio.wait_for(gateway.state.redis.ping(), timeout=2)
                checks["redis"] = "ok"
            except Exception as exc:
                checks["redis"] = f"unavailable: {type(exc).__name__}"

        await asyncio.gather(ping_redis(), *(upstream(n, u) for n, u in upstreams.items()))
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": dict(sorted(checks.items()))},
            status_code=200 if ok else 503,
        )

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        gateway: Gateway = request.app.state.gateway
        return JSONResponse(await gateway.state.openapi.document())

    @app.get(eventdocs.JSON_PATH, include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        """The AsyncAPI 3 document of every domain event and Socket.IO message."""
        return JSONResponse(eventdocs.document())

    @app.get(eventdocs.PAGE_PATH, include_in_schema=False)
    async def event_docs() -> HTMLResponse:
        return HTMLResponse(eventdocs.page())

    app.include_router(pages.router)
    return app
