"""Routes of webhooks: admins (and API keys with webhooks:read/write) register endpoints and read
their deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from libs.common.auth import AdminUser
from libs.common.db import SessionDep
from services.notifications import webhooks
from services.notifications.context import Ctx
from services.notifications.webhook_schemas import (
    DeliveryDetail,
    DeliveryPage,
    DeliveryPublic,
    DeliveryStatus,
    RotateSecret,
    WebhookCreate,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
    WebhookWithSecret,
)

webhook_router = APIRouter(prefix="/admin/webhooks", tags=["admin: webhooks"])

PageNo = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


@webhook_router.post("", status_code=201)
async def create_webhook(
    body: WebhookCreate, _: AdminUser, session: SessionDep, ctx: Ctx
) -> WebhookWithSecret:
    """Register an endpoint for the events its patterns match; its signing secret is in this answer only."""
    return await webhooks.create(ctx, session=session, body=body)


@webhook_router.get("")
async def list_webhooks(
    _: AdminUser, session: SessionDep, page: PageNo = 1, page_size: PageSize = 20
) -> WebhookPage:
    """Registered endpoints, newest first."""
    return await webhooks.list_endpoints(session=session, page=page, page_size=page_size)


@webhook_router.get("/{webhook_id}")
async def get_webhook(webhook_id: uuid.UUID, _: AdminUser, session: SessionDep) -> WebhookPublic:
    """One endpoint (without its secret)."""
    return await webhooks.get(session=session, webhook_id=webhook_id)


@webhook_router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, _: AdminUser, session: SessionDep, ctx: Ctx
) -> WebhookPublic:
    """Change an endpoint's URL, patterns, description, or turn it off and on."""
    return await webhooks.update(ctx, session=session, webhook_id=webhook_id, body=body)


@webhook_router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """Remove an endpoint and its delivery history."""
    await webhooks.delete(session=session, webhook_id=webhook_id)
    return Response(status_code=204)


@webhook_router.post("/{webhook_id}/rotate-secret")
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    _: AdminUser,
    session: SessionDep,
    ctx: Ctx,
    body: Annotated[RotateSecret | None, Body()] = None,
) -> WebhookWithSecret:
    """A new secret, shown this once; the old one keeps signing beside it for the overlap (a second v1)."""
    return await webhooks.rotate_secret(
        ctx, session=session, webhook_id=webhook_id, body=body or RotateSecret()
    )


@webhook_router.get("/{webhook_id}/deliveries")
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    _: AdminUser,
    session: SessionDep,
    page: PageNo = 1,
    page_size: PageSize = 20,
    status: DeliveryStatus | None = None,
) -> DeliveryPage:
    """An endpoint's deliveries, newest first, with how the last attempt at each went."""
    return await webhooks.list_deliveries(
        session=session, webhook_id=webhook_id, page=page, page_size=page_size, status=status
    )


@webhook_router.get("/{webhook_id}/deliveries/{delivery_id}")
async def get_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _: AdminUser, session: SessionDep
) -> DeliveryDetail:
    """One delivery: the body it POSTs and every attempt (status code, duration, the answer's start)."""
    return await webhooks.get_delivery(session=session, webhook_id=webhook_id, delivery_id=delivery_id)


@webhook_router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver_webhook(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _: AdminUser, session: SessionDep, ctx: Ctx
) -> DeliveryPublic:
    """Send a delivery again now, whether it succeeded, failed or is still being retried."""
    return await webhooks.redeliver(ctx, session=session, webhook_id=webhook_id, delivery_id=delivery_id)
