"""OpenTelemetry traces for every part, set up once per process by the kernel.

Off by default: nothing is instrumented and the bus, the outbox and the socket push only
test one flag, so a shop that does not trace pays nothing for it. ``TRACES=otlp`` (or
``OTEL_EXPORTER_OTLP_ENDPOINT`` set) exports over OTLP/HTTP; ``TRACES=console`` writes one
log line per finished span, for ``make dev``.

What is traced when on: every request a part serves (``ServerSpans``), every call it makes
(httpx; the gateway's forwarding by hand, since it proxies with aiohttp), every asyncpg
query and Redis command, and the events. An event's W3C ``traceparent`` travels in its
AMQP message headers; the outbox keeps the producer's context in the row, so the relay
publishes under the request that wrote the event however much later it runs, and a
consumer's handler joins that trace. Realtime carries it through its Redis feed to the
socket emit.

Several parts share one process in ``make dev``: they share its tracer provider (one
``service.name``, ``shop``), and every span says which part made it in ``shop.part``.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import SpanKind, Tracer

from libs.common.logging import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.telemetry import TelemetryConfig

    from libs.common.config import CommonSettings

log = get_logger(__name__)
TRACE_HEADERS = ("traceparent", "tracestate")
# health probes and scrapes would be most spans and tell nothing
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
# the part a span belongs to, where several share one process (make dev)
part_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("shop_part", default=None)

_provider: TracerProvider | None = None
_enabled = False
_tracer: Tracer | None = None


def enabled() -> bool:
    """Whether this process traces (one flag: the hot paths test it before anything else)."""
    return _enabled


def configure(settings: CommonSettings, *, service_name: str | None = None) -> None:
    """Trace as the settings ask (``traces``, ``OTEL_EXPORTER_OTLP_ENDPOINT``); the first call wins."""
    mode = settings.trace_mode
    if mode == "off" or _enabled:
        return
    setup(
        service_name or settings.service_name,
        mode=mode,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        ratio=settings.traces_sample_ratio,
    )


def setup(
    service_name: str,
    *,
    mode: str = "console",
    otlp_endpoint: str = "",
    exporter: SpanExporter | None = None,
    ratio: float = 1.0,
) -> TracerProvider:
    """Install the SDK (once per process) and the library instrumentation; returns the provider.

    ``exporter`` (tests: an in-memory one) is added beside what ``mode`` asks for, synchronously,
    so a finished span is there to read at once. Calling it again only adds that exporter.
    ``ratio`` is the share of requests and events that start a recorded trace (see ``WorkOnly``).
    """
    global _provider, _enabled, _tracer
    if _provider is None:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=WorkOnly(ratio)
        )
        provider.add_span_processor(_PartAttribute())
        if mode == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # the exporter reads OTEL_EXPORTER_OTLP_* itself; a setting from .env is passed on
            endpoint = otlp_endpoint.rstrip("/") + "/v1/traces" if otlp_endpoint else None
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        elif mode == "console":
            provider.add_span_processor(SimpleSpanProcessor(LogSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider
        log.info("tracing_on", mode=mode, service=service_name)
    if exporter is not None:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    _tracer = _provider.get_tracer("shop")
    _instrument_libraries()
    _enabled = True
    return _provider


def stop() -> None:
    """Stop tracing in this process (tests): libraries uninstrumented, the hot paths back to one test,
    and no span recorded from then on (FastAPI's own telemetry in a test's stand-in app included).

    The provider stays (OpenTelemetry sets it once per process); a later ``setup`` reuses it.
    """
    global _enabled
    _enabled = False
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), AsyncPGInstrumentor(), RedisInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    if _provider is not None:
        _provider.force_flush()


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), AsyncPGInstrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


# FastAPI(telemetry=...): the framework's own spans stay off, ServerSpans makes the one server span
# (FastAPI's would start whenever a tracer provider is set: a second server span per request, three
# more for dependencies, endpoint and serialisation, and no edge rule)
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def instrument_app(app: FastAPI, part: str, *, edge: bool = False) -> None:
    """A server span per request the app serves (call it after every other ``add_middleware``).

    By hand rather than with the FastAPI/ASGI instrumentation, whose every request (traced or
    not) matches the route a second time and collects a dozen attributes before sampling:
    about a tenth of a cached read's cost. The span is named by its route template once the
    app has routed it (Starlette's ``scope["route"]``; the gateway's pipeline names its own). At the ``edge``
    (the gateway) a client's own trace headers are dropped: the gateway starts the trace, as
    it drops client-sent forwarding headers. Socket.IO connections, which last for hours, and
    health probes are not traced.
    """
    app.add_middleware(ServerSpans, part=part, edge=edge)


class ServerSpans:
    """ASGI middleware: the request's server span, child of the caller's ``traceparent``."""

    def __init__(self, app: Any, *, part: str, edge: bool = False) -> None:
        self.app = app
        self.part = part
        self.edge = edge

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in _UNTRACED_PATHS
            or scope["path"].startswith("/socket.io/")
        ):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parent = None if self.edge else propagate.extract(_HeaderCarrier(scope["headers"]))
        token = part_var.set(self.part)
        span = _tracer_().start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"], "shop.part": self.part},
        )
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False, record_exception=True, set_status_on_exception=True):
                if span.is_recording():
                    await self.app(scope, receive, send_status)
                else:
                    with _unrecorded():
                        await self.app(scope, receive, send_status)
        finally:
            part_var.reset(token)
            if span.is_recording():
                span.set_attribute("http.response.status_code", status)
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.set_attribute("http.route", route)
                    if getattr(span, "name", method) == method:  # the gateway's pipeline names its own
                        span.update_name(f"{method} {route}")
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
            span.end()


_UNTRACED_PATHS = frozenset(EXCLUDED_URLS.split(","))


def _unrecorded() -> contextlib.AbstractContextManager[None]:
    """Work under a span that is not recorded: the library instrumentations stand aside at once.

    The asyncpg and Redis instrumentations build each span's attributes before the sampler is
    asked, so a trace left out would still cost a share of every query; suppressed, they cost one
    context lookup. Calls between parts still carry the (unrecorded) ``traceparent``: the kernel's
    HTTP client and the gateway's forwarding inject it themselves.
    """
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


class _HeaderCarrier(dict[str, str]):
    """The W3C headers of an ASGI request, for ``propagate.extract``."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in headers
            if name in _TRACE_HEADER_BYTES
        )


_TRACE_HEADER_BYTES = frozenset({b"traceparent", b"tracestate"})


def name_server_span(name: str) -> None:
    """Rename the current server span (the gateway knows its route template only after matching)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(name)


# --- carrying a context ------------------------------------------------------------------------


def current_headers() -> dict[str, str]:
    """The current span's context as W3C headers (empty when there is none)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def headers_json() -> str | None:
    """The current context as the JSON an outbox row keeps (None when not tracing or no span)."""
    if not _enabled:
        return None
    carrier = current_headers()
    return orjson.dumps(carrier).decode() if carrier else None


def trace_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Only the W3C trace headers of a message's headers (what a retry or a replay carries on)."""
    if not headers:
        return {}
    return {k: str(v) for k, v in headers.items() if k in TRACE_HEADERS and v}


def _tracer_() -> Tracer:
    assert _tracer is not None
    return _tracer


@contextlib.contextmanager
def publishing(
    routing_key: str, parent: Mapping[str, str] | None, *, part: str | None
) -> Iterator[dict[str, str]]:
    """A producer span under ``parent`` (an outbox row's context) or the current one; yields the
    headers to publish with, so the consumer's span is its child."""
    ctx = propagate.extract(dict(parent)) if parent else None
    with _tracer_().start_as_current_span(
        f"{routing_key} publish",
        context=ctx,
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "send",
            "messaging.destination.name": routing_key,
            **({"shop.part": part} if part else {}),
        },
    ):
        yield current_headers()


@contextlib.contextmanager
def consuming(
    routing_key: str, headers: Mapping[str, Any] | None, *, part: str, message_id: str = ""
) -> Iterator[None]:
    """A consumer span, child of the context the message carries (a new trace without one)."""
    token = part_var.set(part)
    try:
        with _tracer_().start_as_current_span(
            f"{routing_key} process",
            context=propagate.extract(trace_headers(headers)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.operation.type": "process",
                "messaging.destination.name": routing_key,
                "messaging.message.id": message_id,
                "shop.part": part,
            },
        ) as span:
            if span.is_recording():
                yield
            else:
                with _unrecorded():
                    yield
    finally:
        part_var.reset(token)


@contextlib.contextmanager
def emitting(event: str, room: str, traceparent: str, *, part: str) -> Iterator[None]:
    """The socket push of a notification, in the trace of the event it comes from."""
    carrier = {"traceparent": traceparent} if traceparent else {}
    with _tracer_().start_as_current_span(
        f"{event} emit",
        context=propagate.extract(carrier),
        kind=SpanKind.PRODUCER,
        attributes={"socketio.event": event, "socketio.room": room, "shop.part": part},
    ):
        yield


@contextlib.contextmanager
def client_call(method: str, url: str, headers: list[tuple[str, str]], *, part: str) -> Iterator[Any]:
    """A client span around a call made without httpx (the gateway's forwarding); its context is
    appended to ``headers`` (which must hold no trace headers of their own)."""
    with _tracer_().start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url, "shop.part": part},
    ) as span:
        headers.extend(current_headers().items())
        yield span


# --- make dev: spans in the log ----------------------------------------------------------------


class WorkOnly(Sampler):
    """Which spans are recorded: a trace starts only for work someone asked for, and its
    transaction brackets are left out.

    - A span under a parent follows the parent's decision (one trace is whole or absent).
    - A request served, an event published or handled starts a trace, ``ratio`` of them (by
      trace id, so every part that sees the id decides alike).
    - A query, a Redis command or a call with no such parent is a background loop polling (the
      outbox relay, realtime's feed reader, sweepers, readiness checks): a trace a second per
      part that tells nothing, so none is started.
    - ``BEGIN``, ``COMMIT`` and ``ROLLBACK`` are half the spans of a read and say nothing the
      request's own span does not: not recorded (about 60 us each to build and export).

    A span not recorded costs a few microseconds and still carries the trace id on.
    """

    def __init__(self, ratio: float = 1.0) -> None:
        self.ratio = ratio
        self._roots = TraceIdRatioBased(ratio) if ratio < 1.0 else ALWAYS_ON

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if not _enabled or name in _TRANSACTION_BRACKETS:  # stopped (tests): nothing is recorded
            return _DROP
        parent = trace.get_current_span(parent_context).get_span_context()
        if parent.is_valid:
            follow = ALWAYS_ON if parent.trace_flags.sampled else ALWAYS_OFF
            return follow.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if kind in (None, SpanKind.CLIENT, SpanKind.INTERNAL):
            return _DROP
        return self._roots.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"WorkOnly(ratio={self.ratio})"


_TRANSACTION_BRACKETS = frozenset({"BEGIN;", "COMMIT;", "ROLLBACK;", "BEGIN", "COMMIT", "ROLLBACK"})
_DROP = SamplingResult(Decision.DROP)


class _PartAttribute(SpanProcessor):
    """Marks each span with the part whose work it is (``part_var``), for one process of many parts."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        part = part_var.get()
        if part is not None and span.is_recording():
            span.set_attribute("shop.part", part)


class LogSpanExporter(SpanExporter):
    """One log line per finished span, in the shop's log format (``TRACES=console``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            ctx = span.context
            parent = span.parent
            log.info(
                "span",
                name=span.name,
                part=(span.attributes or {}).get("shop.part"),
                trace_id=f"{ctx.trace_id:032x}" if ctx else None,
                span_id=f"{ctx.span_id:016x}" if ctx else None,
                parent_id=f"{parent.span_id:016x}" if parent else None,
                ms=round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 2),
                status=span.status.status_code.name,
            )
        return SpanExportResult.SUCCESS
