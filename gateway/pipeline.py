"""What happens to each request: route it, check the caller, limit the rate, forward it.

A pure ASGI middleware in front of the gateway's own FastAPI routes (health, docs):
the hot path skips FastAPI's routing and dependency machinery. Paths the table does not
know fall through to FastAPI, which answers 404 problem for anything it does not serve.

Decisions:
- ``P`` routes are never refused for their token: the token is passed on and the service
  (e.g. the catalog's ``OptionalUser``) judges it. A valid one only picks the rate bucket.
- Signed-in callers are limited per user, guests per client IP, so many customers behind
  one NAT address do not share a bucket once they sign in.
- Client IP is the TCP peer: the gateway is the edge, client-sent forwarding headers are dropped.
- An API key (``sk_...``, gateway/apikeys.py) is traded at auth for a short-lived token that is
  forwarded in its place; it opens the admin routes its scopes name (the table's ``area``) and the
  public ones (as a guest), never a customer's, and is rate-limited per key.
- The caller is authenticated before the rate limit is spent, so a missing or bad token is always
  the 401 (or 403) that says what to fix, never a 429. Refusing costs no more than the limiter's
  own Redis call would (a signature check; the JWKS is refetched at most every few seconds), and
  nothing refused reaches a service, so repeating it buys a caller nothing; guessing a token
  means forging an RS256 signature, which no request budget was needed to stop.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import pages
from gateway.metrics import UNMATCHED, serve_metrics
from gateway.proxy import (
    BodyTooLarge,
    ClientGone,
    RequestBody,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    request_headers,
)
from gateway.routes import Route
from gateway.sockets import proxy_websocket
from gateway.state import Gateway
from libs.common import tracing
from libs.common.apikeys import looks_like_key
from libs.common.auth import Principal
from libs.common.errors import (
    DomainError,
    Forbidden,
    GatewayTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    domain_response,
    problem_response,
)
from libs.common.forwarding import proof_header
from libs.common.headers import incoming_request_id
from libs.common.logging import correlation_id_var, get_logger, request_id_var
from libs.common.replicas import repeatable
from libs.common.unavailable import describe, outages

_UNTRACED = contextlib.nullcontext()  # reusable: entering it holds no state

log = get_logger(__name__)


class RequestIdMiddleware:
    """Keeps a sane incoming ``X-Request-ID`` (else makes one) and returns it on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope["headers"]) or uuid.uuid4().hex
        rtok, ctok = request_id_var.set(rid), correlation_id_var.set(rid)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(rtok)
            correlation_id_var.reset(ctok)


class ProxyMiddleware:
    """Serves every path of the route table; everything else goes on to the gateway's own app."""

    def __init__(self, app: ASGIApp, *, gateway: Gateway) -> None:
        self.app = app
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].startswith("/socket.io/"):
            await proxy_websocket(self.gw, scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/metrics":
            token = self.gw.settings.internal_api_token.get_secret_value()
            await serve_metrics(self.gw.metrics, token, scope, receive, send)
            return
        match = self.gw.table.match(scope["method"], scope["path"])
        if match.route is None:
            if match.allowed:
                allow = ", ".join(sorted(match.allowed))
                answer = problem_response(
                    405, f"{scope['method']} is not allowed here; use {allow}.", headers={"Allow": allow}
                )
            elif scope["path"] in _OWN_PATHS or scope["path"].startswith(pages.OWN_PREFIXES):
                await self.app(scope, receive, send)
                return
            else:
                answer = problem_response(404, f"No route for {scope['path']}.")
            await self.gw.metrics.observe("gateway", UNMATCHED, scope, receive, send, answer)
            return
        route = match.route
        if tracing.enabled():
            tracing.name_server_span(f"{scope['method']} {route.pattern}")

        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                await self._handle(route, scope, receive, send)
            except DomainError as exc:
                await domain_response(exc)(scope, receive, send)

        await self.gw.metrics.observe(route.service, route.pattern, scope, receive, send, handle)

    async def _handle(self, route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        gw, settings = self.gw, self.gw.settings
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        authorization = content_length = host = None
        chunked = False
        for name, value in headers:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"host":
                host = value.decode("latin-1")
        client_ip = scope["client"][0] if scope.get("client") else "unknown"
        token = _bearer(authorization)
        principal: Principal | None
        forward_as: str | None = None
        keyed = token is not None and looks_like_key(token)
        if token is not None and keyed:
            principal, forward_as = await self._key_caller(route, scope["method"], token, client_ip)
            # the key itself goes no further than this: its token (admin routes) or nothing (public)
            headers = [(k, v) for k, v in headers if k != b"authorization"]
        else:
            principal = await self._caller(route, authorization)  # a refusal (401/403) spends no budget
        await self._limit(route, f"u:{principal.user_id}" if principal is not None else f"ip:{client_ip}")
        declared = _length(content_length)
        max_body = settings.body_limit_for(route.group)
        if declared is not None and declared > max_body:
            raise _too_large(max_body)
        body = None
        if chunked or (declared is not None and declared > 0):
            body = RequestBody(receive, limit=max_body, declared=declared)
        extra = [
            ("X-Request-ID", request_id_var.get() or uuid.uuid4().hex),
            ("X-Forwarded-For", client_ip),
            ("X-Forwarded-Proto", scope.get("scheme", "http")),
            proof_header(settings),
        ]
        if host:
            extra.append(("X-Forwarded-Host", host))
        if forward_as is not None:
            extra.append(("Authorization", f"Bearer {forward_as}"))
        raw_path = scope.get("raw_path") or quote(scope["path"]).encode()
        target = raw_path.decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        replicas = gw.state.replicas[route.service]
        affinity = gw.state.socket_sessions if route.service == "realtime" else None
        # a request that reached a replica which then died is sent again only when that cannot do it twice
        again = repeatable(scope["method"], ((k.decode("latin-1"), "") for k, _ in headers))
        tried: list[str] = []
        while True:
            bound = affinity.replica_for(scope, exclude=tried) if affinity is not None else None
            base = bound or replicas.pick(repeatable=again, exclude=tried)
            tried.append(base)
            replayable = body is None or body.replayable
            forwarded = request_headers(headers, extra)
            traced = (
                tracing.client_call(scope["method"], base + target, forwarded, part="gateway")
                if tracing.enabled()
                else _UNTRACED
            )
            try:
                with traced:  # each attempt its own client span, so a retry on another replica shows
                    await gw.state.forwarder.forward(
                        method=scope["method"],
                        url=base + target,
                        headers=forwarded,
                        body=body,
                        time_limit=settings.timeout_for(route.group),
                        send=affinity.learning(scope, base, send) if affinity is not None else send,
                    )
            except BodyTooLarge:
                raise _too_large(max_body) from None
            except ClientGone:
                return
            except UpstreamTimeout:
                gw.metrics.upstream_failures.labels(route.service, "timeout").inc()
                outages.down(
                    f"{route.service} service",
                    f"no answer within {settings.timeout_for(route.group)} s",
                    where="gateway",
                )
                raise GatewayTimeout(f"The {route.service} service did not answer in time.") from None
            except UpstreamUnavailable as exc:
                replicas.failed(base, describe(exc.__cause__ or exc))
                refused = isinstance(exc, UpstreamRefused)
                if (refused or again) and replayable and len(tried) < len(replicas):
                    continue  # another replica of the part, at once
                gw.metrics.upstream_failures.labels(route.service, "unavailable").inc()
                outages.down(f"{route.service} service", describe(exc.__cause__ or exc), where="gateway")
                raise ServiceUnavailable(
                    f"The {route.service} service is unavailable right now; try again shortly."
                ) from None
            replicas.succeeded(base)
            outages.up(f"{route.service} service")
            return

    async def _limit(self, route: Route, caller: str) -> None:
        settings, limiter = self.gw.settings, self.gw.state.limiter
        if settings.rate_limit_enabled:
            bucket, limit = settings.limit_for(route.group)
            wait = await limiter.retry_after(bucket, caller, rate=limit.rate, burst=limit.burst)
            if wait:
                raise _too_many(wait)

    async def _key_caller(
        self, route: Route, method: str, key: str, client_ip: str
    ) -> tuple[Principal, str | None]:
        """The API key's caller and the token to forward (None on a public route: sent as a guest)."""
        if route.access == "U":
            raise Forbidden("API keys work on the admin API and public routes, not on a customer's.")
        needed = route.scopes_for(method)
        if route.access == "A" and not needed:
            raise Forbidden("API keys cannot use this route; an admin signed in can.")
        trader = self.gw.state.keys
        if not trader.known(key):  # asking auth costs a lookup: the caller's address pays for it first
            await self._limit(route, f"ip:{client_ip}")
        for attempt in (1, 2):
            token = await trader.token_for(key)
            try:
                principal = await self.gw.state.verifier.verify(token)  # revocation checked on every use
                break
            except Unauthorized:
                trader.forget(key)  # revoked (auth then refuses the trade) or run out: trade once more
                if attempt == 2:
                    raise
        if route.access == "P":
            return principal, None
        if not set(needed) & set(principal.scopes or ()):
            # the least scope that would do (reads take :read, which :write also grants)
            raise Forbidden(f"This API key does not have the scope {needed[0]} this needs.", scope=needed[0])
        return principal, token

    async def _caller(self, route: Route, authorization: str | None) -> Principal | None:
        token = _bearer(authorization)
        if route.access == "P":
            if token is None:
                return None
            try:
                return await self.gw.state.identifier.verify(token)
            except DomainError:
                return None  # the service decides what a bad token on a public route means
        if authorization is None:
            raise Unauthorized("Sign in to use this.")
        if token is None:
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
        principal = await self.gw.state.verifier.verify(token)
        if route.access == "A" and not principal.is_admin:
            raise Forbidden("Only admins may do this.")
        return principal


_OWN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"}) | pages.OWN_PATHS


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None


class ContentTooLarge(DomainError):
    status, title = 413, "Content too large"


def _too_many(wait: int) -> DomainError:
    return TooManyRequests(f"Too many requests; try again in {wait} s.", retry_after=wait)


def _too_large(limit: int) -> DomainError:
    return ContentTooLarge(f"The request body is larger than {limit} bytes; nothing was done.", limit=limit)
