"""Order events payments consumes: its payable-order read-model, refunds of cancelled paid orders, and
partial refunds of received returns."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.service import Subscription
from libs.contracts.orders import OrderCreated, OrderStatus, OrderStatusChanged, ReturnChanged
from services.payments import service
from services.payments.context import PaymentsContext


async def on_order_created(
    ctx: PaymentsContext, session: AsyncSession, order: OrderCreated, event: Envelope
) -> None:
    await service.record_payable_order(
        session=session,
        order_id=order.order_id,
        user_id=order.user_id,
        amount=order.total,
        currency=order.currency,
        status=order.status,
        at=order.created_at,
    )


async def on_order_status_changed(
    ctx: PaymentsContext, session: AsyncSession, change: OrderStatusChanged, event: Envelope
) -> None:
    await service.record_order_status(
        session=session,
        order_id=change.order_id,
        user_id=change.user_id,
        status=change.to,
        amount=change.total,
        currency=change.currency,
        at=change.at,
    )
    if change.to == OrderStatus.cancelled:
        await service.refund_cancelled_order(
            session=session, provider=ctx.state.provider, order_id=change.order_id
        )


async def on_return_received(
    ctx: PaymentsContext, session: AsyncSession, ret: ReturnChanged, event: Envelope
) -> None:
    """A return's units are back: refund its share of what was paid (orders fixed the amount)."""
    if ret.refund_amount:
        await service.refund_return(
            session=session,
            provider=ctx.state.provider,
            order_id=ret.order_id,
            return_id=ret.return_id,
            amount=ret.refund_amount,
        )


SUBSCRIPTIONS: list[Subscription[PaymentsContext, Any]] = [
    Subscription(["order.created"], OrderCreated, on_order_created),
    Subscription(["order.status_changed"], OrderStatusChanged, on_order_status_changed),
    Subscription(["return.received"], ReturnChanged, on_return_received),
]
