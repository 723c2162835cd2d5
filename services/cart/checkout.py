"""The checkout quote: the caller's cart priced by pricing for an address (shipping, tax, promotions).

Cart knows the lines at today's prices; pricing owns the rules. What pricing refuses on the
merits (no shipping to that address, an unknown shipping method) comes back as its problem;
a coupon that does not apply is a 422 saying why, with the quote without it (`quote`), so a
checkout page can show the error next to the code field and the totals at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import DomainError, ServiceUnavailable, Unprocessable
from libs.common.http import call
from services.cart import service as cart_service
from services.cart.context import CartContext
from services.cart.schemas import CheckoutQuoteCreate, ShippingAddress


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
    address = data.shipping_address or await _saved_address(ctx, user_id=user_id, address_id=data.address_id)
    body: dict[str, Any] = {
        "currency": cart.currency,
        "lines": lines,
        "customer_id": str(user_id),
        "shipping_address": address.model_dump(mode="json"),
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


async def _saved_address(
    ctx: CartContext, *, user_id: uuid.UUID, address_id: uuid.UUID | None
) -> ShippingAddress:
    """An entry of the caller's address book (auth's), as orders will read it at placement."""
    assert address_id is not None  # CheckoutQuoteCreate requires one of the two
    unavailable = ServiceUnavailable(
        "Your saved address cannot be read right now. Please retry.", headers={"Retry-After": "5"}
    )
    try:
        resp = await call(
            ctx.http,
            "GET",
            f"{ctx.settings.auth_url}/internal/users/{user_id}/addresses/{address_id}",
            service="auth",
            headers={INTERNAL_TOKEN_HEADER: ctx.settings.internal_api_token.get_secret_value()},
        )
    except DomainError as exc:
        raise unavailable from exc
    if resp.status_code == 404:
        raise Unprocessable(
            "address_id is not one of your saved addresses.",
            type_="validation-failed",
            errors=[{"field": "address_id", "message": "not in your address book", "type": "value_error"}],
        )
    if resp.status_code != 200:
        raise unavailable
    saved = resp.json()
    try:
        return ShippingAddress.model_validate({k: saved.get(k) for k in ShippingAddress.model_fields})
    except ValidationError as exc:
        raise Unprocessable(
            "That saved address cannot be priced as it is; edit it and retry.",
            type_="validation-failed",
            errors=[
                {"field": "address_id", "message": "invalid in the saved address", "type": "value_error"}
            ],
        ) from exc
