"""Traces as deployed: each part its own process, exporting over OTLP/HTTP because
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to a collector stand-in this test runs on loopback.

The in-process test proves the trace's shape; this one proves the deployed configuration:
the setting alone turns tracing on, each process names itself (``service.name``), the batches
arrive as OTLP protobuf, and the trace id crosses the process boundary in ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest_asyncio
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from libs.common.testing import Infra, eventually
from libs.common.testing.apps import free_port

ROOT = Path(__file__).resolve().parents[2]


class Collector:
    """Every span exported to it: (service.name, trace id, span id, parent span id, name, kind)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, bytes, bytes, bytes, str, int]] = []

    async def receive(self, request: web.Request) -> web.Response:
        batch = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in batch.resource_spans:
            service = next(
                a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append((service, s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind))
        return web.Response(body=b"", content_type="application/x-protobuf")


@pytest_asyncio.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    sink = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", sink.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield sink, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def part(module: str, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        # the developer's own trace settings stay out: only what the test sets
        env={
            **{k: v for k, v in os.environ.items() if k != "TRACES" and not k.startswith("OTEL_")},
            **env,
            "PORT": str(port),
            "HOST": "127.0.0.1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # SIGTERM: the provider flushes what it holds at exit
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_healthy(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient() as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            assert time.monotonic() < deadline, f"{url} did not start"
            await asyncio.sleep(0.1)


async def test_each_part_exports_its_spans_of_one_trace_over_otlp(
    infra: Infra, collector: tuple[Collector, str]
) -> None:
    sink, endpoint = collector
    env = {
        **infra.env(),
        "EVENT_BUS": "memory",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_ENABLED": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,  # the one setting: TRACES is left unset
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with part("services.catalog", env) as catalog:
        await wait_healthy(catalog)
        with part("gateway", {**env, "CATALOG_URL": catalog}) as gateway:
            await wait_healthy(gateway)
            async with httpx.AsyncClient(base_url=gateway, timeout=20) as client:
                resp = await client.get("/products?page_size=1")
                assert resp.status_code == 200, resp.text

            async def exported() -> tuple[tuple[str, bytes, bytes, bytes, str, int], ...]:
                edges = [s for s in sink.spans if s[0] == "gateway" and s[4] == "GET /products"]
                served = [s for s in sink.spans if s[0] == "catalog" and s[4] == "GET /products"]
                assert len(edges) == len(served) == 1, sorted({(s[0], s[4]) for s in sink.spans})
                return edges[0], served[0]

            edge, served = await eventually(exported, timeout=20)

    # one trace across the two processes: catalog's request span is a child of the gateway's call
    assert served[1] == edge[1]
    [call] = [s for s in sink.spans if s[0] == "gateway" and s[2] == served[3]]
    assert call[3] == edge[2] and call[5] == 3  # SPAN_KIND_CLIENT, under the gateway's server span
    queries = [s for s in sink.spans if s[0] == "catalog" and s[3] == served[2]]
    assert queries, "catalog's query spans are exported under its request span"
