"""The shop's stock settings (the low-stock threshold) and the variants running low.

The catalog owns them because it owns stock: the threshold is a shop-wide fact every admin sees the
same (the console used to keep one per browser), and "what is low" is a query over the variants,
not something a browser can work out from the newest products it happened to read. A change is
``settings.stock_updated``, so every console open moves its low-stock list at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import events
from services.catalog.models import Product, ShopSettings, Variant
from services.catalog.schemas import LowStockPage, LowStockVariant, StockSettings, StockSettingsUpdate


def _public(row: ShopSettings) -> StockSettings:
    return StockSettings(
        low_stock_threshold=row.low_stock_threshold,
        version=row.version,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


async def get_settings(*, session: AsyncSession) -> StockSettings:
    """The stock settings (the migration made their one row)."""
    async with session.begin():
        return _public(await session.get_one(ShopSettings, 1))


async def update_settings(
    *, session: AsyncSession, admin_id: uuid.UUID | None, data: StockSettingsUpdate
) -> StockSettings:
    """Change the stock settings; emits settings.stock_updated (also when the value is the same: an admin saved it)."""
    async with session.begin():
        row = await session.get_one(ShopSettings, 1, with_for_update=True)
        row.low_stock_threshold = data.low_stock_threshold
        row.version += 1
        row.updated_at = datetime.now(UTC)
        row.updated_by = admin_id
        await session.flush()
        settings = _public(row)
        await events.stock_settings_updated(session, settings)
    return settings


async def low_stock(*, session: AsyncSession, at_most: int | None, page: int, page_size: int) -> LowStockPage:
    """Live, active variants of visible products at or below `at_most` (the shop's threshold by default), fewest first."""
    async with session.begin():
        threshold = (
            at_most if at_most is not None else (await session.get_one(ShopSettings, 1)).low_stock_threshold
        )
        # live (not retired), active variants of products a customer can see
        where = [
            Variant.stock <= threshold,
            Variant.is_active,
            Variant.retired_at.is_(None),
            Product.is_active,
            Product.deleted_at.is_(None),
        ]
        joined = sa.select(Variant, Product.name, Product.options).join(
            Product, Product.id == Variant.product_id
        )
        total = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Variant)
            .join(Product, Product.id == Variant.product_id)
            .where(*where)
        )
        rows = (
            await session.execute(
                joined.where(*where)
                .order_by(Variant.stock, Product.name, Variant.position, Variant.sku)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
        ).all()
    items = [
        LowStockVariant(
            product_id=v.product_id,
            variant_id=v.id,
            name=name,
            title=v.title if options else "",
            sku=v.sku,
            stock=v.stock,
        )
        for v, name, options in rows
    ]
    return LowStockPage(items=items, total=total or 0, page=page, page_size=page_size, threshold=threshold)
