"""Events notifications consumes, and the mail each one makes. Each handler gets the data parsed into
the producer's model and runs in the inbox transaction, once per event id; the mail it renders is
sent after that transaction commits."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.logging import get_logger
from libs.common.service import RawData, Subscription
from libs.contracts.auth import UserRegistered
from libs.contracts.orders import (
    OrderCreated,
    OrderFulfilled,
    OrderStatus,
    OrderStatusChanged,
    ReturnChanged,
)
from libs.contracts.payments import PaymentEventData
from services.notifications import recipients, webhooks
from services.notifications import service as notifications
from services.notifications.context import NotificationsContext
from services.notifications.models import OrderSummary

log = get_logger(__name__)

# the status an order moved to -> the mail that says so (shipped: order.fulfilled, which has the tracking)
STATUS_MAILS = {
    OrderStatus.paid: "order_confirmed",
    OrderStatus.delivered: "order_delivered",
    OrderStatus.cancelled: "order_cancelled",
}


async def on_user_registered(
    ctx: NotificationsContext, session: AsyncSession, user: UserRegistered, event: Envelope
) -> None:
    """Welcome a new customer (the event carries their address)."""
    await notifications.enqueue(
        ctx,
        session,
        event=event,
        template="welcome",
        to=recipients.Recipient(email=user.email, name=user.name),
        user_id=user.user_id,
        context={},
    )


async def on_order_created(
    ctx: NotificationsContext, session: AsyncSession, order: OrderCreated, event: Envelope
) -> None:
    """Remember the order's lines and totals for the mails about it (no mail: it is not paid yet)."""
    await session.execute(
        insert(OrderSummary)
        .values(
            order_id=order.order_id,
            user_id=order.user_id,
            items=[i.model_dump(mode="json") for i in order.items],
            subtotal=order.subtotal,
            total=order.total,
            currency=order.currency,
            created_at=order.created_at,
        )
        .on_conflict_do_nothing(index_elements=[OrderSummary.order_id])
    )


async def on_order_status_changed(
    ctx: NotificationsContext, session: AsyncSession, change: OrderStatusChanged, event: Envelope
) -> None:
    template = STATUS_MAILS.get(change.to)
    if template is None:
        return
    context: dict[str, Any] = {"reason": change.reason, "fulfillment": None}
    if change.to == OrderStatus.cancelled:
        context["was_paid"] = change.from_ in (OrderStatus.paid, OrderStatus.processing)
    await _mail_customer(
        ctx,
        session,
        event=event,
        template=template,
        user_id=change.user_id,
        order_id=change.order_id,
        total=change.total,
        currency=change.currency,
        context=context,
    )


async def on_order_fulfilled(
    ctx: NotificationsContext, session: AsyncSession, shipped: OrderFulfilled, event: Envelope
) -> None:
    """The order is on its way: the mail carries the carrier and the tracking number and link."""
    summary = await session.get(OrderSummary, shipped.order_id)
    await _mail_customer(
        ctx,
        session,
        event=event,
        template="order_shipped",
        user_id=shipped.user_id,
        order_id=shipped.order_id,
        total=None,
        currency=summary.currency if summary is not None else "",
        context={"fulfillment": shipped.fulfillment.model_dump(mode="json"), "reason": None},
    )


async def on_return_changed(
    ctx: NotificationsContext, session: AsyncSession, ret: ReturnChanged, event: Envelope
) -> None:
    """Every step of a return, told to the customer (the refund's own mail is this one's last step)."""
    await _mail_customer(
        ctx,
        session,
        event=event,
        template="return_update",
        user_id=ret.user_id,
        order_id=ret.order_id,
        total=None,
        currency=ret.currency,
        context={
            "status": str(ret.status),
            "items": [i.model_dump(mode="json") for i in ret.items],
            "refund_amount": ret.refund_amount or 0,
            "currency": ret.currency,
        },
    )


async def on_payment_refunded(
    ctx: NotificationsContext, session: AsyncSession, payment: PaymentEventData, event: Envelope
) -> None:
    if payment.return_id is not None:
        return  # a return's refund: return.refunded mails it, with the items
    await _mail_customer(
        ctx,
        session,
        event=event,
        template="order_refunded",
        user_id=payment.user_id,
        order_id=payment.order_id,
        total=None,
        currency=payment.currency,
        context={"amount": payment.amount, "currency": payment.currency},
    )


async def _mail_customer(
    ctx: NotificationsContext,
    session: AsyncSession,
    *,
    event: Envelope,
    template: str,
    user_id: uuid.UUID,
    order_id: uuid.UUID,
    total: int | None,
    currency: str,
    context: dict[str, Any],
) -> None:
    to = await recipients.customer(ctx, user_id)
    if to is None:
        log.warning("email_skipped_unknown_customer", user_id=str(user_id), event_id=str(event.id))
        return
    summary = await session.get(OrderSummary, order_id)
    order = {
        "id": str(order_id),
        "number": str(order_id)[:8].upper(),
        "lines": summary.items if summary is not None else [],
        "total": total if total is not None else (summary.total if summary is not None else 0),
        "currency": currency,
    }
    await notifications.enqueue(
        ctx,
        session,
        event=event,
        template=template,
        to=to,
        user_id=user_id,
        context={"order": order, **context},
    )


async def on_any_event(ctx: NotificationsContext, session: AsyncSession, _: RawData, event: Envelope) -> None:
    """Every event is a delivery for each webhook endpoint whose patterns match it (the envelope as is)."""
    await webhooks.enqueue(ctx, session, event=event)


SUBSCRIPTIONS: list[Subscription[NotificationsContext, Any]] = [
    Subscription(["user.registered"], UserRegistered, on_user_registered),
    Subscription(["order.created"], OrderCreated, on_order_created),
    Subscription(["order.status_changed"], OrderStatusChanged, on_order_status_changed),
    Subscription(["order.fulfilled"], OrderFulfilled, on_order_fulfilled),
    Subscription(["return.*"], ReturnChanged, on_return_changed),
    Subscription(["payment.refunded"], PaymentEventData, on_payment_refunded),
    Subscription(["#"], RawData, on_any_event),
]
