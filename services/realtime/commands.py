"""Admin commands over the socket, performed through the owning service's admin REST route."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from libs.common.errors import DomainError, validation_errors
from services.realtime.schemas import Done, Problem, Refused


class _Command(BaseModel):
    model_config = ConfigDict(extra="allow")
    request_id: str | None = Field(None, max_length=128)


class CategoryAdd(_Command):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    parent_id: uuid.UUID | None = None
    image_url: str | None = Field(None, max_length=2000)
    position: int | None = None


class CategoryUpdate(_Command):
    id: uuid.UUID
    name: str | None = Field(None, min_length=1, max_length=200)
    slug: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    parent_id: uuid.UUID | None = None
    image_url: str | None = Field(None, max_length=2000)
    position: int | None = None


class ById(_Command):
    id: uuid.UUID


class ProductAdd(_Command):
    name: str = Field(min_length=1, max_length=300)
    price: int = Field(ge=0)
    sku: str = Field(min_length=1, max_length=100)
    category_id: uuid.UUID
    slug: str | None = Field(None, min_length=1, max_length=300)
    currency: str | None = Field(None, min_length=3, max_length=3)
    compare_at_price: int | None = Field(None, ge=0)
    description: str | None = Field(None, max_length=20000)
    stock: int | None = Field(None, ge=0)
    images: list[str] | None = None
    attributes: dict[str, Any] | None = None
    is_active: bool | None = None


class ProductUpdate(_Command):
    id: uuid.UUID
    name: str | None = Field(None, min_length=1, max_length=300)
    price: int | None = Field(None, ge=0)
    sku: str | None = Field(None, min_length=1, max_length=100)
    category_id: uuid.UUID | None = None
    slug: str | None = Field(None, min_length=1, max_length=300)
    currency: str | None = Field(None, min_length=3, max_length=3)
    compare_at_price: int | None = Field(None, ge=0)
    description: str | None = Field(None, max_length=20000)
    stock: int | None = Field(None, ge=0)
    images: list[str] | None = None
    attributes: dict[str, Any] | None = None
    is_active: bool | None = None


class OrderStatusUpdate(_Command):
    order_id: uuid.UUID
    status: str = Field(min_length=1, max_length=40)
    reason: str | None = Field(None, max_length=500)


# command -> (payload model, HTTP method, path template (its fields are not sent in the body), upstream)
COMMANDS: dict[str, tuple[type[_Command], str, str, str]] = {
    "category:add": (CategoryAdd, "POST", "/admin/categories", "catalog_url"),
    "category:update": (CategoryUpdate, "PATCH", "/admin/categories/{id}", "catalog_url"),
    "category:delete": (ById, "DELETE", "/admin/categories/{id}", "catalog_url"),
    "product:add": (ProductAdd, "POST", "/admin/products", "catalog_url"),
    "product:update": (ProductUpdate, "PATCH", "/admin/products/{id}", "catalog_url"),
    "product:delete": (ById, "DELETE", "/admin/products/{id}", "catalog_url"),
    "order:updateStatus": (OrderStatusUpdate, "PATCH", "/admin/orders/{order_id}/status", "orders_url"),
}


def refused(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return Refused(ok=False, error=Problem(status=status, title=title, detail=detail, **extra)).model_dump(
        mode="json", exclude_unset=True)


async def perform(*, name: str, payload: Any, token: str, http: httpx.AsyncClient, base_urls: dict[str, str],
                  timeout: float) -> dict[str, Any]:
    """Validate, then call the admin route with the admin's token; the ack carries its answer."""
    model, method, template, upstream = COMMANDS[name]
    if not isinstance(payload, dict):
        return refused(422, "Validation failed", "The command needs an object payload.")
    try:
        cmd = model.model_validate(payload)
    except ValidationError as exc:
        return refused(422, "Validation failed", "The command is not valid.",
                       errors=validation_errors(exc.errors()))
    fields = cmd.model_dump(mode="json", exclude_unset=True, exclude={"request_id"})
    path_keys = [k for k in ("id", "order_id") if "{" + k + "}" in template]
    path = template.format(**{k: fields.pop(k) for k in path_keys})
    try:
        resp = await http.request(method, base_urls[upstream] + path, headers={"Authorization": f"Bearer {token}"},
                                  json=fields if method != "DELETE" else None, timeout=timeout)
    except httpx.TimeoutException:
        return refused(504, "Gateway timeout", "The service did not answer in time.")
    except httpx.TransportError:
        return refused(503, "Service unavailable", "The service is unavailable right now.")
    body: Any = None
    if resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = None
    if resp.status_code >= 400:
        # the owning service's problem travels unchanged (errors, allowed moves, short items...)
        problem = body if isinstance(body, dict) else {}
        service = upstream.removesuffix("_url")
        return refused(resp.status_code, str(problem.get("title") or "Refused"),
                       str(problem.get("detail") or f"The {service} service refused it."),
                       **{k: v for k, v in problem.items() if k not in ("status", "title", "detail")})
    return Done(ok=True, data=body).model_dump(mode="json")


async def once(redis: Redis, key: str, run: Callable[[], Awaitable[dict[str, Any]]], *,
               ttl: int = 600) -> dict[str, Any]:
    """Run a command once per key: a retried command (lost ack) gets the first result."""
    claimed = await redis.set(key, b"", nx=True, ex=ttl)
    if not claimed:
        for _ in range(200):
            stored = await redis.get(key)
            if stored:
                return orjson.loads(stored)
            await asyncio.sleep(0.05)
        return refused(409, "Conflict", "The same request is still running.")
    try:
        result = await run()
    except DomainError as exc:
        result = refused(exc.status, exc.title, exc.detail)
    except BaseException:
        await redis.delete(key)
        raise
    if result.get("ok") is False and result["error"]["status"] >= 500:
        # nothing is known to have happened: a retry may try again instead of replaying the outage
        await redis.delete(key)
    else:
        await redis.set(key, orjson.dumps(result), ex=ttl)
    return result
