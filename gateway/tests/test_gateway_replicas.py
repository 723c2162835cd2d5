"""A part listed as several replicas (``CATALOG_URL=a,b``): spread in turn, a dead one set aside, retried elsewhere."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from fastapi import FastAPI, Request
from gateway_testkit import gateway_client, gateway_settings, upstream_app
from starlette.responses import PlainTextResponse

from gateway.app import create_app
from libs.common import replicas as replicas_module
from libs.common.testing import Infra, TestKeys, assert_problem, serve_app
from libs.common.testing.apps import free_port


@contextlib.asynccontextmanager
async def dropping_server() -> AsyncIterator[str]:
    """A replica that reads a request and dies with it: the connection closes with no answer."""
    hits = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            hits += 1
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def served_by(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return str(resp.json()["service"])


async def test_requests_are_spread_over_a_parts_replicas_in_turn(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    async with serve_app(upstream_app("catalog-a")) as a, serve_app(upstream_app("catalog-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, catalog_url=f"{a},{b}")
        async with gateway_client(settings) as gw:
            seen = collections.Counter([served_by(await gw.get("/products")) for _ in range(10)])
    assert seen == {"catalog-a": 5, "catalog-b": 5}


async def test_a_replica_refusing_connections_costs_no_request_and_is_set_aside(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    """Nothing reached the dead replica, so even a POST without a key is sent to the living one."""
    dead = f"http://127.0.0.1:{free_port()}"
    async with serve_app(upstream_app("catalog-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, catalog_url=f"{dead},{b}")
        async with gateway_client(settings) as gw:
            replicas = gw._transport.app.state.gateway.state.replicas["catalog"]
            answers = [await gw.get("/products") for _ in range(4)]
            answers += [
                await gw.post("/admin/products", json={"name": "x"}, headers=keys.bearer(role="admin"))
            ]
            assert [r.status_code for r in answers] == [200] * 5
            dead_replica = replicas.replicas[0]
            # set aside after the first refusal: it was tried once, not once per request
            assert dead_replica.failures == 1 and dead_replica.ejected_until > 0
            token = settings.internal_api_token.get_secret_value()
            metrics = (await gw.get("/metrics", headers={"X-Internal-Token": token})).text
    assert 'gateway_upstream_replicas{service="catalog",state="set_aside"} 1.0' in metrics
    assert 'gateway_upstream_replicas{service="catalog",state="in_service"} 1.0' in metrics
    assert 'gateway_upstream_replicas{service="auth",state="in_service"} 1.0' in metrics


async def test_a_replica_that_dies_mid_request_is_retried_only_when_repeating_is_harmless(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], monkeypatch: Any
) -> None:
    # never set aside for long: the requests that may go to a replica on probation meet it again in turn
    monkeypatch.setattr(replicas_module, "MAX_EJECTION", 0.0)
    monkeypatch.setattr(replicas_module, "FIRST_EJECTION", 0.0)
    admin = keys.bearer(role="admin")
    async with dropping_server() as dropping, serve_app(upstream_app("catalog-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, catalog_url=f"{dropping},{b}")
        async with gateway_client(settings) as gw:
            # a POST without a key may have been acted on: it is not sent twice, the caller gets a clean 503
            plain = [await gw.post("/admin/products", json={}, headers=admin) for _ in range(2)]
            assert sorted(r.status_code for r in plain) == [200, 503]
            refused = next(r for r in plain if r.status_code == 503)
            assert_problem(refused, 503)
            assert refused.headers["retry-after"]
            # from then on such a POST goes only to a replica that has not failed since
            assert [
                (await gw.post("/admin/products", json={}, headers=admin)).status_code for _ in range(4)
            ] == [200] * 4
            # what may be repeated still meets the failed replica in turn, and is sent again to the other
            gets = [await gw.get("/products") for _ in range(4)]
            keyed = [
                await gw.post("/admin/products", json={"n": i}, headers={**admin, "Idempotency-Key": f"k{i}"})
                for i in range(4)
            ]
            replica = gw._transport.app.state.gateway.state.replicas["catalog"].replicas[0]
    assert all(served_by(r) == "catalog-b" for r in gets + keyed)
    assert replica.failures >= 3, "the requests that may be repeated were not sent to the failed replica"


async def test_a_replica_back_after_its_back_off_passes_its_health_check_and_gets_every_request_again(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(replicas_module, "FIRST_EJECTION", 0.3)
    monkeypatch.setattr(replicas_module, "MAX_EJECTION", 0.3)
    port = free_port()
    admin = keys.bearer(role="admin")
    async with serve_app(upstream_app("catalog-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, catalog_url=f"http://127.0.0.1:{port},{b}")
        async with gateway_client(settings) as gw:
            assert {served_by(await gw.get("/products")) for _ in range(4)} == {"catalog-b"}
            async with serve_app(upstream_app("catalog-a"), port=port):
                await asyncio.sleep(0.8)  # no request meanwhile: only the health check can take it back
                # a POST without a key goes only to a replica in good standing
                seen = collections.Counter(
                    [served_by(await gw.post("/admin/products", json={}, headers=admin)) for _ in range(10)]
                )
    assert seen == {"catalog-a": 5, "catalog-b": 5}, seen


async def test_the_other_services_calls_are_spread_by_the_same_client(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    """libs.common.http.make_client with a settings' replicas: what every service calls its peers with."""
    from libs.common.http import call, make_client

    dead = f"http://127.0.0.1:{free_port()}"
    async with serve_app(upstream_app("catalog-a")) as a, serve_app(upstream_app("catalog-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, catalog_url=f"{a},{dead},{b}")
        assert settings.catalog_url == a and settings.replica_urls("catalog") == [a, dead, b]
        async with make_client(replicas=settings.replicas()) as http:
            seen = [
                (await call(http, "GET", f"{settings.catalog_url}/products", service="catalog")).json()[
                    "service"
                ]
                for _ in range(6)
            ]
            posted = await http.post(f"{settings.catalog_url}/anything", json={"a": 1})
    assert set(seen) == {"catalog-a", "catalog-b"} and posted.status_code == 200


def polling_realtime(name: str) -> FastAPI:
    """A stand-in realtime replica: a polling handshake gives out a sid; a later poll says who answered."""
    app = FastAPI()
    sids: set[str] = set()

    @app.api_route("/socket.io/", methods=["GET", "POST"])
    async def poll(request: Request) -> PlainTextResponse:
        sid = request.query_params.get("sid")
        if sid is None:
            sid = f"{name}-{len(sids)}"
            sids.add(sid)
            return PlainTextResponse('0{"sid":"' + sid + '","upgrades":["websocket"],"pingInterval":25000}')
        if sid not in sids:
            return PlainTextResponse('"Invalid session"', status_code=400)
        return PlainTextResponse(f"{name} knows {sid}")

    return app


async def test_a_long_polling_session_stays_with_the_replica_that_opened_it(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    async with serve_app(polling_realtime("rt-a")) as a, serve_app(polling_realtime("rt-b")) as b:
        settings = gateway_settings(infra, keys, upstreams, realtime_url=f"{a},{b}")
        async with gateway_client(settings) as gw:
            handshakes = [await gw.get("/socket.io/?EIO=4&transport=polling") for _ in range(4)]
            sids = [r.text.split('"sid":"')[1].split('"')[0] for r in handshakes]
            assert {s.split("-")[1] for s in sids} == {"a", "b"}  # new sessions are spread
            for sid in sids:
                for _ in range(3):
                    resp = await gw.get(f"/socket.io/?EIO=4&transport=polling&sid={sid}")
                    assert resp.status_code == 200 and resp.text.endswith(f"knows {sid}"), resp.text


async def test_websockets_are_spread_and_a_dead_realtime_replica_is_skipped(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with serve_app(upstream_app("rt-a")) as a, serve_app(upstream_app("rt-b")) as b:
        app = create_app(gateway_settings(infra, keys, upstreams, realtime_url=f"{a},{dead},{b}"))
        async with serve_app(app) as base, aiohttp.ClientSession() as session:
            url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
            answered = []
            for _ in range(6):
                async with session.ws_connect(url) as ws:
                    await ws.send_str("hi")
                    msg = await ws.receive(timeout=5)
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    answered.append(msg.data.split(" ")[0])
    seen = collections.Counter(answered)
    assert set(seen) == {"rt-a", "rt-b"} and min(seen.values()) >= 2, seen
