"""Events cart consumes: catalog's product events (read-model) and orders' order.created.

Cart publishes no events. Each handler runs inside the inbox transaction, once per event id.
Malformed data is logged and skipped: no retry can fix it, and the rest of the queue must flow.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.logging import get_logger
from libs.common.service import ServiceContext, Subscription
from services.cart import readmodel
from services.cart import service as cart_service

log = get_logger(__name__)


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError):
        return None


async def on_product_changed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """product.created|updated|deleted: store the product if the event is newer than what is held."""
    deleted = event.type == "product.deleted"
    try:
        values = readmodel.product_values(event.data, deleted=deleted)
    except readmodel.BadProductData as exc:
        product_id = _uuid(event.data.get("id") or event.data.get("product_id"))
        version = event.data.get("version")
        if deleted and product_id is not None and isinstance(version, int):
            await readmodel.mark_deleted(session, product_id=product_id, version=version)
            return
        log.warning("product_event_unusable", event_id=str(event.id), type=event.type, error=str(exc))
        return
    if not await readmodel.apply_product(session, values):
        log.info("product_event_stale", event_id=str(event.id), product_id=str(values["product_id"]),
                 version=values["version"])


async def on_stock_changed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """stock.changed {product_id, stock, version}: newer stock for a product the read-model holds."""
    product_id = _uuid(event.data.get("product_id"))
    stock, version = event.data.get("stock"), event.data.get("version")
    if product_id is None or not isinstance(stock, int) or not isinstance(version, int):
        log.warning("stock_event_unusable", event_id=str(event.id))
        return
    await readmodel.apply_stock(session, product_id=product_id, stock=stock, version=version)


async def on_order_created(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """order.created: the ordered quantities leave the buyer's cart."""
    user_id = _uuid(event.data.get("user_id"))
    raw = event.data.get("items")
    if user_id is None or not isinstance(raw, list):
        log.warning("order_event_unusable", event_id=str(event.id))
        return
    items: list[tuple[uuid.UUID, int]] = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        product_id, quantity = _uuid(entry.get("product_id")), entry.get("quantity")
        if product_id is not None and isinstance(quantity, int) and not isinstance(quantity, bool):
            items.append((product_id, quantity))
    await cart_service.remove_ordered(session, user_id=user_id, items=items)


SUBSCRIPTIONS = [
    Subscription(patterns=["product.created", "product.updated", "product.deleted"], handler=on_product_changed),
    Subscription(patterns=["stock.changed"], handler=on_stock_changed),
    Subscription(patterns=["order.created"], handler=on_order_created),
]
