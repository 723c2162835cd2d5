"""Events the catalog publishes (through the outbox); their models and catalogue are in ``libs.contracts.catalog``."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import publish_in
from libs.contracts.catalog import EVENTS, StockChanged, StockSettings, VariantChanged


async def category_changed(session: AsyncSession, kind: str, category: dict[str, Any]) -> None:
    """``category.created|updated|deleted`` with the Category shape."""
    await publish_in(session, EVENTS.envelope(f"category.{kind}", category))


async def product_changed(session: AsyncSession, kind: str, product: dict[str, Any]) -> None:
    """``product.created|updated|deleted`` with the full Product shape (version, is_active, deleted)."""
    await publish_in(session, EVENTS.envelope(f"product.{kind}", product))


async def stock_changed(
    session: AsyncSession,
    *,
    product_id: uuid.UUID,
    stock: int,
    version: int,
    variants: list[dict[str, Any]] | None = None,
) -> None:
    """``stock.changed``: the new stock of one product, the version it reached, the variants that moved."""
    change = StockChanged(product_id=product_id, stock=stock, version=version, variants=variants or [])
    await publish_in(session, EVENTS.envelope("stock.changed", change))


def stock_changed_head(product_id: uuid.UUID) -> str:
    """A ``stock.changed`` envelope without its ``id`` and ``data`` (JSON), for outbox rows a statement
    writes itself (reservations.py): it adds each product's event id and data to this."""
    head = EVENTS.envelope("stock.changed", StockChanged(product_id=product_id, stock=0, version=0))
    return orjson.dumps(head.model_dump(mode="json", exclude={"id", "data"})).decode()


async def variant_changed(
    session: AsyncSession, kind: str, *, product_id: uuid.UUID, version: int, variant: dict[str, Any]
) -> None:
    """``variant.created|updated|retired``: one variant as it is now."""
    change = VariantChanged(product_id=product_id, version=version, variant=variant)
    await publish_in(session, EVENTS.envelope(f"variant.{kind}", change))


async def stock_settings_updated(session: AsyncSession, settings: StockSettings) -> None:
    """``settings.stock_updated``: the shop's stock settings as they are now."""
    await publish_in(session, EVENTS.envelope("settings.stock_updated", settings))
