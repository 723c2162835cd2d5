"""Events cart consumes: catalog's product events (read-model) and orders' order.created.

Cart publishes no events. Each handler gets the data already parsed into the producer's
model and runs inside the inbox transaction, once per event id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.logging import get_logger
from libs.common.service import Subscription
from libs.contracts.catalog import ProductPublic, StockChanged
from libs.contracts.orders import OrderCreated
from services.cart import readmodel
from services.cart import service as cart_service
from services.cart.context import CartContext

log = get_logger(__name__)


async def on_product_changed(
    ctx: CartContext, session: AsyncSession, product: ProductPublic, event: Envelope
) -> None:
    """product.created|updated|deleted: store the product if the event is newer than what is held."""
    values = readmodel.product_values(product, deleted=event.type == "product.deleted")
    if not await readmodel.apply_product(session, values):
        log.info(
            "product_event_stale", event_id=str(event.id), product_id=str(product.id), version=product.version
        )


async def on_stock_changed(
    ctx: CartContext, session: AsyncSession, change: StockChanged, event: Envelope
) -> None:
    """stock.changed: newer stock for a product the read-model holds, and for the variants that moved."""
    await readmodel.apply_stock(
        session,
        product_id=change.product_id,
        stock=change.stock,
        version=change.version,
        variants=change.variants,
    )


async def on_order_created(
    ctx: CartContext, session: AsyncSession, order: OrderCreated, event: Envelope
) -> None:
    """order.created: the ordered quantities leave the buyer's cart."""
    await cart_service.remove_ordered(
        session,
        user_id=order.user_id,
        # orders placed before variants name none: the product's only line is meant
        items=[(i.product_id, i.variant_id, i.quantity) for i in order.items],
    )


SUBSCRIPTIONS: list[Subscription[CartContext, Any]] = [
    Subscription(
        ["product.created", "product.updated", "product.deleted"], ProductPublic, on_product_changed
    ),
    Subscription(["stock.changed"], StockChanged, on_stock_changed),
    Subscription(["order.created"], OrderCreated, on_order_created),
]
