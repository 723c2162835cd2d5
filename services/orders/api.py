"""Routes of the orders service: parse, check who calls, hand over to service.py, shape the answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from starlette.responses import JSONResponse

from libs.common.auth import AdminUser, CurrentUser
from libs.common.db import SessionDep
from libs.common.errors import PROBLEM_JSON, problem_doc
from services.orders import service as order_service
from services.orders.context import Ctx
from services.orders.schemas import OrderCreate, OrderPublic, OrderStatus, Page, StatusUpdate

router = APIRouter(tags=["orders"])
admin_router = APIRouter(prefix="/admin", tags=["admin: orders"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string per checkout attempt (e.g. a UUID)",
    ),
]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
# the members an insufficient-stock 409 adds to the problem, so a client can show each short line
SHORT_FIELDS = {
    "short": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["product_id", "requested", "available"],
            "properties": {
                "product_id": {"type": "string", "format": "uuid"},
                "requested": {"type": "integer"},
                "available": {"type": "integer"},
            },
        },
    }
}
PageSize = Annotated[int, Query(ge=1, le=100)]


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderPublic,
    responses={
        409: problem_doc("Not enough stock (`short` names each product)", fields=SHORT_FIELDS),
        422: problem_doc("Empty cart or invalid address"),
        503: problem_doc("Catalog or cart unavailable; nothing was stored"),
    },
)
async def place_order(
    body: OrderCreate,
    user: CurrentUser,
    session: SessionDep,
    ctx: Ctx,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Place an order from the caller's cart (or the given items), reserving its stock."""
    placed = await order_service.place_order(
        ctx=ctx, session=session, user=user, order_in=body, key=idempotency_key
    )
    headers = {"Idempotent-Replayed": "true"} if placed.replayed else None
    media_type = PROBLEM_JSON if placed.status >= 400 else None
    return JSONResponse(placed.body, status_code=placed.status, headers=headers, media_type=media_type)


@router.get("/orders")
async def list_my_orders(
    user: CurrentUser, session: SessionDep, page: PageNo = 1, page_size: PageSize = 20
) -> Page[OrderPublic]:
    """The caller's orders, newest first."""
    return await order_service.list_orders(
        session=session, user_id=user.user_id, page=page, page_size=page_size
    )


@router.get("/orders/{order_id}")
async def get_order(order_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> OrderPublic:
    """One of the caller's orders (another user's is 404)."""
    return OrderPublic.model_validate(
        await order_service.get_order(session=session, order_id=order_id, user=user)
    )


@router.post("/orders/{order_id}/cancel")
async def cancel_order(order_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> OrderPublic:
    """Cancel one of the caller's orders while it is unpaid."""
    order = await order_service.cancel_order(session=session, order_id=order_id, user=user)
    return OrderPublic.model_validate(order)


@admin_router.get("/orders")
async def list_all_orders(
    admin: AdminUser,
    session: SessionDep,
    page: PageNo = 1,
    page_size: PageSize = 20,
    status: OrderStatus | None = None,
    user_id: uuid.UUID | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> Page[OrderPublic]:
    """All orders, filtered, newest first."""
    return await order_service.list_orders(
        session=session,
        page=page,
        page_size=page_size,
        user_id=user_id,
        status=status,
        created_from=created_from,
        created_to=created_to,
    )


@admin_router.patch("/orders/{order_id}/status")
async def update_order_status(
    order_id: uuid.UUID, body: StatusUpdate, admin: AdminUser, session: SessionDep
) -> OrderPublic:
    """Move an order along the status machine; an illegal move is 409 with the allowed ones. Shipping it
    may name the carrier, tracking number and tracking URL, which the order then shows as `fulfillment`."""
    order = await order_service.change_status(
        session=session,
        order_id=order_id,
        to=body.status,
        admin=admin,
        reason=body.reason,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        tracking_url=body.tracking_url,
    )
    return OrderPublic.model_validate(order)
