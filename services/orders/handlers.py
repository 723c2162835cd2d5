"""Payment events orders consumes: they move an order to paid, or note a failure or a refund on it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.service import Subscription
from libs.contracts.payments import PaymentEventData
from services.orders import returns, service
from services.orders.context import OrdersContext


async def on_payment_succeeded(
    ctx: OrdersContext, session: AsyncSession, payment: PaymentEventData, event: Envelope
) -> None:
    await service.record_payment_succeeded(session=session, payment=payment)


async def on_payment_failed(
    ctx: OrdersContext, session: AsyncSession, payment: PaymentEventData, event: Envelope
) -> None:
    await service.record_payment_failed(session=session, payment=payment)


async def on_payment_refunded(
    ctx: OrdersContext, session: AsyncSession, payment: PaymentEventData, event: Envelope
) -> None:
    await service.record_refund(session=session, payment=payment)
    if payment.return_id is not None:  # a received return paid back: the return is refunded
        await returns.record_refund(
            session=session, return_id=payment.return_id, refund_id=payment.refund_id, amount=payment.amount
        )


SUBSCRIPTIONS: list[Subscription[OrdersContext, Any]] = [
    Subscription(["payment.succeeded"], PaymentEventData, on_payment_succeeded),
    Subscription(["payment.failed"], PaymentEventData, on_payment_failed),
    Subscription(["payment.refunded"], PaymentEventData, on_payment_refunded),
]
