"""Service-to-service HTTP: pooled httpx client with timeouts and request-id (and trace) propagation.

Only idempotent methods are retried (on connection errors), so a retry never
places an order twice. Transport failures surface as 503/504 domain errors (each with
Retry-After, from ``problem_response``), and a peer that cannot be reached is logged once
per outage (``outages``), with one line when it answers again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from libs.common import tracing
from libs.common.errors import GatewayTimeout, ServiceUnavailable
from libs.common.logging import request_id_var
from libs.common.replicas import Replicas, SpreadingTransport
from libs.common.unavailable import describe, outages

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


async def _propagate_request_id(request: httpx.Request) -> None:
    if (rid := request_id_var.get()) is not None and "x-request-id" not in request.headers:
        request.headers["X-Request-ID"] = rid
    if tracing.enabled() and "traceparent" not in request.headers:
        # the trace goes on even where the httpx instrumentation is suppressed (a trace not
        # recorded): the peer learns it is not recorded instead of starting one of its own
        request.headers.update(tracing.current_headers())


def make_client(
    *,
    base_url: str = "",
    timeout: float = 5.0,
    max_connections: int = 100,
    headers: dict[str, str] | None = None,
    replicas: Replicas | None = None,
) -> httpx.AsyncClient:
    """A pooled client whose requests carry the current request id.

    With ``replicas`` (``settings.replicas()``), a request for a part's first URL goes to each of
    its replicas in turn, a dead one set aside (:mod:`libs.common.replicas`).
    """
    # idle connections are dropped well before the servers' keep-alive timeout (runner: 30 s),
    # so a request is never written onto a connection the server is closing
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections, keepalive_expiry=4.0
    )
    transport: httpx.AsyncBaseTransport = httpx.AsyncHTTPTransport(limits=limits)
    if replicas is not None:
        transport = SpreadingTransport(transport, replicas)
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=2.0),
        headers=headers,
        transport=transport,
        event_hooks={"request": [_propagate_request_id]},
    )


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    retries: int = 2,
    idempotent: bool | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request to another service; 503 when it cannot be reached, 504 when too slow.

    ``idempotent=True`` lets a POST be retried when the receiver de-duplicates it
    (e.g. a reservation keyed by order id); by default only idempotent methods are.
    """
    method = method.upper()
    safe = idempotent if idempotent is not None else method in IDEMPOTENT
    attempts = retries + 1 if safe else 1
    dependency = f"{service} service"
    for attempt in range(1, attempts + 1):
        try:
            # tells a spreading transport it may send the request to another replica after a lost connection
            resp = await client.request(method, url, extensions={"shop.idempotent": safe}, **kwargs)
        except httpx.TimeoutException as exc:
            if attempt == attempts or not isinstance(exc, httpx.ConnectTimeout):
                outages.down(dependency, describe(exc), where=f"{method} {url}")
                raise GatewayTimeout(f"The {service} service did not answer in time.") from exc
        except httpx.TransportError as exc:
            if attempt == attempts:
                outages.down(dependency, describe(exc), where=f"{method} {url}")
                raise ServiceUnavailable(f"The {service} service is unavailable right now.") from exc
        else:
            if resp.status_code in (502, 503, 504):
                outages.down(dependency, f"answered {resp.status_code}", where=f"{method} {url}")
            else:
                outages.up(dependency)
            return resp
        await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
