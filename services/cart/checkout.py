"""The checkout quote: the caller's cart priced by pricing for an address (shipping, tax, promotions).

Cart knows the lines at today's prices; pricing owns the rules. What pricing refuses on the
merits (no shipping to that address, an unknown shipping method) comes back as its problem;
a coupon that does not apply is a 422 saying why, with the quote without it (`quote`), so a
checkout page can show the error next to the code field and the totals at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import DomainError, ServiceUnavailable, Unprocessable
from libs.common.http import call
from services.cart import service as cart_service
from services.cart.context import CartContext
from services.cart.schemas import CheckoutQuoteCreate


class PricingRefused(DomainError):
    """Pricing's own 4xx problem, passed on as it said it."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        extra = {
            k: v for k, v in body.items() if k not in ("type", "title", "status", "detail", "request_id")
        }
        super().__init__(
            str(body.get("detail") or "The quote was refused."), title=body.get("title"), **extra
        )
        self.status = status


async def quote(
    *, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID, data: CheckoutQuoteCreate
) -> dict[str, Any]:
    """Price the caller's cart for an address; 422 when it is empty or a typed coupon does not apply."""
    cart = await cart_service.get_cart(ctx=ctx, session=session, user_id=user_id)
    lines = [
        {"product_id": str(i.product_id), "unit_price": i.unit_price, "quantity": i.quantity}
        for i in cart.items
        if i.availability == "available"
    ]
    if not lines:
        raise Unprocessable("Your cart has nothing that can be bought right now.", title="Empty cart")
    body: dict[str, Any] = {
        "currency": cart.currency,
        "lines": lines,
        "customer_id": str(user_id),
        "shipping_address": data.shipping_address.model_dump(mode="json"),
    }
    if data.shipping_method_id is not None:
        body["shipping_method_id"] = str(data.shipping_method_id)
    if data.coupon_code is not None:
        body["coupon_code"] = data.coupon_code
    resp = await call(
        ctx.http,
        "POST",
        f"{ctx.settings.pricing_url}/internal/quotes",
        service="pricing",
        idempotent=True,
        json=body,
        timeout=ctx.settings.pricing_timeout,
        headers={INTERNAL_TOKEN_HEADER: ctx.settings.internal_api_token.get_secret_value()},
    )
    if 400 <= resp.status_code < 500:
        problem = resp.json()
        # pricing names its own fields; the caller sent shipping_address, shipping_method_id and coupon_code
        raise PricingRefused(resp.status_code, problem if isinstance(problem, dict) else {})
    if resp.status_code != 200:
        raise ServiceUnavailable("The pricing service is unavailable right now.")
    answer: dict[str, Any] = resp.json()
    answer["unavailable_items"] = [str(i.id) for i in cart.items if i.availability != "available"]
    coupon = answer.get("coupon")
    if coupon is not None and not coupon.get("applied"):
        raise Unprocessable(
            coupon.get("detail") or "This code does not apply.",
            title="Coupon does not apply",
            reason=coupon.get("reason"),
            shortfall=coupon.get("shortfall"),
            quote=answer,
            errors=[
                {
                    "field": "coupon_code",
                    "message": coupon.get("detail") or "does not apply",
                    "type": coupon.get("reason") or "not_applicable",
                }
            ],
        )
    return answer
