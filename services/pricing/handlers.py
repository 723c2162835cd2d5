"""Events pricing consumes: catalog's categories and products (which category a line is in, for
promotions scoped by category) and orders' orders (first orders; an unpaid order's cancellation
gives its promotions back). Each handler gets the data parsed into the producer's model and runs
in the inbox transaction, once per event id."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.service import Subscription
from libs.contracts.catalog import CategoryPublic, ProductPublic
from libs.contracts.orders import OrderCreated, OrderStatus, OrderStatusChanged
from services.pricing import quotes, readmodel
from services.pricing.context import PricingContext


async def on_category(
    ctx: PricingContext, session: AsyncSession, category: CategoryPublic, event: Envelope
) -> None:
    """category.created|updated|deleted: keep the parent links."""
    await readmodel.apply_category(
        session,
        category_id=category.id,
        parent_id=category.parent_id,
        deleted=event.type == "category.deleted",
        updated_at=category.updated_at,
    )


async def on_product(
    ctx: PricingContext, session: AsyncSession, product: ProductPublic, event: Envelope
) -> None:
    """product.created|updated|deleted: keep each product's category."""
    await readmodel.apply_product(
        session, product_id=product.id, category_id=product.category_id, version=product.version
    )


async def on_order_created(
    ctx: PricingContext, session: AsyncSession, order: OrderCreated, event: Envelope
) -> None:
    await readmodel.record_order(
        session, order_id=order.order_id, customer_id=order.user_id, status=order.status, at=order.created_at
    )


async def on_order_status_changed(
    ctx: PricingContext, session: AsyncSession, change: OrderStatusChanged, event: Envelope
) -> None:
    """An unpaid order cancelled gives its promotions back (a paid one's coupon stays spent)."""
    await readmodel.record_order(
        session, order_id=change.order_id, customer_id=change.user_id, status=change.to, at=change.at
    )
    if change.to == OrderStatus.cancelled and change.from_ == OrderStatus.pending_payment:
        await quotes.release_in(session, order_id=change.order_id)


SUBSCRIPTIONS: list[Subscription[PricingContext, Any]] = [
    Subscription(["category.created", "category.updated", "category.deleted"], CategoryPublic, on_category),
    Subscription(["product.created", "product.updated", "product.deleted"], ProductPublic, on_product),
    Subscription(["order.created"], OrderCreated, on_order_created),
    Subscription(["order.status_changed"], OrderStatusChanged, on_order_status_changed),
]
