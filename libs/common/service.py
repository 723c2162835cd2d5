"""One app factory so every service has the same shape.

``create_service_app`` wires problem handlers, the request-id and metrics
middleware, ``/healthz``, ``/readyz``, ``/metrics``, and a lifespan that opens the
database (migrating it in dev/test), Redis and the event bus, then the part's own typed
state, subscribes the part's idempotent consumers and runs the outbox relay and any
background loops. Everything a part holds is reached through its
``ServiceContext[ItsSettings, ItsState]``: nothing is looked up by a string key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import httpx
import orjson
import sqlalchemy.exc
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common import tracing
from libs.common.auth import InternalCaller, TokenVerifier
from libs.common.config import CommonSettings
from libs.common.db import Database, migrate
from libs.common.errors import (
    PROBLEM_RESPONSES,
    install_problem_handlers,
    problem_response,
    unhandled_problem,
)
from libs.common.events import (
    Envelope,
    EventBus,
    Handler,
    InMemoryBus,
    OutboxRelay,
    idempotent,
    topic_matches,
)
from libs.common.events.catalogue import parse_data
from libs.common.events.topology import CONSUMERS
from libs.common.forwarding import TrustedForwarding
from libs.common.headers import incoming_request_id
from libs.common.http import make_client
from libs.common.logging import configure_logging, correlation_id_var, get_logger, request_id_var
from libs.common.redis_client import make_redis
from libs.common.tasks import cancel_and_wait
from libs.common.textcheck import BodyGuard, BodyLimit
from libs.common.unavailable import dependency_probes, describe, outages, quiet_library_outage_logs

log = get_logger(__name__)
SettingsT = TypeVar("SettingsT", bound=CommonSettings)
StateT = TypeVar("StateT")
ContextT = TypeVar("ContextT", bound="ServiceContext[Any, Any]")
ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclass
class Kernel(Generic[SettingsT]):
    """The resources every part gets from the kernel, whatever it does."""

    settings: SettingsT
    db: Database | None
    redis: Redis
    bus: EventBus
    http: httpx.AsyncClient
    verifier: TokenVerifier

    def key(self, *parts: object) -> str:
        """A Redis key under this deployment's prefix."""
        return self.settings.redis_prefix + ":".join(str(p) for p in parts)


@dataclass
class ServiceContext(Kernel[SettingsT], Generic[SettingsT, StateT]):
    """What a running part holds: its own settings, the kernel's resources and its one typed state.

    Routes reach it through the part's ``Annotated`` alias over :func:`service_context`;
    consumers and background loops receive it as their first argument.
    """

    state: StateT
    relay: OutboxRelay | None = None


StateFactory = Callable[[Kernel[SettingsT]], contextlib.AbstractAsyncContextManager[StateT]]
Hook = Callable[[ServiceContext[SettingsT, StateT]], Awaitable[None]]
ConsumerHandler = Callable[[ContextT, AsyncSession, ModelT, Envelope], Awaitable[None]]


async def service_context(request: Request) -> ServiceContext[Any, Any]:
    """FastAPI dependency: the running part's context (each part types it once in its alias).

    ``async`` so FastAPI calls it in place rather than through its thread pool.
    """
    ctx: ServiceContext[Any, Any] = request.app.state.ctx
    return ctx


class RawData(BaseModel):
    """The data of any event, unparsed: for a subscription that forwards events whole (webhooks)
    rather than reading them. The envelope the handler gets is the event as published."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Subscription(Generic[ContextT, ModelT]):
    """Events (routing-key patterns) a part consumes, the producer's model of their data, and the handler.

    The kernel parses ``data`` into ``model`` before the handler runs: data that does not
    parse is a poison message (dead-lettered with the validation error), never a handler's guess.
    """

    patterns: Sequence[str]
    model: type[ModelT]
    handler: ConsumerHandler[ContextT, ModelT]

    def parse(self, envelope: Envelope) -> ModelT:
        """``envelope.data`` as the model; ``PoisonMessage`` naming every invalid field if it is not."""
        return parse_data(self.model, envelope)


def make_bus(settings: CommonSettings) -> EventBus:
    """The bus the settings ask for."""
    common: dict[str, Any] = {
        "retry_delays": settings.event_retry_delays,
        "max_attempts": settings.event_max_attempts,
        "queue_prefix": settings.events_queue_prefix,
    }
    if settings.event_bus == "memory":
        return InMemoryBus(**common)
    from libs.common.events.amqp import AmqpBus

    return AmqpBus(
        settings.amqp_url,
        exchange=settings.events_exchange,
        topology=CONSUMERS,
        queue_type=settings.event_queue_type,
        queue_expires=settings.event_queue_expires,
        **common,
    )


def create_service_app(
    *,
    settings: SettingsT,
    title: str,
    routers: Sequence[APIRouter],
    state: StateFactory[SettingsT, StateT] | None = None,
    migrations: Path | None = None,
    subscriptions: Sequence[Subscription[ServiceContext[SettingsT, StateT], Any]] = (),
    background: Sequence[Hook[SettingsT, StateT]] = (),
    on_startup: Sequence[Hook[SettingsT, StateT]] = (),
    on_shutdown: Sequence[Hook[SettingsT, StateT]] = (),
    bus: EventBus | None = None,
    redis: Redis | None = None,
    jwks_min_refresh: float = 5.0,
    description: str = "",
    body_limits: Sequence[BodyLimit] = (),
    fast_paths: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
) -> FastAPI:
    """Build a service app. A shared ``bus``/``redis`` (embedded mode) is used, not owned.

    ``body_limits`` gives the routes that take files a larger body cap than ``max_body_bytes``.
    ``fast_paths`` are ASGI middleware that may answer a request before routing (a cache):
    inside the request id, logging context and metrics, outside everything else.

    ``state`` opens the part's one typed state object from the kernel's resources (an
    async context manager: what it opens it closes at shutdown); without it the state is ``None``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(service=settings.service_name, level=settings.log_level, json=settings.log_json)
        async with _kernel(
            settings, migrations=migrations, bus=bus, redis=redis, jwks_min_refresh=jwks_min_refresh
        ) as kernel:
            opened = state(kernel) if state is not None else contextlib.nullcontext()
            async with opened as part_state:
                ctx = ServiceContext(
                    settings=settings,
                    db=kernel.db,
                    redis=kernel.redis,
                    bus=kernel.bus,
                    http=kernel.http,
                    verifier=kernel.verifier,
                    state=cast(StateT, part_state),
                )
                app.state.ctx = ctx
                tasks: list[asyncio.Task[None]] = []
                if subscriptions:
                    assert ctx.db is not None, "a consuming service needs its database (inbox)"
                    patterns = sorted({p for s in subscriptions for p in s.patterns})
                    ctx.bus.subscribe(
                        settings.service_name,
                        patterns,
                        _consumer(ctx, ctx.db, settings.service_name, subscriptions),
                    )
                if ctx.db is not None:
                    ctx.relay = OutboxRelay(
                        ctx.db,
                        ctx.bus,
                        poll_interval=settings.outbox_poll_interval,
                        service=settings.service_name,
                    )
                    tasks.append(asyncio.create_task(ctx.relay.run(), name=f"{settings.service_name}-outbox"))
                for hook in on_startup:
                    await hook(ctx)
                await ctx.bus.start()
                for loop_fn in background:
                    tasks.append(
                        asyncio.create_task(_forever(loop_fn, ctx), name=getattr(loop_fn, "__name__", "bg"))
                    )
                log.info("service_started", port=settings.port)
                try:
                    yield
                finally:
                    await cancel_and_wait(
                        tasks
                    )  # the relay polls with wait_for, which can swallow one cancel
                    for hook in on_shutdown:
                        with contextlib.suppress(Exception):
                            await hook(ctx)
                    if bus is None:  # consumers stop before the state they use is closed
                        await ctx.bus.close()

    # no trailing-slash redirects: Starlette builds them from the Host header a caller chose
    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        version="1.0.0",
        redirect_slashes=False,
        generate_unique_id_function=operation_id,
        telemetry=tracing.FASTAPI_TELEMETRY,
    )
    install_problem_handlers(app)
    _install_infra_errors(app)
    registry = CollectorRegistry()
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes, larger=body_limits)
    app.add_middleware(TrustedForwarding, settings=settings)
    for fast in fast_paths:
        app.add_middleware(fast)
    app.add_middleware(RequestContextMiddleware, registry=registry, service=settings.service_name)
    app.include_router(_health_router(registry))
    for r_ in routers:
        app.include_router(r_, responses=PROBLEM_RESPONSES)
    tracing.configure(settings)
    if tracing.enabled():
        tracing.instrument_app(app, settings.service_name)
    return app


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase (``placeOrder``), the method name an SDK generator gives it."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@contextlib.asynccontextmanager
async def _kernel(
    settings: SettingsT,
    *,
    migrations: Path | None,
    bus: EventBus | None,
    redis: Redis | None,
    jwks_min_refresh: float,
) -> AsyncIterator[Kernel[SettingsT]]:
    """Open the database (migrated in dev/test), Redis, the bus, the HTTP client and the verifier.

    What was passed in (embedded mode shares one bus and one Redis) is used, not closed;
    the bus is closed by the lifespan, before the part's state.
    """
    db = Database(settings.db_url, pool_size=settings.db_pool_size) if migrations is not None else None
    try:
        if db is not None and migrations is not None and settings.env in ("dev", "test"):
            await migrate(settings.db_url, migrations)
        r = redis or make_redis(settings.redis_url, timeout=3, max_connections=settings.redis_max_connections)
        http = make_client(timeout=5.0, replicas=settings.replicas())
        try:
            verifier = TokenVerifier(
                jwks_url=settings.jwks_url,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                redis=r,
                redis_prefix=settings.redis_prefix,
                http=http,
                min_refresh_interval=jwks_min_refresh,
            )
            yield Kernel(
                settings=settings, db=db, redis=r, bus=bus or make_bus(settings), http=http, verifier=verifier
            )
        finally:
            await http.aclose()
            if redis is None:
                await r.aclose()
    finally:
        if db is not None:
            await db.dispose()


def _consumer(
    ctx: ContextT, db: Database, consumer: str, subs: Sequence[Subscription[ContextT, Any]]
) -> Handler:
    """One bus handler that runs, once per event id, every subscription matching its type."""

    async def effect(session: AsyncSession, env: Envelope) -> None:
        for sub in subs:
            if any(topic_matches(p, env.type) for p in sub.patterns):
                # parsed inside the inbox transaction: a poison message rolls back, leaving no trace
                await sub.handler(ctx, session, sub.parse(env), env)

    return idempotent(db, consumer, effect)


async def _forever(fn: Hook[Any, Any], ctx: ServiceContext[Any, Any]) -> None:
    """Run a background loop; if it crashes, log and start it again after a pause.

    An outage is the one warning of ``outages`` (and its recovery line), not a traceback a
    second; any other crash is a bug, logged with its traceback.
    """
    while True:
        try:
            await fn(ctx)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if (
                outages.note(
                    exc,
                    where=f"background task {getattr(fn, '__name__', '?')}",
                    probes=dependency_probes(db=ctx.db, redis=ctx.redis, bus=ctx.bus),
                )
                is None
            ):
                log.error(
                    "background_task_failed",
                    task=getattr(fn, "__name__", "?"),
                    error=describe(exc),
                    exc_info=exc,
                )
            await asyncio.sleep(1.0)


def _install_infra_errors(app: FastAPI) -> None:
    """A database, Redis or peer that cannot be reached is a 503; any other error of theirs is a bug (500).

    Which is which comes from ``libs.common.unavailable`` (types and SQLSTATE classes): a
    unique violation or a file not found is a 500 with its traceback logged, never a 503.
    """
    quiet_library_outage_logs()

    async def infra_error(request: Request, exc: Exception) -> JSONResponse:
        if getattr(getattr(exc, "orig", None), "sqlstate", None) in ("22021", "22P05"):
            field = nul_field(request)  # a NUL the client sent: text cannot hold it
            return problem_response(
                422,
                f"Text must not contain NUL (\\u0000) characters: check {field}.",
                title="Validation failed",
                type_="validation-failed",
                errors=[{"field": field, "message": "contains NUL", "type": "value_error"}],
            )
        ctx: ServiceContext = request.app.state.ctx
        if outages.note(
            exc, where="request", probes=dependency_probes(db=ctx.db, redis=ctx.redis, bus=ctx.bus)
        ):
            return problem_response(503, "A dependency of this service is unavailable; try again shortly.")
        return unhandled_problem(exc)

    for error in (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError, RedisError, OSError):
        app.add_exception_handler(error, infra_error)


# where RequestContextMiddleware keeps a request's body, for an error handler that must point into it
_BODY_KEY = "shop.body"
_KEEP_BODY = 1 << 20


def nul_field(request: Request) -> str:
    """The first query parameter, path parameter or JSON body field holding a NUL, as a 422 names it.

    PostgreSQL refuses NUL in text only when the row is written, long after validation:
    this finds again which field the client has to fix.
    """
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "") or "query"
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            return str(name)
    try:
        doc = orjson.loads(b"".join(request.scope.get(_BODY_KEY, ())))
    except orjson.JSONDecodeError:
        return "body"
    return ".".join(_path_to_nul(doc) or ()) or "body"


def _path_to_nul(node: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if isinstance(node, str):
        return path if "\x00" in node else None
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if "\x00" in str(key):
            return (*path, str(key).replace("\x00", ""))
        found = _path_to_nul(value, (*path, str(key)))
        if found is not None:
            return found
    return None


def _health_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    backlog = Gauge("outbox_backlog", "Outbox rows not yet published", registry=registry)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        ctx: ServiceContext[Any, Any] = request.app.state.ctx
        checks: dict[str, str] = {}

        async def check(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
            try:
                await asyncio.wait_for(fn(), timeout=2)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"

        jobs = [check("redis", ctx.redis.ping), check("broker", ctx.bus.ping)]
        if ctx.db is not None:
            jobs.append(check("database", ctx.db.ping))
        await asyncio.gather(*jobs)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
        )

    @router.get("/metrics")
    async def metrics(request: Request, _: InternalCaller) -> Response:
        relay = request.app.state.ctx.relay
        if relay is not None:
            backlog.set(relay.backlog)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestContextMiddleware:
    """Request id in and out, logging context, per-route-template Prometheus metrics, and HEAD.

    FastAPI routes a HEAD to no GET route (405), yet caches, link checkers and the
    gateway's route table expect HEAD wherever GET is served: it is answered as the
    GET would be, headers included, without the body.
    """

    def __init__(self, app: ASGIApp, *, registry: CollectorRegistry, service: str) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "HEAD":
            scope = {**scope, "method": "GET"}
        body: list[bytes] = []
        scope[_BODY_KEY] = body  # read by nul_field; the chunks are the ones the app reads anyway
        kept = 0

        async def receive_keeping_body() -> Message:
            nonlocal kept
            message = await receive()
            if message["type"] == "http.request" and kept < _KEEP_BODY:
                chunk = message.get("body", b"")
                body.append(chunk)
                kept += len(chunk)
            return message

        rid = incoming_request_id(scope.get("headers", ())) or uuid.uuid4().hex
        rtok = request_id_var.set(rid)
        ctok = correlation_id_var.set(rid)
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            elif method == "HEAD" and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, receive_keeping_body, send_with_id)
        except Exception as exc:
            # Starlette answers unhandled errors outside every middleware, where the
            # request id is gone: answer here so the 500 carries it in header and body
            if started:
                raise
            await unhandled_problem(exc)(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template not in ("/metrics", "/healthz", "/readyz"):
                self.requests.labels(method, template, str(status)).inc()
                self.latency.labels(method, template).observe(time.perf_counter() - start)
            request_id_var.reset(rtok)
            correlation_id_var.reset(ctok)
