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
from libs.contracts.orders import ReturnStatus
from services.orders import returns as return_service
from services.orders import service as order_service
from services.orders.context import Ctx
from services.orders.schemas import (
    AdminOrderPublic,
    OrderCreate,
    OrderPublic,
    OrderStatus,
    Page,
    ReturnCreate,
    ReturnPublic,
    ReturnUpdate,
    StatusUpdate,
)

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


# an order's number as people write it: "#1a2b3c4d", "1A2B-3C", a whole id
ID_PREFIX = r"^#?[0-9a-fA-F-]{1,36}$"


@admin_router.get("/orders")
async def list_all_orders(
    admin: AdminUser,
    session: SessionDep,
    page: PageNo = 1,
    page_size: PageSize = 20,
    status: OrderStatus | None = None,
    user_id: Annotated[list[uuid.UUID] | None, Query(max_length=100)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    q: Annotated[
        str | None,
        Query(pattern=ID_PREFIX, description="the start of the order's number (hex digits, an optional #)"),
    ] = None,
) -> Page[AdminOrderPublic]:
    """All orders, filtered, newest first; `user_id` may be repeated (orders of any of them)."""
    return await order_service.list_orders(
        session=session,
        page=page,
        page_size=page_size,
        user_id=user_id,
        status=status,
        created_from=created_from,
        created_to=created_to,
        id_prefix=q.lstrip("#").lower() if q else None,
        schema=AdminOrderPublic,
    )


@admin_router.get("/orders/{order_id}")
async def get_any_order(order_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> AdminOrderPublic:
    """Any order, with the status moves allowed from where it stands."""
    return AdminOrderPublic.model_validate(
        await order_service.get_order(session=session, order_id=order_id, user=admin)
    )


@admin_router.patch("/orders/{order_id}/status")
async def update_order_status(
    order_id: uuid.UUID, body: StatusUpdate, admin: AdminUser, session: SessionDep
) -> AdminOrderPublic:
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
    return AdminOrderPublic.model_validate(order)


# ---- returns ------------------------------------------------------------------------------------


@router.post(
    "/orders/{order_id}/returns",
    status_code=201,
    responses={
        409: problem_doc("Not delivered, or the return window closed"),
        422: problem_doc("Quantities"),
    },
)
async def request_return(
    order_id: uuid.UUID, body: ReturnCreate, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> ReturnPublic:
    """Ask to send back units of a delivered order's lines (`line_id`: the line's position in `items`)."""
    ret = await return_service.request_return(
        session=session, order_id=order_id, user=user, body=body, window_days=ctx.settings.return_window_days
    )
    return ReturnPublic.model_validate(ret)


@router.get("/orders/{order_id}/returns")
async def list_order_returns(
    order_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> list[ReturnPublic]:
    """The returns of one of the caller's orders, oldest first."""
    found = await return_service.list_for_order(session=session, order_id=order_id, user=user)
    return [ReturnPublic.model_validate(r) for r in found]


@admin_router.get("/returns")
async def list_returns(
    _: AdminUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    status: ReturnStatus | None = None,
    order_id: uuid.UUID | None = None,
) -> Page[ReturnPublic]:
    """Every return, newest first; filter by status or order."""
    return await return_service.list_admin(
        session=session, page=page, page_size=page_size, status=status, order_id=order_id
    )


@admin_router.patch("/returns/{return_id}", responses={409: problem_doc("Not an allowed move")})
async def update_return(
    return_id: uuid.UUID, body: ReturnUpdate, admin: AdminUser, session: SessionDep
) -> ReturnPublic:
    """Approve or reject a requested return, or mark an approved one received: what it refunds is then
    fixed and payments refunds it."""
    ret = await return_service.move_return(session=session, return_id=return_id, to=body.status, admin=admin)
    return ReturnPublic.model_validate(ret)
