"""Events the catalog publishes (through the outbox), and the order events it consumes."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope, publish_in
from libs.common.events.catalogue import EventCatalogue, EventType
from libs.common.logging import get_logger
from libs.common.service import ServiceContext, Subscription
from services.catalog.schemas import CategoryPublic, ProductPublic

PRODUCER = "catalog"
log = get_logger(__name__)


class StockChanged(BaseModel):
    product_id: uuid.UUID
    stock: int
    version: int


EVENTS = EventCatalogue(producer=PRODUCER, events={
    "category.created": EventType(CategoryPublic, "A category was created."),
    "category.updated": EventType(CategoryPublic, "A category was changed; data is the whole category."),
    "category.deleted": EventType(CategoryPublic, "A category was deleted; data is its last state."),
    "product.created": EventType(ProductPublic, "A product was created."),
    "product.updated": EventType(ProductPublic, "A product was changed; apply it only if version is newer."),
    "product.deleted": EventType(ProductPublic, "A product was soft-deleted (deleted: true, kept for orders)."),
    "stock.changed": EventType(StockChanged, "A product's stock moved (reservation, release, admin change)."),
})


async def category_changed(session: AsyncSession, kind: str, category: dict[str, Any]) -> None:
    """``category.created|updated|deleted`` with the Category shape."""
    await publish_in(session, EVENTS.envelope(f"category.{kind}", category))


async def product_changed(session: AsyncSession, kind: str, product: dict[str, Any]) -> None:
    """``product.created|updated|deleted`` with the full Product shape (version, is_active, deleted)."""
    await publish_in(session, EVENTS.envelope(f"product.{kind}", product))


async def stock_changed(session: AsyncSession, *, product_id: uuid.UUID, stock: int, version: int) -> None:
    """``stock.changed``: the new stock of one product and the version it reached."""
    await publish_in(session, EVENTS.envelope("stock.changed", StockChanged(
        product_id=product_id, stock=stock, version=version)))


async def on_order_status_changed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """A cancelled order gives its stock back; a paid one makes its reservation final."""
    from services.catalog import reservations

    to = event.data.get("to")
    try:
        order_id = uuid.UUID(str(event.data.get("order_id")))
    except ValueError:
        log.warning("order_event_without_order_id", event_id=str(event.id))
        return
    if to == "cancelled":
        await reservations.release_in(session, order_id=order_id, missing_ok=True)
        # stock changed: cached public reads are stale (the TTL bounds the commit that follows)
        cache = ctx.extras.get("response_cache")
        if cache is not None:
            cache.clear()
    elif to == "paid":
        await reservations.commit_in(session, order_id=order_id)


SUBSCRIPTIONS = [Subscription(patterns=["order.status_changed"], handler=on_order_status_changed)]
