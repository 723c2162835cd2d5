"""Calls to the services orders depends on synchronously: cart (what to order), catalog (reserve
stock), pricing (the breakdown, claiming the promotions it uses).

Both catalog and pricing hold something under the order id until the order exists (stock, coupon
uses), and both give it back idempotently on ``release``: a placement that fails after reserving
releases the two together, so a refused coupon or a pricing outage leaves no stock held.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import (
    PROBLEM_BASE,
    PROBLEM_TYPES,
    Conflict,
    DomainError,
    ServiceUnavailable,
    Unprocessable,
)
from libs.common.http import call
from libs.common.logging import get_logger
from libs.contracts.breakdown import Breakdown
from services.orders.context import OrdersContext

log = get_logger(__name__)


class ReservedItem(BaseModel):
    product_id: uuid.UUID
    # the variant catalog reserved (a line naming its product alone gets the only one)
    variant_id: uuid.UUID | None = None
    sku: str | None = None
    title: str | None = None
    name: str
    unit_price: int
    quantity: int
    currency: str | None = None


class Reservation(BaseModel):
    """Catalog's answer: the authoritative names and unit prices of what it reserved."""

    order_id: uuid.UUID
    status: str = "reserved"
    items: list[ReservedItem]
    currency: str


def _timeout(ctx: OrdersContext) -> float:
    return ctx.settings.catalog_timeout


def _headers(ctx: OrdersContext) -> dict[str, str]:
    return {INTERNAL_TOKEN_HEADER: ctx.settings.internal_api_token.get_secret_value()}


Line = tuple[uuid.UUID, uuid.UUID | None, int]  # product_id, variant_id (None: its only one), quantity


async def cart_items(ctx: OrdersContext, *, user_id: uuid.UUID) -> list[Line]:
    """The (product_id, variant_id, quantity) lines in the user's cart; an unknown cart is an empty one."""
    resp = await call(
        ctx.http,
        "GET",
        f"{ctx.settings.cart_url}/internal/carts/{user_id}",
        service="cart",
        headers=_headers(ctx),
    )
    if resp.status_code == 404:
        return []
    if resp.status_code != 200:
        log.warning("cart_unexpected_answer", status=resp.status_code)
        raise ServiceUnavailable("The cart service is unavailable right now.")
    try:
        items = resp.json().get("items") or []
        return [
            (
                uuid.UUID(str(i["product_id"])),
                uuid.UUID(str(i["variant_id"])) if i.get("variant_id") else None,
                int(i["quantity"]),
            )
            for i in items
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServiceUnavailable("The cart service answered in an unexpected way.") from exc


async def reserve(ctx: OrdersContext, *, order_id: uuid.UUID, items: list[Line]) -> Reservation:
    """Reserve every item for ``order_id`` (all or nothing); 409 names what is short.

    When the outcome is unknown (timeout, broken answer) the caller's placement is what gets
    the stock back (placements.settle), so nothing is released from here.
    """
    body = {
        "order_id": str(order_id),
        "items": [
            {"product_id": str(pid), "quantity": qty, **({"variant_id": str(vid)} if vid else {})}
            for pid, vid, qty in items
        ],
    }
    resp = await call(
        ctx.http,
        "POST",
        f"{ctx.settings.catalog_url}/internal/reservations",
        service="catalog",
        headers=_headers(ctx),
        json=body,
        timeout=_timeout(ctx),
        idempotent=True,
    )  # catalog de-duplicates by order_id
    if resp.status_code in (200, 201):
        try:
            reservation = Reservation.model_validate(resp.json())
        except (ValidationError, ValueError) as exc:
            raise ServiceUnavailable("The catalog service answered in an unexpected way.") from exc
        if reservation.status != "reserved":
            # this order id's reservation was already released (its placement was given up as
            # abandoned): an order must not be built on it; a retry gets a new order id
            raise ServiceUnavailable(
                "This checkout attempt was given up; nothing was ordered. Please retry.",
                headers={"Retry-After": "1"},
            )
        return reservation
    problem = _json(resp)
    if resp.status_code == 409:
        short = [
            {
                "product_id": s.get("product_id"),
                **{k: s[k] for k in ("variant_id", "sku") if k in s},
                "requested": s.get("requested"),
                "available": s.get("available"),
            }
            for s in problem.get("short") or []
            if isinstance(s, dict)
        ]
        names = ", ".join(
            f"{s['product_id']} (requested {s['requested']}, available {s['available']})" for s in short
        )
        raise Conflict(
            f"Not enough stock for: {names}." if short else "Not enough stock for this order.",
            title="Insufficient stock",
            type_="insufficient-stock",
            short=short,
        )
    if resp.status_code in (400, 404, 422):
        # catalog refused the items themselves (unknown or inactive product): nothing was reserved
        extra = {
            k: v for k, v in problem.items() if k in ("errors", "unknown", "unavailable", "short", "products")
        }
        slug = str(problem.get("type") or "").removeprefix(PROBLEM_BASE)
        raise Unprocessable(
            str(problem.get("detail") or "Some items cannot be ordered."),
            type_=slug if slug in PROBLEM_TYPES else None,
            **extra,
        )
    log.warning("catalog_unexpected_answer", status=resp.status_code)
    raise ServiceUnavailable("The catalog service is unavailable right now.")


async def price(
    ctx: OrdersContext,
    *,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    reservation: Reservation,
    shipping_address: dict[str, Any],
    shipping_method_id: uuid.UUID | None,
    coupon_code: str | None,
) -> Breakdown:
    """Pricing's breakdown over the prices catalog reserved at, its promotions claimed for this order.

    Idempotent on the order id at pricing. A refusal on the merits (a coupon that does not apply,
    no shipping to the address, an unknown method) is a 422 that says why, as the checkout quote
    says it; when the outcome is unknown the placement's release gives any claim back.
    """
    body: dict[str, Any] = {
        "order_id": str(order_id),
        "customer_id": str(user_id),
        "currency": reservation.currency,
        "lines": [
            {"product_id": str(i.product_id), "unit_price": i.unit_price, "quantity": i.quantity}
            for i in reservation.items
        ],
        "shipping_address": shipping_address,
    }
    if shipping_method_id is not None:
        body["shipping_method_id"] = str(shipping_method_id)
    if coupon_code is not None:
        body["coupon_code"] = coupon_code
    try:
        resp = await call(
            ctx.http,
            "POST",
            f"{ctx.settings.pricing_url}/internal/quotes",
            service="pricing",
            headers=_headers(ctx),
            json=body,
            timeout=ctx.settings.pricing_timeout,
            idempotent=True,
        )  # pricing replays its answer for the same order id
    except DomainError as exc:
        raise _pricing_unavailable() from exc
    if resp.status_code == 200:
        try:
            return Breakdown.model_validate(_json(resp).get("breakdown"))
        except ValidationError as exc:
            log.warning("pricing_unexpected_answer", status=200)
            raise _pricing_unavailable() from exc
    if resp.status_code == 422:
        problem = _json(resp)
        extra = {k: v for k, v in problem.items() if k in ("errors", "reason", "code", "shortfall")}
        raise Unprocessable(
            str(problem.get("detail") or "This order cannot be priced as asked."),
            title=str(problem.get("title") or "Cannot be priced"),
            **extra,
        )
    log.warning("pricing_unexpected_answer", status=resp.status_code)
    raise _pricing_unavailable()


def _pricing_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "Prices cannot be worked out right now; nothing was ordered. Please retry.",
        headers={"Retry-After": "5"},
    )


async def release(ctx: OrdersContext, *, order_id: uuid.UUID) -> bool:
    """Give back what catalog (stock) and pricing (promotion uses) hold for ``order_id``; True once
    both confirmed it.

    Idempotent on both sides, and final at catalog: it refuses a later reservation under this id.
    """
    settings = ctx.settings
    released_stock = await _release(
        ctx,
        "catalog",
        f"{settings.catalog_url}/internal/reservations/{order_id}/release",
        timeout=settings.catalog_timeout,
        order_id=order_id,
    )
    released_claims = await _release(
        ctx,
        "pricing",
        f"{settings.pricing_url}/internal/orders/{order_id}/release",
        timeout=settings.pricing_timeout,
        order_id=order_id,
    )
    return released_stock and released_claims


async def _release(
    ctx: OrdersContext, service: str, url: str, *, timeout: float, order_id: uuid.UUID
) -> bool:
    """One idempotent release call; False (logged) when it did not confirm, so the caller tries again."""
    try:
        resp = await call(
            ctx.http, "POST", url, service=service, headers=_headers(ctx), timeout=timeout, idempotent=True
        )
    except DomainError as exc:
        log.warning("release_failed", service=service, order_id=str(order_id), error=exc.detail)
        return False
    if resp.status_code != 200:
        log.warning("release_refused", service=service, order_id=str(order_id), status=resp.status_code)
        return False
    return True


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
