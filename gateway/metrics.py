"""What the gateway counts, and who may read it.

Every service exposes ``/metrics`` on its internal port; the gateway's port is the
public edge, so its ``/metrics`` answers only a caller holding the internal service
token (``X-Internal-Token``, or ``Authorization: Bearer`` for scrapers that only send
that). Routes are labelled by their table pattern, never the raw path, so the number
of series stays bounded whatever clients send.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common.errors import problem_response
from libs.common.replicas import Replicas

UNMATCHED = "unmatched"


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests_total",
            "Requests answered, by route and status",
            ["service", "route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time to answer, upstream included",
            ["service", "route"],
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.upstream_failures = Counter(
            "gateway_upstream_failures_total",
            "Upstreams that could not be reached (unavailable) or were too slow (timeout)",
            ["service", "kind"],
            registry=self.registry,
        )
        self.websockets = Gauge(
            "gateway_open_websockets", "Socket.IO websockets being relayed", registry=self.registry
        )
        # each series' child, looked up once: labels() validates and locks on every call
        self._answered: dict[tuple[str, str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def observe(
        self, service: str, route: str, scope: Scope, receive: Receive, send: Send, app: ASGIApp
    ) -> None:
        """Run ``app`` for this request and count its answer."""
        status = 500
        start = time.perf_counter()

        async def counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, counting)
        finally:
            took = time.perf_counter() - start
            key = (service, route, scope["method"], status)
            if (answered := self._answered.get(key)) is None:
                answered = self._answered[key] = self.requests.labels(service, route, key[2], str(status))
            answered.inc()
            if (timed := self._timed.get(key[:2])) is None:
                timed = self._timed[key[:2]] = self.latency.labels(service, route)
            timed.observe(took)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def watch_replicas(self, replicas: Replicas) -> None:
        """Report, at each scrape, how many replicas of each upstream are in service and how many set aside."""
        self.registry.register(_ReplicaCollector(replicas))


class _ReplicaCollector(Collector):
    def __init__(self, replicas: Replicas) -> None:
        self.replicas = replicas

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_upstream_replicas",
            "Replicas of each upstream, in service or set aside after failing (libs/common/replicas.py)",
            labels=["service", "state"],
        )
        for name, replica_set in sorted(self.replicas.sets.items()):
            aside = sum(1 for r in replica_set.replicas if r.failures)
            family.add_metric([name, "in_service"], len(replica_set) - aside)
            family.add_metric([name, "set_aside"], aside)
        yield family


async def serve_metrics(
    metrics: GatewayMetrics, token: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """The Prometheus text to the shop's own scrapers; anybody else learns only that it is refused."""
    offered = None
    for name, value in scope["headers"]:
        if name == b"x-internal-token":
            offered = value
        elif name == b"authorization" and offered is None and value[:7].lower() == b"bearer ":
            offered = value[7:].strip()
    if offered is None or not hmac.compare_digest(offered, token.encode()):
        await problem_response(403, "Metrics are for the shop's own monitoring.")(scope, receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode())],
        }
    )
    await send({"type": "http.response.body", "body": metrics.exposition()})
