"""The product read-model: what cart knows of catalog's products, kept current by events.

Every write is guarded by the product's ``version`` (catalog raises it on every change,
stock included): a row changes only for a strictly newer version, so a stale or repeated
event never overwrites what is already known. A product never seen before is fetched once
from catalog over HTTP and stored the same way.

Variants ride on their product's version: a product event that applies replaces the product's
variants (one left out is retired), a ``stock.changed`` that applies sets the stock of the
variants it names. A product known from before variants (no variant rows) is fetched again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound, ServiceUnavailable
from libs.common.http import call
from libs.common.logging import get_logger
from libs.contracts.catalog import ProductPublic, VariantStock
from services.cart.context import CartContext
from services.cart.models import Product, Variant

log = get_logger(__name__)
_COLUMNS = ("name", "slug", "image", "price", "currency", "stock", "is_active", "deleted", "version")


def product_values(product: ProductPublic, *, deleted: bool = False) -> dict[str, Any]:
    """Read-model columns from catalog's Product wire shape."""
    return {
        "product_id": product.id,
        "name": product.name,
        "slug": product.slug,
        "image": product.images[0] if product.images else None,
        "price": product.price,
        "currency": product.currency.upper()[:3],
        "stock": max(0, product.stock),
        "is_active": product.is_active,
        "deleted": deleted or product.deleted,
        "version": product.version,
        "variants": [
            {
                "variant_id": v.id,
                "product_id": product.id,
                "sku": v.sku,
                "title": v.title,
                "options": v.options,
                "price": v.price,
                "stock": max(0, v.stock),
                "is_active": v.is_active,
                "retired": False,
                "position": v.position,
            }
            for v in product.variants
        ],
    }


async def apply_product(session: AsyncSession, values: dict[str, Any], *, same_version: bool = False) -> bool:
    """Insert or update one product (and its variants) if ``values`` is newer than what is held.

    ``same_version`` also applies an equal version: a product stored before variants existed
    gets its variants from a fetch of the version it already holds. True if applied.
    """
    values = dict(values)
    variants: list[dict[str, Any]] = values.pop("variants", [])
    now = datetime.now(UTC)
    new = insert(Product).values(**values, updated_at=now)
    newer = (
        Product.version <= new.excluded.version if same_version else Product.version < new.excluded.version
    )
    stmt = new.on_conflict_do_update(
        index_elements=[Product.product_id],
        set_={**{c: new.excluded[c] for c in _COLUMNS}, "updated_at": now},
        where=newer,
    ).returning(Product.product_id)
    if (await session.execute(stmt)).first() is None:
        return False
    if variants:  # an event from before variants says nothing about them
        await session.execute(
            sa.update(Variant)
            .where(
                Variant.product_id == values["product_id"],
                Variant.variant_id.not_in([v["variant_id"] for v in variants]),
            )
            .values(retired=True, is_active=False)
        )
        new_v = insert(Variant).values(variants)
        await session.execute(
            new_v.on_conflict_do_update(
                index_elements=[Variant.variant_id],
                set_={c: new_v.excluded[c] for c in variants[0] if c not in ("variant_id", "product_id")},
            )
        )
    return True


async def apply_stock(
    session: AsyncSession,
    *,
    product_id: uuid.UUID,
    stock: int,
    version: int,
    variants: list[VariantStock] | None = None,
) -> bool:
    """Set a known product's (and the named variants') stock if ``version`` is newer; an unknown product is fetched later."""
    result = await session.execute(
        sa.update(Product)
        .where(Product.product_id == product_id, Product.version < version)
        .values(stock=max(0, stock), version=version, updated_at=datetime.now(UTC))
        .returning(Product.product_id)
    )
    if result.first() is None:
        return False
    if not variants:
        # a first-wave event names no variant: a product's only variant is the product
        live = (
            await session.execute(
                sa.select(Variant.variant_id).where(
                    Variant.product_id == product_id, Variant.retired.is_(False)
                )
            )
        ).all()
        if len(live) == 1:
            await session.execute(
                sa.update(Variant).where(Variant.variant_id == live[0][0]).values(stock=max(0, stock))
            )
    for v in variants or []:
        await session.execute(
            sa.update(Variant)
            .where(Variant.variant_id == v.id, Variant.product_id == product_id)
            .values(stock=max(0, v.stock))
        )
    return True


async def ensure_known(*, ctx: CartContext, session: AsyncSession, product_id: uuid.UUID) -> None:
    """Make sure the read-model holds ``product_id``, asking catalog once if it does not.

    Runs its own short transactions (the session must not be in one), and never holds a
    transaction open while waiting on catalog.
    """
    async with session.begin():
        known = await session.scalar(sa.select(Product.product_id).where(Product.product_id == product_id))
        with_variants = known is not None and (
            await session.scalar(
                sa.select(Variant.variant_id).where(Variant.product_id == product_id).limit(1)
            )
        )
    if with_variants:
        return
    try:
        values = await fetch_from_catalog(ctx=ctx, product_id=product_id)
    except NotFound:
        if known is None:
            raise
        return  # known but hidden now: what the read-model holds answers (unavailable)
    async with session.begin():
        await apply_product(session, values, same_version=known is not None)


async def fetch_from_catalog(*, ctx: CartContext, product_id: uuid.UUID) -> dict[str, Any]:
    """The product as catalog has it now; 404 when catalog does not know it."""
    url = f"{ctx.settings.catalog_url.rstrip('/')}/products/{product_id}"
    resp = await call(ctx.http, "GET", url, service="catalog", headers={"Accept": "application/json"})
    if resp.status_code == 404:
        raise NotFound(f"Product {product_id} does not exist.", title="Unknown product")
    if resp.status_code != 200:
        log.warning("catalog_unexpected_answer", status=resp.status_code, product_id=str(product_id))
        raise ServiceUnavailable("The catalog service cannot tell about this product right now; try again.")
    try:
        values = product_values(ProductPublic.model_validate_json(resp.content))
    except ValidationError as exc:
        log.warning("catalog_unusable_product", product_id=str(product_id), error=str(exc))
        raise ServiceUnavailable("The catalog service answered in an unexpected way.") from exc
    if values["product_id"] != product_id:
        raise ServiceUnavailable("The catalog service answered about another product.")
    return values
