"""Business rules of categories and products: validation, slugs, soft delete, stock, events."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound, Unprocessable
from services.catalog import events
from services.catalog.models import VISIBLE, Category, Product
from services.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductUpdate,
    category_wire,
    product_wire,
)


def slugify(text: str, *, fallback: str) -> str:
    """A URL-safe lower-case slug of ``text`` (ASCII, hyphens), at most 80 characters."""
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:80].strip("-")
    return slug or fallback


async def _free_slug(session: AsyncSession, column: Any, base: str) -> str:
    taken = set(
        (
            await session.execute(sa.select(column).where(sa.or_(column == base, column.like(f"{base}-%"))))
        ).scalars()
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _parse_key(key: str) -> tuple[str, Any]:
    """An id or a slug; anything else cannot name a resource (and never reaches the database)."""
    try:
        return "id", uuid.UUID(key)
    except ValueError:
        slug = key.strip().lower()
        if len(slug) > 120 or not SLUG_RE.match(slug):
            raise NotFound(f"No resource named {key[:80]!r}.") from None
        return "slug", slug


def _integrity(exc: IntegrityError, kind: str) -> Conflict | Unprocessable:
    text = str(exc.orig)
    for constraint, field in (
        ("uq_products_sku", "sku"),
        ("uq_products_slug", "slug"),
        ("uq_categories_slug", "slug"),
    ):
        if constraint in text:
            return Conflict(
                f"A {kind} with this {field} already exists.",
                title="Already exists",
                errors=[{"field": field, "message": f"{field} is already taken", "type": "unique"}],
            )
    if "fk_products_category_id" in text:
        return _unknown_category()
    if "fk_categories_parent_id" in text:
        return Unprocessable(
            "The parent category does not exist.",
            errors=[{"field": "parent_id", "message": "unknown category", "type": "not_found"}],
        )
    return Conflict(f"The {kind} conflicts with existing data.")


def _unknown_category() -> Unprocessable:
    return Unprocessable(
        "The category does not exist.",
        errors=[{"field": "category_id", "message": "unknown category", "type": "not_found"}],
    )


# ---------------------------------------------------------------- categories


async def _product_counts(session: AsyncSession) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        sa.text(
            f"SELECT category_id, count(*) FROM products WHERE {VISIBLE} AND category_id IS NOT NULL "  # noqa: S608
            "GROUP BY category_id"
        )
    )
    return {r[0]: int(r[1]) for r in rows}


def _rolled_up(cats: Sequence[Category], direct: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """Active products per category, sub-categories included."""
    children: dict[uuid.UUID | None, list[Category]] = {}
    for c in cats:
        children.setdefault(c.parent_id, []).append(c)
    total: dict[uuid.UUID, int] = {}

    def walk(c: Category, seen: frozenset[uuid.UUID]) -> int:
        if c.id in total:
            return total[c.id]
        n = direct.get(c.id, 0) + sum(
            walk(k, seen | {c.id}) for k in children.get(c.id, ()) if k.id not in seen
        )
        total[c.id] = n
        return n

    for c in cats:
        walk(c, frozenset())
    return total


async def list_categories(*, session: AsyncSession, flat: bool) -> list[dict[str, Any]]:
    """Every category with its product count: a tree of ``children``, or flat."""
    cats = list(
        (
            await session.execute(sa.select(Category).order_by(Category.position, Category.name, Category.id))
        ).scalars()
    )
    counts = _rolled_up(cats, await _product_counts(session))
    wires = {c.id: category_wire(c, counts.get(c.id, 0)) for c in cats}
    if flat:
        return list(wires.values())
    roots: list[dict[str, Any]] = []
    for c in cats:
        node = wires[c.id]
        node.setdefault("children", [])
        if c.parent_id is None or c.parent_id not in wires:
            roots.append(node)
        else:
            wires[c.parent_id].setdefault("children", []).append(node)
    return roots


_SUBTREE_COUNT = (  # a constant: VISIBLE is fixed SQL
    "WITH RECURSIVE tree(id) AS (SELECT CAST(:id AS uuid) UNION "  # noqa: S608
    "SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id) "
    "SELECT count(*) FROM products WHERE category_id IN (SELECT id FROM tree) AND " + VISIBLE
)


async def _category_wire(session: AsyncSession, category: Category) -> dict[str, Any]:
    count = (await session.execute(sa.text(_SUBTREE_COUNT), {"id": category.id})).scalar_one()
    return category_wire(category, int(count))


async def get_category(*, session: AsyncSession, key: str) -> dict[str, Any]:
    """One category by id or slug; 404 if missing."""
    field, value = _parse_key(key)
    category = (
        await session.execute(sa.select(Category).where(getattr(Category, field) == value))
    ).scalar_one_or_none()
    if category is None:
        raise NotFound(f"No category {key!r}.")
    return await _category_wire(session, category)


async def _check_parent(
    session: AsyncSession, category_id: uuid.UUID | None, parent_id: uuid.UUID | None
) -> None:
    if parent_id is None:
        return
    if parent_id == category_id:
        raise Unprocessable(
            "A category cannot be its own parent.",
            errors=[{"field": "parent_id", "message": "cycle", "type": "cycle"}],
        )
    ancestors = (
        (
            await session.execute(
                sa.text(
                    "WITH RECURSIVE up(id, parent_id) AS ("
                    " SELECT id, parent_id FROM categories WHERE id = :pid"
                    " UNION SELECT c.id, c.parent_id FROM categories c JOIN up ON c.id = up.parent_id)"
                    " SELECT id FROM up"
                ),
                {"pid": parent_id},
            )
        )
        .scalars()
        .all()
    )
    if not ancestors:
        raise Unprocessable(
            "The parent category does not exist.",
            errors=[{"field": "parent_id", "message": "unknown category", "type": "not_found"}],
        )
    if category_id is not None and category_id in ancestors:
        raise Unprocessable(
            "The parent would make a cycle: it is inside this category.",
            errors=[{"field": "parent_id", "message": "cycle", "type": "cycle"}],
        )


async def create_category(*, session: AsyncSession, data: CategoryCreate) -> dict[str, Any]:
    """Create a category (slug generated from the name unless given) and emit category.created."""
    try:
        async with session.begin():
            await _check_parent(session, None, data.parent_id)
            now = datetime.now(UTC)
            slug = data.slug or await _free_slug(
                session, Category.slug, slugify(data.name, fallback="category")
            )
            category = Category(
                id=uuid.uuid4(),
                name=data.name,
                slug=slug,
                description=data.description,
                image_url=str(data.image_url) if data.image_url else None,
                parent_id=data.parent_id,
                position=data.position,
                created_at=now,
                updated_at=now,
            )
            session.add(category)
            await session.flush()
            wire = category_wire(category, 0)
            await events.category_changed(session, "created", wire)
    except IntegrityError as exc:
        raise _integrity(exc, "category") from None
    return wire


async def update_category(
    *, session: AsyncSession, category_id: uuid.UUID, data: CategoryUpdate | CategoryCreate, replace: bool
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a category and emit category.updated."""
    fields = data.model_dump(exclude_unset=not replace)
    if replace and "slug" not in data.model_fields_set:
        fields.pop("slug", None)
    try:
        async with session.begin():
            category = await session.get(Category, category_id, with_for_update=True)
            if category is None:
                raise NotFound("No such category.")
            if "parent_id" in fields:
                await _check_parent(session, category.id, fields["parent_id"])
            if fields.get("image_url") is not None:
                fields["image_url"] = str(fields["image_url"])
            for name, value in fields.items():
                setattr(category, name, value)
            category.updated_at = datetime.now(UTC)
            await session.flush()
            wire = await _category_wire(session, category)
            await events.category_changed(session, "updated", wire)
    except IntegrityError as exc:
        raise _integrity(exc, "category") from None
    return wire


async def delete_category(*, session: AsyncSession, category_id: uuid.UUID) -> None:
    """Delete an empty category; 409 saying how many products or sub-categories it still has."""
    async with session.begin():
        category = await session.get(Category, category_id, with_for_update=True)
        if category is None:
            raise NotFound("No such category.")
        products = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(Product)
                .where(Product.category_id == category_id, Product.deleted_at.is_(None))
            )
        ).scalar_one()
        children = (
            await session.execute(
                sa.select(sa.func.count()).select_from(Category).where(Category.parent_id == category_id)
            )
        ).scalar_one()
        if products or children:
            parts = [f"{products} product{'s' * (products != 1)}"] if products else []
            parts += [f"{children} sub-categor{'ies' if children != 1 else 'y'}"] if children else []
            raise Conflict(
                f"The category still has {' and '.join(parts)}; move or delete them first.",
                title="Category not empty",
                type_="category-not-empty",
                product_count=products,
                subcategory_count=children,
            )
        wire = category_wire(category, 0)
        await session.delete(category)
        await events.category_changed(session, "deleted", wire)


# ---------------------------------------------------------------- products


async def get_product(*, session: AsyncSession, key: str, include_hidden: bool = False) -> dict[str, Any]:
    """One product by id or slug; inactive or deleted ones only for admins."""
    field, value = _parse_key(key)
    query = sa.select(Product).where(getattr(Product, field) == value)
    if not include_hidden:
        query = query.where(Product.is_active, Product.deleted_at.is_(None))
    product = (await session.execute(query)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"No product {key!r}.")
    return product_wire(product)


async def _check_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    if await session.get(Category, category_id) is None:
        raise _unknown_category()


async def create_product(
    *, session: AsyncSession, data: ProductCreate, default_currency: str
) -> dict[str, Any]:
    """Create a product and emit product.created."""
    try:
        async with session.begin():
            await _check_category(session, data.category_id)
            now = datetime.now(UTC)
            slug = data.slug or await _free_slug(
                session, Product.slug, slugify(data.name, fallback="product")
            )
            product = Product(
                id=uuid.uuid4(),
                name=data.name,
                slug=slug,
                description=data.description,
                price=data.price,
                compare_at_price=data.compare_at_price,
                currency=data.currency or default_currency,
                sku=data.sku,
                category_id=data.category_id,
                images=[str(u) for u in data.images],
                stock=data.stock,
                attributes=data.attributes,
                is_active=data.is_active,
                deleted_at=None,
                version=1,
                created_at=now,
                updated_at=now,
            )
            session.add(product)
            await session.flush()
            wire = product_wire(product)
            await events.product_changed(session, "created", wire)
    except IntegrityError as exc:
        raise _integrity(exc, "product") from None
    return wire


async def _locked_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    # the row lock keeps an admin edit and a concurrent reservation from losing each other's stock
    product = (
        await session.execute(
            sa.select(Product).where(Product.id == product_id, Product.deleted_at.is_(None)).with_for_update()
        )
    ).scalar_one_or_none()
    if product is None:
        raise NotFound("No such product.")
    return product


async def update_product(
    *,
    session: AsyncSession,
    product_id: uuid.UUID,
    data: ProductUpdate | ProductCreate,
    replace: bool,
    default_currency: str,
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a product; emits product.updated (and stock.changed)."""
    fields = data.model_dump(exclude_unset=not replace)
    if replace:
        # a PUT without slug or stock keeps them: stock moves with sales, a stale form must not reset it
        for kept in ("slug", "stock"):
            if kept not in data.model_fields_set:
                fields.pop(kept, None)
        fields["currency"] = fields.get("currency") or default_currency
    try:
        async with session.begin():
            product = await _locked_product(session, product_id)
            if "category_id" in fields:
                await _check_category(session, fields["category_id"])
            if "images" in fields:
                fields["images"] = [str(u) for u in fields["images"]]
            price = fields.get("price", product.price)
            compare_at = fields.get("compare_at_price", product.compare_at_price)
            if compare_at is not None and compare_at < price:
                raise Unprocessable(
                    "compare_at_price must not be lower than price.",
                    errors=[
                        {"field": "compare_at_price", "message": "lower than price", "type": "value_error"}
                    ],
                )
            old_stock = product.stock
            changed = {k: v for k, v in fields.items() if getattr(product, k) != v}
            if not changed:
                return product_wire(product)
            for name, value in changed.items():
                setattr(product, name, value)
            product.version = product.version + 1
            product.updated_at = datetime.now(UTC)
            await session.flush()
            wire = product_wire(product)
            await events.product_changed(session, "updated", wire)
            if product.stock != old_stock:
                await events.stock_changed(
                    session, product_id=product.id, stock=product.stock, version=product.version
                )
    except IntegrityError as exc:
        raise _integrity(exc, "product") from None
    return wire


async def delete_product(*, session: AsyncSession, product_id: uuid.UUID) -> None:
    """Soft delete: hidden from browsing, kept for order history; emits product.deleted."""
    async with session.begin():
        product = await _locked_product(session, product_id)
        now = datetime.now(UTC)
        product.deleted_at = now
        product.updated_at = now
        product.version = product.version + 1
        await session.flush()
        await events.product_changed(session, "deleted", product_wire(product))


async def change_stock(*, session: AsyncSession, product_id: uuid.UUID, delta: int) -> dict[str, Any]:
    """Add ``delta`` to the stock, never below zero (409); emits stock.changed."""
    async with session.begin():
        product = await _locked_product(session, product_id)
        if product.stock + delta < 0:
            raise Conflict(
                f"Stock cannot go below zero: {product.stock} in stock, change {delta}.",
                title="Insufficient stock",
                type_="insufficient-stock",
                available=product.stock,
                delta=delta,
            )
        product.stock = product.stock + delta
        product.version = product.version + 1
        product.updated_at = datetime.now(UTC)
        await session.flush()
        await events.stock_changed(
            session, product_id=product.id, stock=product.stock, version=product.version
        )
        return product_wire(product)
