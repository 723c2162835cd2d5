"""Webhooks for integrators (DESIGN.md section 10): endpoints, their secrets, and the deliveries events make.

Each matching event becomes one delivery per (endpoint, event id), written in the event's inbox
transaction, and is POSTed by ``webhook_sender`` as its envelope, signed like Stripe signs:
``Shop-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, with a second ``v1`` for the old
secret while a rotation overlaps. Targets are checked here when they are registered and again by the
sender against the address it actually connects to, so a name that later resolves to a private
address (DNS rebinding) reaches nothing inside.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound
from libs.common.events import Envelope, topic_matches
from libs.common.logging import get_logger
from services.notifications.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.notifications.webhook_schemas import (
    AttemptPublic,
    DeliveryDetail,
    DeliveryPage,
    DeliveryPublic,
    RotateSecret,
    WebhookCreate,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
    WebhookWithSecret,
)
from services.notifications.webhook_security import check_target, new_secret

if TYPE_CHECKING:
    from services.notifications.context import NotificationsContext

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The current secret, then the old one while its overlap lasts."""
    out = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > now
    ):
        out.append(endpoint.previous_secret)
    return out


# ---------------------------------------------------------------- endpoints


async def _endpoint(session: AsyncSession, webhook_id: uuid.UUID, *, lock: bool = False) -> WebhookEndpoint:
    stmt = sa.select(WebhookEndpoint).where(WebhookEndpoint.id == webhook_id)
    if lock:
        stmt = stmt.with_for_update()
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound("No such webhook.")
    return row


async def create(
    ctx: NotificationsContext, *, session: AsyncSession, body: WebhookCreate
) -> WebhookWithSecret:
    """Register an endpoint; the answer is the one place its secret is shown."""
    wh = ctx.state.webhooks
    await check_target(body.url, resolve=wh.resolve, allow_private=wh.allow_private)
    now = _now()
    row = WebhookEndpoint(
        id=uuid.uuid4(),
        url=body.url,
        events=list(dict.fromkeys(body.events)),
        description=body.description,
        active=body.active,
        secret=new_secret(),
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    async with session.begin():
        session.add(row)
    log.info("webhook_created", webhook_id=str(row.id), events=row.events)
    return WebhookWithSecret.of(row)


async def list_endpoints(*, session: AsyncSession, page: int, page_size: int) -> WebhookPage:
    """Endpoints, newest first."""
    total = await session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint))
    rows = await session.scalars(
        sa.select(WebhookEndpoint)
        .order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return WebhookPage(
        items=[WebhookPublic.of(r) for r in rows], total=total or 0, page=page, page_size=page_size
    )


async def get(*, session: AsyncSession, webhook_id: uuid.UUID) -> WebhookPublic:
    return WebhookPublic.of(await _endpoint(session, webhook_id))


async def update(
    ctx: NotificationsContext, *, session: AsyncSession, webhook_id: uuid.UUID, body: WebhookUpdate
) -> WebhookPublic:
    """Change an endpoint; turning a disabled one back on starts its failure count again."""
    wh = ctx.state.webhooks
    if body.url is not None:
        await check_target(body.url, resolve=wh.resolve, allow_private=wh.allow_private)
    async with session.begin():
        row = await _endpoint(session, webhook_id, lock=True)
        if body.url is not None:
            row.url = body.url
        if body.events is not None:
            row.events = list(dict.fromkeys(body.events))
        if body.description is not None:
            row.description = body.description
        if body.active is not None:
            if body.active and not row.active:
                row.consecutive_failures = 0
                row.disabled_at = None
                row.disabled_reason = None
            row.active = body.active
        row.updated_at = _now()
    if row.active:
        wh.wake()  # a re-enabled endpoint's pending deliveries go now
    return WebhookPublic.of(row)


async def delete(*, session: AsyncSession, webhook_id: uuid.UUID) -> None:
    """Remove an endpoint with its deliveries and their attempts."""
    async with session.begin():
        row = await _endpoint(session, webhook_id, lock=True)
        await session.delete(row)
    log.info("webhook_deleted", webhook_id=str(webhook_id))


async def rotate_secret(
    ctx: NotificationsContext, *, session: AsyncSession, webhook_id: uuid.UUID, body: RotateSecret
) -> WebhookWithSecret:
    """A new secret (shown this once); the current one keeps signing beside it for the overlap."""
    overlap = (
        body.overlap_seconds if body.overlap_seconds is not None else ctx.settings.webhook_secret_overlap
    )
    now = _now()
    async with session.begin():
        row = await _endpoint(session, webhook_id, lock=True)
        row.previous_secret = row.secret if overlap > 0 else None
        row.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap > 0 else None
        row.secret = new_secret()
        row.updated_at = now
    log.info("webhook_secret_rotated", webhook_id=str(webhook_id), overlap_seconds=overlap)
    return WebhookWithSecret.of(row)


# ---------------------------------------------------------------- deliveries


def _wake_after_commit(ctx: NotificationsContext, session: AsyncSession) -> None:
    sync = session.sync_session
    if not sync.info.get("webhooks_hooked"):
        sync.info["webhooks_hooked"] = True
        sa_event.listen(sync, "after_commit", lambda _s: ctx.state.webhooks.wake())


async def enqueue(ctx: NotificationsContext, session: AsyncSession, *, event: Envelope) -> int:
    """One delivery of ``event`` per active endpoint whose patterns match it (in the inbox transaction)."""
    endpoints = (
        await session.execute(
            sa.select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active)
        )
    ).all()
    targets = [e.id for e in endpoints if any(topic_matches(p, event.type) for p in e.events)]
    if not targets:
        return 0
    now = _now()
    body = event.to_bytes().decode()
    give_up_at = now + timedelta(seconds=ctx.settings.webhook_retry_for)
    made = (
        await session.execute(
            insert(WebhookDelivery)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "endpoint_id": endpoint_id,
                        "event_id": event.id,
                        "event_type": event.type,
                        "body": body,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "give_up_at": give_up_at,
                        "created_at": now,
                    }
                    for endpoint_id in targets
                ]
            )
            .on_conflict_do_nothing(index_elements=[WebhookDelivery.endpoint_id, WebhookDelivery.event_id])
            .returning(WebhookDelivery.id)
        )
    ).all()
    if made:
        _wake_after_commit(ctx, session)
    return len(made)


async def list_deliveries(
    *, session: AsyncSession, webhook_id: uuid.UUID, page: int, page_size: int, status: str | None
) -> DeliveryPage:
    """An endpoint's deliveries, newest first."""
    await _endpoint(session, webhook_id)
    where = [WebhookDelivery.endpoint_id == webhook_id]
    if status:
        where.append(WebhookDelivery.status == status)
    total = await session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery).where(*where))
    rows = await session.scalars(
        sa.select(WebhookDelivery)
        .where(*where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return DeliveryPage(
        items=[DeliveryPublic.of(r) for r in rows], total=total or 0, page=page, page_size=page_size
    )


async def _delivery(session: AsyncSession, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    row = await session.get(WebhookDelivery, delivery_id)
    if row is None or row.endpoint_id != webhook_id:
        raise NotFound("No such delivery of this webhook.")
    return row


async def get_delivery(
    *, session: AsyncSession, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    """One delivery with what it POSTs and every attempt at it."""
    row = await _delivery(session, webhook_id, delivery_id)
    attempts = await session.scalars(
        sa.select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.started_at, WebhookAttempt.id)
    )
    return DeliveryDetail(
        **DeliveryPublic.of(row).model_dump(),
        payload=row.body,
        attempt_log=[AttemptPublic.of(a) for a in attempts],
    )


async def redeliver(
    ctx: NotificationsContext, *, session: AsyncSession, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryPublic:
    """Send a delivery again now (whatever became of it), retried for a fresh WEBHOOK_RETRY_FOR."""
    now = _now()
    async with session.begin():
        endpoint = await _endpoint(session, webhook_id)
        if not endpoint.active:
            raise Conflict("This webhook is disabled: turn it back on (PATCH active=true) to redeliver.")
        row = await session.scalar(
            sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
        )
        if row is None or row.endpoint_id != webhook_id:
            raise NotFound("No such delivery of this webhook.")
        row.status = "pending"
        row.next_attempt_at = now
        row.give_up_at = now + timedelta(seconds=ctx.settings.webhook_retry_for)
        row.delivered_at = None
        _wake_after_commit(ctx, session)
    log.info("webhook_redeliver", webhook_id=str(webhook_id), delivery_id=str(delivery_id))
    return DeliveryPublic.of(row)
