"""Gateway fixtures: real upstream servers on loopback and the gateway in front of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI, Request, WebSocket
from pydantic import BaseModel, create_model
from starlette.responses import JSONResponse, Response, StreamingResponse

from gateway.app import create_app
from gateway.settings import GatewaySettings
from libs.common.testing import Infra, TestKeys, serve_app, settings_for
from libs.common.testing.apps import free_port

GENEROUS = {"default": {"rate": 1000, "burst": 1000}}


class Page(BaseModel):
    items: list[str]


class Product(BaseModel):
    name: str


# the same schema name as auth's Page with another body: the merged document must keep both
CatalogPage = create_model("Page", items=(list[int], ...), total=(int, ...))


def upstream_app(name: str) -> FastAPI:
    """A stand-in service: a few declared routes (for its OpenAPI) and an echo of everything else."""
    app = FastAPI(title=name)

    if name == "auth":

        @app.get("/users/me")
        async def me() -> Page:
            return Page(items=["auth"])

        @app.get("/internal/secret")
        async def secret() -> dict[str, str]:
            return {"secret": "never through the gateway"}
    else:

        @app.get("/categories/{id_or_slug}")
        async def category(id_or_slug: str) -> Product:
            return Product(name=id_or_slug)

        @app.post("/admin/categories", response_model=CatalogPage)
        async def add_category(product: Product) -> Any:
            return {"items": [1], "total": 1}

    @app.websocket("/socket.io/")
    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            text = await ws.receive_text()
            await ws.send_text(f"{name} echo: {text}")

    @app.api_route(
        "/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )
    async def echo(request: Request, path: str) -> Response:
        body = b"".join([chunk async for chunk in request.stream()])
        q = request.query_params
        if "sleep" in q:
            await asyncio.sleep(float(q["sleep"]))
        if "status" in q:
            resp = Response(
                b'{"type":"about:blank","title":"Conflict","status":409,"detail":"Already taken."}',
                status_code=int(q["status"]),
                media_type="application/problem+json",
                headers={"X-Custom": "kept", "Cache-Control": "no-store"},
            )
            resp.set_cookie("a", "1")
            resp.set_cookie("b", "2")
            return resp
        if "stream" in q:  # chunked, no Content-Length

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(int(q["stream"])):
                    yield b"%06d" % i + b"z" * 4090

            return StreamingResponse(chunks(), media_type="application/octet-stream")
        if "raw" in q:
            return Response(body, media_type=request.headers.get("content-type", "application/octet-stream"))
        scope = request.scope
        return JSONResponse(
            {
                "service": name,
                "method": request.method,
                "path": scope["path"],
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "body_len": len(body),
                "client_port": scope["client"][1] if scope.get("client") else None,
            }
        )

    return app


def seen_headers(echo: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in echo["headers"]:
        out.setdefault(k, []).append(v)
    return out


@pytest_asyncio.fixture(scope="session")
async def upstreams() -> AsyncIterator[dict[str, str]]:
    """auth and catalog as two distinct servers; the others share one echo server."""
    async with (
        serve_app(upstream_app("auth")) as auth,
        serve_app(upstream_app("catalog")) as catalog,
        serve_app(upstream_app("echo")) as echo,
    ):
        yield {
            "auth_url": auth,
            "catalog_url": catalog,
            "cart_url": echo,
            "payments_url": echo,
            "realtime_url": echo,
            # nothing listens here: a stopped service
            "orders_url": f"http://127.0.0.1:{free_port()}",
        }


def gateway_settings(
    infra: Infra, keys: TestKeys, upstreams: dict[str, str], **overrides: Any
) -> GatewaySettings:
    values: dict[str, Any] = {
        **upstreams,
        "rate_limits": GENEROUS,
        "upstream_timeouts": {"default": 0.5, "socket": 5.0},
        "cors_origins": ["https://shop.example"],
        "openapi_cache_seconds": 0.0,
    }
    values.update(overrides)
    return settings_for(GatewaySettings, infra, keys, **values)


@contextlib.asynccontextmanager
async def gateway_client(
    settings: GatewaySettings, *, client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in-process (its lifespan entered) with a client that appears to come from ``client_ip``."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test", timeout=30) as client:
            yield client


@pytest_asyncio.fixture(scope="session")
async def gw(infra: Infra, keys: TestKeys, upstreams: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(gateway_settings(infra, keys, upstreams)) as client:
        yield client
