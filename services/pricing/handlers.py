"""Events pricing consumes: catalog's categories and products (which category a line is in, for
promotions scoped by category) and orders' orders (first orders; an unpaid order's cancellation
gives its promotions back). Each handler runs in the inbox transaction, once per event id."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Envelope
from libs.common.events.bus import PoisonMessage
from libs.common.service import ServiceContext, Subscription
from services.pricing import quotes, readmodel

M = TypeVar("M", bound=BaseModel)


class _Category(BaseModel):
    id: uuid.UUID
    parent_id: uuid.UUID | None
    updated_at: datetime


class _Product(BaseModel):
    id: uuid.UUID
    category_id: uuid.UUID | None
    version: int


class _OrderCreated(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: str
    created_at: datetime


class _OrderStatusChanged(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    from_: str | None = None
    to: str
    at: datetime


def _parse(model: type[M], event: Envelope) -> M:
    data = dict(event.data)
    if "from" in data:
        data["from_"] = data.pop("from")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PoisonMessage(f"{event.type} data is not valid: {exc.error_count()} errors") from exc


async def on_category(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """category.created|updated|deleted: keep the parent links."""
    c = _parse(_Category, event)
    await readmodel.apply_category(session, category_id=c.id, parent_id=c.parent_id,
                                   deleted=event.type == "category.deleted", updated_at=c.updated_at)


async def on_product(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """product.created|updated|deleted: keep each product's category."""
    p = _parse(_Product, event)
    await readmodel.apply_product(session, product_id=p.id, category_id=p.category_id, version=p.version)


async def on_order_created(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    o = _parse(_OrderCreated, event)
    await readmodel.record_order(session, order_id=o.order_id, customer_id=o.user_id, status=o.status,
                                 at=o.created_at)


async def on_order_status_changed(ctx: ServiceContext, session: AsyncSession, event: Envelope) -> None:
    """An unpaid order cancelled gives its promotions back (a paid one's coupon stays spent)."""
    o = _parse(_OrderStatusChanged, event)
    await readmodel.record_order(session, order_id=o.order_id, customer_id=o.user_id, status=o.to, at=o.at)
    if o.to == "cancelled" and o.from_ == "pending_payment":
        await quotes.release_in(session, order_id=o.order_id)


SUBSCRIPTIONS = [
    Subscription(patterns=["category.created", "category.updated", "category.deleted"], handler=on_category),
    Subscription(patterns=["product.created", "product.updated", "product.deleted"], handler=on_product),
    Subscription(patterns=["order.created"], handler=on_order_created),
    Subscription(patterns=["order.status_changed"], handler=on_order_status_changed),
]
