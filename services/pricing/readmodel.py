"""What pricing keeps of other parts' data, fed by their events: catalog's category tree and each
product's category (promotions scoped by category), and customers' orders (first-order promotions)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.pricing.models import CatalogCategory, CatalogProduct, CustomerOrder, OrderPricing


async def apply_category(
    session: AsyncSession,
    *,
    category_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    deleted: bool,
    updated_at: datetime,
) -> None:
    """Store a category's parent unless what is held is newer."""
    stmt = insert(CatalogCategory).values(
        id=category_id, parent_id=parent_id, deleted=deleted, updated_at=updated_at
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CatalogCategory.id],
            set_={
                "parent_id": stmt.excluded.parent_id,
                "deleted": stmt.excluded.deleted,
                "updated_at": stmt.excluded.updated_at,
            },
            where=CatalogCategory.updated_at <= stmt.excluded.updated_at,
        )
    )


async def apply_product(
    session: AsyncSession, *, product_id: uuid.UUID, category_id: uuid.UUID | None, version: int
) -> None:
    """Store a product's category unless a newer version is held."""
    stmt = insert(CatalogProduct).values(id=product_id, category_id=category_id, version=version)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CatalogProduct.id],
            set_={"category_id": stmt.excluded.category_id, "version": stmt.excluded.version},
            where=CatalogProduct.version < stmt.excluded.version,
        )
    )


async def categories_of(
    session: AsyncSession, product_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """Each known product's category."""
    ids = list(set(product_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(CatalogProduct.id, CatalogProduct.category_id).where(CatalogProduct.id.in_(ids))
    )
    return {r[0]: r[1] for r in rows}


async def ancestors_of(
    session: AsyncSession, category_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    """Every category's ancestors, walked up the parent links (a cycle in bad data ends the walk)."""
    ids = list(set(category_ids))
    if not ids:
        return {}
    rows = await session.execute(
        sa.text(
            "WITH RECURSIVE up(origin, id, parent_id) AS ("
            " SELECT id, id, parent_id FROM catalog_categories WHERE id = ANY(:ids)"
            " UNION"
            " SELECT up.origin, c.id, c.parent_id FROM catalog_categories c JOIN up ON c.id = up.parent_id"
            ") SELECT origin, id FROM up WHERE id <> origin"
        ).bindparams(sa.bindparam("ids", ids, type_=sa.ARRAY(sa.Uuid())))
    )
    found: dict[uuid.UUID, set[uuid.UUID]] = {i: set() for i in ids}
    for origin, ancestor in rows:
        found[origin].add(ancestor)
    return {k: frozenset(v) for k, v in found.items()}


async def record_order(
    session: AsyncSession, *, order_id: uuid.UUID, customer_id: uuid.UUID, status: str, at: datetime
) -> None:
    """Remember an order and its latest status (events may come out of order: the newest wins)."""
    stmt = insert(CustomerOrder).values(
        order_id=order_id, customer_id=customer_id, status=status, updated_at=at
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CustomerOrder.order_id],
            set_={"status": stmt.excluded.status, "updated_at": stmt.excluded.updated_at},
            where=CustomerOrder.updated_at <= stmt.excluded.updated_at,
        )
    )


async def is_first_order(
    session: AsyncSession, *, customer_id: uuid.UUID | None, order_id: uuid.UUID | None
) -> bool:
    """No other order of this customer stands: none that orders told of (and not cancelled), and none
    that pricing itself priced and did not release (orders' events may not have arrived yet)."""
    if customer_id is None:
        return False
    other = uuid.UUID(int=0) if order_id is None else order_id
    told = sa.exists().where(
        CustomerOrder.customer_id == customer_id,
        CustomerOrder.status != "cancelled",
        CustomerOrder.order_id != other,
    )
    priced = sa.exists().where(
        OrderPricing.customer_id == customer_id,
        OrderPricing.released_at.is_(None),
        OrderPricing.order_id != other,
    )
    return not (await session.execute(sa.select(sa.or_(told, priced)))).scalar_one()
