"""Events the catalog publishes (through the outbox); their models and catalogue are in ``libs.contracts.catalog``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import publish_in
from libs.contracts.catalog import EVENTS, StockChanged


async def category_changed(session: AsyncSession, kind: str, category: dict[str, Any]) -> None:
    """``category.created|updated|deleted`` with the Category shape."""
    await publish_in(session, EVENTS.envelope(f"category.{kind}", category))


async def product_changed(session: AsyncSession, kind: str, product: dict[str, Any]) -> None:
    """``product.created|updated|deleted`` with the full Product shape (version, is_active, deleted)."""
    await publish_in(session, EVENTS.envelope(f"product.{kind}", product))


async def stock_changed(session: AsyncSession, *, product_id: uuid.UUID, stock: int, version: int) -> None:
    """``stock.changed``: the new stock of one product and the version it reached."""
    await publish_in(
        session,
        EVENTS.envelope("stock.changed", StockChanged(product_id=product_id, stock=stock, version=version)),
    )
