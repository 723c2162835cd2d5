"""Order events the catalog consumes: a cancelled order gives its stock back, a paid one keeps it, and
the units of a received return go back to stock."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.service import Subscription
from libs.contracts.orders import OrderStatus, OrderStatusChanged, ReturnChanged
from services.catalog import reservations
from services.catalog.context import CatalogContext


async def on_order_status_changed(
    ctx: CatalogContext, session: AsyncSession, change: OrderStatusChanged, event: Envelope
) -> None:
    """A cancelled order gives its stock back; a paid one makes its reservation final."""
    if change.to == OrderStatus.cancelled:
        await reservations.release_in(session, order_id=change.order_id, missing_ok=True)
        # stock changed: cached public reads are stale (the TTL bounds the commit that follows)
        ctx.state.response_cache.clear()
    elif change.to == OrderStatus.paid:
        await reservations.commit_in(session, order_id=change.order_id)


async def on_return_received(
    ctx: CatalogContext, session: AsyncSession, ret: ReturnChanged, event: Envelope
) -> None:
    """A return's units are back at the shop: they go back to their variant's stock."""
    back = await reservations.restock_returned_in(
        session,
        order_id=ret.order_id,
        lines=[(line.product_id, line.variant_id, line.quantity) for line in ret.items],
    )
    if back:
        ctx.state.response_cache.clear()


SUBSCRIPTIONS: list[Subscription[CatalogContext, Any]] = [
    Subscription(["order.status_changed"], OrderStatusChanged, on_order_status_changed),
    Subscription(["return.received"], ReturnChanged, on_return_received),
]
