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

from libs.common.errors import Conflict, DomainError, NotFound, Unprocessable
from services.catalog import events, trash, variants
from services.catalog.models import VISIBLE, Category, Product, ProductImage, Variant
from services.catalog.schemas import (
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductUpdate,
    VariantIn,
    VariantUpdate,
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
    """One product by id or slug, with its live variants; inactive or deleted ones only for admins."""
    field, value = _parse_key(key)
    query = sa.select(Product).where(getattr(Product, field) == value)
    if not include_hidden:
        query = query.where(Product.is_active, Product.deleted_at.is_(None))
    product = (await session.execute(query)).scalar_one_or_none()
    if product is None:
        raise NotFound(f"No product {key!r}.")
    return product_wire(
        product, await variants.live_variants(session, product.id), await images_of(session, product.id)
    )


async def images_of(session: AsyncSession, product_id: uuid.UUID) -> list[ProductImage]:
    """A product's uploaded images in their order."""
    return list(
        (
            await session.execute(
                sa.select(ProductImage)
                .where(ProductImage.product_id == product_id)
                .order_by(ProductImage.position, ProductImage.created_at, ProductImage.id)
            )
        ).scalars()
    )


async def _check_category(session: AsyncSession, category_id: uuid.UUID) -> None:
    if await session.get(Category, category_id) is None:
        raise _unknown_category()


_DERIVED = ("price", "compare_at_price", "stock")


def _derived_not_sent(data: ProductCreate | ProductUpdate, *, why: str) -> None:
    sent = [f for f in _DERIVED if f in data.model_fields_set]
    if sent:
        raise Unprocessable(
            f"{', '.join(sent)} {'is' if len(sent) == 1 else 'are'} {why}; set it on each variant.",
            errors=[{"field": f, "message": why, "type": "derived"} for f in sent],
        )


def _default_variant(data: ProductCreate) -> VariantIn:
    """The one variant of a product created the first-wave way (no variants given)."""
    if data.options:
        raise Unprocessable(
            "A product with options needs its variants.",
            errors=[{"field": "variants", "message": "required when options are given", "type": "missing"}],
        )
    if data.price is None:
        raise Unprocessable(
            "price is required (or variants, each with its price).",
            errors=[{"field": "price", "message": "Field required", "type": "missing"}],
        )
    return VariantIn(
        sku=data.sku, price=data.price, compare_at_price=data.compare_at_price, stock=data.stock or 0
    )


async def create_product(
    *, session: AsyncSession, data: ProductCreate, default_currency: str
) -> dict[str, Any]:
    """Create a product with its options and variants (or one default variant); emit product.created."""
    if data.variants is not None:
        _derived_not_sent(data, why="derived from the variants")
    wanted = data.variants if data.variants is not None else [_default_variant(data)]
    options = [o.model_dump() for o in data.options]
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
                price=0,
                compare_at_price=None,
                currency=data.currency or default_currency,
                sku=data.sku,
                category_id=data.category_id,
                images=[str(u) for u in data.images],
                stock=0,
                attributes=data.attributes,
                options=options,
                is_active=data.is_active,
                deleted_at=None,
                version=1,
                created_at=now,
                updated_at=now,
            )
            session.add(product)
            await session.flush()
            try:
                await variants.replace_all(session, product=product, options=options, wanted=wanted, now=now)
            except Unprocessable as exc:
                raise (exc if data.variants is not None else _first_wave(exc)) from None
            live = await variants.live_variants(session, product.id)
            variants.rollup(product, live)
            await session.flush()
            await variants.refresh_option_values(session, product.id)
            wire = product_wire(product, live)
            await events.product_changed(session, "created", wire)
    except IntegrityError as exc:
        raise _integrity(exc, "product") from None
    return wire


async def _locked_product(session: AsyncSession, product_id: uuid.UUID) -> Product:
    # the row lock keeps an admin edit and a concurrent reservation from losing each other's stock;
    # every writer of a product's variants takes it first, so it also guards the variants
    product = (
        await session.execute(
            sa.select(Product).where(Product.id == product_id, Product.deleted_at.is_(None)).with_for_update()
        )
    ).scalar_one_or_none()
    if product is None:
        raise NotFound("No such product.")
    return product


def _as_input(v: Variant, **changes: Any) -> VariantIn:
    fields = {
        "id": v.id,
        "sku": v.sku,
        "options": v.options,
        "price": v.price,
        "compare_at_price": v.compare_at_price,
        "stock": v.stock,
        "is_active": v.is_active,
        **changes,
    }
    return VariantIn.model_construct(**fields)


async def _finish(
    session: AsyncSession,
    product: Product,
    changes: list[tuple[str, Variant]],
    *,
    old_stock: dict[uuid.UUID, int],
    product_changed: bool,
    now: datetime,
    stock_only: bool = False,
) -> dict[str, Any]:
    """Derive the product from its variants, bump its version, emit what changed.

    A stock move alone is ``stock.changed`` (and ``variant.updated``), as reservations are, not
    ``product.updated``.
    """
    live = await variants.live_variants(session, product.id)
    variants.rollup(product, live)
    if not changes and not product_changed:
        return product_wire(product, live, await images_of(session, product.id))
    product.version = product.version + 1
    product.updated_at = now
    await session.flush()
    if changes and not stock_only:
        await variants.refresh_option_values(session, product.id)
    wire = product_wire(product, live, await images_of(session, product.id))
    if not stock_only:
        await events.product_changed(session, "updated", wire)
    await variants.publish_changes(session, product, changes, old_stock=old_stock)
    return wire


async def update_product(
    *,
    session: AsyncSession,
    product_id: uuid.UUID,
    data: ProductUpdate | ProductCreate,
    replace: bool,
    default_currency: str,
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a product and its variants; emits product.updated (and stock.changed).

    ``variants``, when sent, is the whole list (with id: updated, without: added, left out:
    retired). Without it, the first-wave ``price``, ``compare_at_price`` and ``stock`` go to a
    product's only variant; a product with several refuses them (422).
    """
    fields = data.model_dump(exclude_unset=not replace, exclude={"options", "variants"})
    if replace:
        # a PUT without slug or stock keeps them: stock moves with sales, a stale form must not reset it
        for kept in ("slug", "stock"):
            if kept not in data.model_fields_set:
                fields.pop(kept, None)
        fields["currency"] = fields.get("currency") or default_currency
        if data.price is None and data.variants is None:
            fields.pop("price", None)
    if data.variants is not None:
        _derived_not_sent(data, why="derived from the variants")
        for name in _DERIVED:
            fields.pop(name, None)
    try:
        async with session.begin():
            product = await _locked_product(session, product_id)
            now = datetime.now(UTC)
            live = await variants.live_variants(session, product.id)
            old_stock = {v.id: v.stock for v in live}
            if "category_id" in fields:
                await _check_category(session, fields["category_id"])
            if "images" in fields:
                fields["images"] = [str(u) for u in fields["images"]]
            options = (
                [o.model_dump() for o in data.options]
                if data.options is not None and "options" in data.model_fields_set
                else list(product.options)
            )
            per_variant = {k: fields.pop(k) for k in _DERIVED if k in fields}
            if replace and len(live) > 1:
                # a PUT of a product with several variants resets no per-variant field it did not send
                per_variant = {k: v for k, v in per_variant.items() if k in data.model_fields_set}
            if data.variants is not None:
                wanted: list[VariantIn] | None = list(data.variants)
            elif per_variant or options != product.options:
                if per_variant and len(live) > 1:
                    raise Unprocessable(
                        f"This product has {len(live)} variants: set {', '.join(per_variant)} on each variant.",
                        errors=[
                            {"field": f, "message": "set per variant", "type": "derived"} for f in per_variant
                        ],
                    )
                wanted = [_as_input(v, **per_variant) for v in live]
                if per_variant:
                    w = wanted[0]
                    if w.compare_at_price is not None and w.compare_at_price < w.price:
                        raise Unprocessable(
                            "compare_at_price must not be lower than price.",
                            errors=[
                                {
                                    "field": "compare_at_price",
                                    "message": "lower than price",
                                    "type": "value_error",
                                }
                            ],
                        )
            else:
                wanted = None
            follows = not product.options and len(live) == 1 and live[0].sku == product.sku
            if "sku" in fields and data.variants is None and follows:
                # a product without options: its one variant follows its SKU
                base = _fields_of(wanted[0]) if wanted else _fields_of(_as_input(live[0]))
                wanted = [_as_input(live[0], **{**base, "sku": fields["sku"]})]
            options_changed = options != product.options
            changed = {k: v for k, v in fields.items() if getattr(product, k) != v}
            for name, value in changed.items():
                setattr(product, name, value)
            await session.flush()  # the product's own unique fields (slug, SKU) answer first
            changes: list[tuple[str, Variant]] = []
            if wanted is not None:
                try:
                    changes = await variants.replace_all(
                        session, product=product, options=options, wanted=wanted, now=now
                    )
                except Unprocessable as exc:
                    raise (exc if data.variants is not None else _first_wave(exc)) from None
            return await _finish(
                session,
                product,
                changes,
                old_stock=old_stock,
                product_changed=bool(changed) or options_changed,
                now=now,
            )
    except IntegrityError as exc:
        raise (variants.unique_violation(exc) or _integrity(exc, "product")) from None


def _first_wave(exc: Unprocessable) -> DomainError:
    """A first-wave request (no variants sent) hears about its product fields, as it did before variants."""
    errors = exc.extra.get("errors", [])
    if any(e.get("field") == "variants.0.sku" for e in errors):
        return Conflict(
            "A product with this sku already exists.",
            title="Already exists",
            errors=[{"field": "sku", "message": "sku is already taken", "type": "unique"}],
        )
    return variants.invalid(
        [{**e, "field": str(e.get("field", "")).removeprefix("variants.0.")} for e in errors]
    )


def _fields_of(w: VariantIn) -> dict[str, Any]:
    return {
        k: getattr(w, k) for k in ("id", "sku", "options", "price", "compare_at_price", "stock", "is_active")
    }


async def _locked_variant(session: AsyncSession, product_id: uuid.UUID, variant_id: uuid.UUID) -> Variant:
    variant = (
        await session.execute(
            sa.select(Variant).where(
                Variant.id == variant_id, Variant.product_id == product_id, Variant.retired_at.is_(None)
            )
        )
    ).scalar_one_or_none()
    if variant is None:
        raise NotFound("No such variant of this product.")
    return variant


async def add_variant(*, session: AsyncSession, product_id: uuid.UUID, data: VariantIn) -> dict[str, Any]:
    """Add one variant (e.g. a new size); a new value of a known option joins that option's values."""
    try:
        async with session.begin():
            product = await _locked_product(session, product_id)
            now = datetime.now(UTC)
            live = await variants.live_variants(session, product.id)
            old_stock = {v.id: v.stock for v in live}
            names = {o["name"] for o in product.options}
            unknown = sorted(set(data.options) - names)
            if unknown:
                raise variants.invalid(
                    [
                        {
                            "field": f"options.{n}",
                            "message": "not an option of this product",
                            "type": "unknown",
                        }
                        for n in unknown
                    ]
                )
            options = [
                {**o, "values": [*o["values"], data.options[o["name"]]]}
                if o["name"] in data.options and data.options[o["name"]] not in o["values"]
                else o
                for o in product.options
            ]
            wanted = [_as_input(v) for v in live] + [data.model_copy(update={"id": None})]
            try:
                changes = await variants.replace_all(
                    session, product=product, options=options, wanted=wanted, now=now
                )
            except Unprocessable as exc:
                raise _single(exc, len(live)) from None
            wire = await _finish(
                session,
                product,
                changes,
                old_stock=old_stock,
                product_changed=True,
                now=now,
            )
    except IntegrityError as exc:
        raise (variants.unique_violation(exc) or _integrity(exc, "product")) from None
    return next(v for v in wire["variants"] if v["id"] == changes[-1][1].id)


def _single(exc: Unprocessable, index: int) -> Unprocessable:
    """Errors about ``variants.<index>.x`` of the rebuilt list name the one variant's own ``x``."""
    prefix = f"variants.{index}."
    errors = [
        {**e, "field": e["field"].removeprefix(prefix)} if str(e.get("field", "")).startswith(prefix) else e
        for e in exc.extra.get("errors", [])
    ]
    return variants.invalid(errors)


async def update_variant(
    *, session: AsyncSession, product_id: uuid.UUID, variant_id: uuid.UUID, data: VariantUpdate
) -> dict[str, Any]:
    """Change one variant (price, stock, SKU, active flag, options); the product follows."""
    try:
        async with session.begin():
            product = await _locked_product(session, product_id)
            target = await _locked_variant(session, product_id, variant_id)
            now = datetime.now(UTC)
            live = await variants.live_variants(session, product.id)
            old_stock = {v.id: v.stock for v in live}
            patch = data.model_dump(exclude_unset=True)
            merged = {**_fields_of(_as_input(target)), **patch}
            if merged["compare_at_price"] is not None and merged["compare_at_price"] < merged["price"]:
                raise Unprocessable(
                    "compare_at_price must not be lower than price.",
                    errors=[
                        {"field": "compare_at_price", "message": "lower than price", "type": "value_error"}
                    ],
                )
            index = next(i for i, v in enumerate(live) if v.id == variant_id)
            wanted = [_as_input(v, **patch) if v.id == variant_id else _as_input(v) for v in live]
            try:
                changes = await variants.replace_all(
                    session, product=product, options=list(product.options), wanted=wanted, now=now
                )
            except Unprocessable as exc:
                raise _single(exc, index) from None
            wire = await _finish(
                session,
                product,
                changes,
                old_stock=old_stock,
                product_changed=False,
                now=now,
            )
    except IntegrityError as exc:
        raise (variants.unique_violation(exc) or _integrity(exc, "product")) from None
    return next(v for v in wire["variants"] if v["id"] == variant_id)


async def retire_variant(*, session: AsyncSession, product_id: uuid.UUID, variant_id: uuid.UUID) -> None:
    """Stop selling one variant (kept for order history); the last live one cannot go (409)."""
    async with session.begin():
        product = await _locked_product(session, product_id)
        await _locked_variant(session, product_id, variant_id)
        now = datetime.now(UTC)
        live = await variants.live_variants(session, product.id)
        old_stock = {v.id: v.stock for v in live}
        if len(live) == 1:
            raise Conflict(
                "A product keeps at least one variant; delete the product instead.",
                title="Last variant",
                type_="last-variant",
            )
        wanted = [_as_input(v) for v in live if v.id != variant_id]
        changes = await variants.replace_all(
            session, product=product, options=list(product.options), wanted=wanted, now=now
        )
        await _finish(session, product, changes, old_stock=old_stock, product_changed=False, now=now)


async def delete_product(*, session: AsyncSession, product_id: uuid.UUID) -> list[str]:
    """Soft delete: hidden from browsing, kept for order history; emits product.deleted.

    Its images go (order history keeps names, SKUs and prices, no pictures): their rows now, their
    bytes once committed; the image prefixes to remove are returned (services/catalog/trash.py).
    """
    async with session.begin():
        product = await _locked_product(session, product_id)
        now = datetime.now(UTC)
        product.deleted_at = now
        product.updated_at = now
        product.version = product.version + 1
        gone: list[str] = []
        await session.execute(
            sa.update(Variant).where(Variant.product_id == product.id).values(image_id=None)
        )
        for image in await images_of(session, product.id):
            gone.append(image.prefix)
            await trash.condemn(session, image.prefix, image.extension)
            await session.delete(image)
        await session.flush()
        live = await variants.live_variants(session, product.id)
        await events.product_changed(session, "deleted", product_wire(product, live, []))
    return gone


async def change_stock(
    *, session: AsyncSession, product_id: uuid.UUID, delta: int, variant_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Add ``delta`` to a variant's stock (the only one's if none named), never below zero (409)."""
    async with session.begin():
        product = await _locked_product(session, product_id)
        live = await variants.live_variants(session, product.id)
        if variant_id is None:
            if len(live) != 1:
                raise Unprocessable(
                    f"This product has {len(live)} variants: name the variant_id whose stock changes.",
                    errors=[
                        {"field": "variant_id", "message": "required: several variants", "type": "missing"}
                    ],
                )
            variant = live[0]
        else:
            found = [v for v in live if v.id == variant_id]
            if not found:
                raise Unprocessable(
                    "No such variant of this product.",
                    errors=[
                        {
                            "field": "variant_id",
                            "message": "not a live variant of this product",
                            "type": "not_found",
                        }
                    ],
                )
            variant = found[0]
        if variant.stock + delta < 0:
            raise Conflict(
                f"Stock cannot go below zero: {variant.stock} in stock, change {delta}.",
                title="Insufficient stock",
                type_="insufficient-stock",
                available=variant.stock,
                delta=delta,
            )
        now = datetime.now(UTC)
        old_stock = {v.id: v.stock for v in live}
        variant.stock = variant.stock + delta
        variant.updated_at = now
        return await _finish(
            session,
            product,
            [("updated", variant)],
            old_stock=old_stock,
            product_changed=False,
            now=now,
            stock_only=True,
        )


# the image routes (services/catalog/images.py) change a product the same way
locked_product = _locked_product
announce = _finish
