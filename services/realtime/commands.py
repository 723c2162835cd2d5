"""Admin commands over the socket, performed through the owning service's admin REST route.

Realtime keeps no copy of the owner's rules: the payload goes to the route as its JSON
body (less ``request_id`` and the id that names the resource in the path), and the ack
carries the owner's answer or its problem, ``errors`` included. Realtime checks only what
it needs to build the request: an object payload and, where the path names a resource,
an id that is a UUID (so no payload can steer the request to another route).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from libs.common.errors import DomainError, domain_problem
from services.realtime.schemas import (
    CategoryAddCommand,
    CategoryUpdateCommand,
    Command,
    Done,
    OrderStatusCommand,
    Problem,
    ProductAddCommand,
    ProductUpdateCommand,
    PromotionAddCommand,
    PromotionUpdateCommand,
    Refused,
    ResourceCommand,
)

# command -> (payload as documented, HTTP method, path template (its field is not sent in the body), upstream)
COMMANDS: dict[str, tuple[type[Command], str, str, str]] = {
    "category:add": (CategoryAddCommand, "POST", "/admin/categories", "catalog_url"),
    "category:update": (CategoryUpdateCommand, "PATCH", "/admin/categories/{id}", "catalog_url"),
    "category:delete": (ResourceCommand, "DELETE", "/admin/categories/{id}", "catalog_url"),
    "product:add": (ProductAddCommand, "POST", "/admin/products", "catalog_url"),
    "product:update": (ProductUpdateCommand, "PATCH", "/admin/products/{id}", "catalog_url"),
    "product:delete": (ResourceCommand, "DELETE", "/admin/products/{id}", "catalog_url"),
    "order:updateStatus": (OrderStatusCommand, "PATCH", "/admin/orders/{order_id}/status", "orders_url"),
    "promotion:add": (PromotionAddCommand, "POST", "/admin/promotions", "pricing_url"),
    "promotion:update": (PromotionUpdateCommand, "PATCH", "/admin/promotions/{id}", "pricing_url"),
    "promotion:delete": (ResourceCommand, "DELETE", "/admin/promotions/{id}", "pricing_url"),
}


def refused(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return Refused(ok=False, error=Problem(status=status, title=title, detail=detail, **extra)).model_dump(
        mode="json", exclude_unset=True
    )


def refused_by(exc: DomainError) -> dict[str, Any]:
    """A DomainError as the ack of a refused command: the same problem members REST would answer."""
    return Refused(ok=False, error=Problem(**domain_problem(exc))).model_dump(mode="json", exclude_unset=True)


async def perform(
    *, name: str, payload: Any, token: str, http: httpx.AsyncClient, base_urls: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Call the admin route with the admin's token; the ack carries its answer or its problem."""
    _, method, template, upstream = COMMANDS[name]
    if not isinstance(payload, dict):
        return refused(422, "Validation failed", "The command needs an object payload.")
    body = {k: v for k, v in payload.items() if k != "request_id"}
    path_key = next((k for k in ("id", "order_id") if "{" + k + "}" in template), None)
    if path_key is not None:
        try:
            resource = uuid.UUID(str(body.pop(path_key)))
        except (KeyError, ValueError):
            return refused(
                422,
                "Validation failed",
                f"The command needs {path_key}, the resource's UUID.",
                errors=[{"field": path_key, "message": "a UUID is required", "type": "uuid_parsing"}],
            )
        path = template.format(**{path_key: resource})
    else:
        path = template
    try:
        resp = await http.request(
            method,
            base_urls[upstream] + path,
            headers={"Authorization": f"Bearer {token}"},
            json=body if method != "DELETE" else None,
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return refused(504, "Gateway timeout", "The service did not answer in time.")
    except httpx.TransportError:
        return refused(503, "Service unavailable", "The service is unavailable right now.")
    answer: Any = None
    if resp.content:
        try:
            answer = resp.json()
        except ValueError:
            answer = None
    if resp.status_code >= 400:
        # the owning service's problem travels unchanged (errors, allowed moves, short items...)
        problem = answer if isinstance(answer, dict) else {}
        service = upstream.removesuffix("_url")
        return refused(
            resp.status_code,
            str(problem.get("title") or "Refused"),
            str(problem.get("detail") or f"The {service} service refused it."),
            **{k: v for k, v in problem.items() if k not in ("status", "title", "detail")},
        )
    return Done(ok=True, data=answer).model_dump(mode="json")


def fingerprint(name: str, payload: Any) -> str:
    """What a command asks for, so a reused request_id with another payload is told apart."""
    return hashlib.sha256(
        name.encode() + b"\0" + orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()


async def once(
    redis: Redis, key: str, run: Callable[[], Awaitable[dict[str, Any]]], *, fingerprint: str, ttl: int = 600
) -> dict[str, Any]:
    """Run a command once per key: a retried command (lost ack) gets the first result.

    The key is claimed together with the payload's fingerprint: the same request_id with
    another payload is refused (422), as REST refuses a reused Idempotency-Key.
    """
    claim = orjson.dumps({"fingerprint": fingerprint})
    claimed = await redis.set(key, claim, nx=True, ex=ttl)
    if not claimed:
        for _ in range(200):
            stored = orjson.loads(await redis.get(key) or claim)
            if stored.get("fingerprint") != fingerprint:
                return refused(
                    422,
                    "Request id reused",
                    "This request_id was already used for a different command or payload; "
                    "send a new request_id.",
                )
            if "result" in stored:
                return stored["result"]
            await asyncio.sleep(0.05)
        return refused(409, "Conflict", "The same request is still running.")
    try:
        result = await run()
    except DomainError as exc:
        result = refused_by(exc)
    except BaseException:
        await redis.delete(key)
        raise
    if result.get("ok") is False and result["error"]["status"] >= 500:
        # nothing is known to have happened: a retry may try again instead of replaying the outage
        await redis.delete(key)
    else:
        await redis.set(key, orjson.dumps({"fingerprint": fingerprint, "result": result}), ex=ttl)
    return result
