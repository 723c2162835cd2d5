"""An order's shipping address: as sent, or resolved from the customer's address book in auth.

Kept apart from the placement code so that resolving an ``address_id`` is one call there. The
book entry is copied onto the order (the order keeps it even if the entry is later edited or
deleted). It is read before any stock is reserved, so auth being down refuses the order with
nothing to undo.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from libs.common.auth import INTERNAL_TOKEN_HEADER
from libs.common.errors import DomainError, ServiceUnavailable, Unprocessable
from libs.common.http import call
from libs.common.logging import get_logger
from services.orders.context import OrdersContext
from services.orders.schemas import OrderCreate, ShippingAddress

log = get_logger(__name__)

RETRY_AFTER = {"Retry-After": "5"}


async def shipping_address(
    ctx: OrdersContext, *, user_id: uuid.UUID, order_in: OrderCreate
) -> dict[str, Any]:
    """The address to store on the order, in the one shape; 422 for an address not in the caller's book."""
    if order_in.shipping_address is not None:
        return order_in.shipping_address.model_dump(mode="json")
    assert order_in.address_id is not None  # OrderCreate requires exactly one of the two
    try:
        resp = await call(
            ctx.http,
            "GET",
            f"{ctx.settings.auth_url}/internal/users/{user_id}/addresses/{order_in.address_id}",
            service="auth",
            headers={INTERNAL_TOKEN_HEADER: ctx.settings.internal_api_token.get_secret_value()},
        )
    except DomainError as exc:  # unreachable or too slow: the order waits for auth, nothing is kept
        raise ServiceUnavailable(
            "Your saved address cannot be read right now; nothing was ordered. Please retry.",
            headers=RETRY_AFTER,
        ) from exc
    if resp.status_code == 404:
        raise Unprocessable(
            "address_id is not one of your saved addresses.",
            type_="validation-failed",
            errors=[{"field": "address_id", "message": "not in your address book", "type": "value_error"}],
        )
    if resp.status_code != 200:
        log.warning("auth_unexpected_answer", status=resp.status_code)
        raise ServiceUnavailable(
            "Your saved address cannot be read right now; nothing was ordered. Please retry.",
            headers=RETRY_AFTER,
        )
    saved = resp.json()
    try:
        # the fields orders stores; the book's id and is_default say nothing about this order
        address = ShippingAddress.model_validate({k: saved.get(k) for k in ShippingAddress.model_fields})
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
        raise Unprocessable(
            f"That saved address cannot be shipped to as it is ({', '.join(fields)}); edit it and retry.",
            type_="validation-failed",
            errors=[
                {"field": f"address_id.{f}", "message": "invalid in the saved address", "type": "value_error"}
                for f in fields
            ],
        ) from exc
    return address.model_dump(mode="json")
