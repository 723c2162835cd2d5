"""Deliveries: made once per (event, template) in the event's transaction, sent by the sender loop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound
from libs.common.events import Envelope
from libs.common.logging import get_logger
from services.notifications import mail, rendering
from services.notifications.context import NotificationsContext
from services.notifications.models import EmailDelivery
from services.notifications.recipients import Recipient
from services.notifications.schemas import EmailDetail, EmailPage, EmailPublic

log = get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


async def enqueue(
    ctx: NotificationsContext,
    session: AsyncSession,
    *,
    event: Envelope,
    template: str,
    to: Recipient,
    user_id: uuid.UUID | None,
    context: dict[str, Any],
) -> bool:
    """Render ``template`` for ``to`` and keep it to send; False when this event already made it."""
    s = ctx.settings
    rendered = rendering.render(
        template,
        {
            "shop": {"name": s.shop_name, "address": s.shop_address, "url": s.shop_url},
            "recipient": {"name": to.name, "email": to.email},
            **context,
        },
    )
    now = _now()
    stmt = (
        insert(EmailDelivery)
        .values(
            id=uuid.uuid4(),
            event_id=event.id,
            event_type=event.type,
            template=template,
            user_id=user_id,
            to_address=to.email,
            to_name=to.name[:200],
            subject=rendered.subject,
            text_body=rendered.text,
            html_body=rendered.html,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[EmailDelivery.event_id, EmailDelivery.template])
        .returning(EmailDelivery.id)
    )
    made = (await session.execute(stmt)).scalar_one_or_none() is not None
    if made:
        sync = session.sync_session
        if not sync.info.get("notifications_hooked"):
            sync.info["notifications_hooked"] = True
            sa_event.listen(sync, "after_commit", lambda _s: ctx.state.wake())
    return made


def retry_delay(ctx: NotificationsContext, attempts: int) -> timedelta:
    """Back-off after the ``attempts``-th failure: base, doubling, capped."""
    s = ctx.settings
    return timedelta(seconds=min(s.email_retry_base * 2 ** max(attempts - 1, 0), s.email_retry_max))


async def send_next(ctx: NotificationsContext) -> bool:
    """Send the most overdue delivery, if one is due; True when there was one.

    The row stays locked while the server is talked to (``SKIP LOCKED``): two replicas never send
    the same mail, and a sender that dies mid-way leaves it pending for the next one."""
    assert ctx.db is not None
    async with ctx.db.session() as session, session.begin():
        delivery = await session.scalar(
            sa.select(EmailDelivery)
            .where(EmailDelivery.status == "pending", EmailDelivery.next_attempt_at <= sa.func.now())
            .order_by(EmailDelivery.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if delivery is None:
            return False
        message = mail.build_message(
            ctx.settings,
            delivery_id=delivery.id,
            to_address=delivery.to_address,
            to_name=delivery.to_name,
            mail=rendering.Rendered(delivery.subject, delivery.text_body, delivery.html_body),
        )
        delivery.attempts += 1
        try:
            await mail.send(ctx.settings, message)
        except mail.SendFailed as exc:
            delivery.last_error = str(exc)
            gave_up = exc.permanent and delivery.attempts >= ctx.settings.email_max_attempts
            if gave_up:
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = _now() + retry_delay(ctx, delivery.attempts)
            log.warning(
                "email_not_sent",
                delivery_id=str(delivery.id),
                template=delivery.template,
                attempts=delivery.attempts,
                error=str(exc),
                permanent=exc.permanent,
                gave_up=gave_up,
            )
        else:
            delivery.status = "sent"
            delivery.sent_at = _now()
            delivery.last_error = None
            log.info("email_sent", delivery_id=str(delivery.id), template=delivery.template)
        return True


async def run_sender(ctx: NotificationsContext) -> None:
    """Background loop: send what is due, then sleep until woken or the poll interval passes."""
    while True:
        ctx.state.due.clear()
        while await send_next(ctx):
            pass
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.state.due.wait(), timeout=ctx.settings.email_poll_interval)


async def list_emails(
    *,
    session: AsyncSession,
    page: int,
    page_size: int,
    to: str | None,
    template: str | None,
    status: str | None,
) -> EmailPage:
    """Deliveries, newest first."""
    where = []
    if to:
        where.append(sa.func.lower(EmailDelivery.to_address) == to.strip().lower())
    if template:
        where.append(EmailDelivery.template == template)
    if status:
        where.append(EmailDelivery.status == status)
    total = await session.scalar(sa.select(sa.func.count()).select_from(EmailDelivery).where(*where))
    rows = await session.scalars(
        sa.select(EmailDelivery)
        .where(*where)
        .order_by(EmailDelivery.created_at.desc(), EmailDelivery.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return EmailPage(
        items=[EmailPublic.of(r) for r in rows],
        total=total or 0,
        page=page,
        page_size=page_size,
    )


async def get_email(*, session: AsyncSession, email_id: uuid.UUID) -> EmailDetail:
    """One delivery with what it says."""
    row = await session.get(EmailDelivery, email_id)
    if row is None:
        raise NotFound("No such e-mail.")
    return EmailDetail.of(row)


async def retry_now(*, session: AsyncSession, ctx: NotificationsContext, email_id: uuid.UUID) -> EmailDetail:
    """Try a failed (or waiting) mail again now; a sent one is a 409: it would reach the customer twice."""
    async with session.begin():
        row = await session.scalar(
            sa.select(EmailDelivery).where(EmailDelivery.id == email_id).with_for_update()
        )
        if row is None:
            raise NotFound("No such e-mail.")
        if row.status == "sent":
            raise Conflict(
                "This e-mail was sent already; sending it again would reach the customer twice.",
                title="Already sent",
                type_="email-already-sent",
            )
        row.status = "pending"
        row.next_attempt_at = _now()
    ctx.state.wake()
    return EmailDetail.of(row)
