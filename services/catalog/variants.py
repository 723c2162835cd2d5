"""Options and variants of a product: the rules that keep them consistent, and what the product derives.

A product has at most three options (``[{name, values}]``) and at least one live variant; each
live variant names exactly one value of each option, no two share a combination, and no two
live variants anywhere share a SKU. The product's first-wave ``price``/``compare_at_price`` are
its cheapest active variant's and its ``stock`` the sum over active variants, written in the
same transaction as the variants so first-wave readers (browse indexes, cart, orders) stay right.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Unprocessable
from services.catalog import events
from services.catalog.models import Product, Variant
from services.catalog.schemas import VariantIn, variant_wire

DEFAULT_TITLE = "Default"

# the same derivation as ``rollup`` for products whose variants changed in SQL (reservations)
ROLLUP_SQL = sa.text(
    "UPDATE products p SET stock = r.stock, price = r.price, compare_at_price = r.compare_at_price "
    "FROM (SELECT DISTINCT ON (product_id) product_id, price, compare_at_price, "
    "coalesce(sum(stock) FILTER (WHERE is_active) OVER (PARTITION BY product_id), 0) AS stock "
    "FROM variants WHERE product_id = ANY(CAST(:ids AS uuid[])) AND retired_at IS NULL "
    "ORDER BY product_id, is_active DESC, price, position, id) r "
    "WHERE p.id = r.product_id RETURNING p.id, p.stock, p.version"
)


# a product's option pairs: those of its live, active variants ({scope} narrows the products)
_PAIRS = (
    "SELECT DISTINCT v.product_id, kv.key, kv.value FROM variants v "
    "CROSS JOIN LATERAL jsonb_each_text(v.options) kv WHERE v.retired_at IS NULL AND v.is_active{scope}"
)
# constant SQL (no value is interpolated: they travel as parameters)
OPTION_PAIRS_SQL = (
    "INSERT INTO option_pairs (name, value) SELECT DISTINCT key, value FROM ("  # noqa: S608
    + _PAIRS
    + ") x ON CONFLICT DO NOTHING"
)
OPTION_VALUES_SQL = (
    "UPDATE products p SET option_value_ids = coalesce((SELECT array_agg(op.id ORDER BY op.id) "  # noqa: S608
    "FROM (" + _PAIRS.format(scope=" AND v.product_id = p.id") + ") x "
    "JOIN option_pairs op ON op.name = x.key AND op.value = x.value), '{{}}'){where}"
)


async def refresh_option_values(session: AsyncSession, product_id: uuid.UUID) -> None:
    """Derive the product's option_value_ids again (after its variants or their active flags changed)."""
    await session.execute(
        sa.text(OPTION_PAIRS_SQL.format(scope=" AND v.product_id = :id")), {"id": product_id}
    )
    await session.execute(sa.text(OPTION_VALUES_SQL.format(where=" WHERE p.id = :id")), {"id": product_id})


def title_of(options: Sequence[dict[str, Any]], combination: dict[str, str]) -> str:
    """``"M / Red"``: the values in the product's option order; ``Default`` without options."""
    return " / ".join(combination[o["name"]] for o in options if o["name"] in combination) or DEFAULT_TITLE


def rollup(product: Product, live: Sequence[Variant]) -> None:
    """Set the product's price, compare-at price and stock from its live variants."""
    if not live:
        return
    active = [v for v in live if v.is_active]
    cheapest = min(active or live, key=lambda v: (v.price, v.position))
    product.price = cheapest.price
    product.compare_at_price = cheapest.compare_at_price
    product.stock = sum(v.stock for v in active)


def _error(field: str, message: str, type_: str = "value_error") -> dict[str, str]:
    return {"field": field, "message": message, "type": type_}


def invalid(errors: list[dict[str, str]]) -> Unprocessable:
    return Unprocessable(
        "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) + ".",
        title="Invalid variants",
        errors=errors,
    )


def check_shape(options: Sequence[dict[str, Any]], combos: Sequence[tuple[str, dict[str, str]]]) -> None:
    """Every variant names one known value of each option, once; 422 naming each bad field.

    ``combos`` are (field prefix, options) of every live variant, e.g. ``("variants.2", {...})``.
    """
    errors: list[dict[str, str]] = []
    names = [o["name"] for o in options]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append(_error(f"options.{i}.name", f"option {name!r} is named twice", "duplicate"))
    if not options and len(combos) > 1:
        errors.append(_error("variants", "a product without options has exactly one variant", "too_many"))
    values = {o["name"]: o["values"] for o in options}
    seen: dict[tuple[tuple[str, str], ...], str] = {}
    for prefix, combo in combos:
        if set(combo) != set(names):
            wanted = ", ".join(names) or "none"
            errors.append(_error(f"{prefix}.options", f"must name one value of each option ({wanted})"))
            continue
        bad = [n for n in names if combo[n] not in values[n]]
        for n in bad:
            errors.append(
                _error(f"{prefix}.options.{n}", f"{combo[n]!r} is not a value of {n}", "unknown_value")
            )
        if bad:
            continue
        key = tuple(sorted(combo.items()))
        if key in seen:
            errors.append(
                _error(f"{prefix}.options", f"the same combination as {seen[key]}", "duplicate_combination")
            )
        else:
            seen[key] = prefix
    if errors:
        raise invalid(errors)


async def live_variants(session: AsyncSession, product_id: uuid.UUID) -> list[Variant]:
    """The product's live variants in their display order."""
    return list(
        (
            await session.execute(
                sa.select(Variant)
                .where(Variant.product_id == product_id, Variant.retired_at.is_(None))
                .order_by(Variant.position, Variant.id)
            )
        ).scalars()
    )


async def check_skus_free(
    session: AsyncSession, skus: Sequence[tuple[str, str]], *, except_ids: Sequence[uuid.UUID]
) -> None:
    """No SKU twice in the request nor on another live variant; 422 naming ``<field>`` (``variants.N.sku``)."""
    errors: list[dict[str, str]] = []
    first: dict[str, str] = {}
    for field, sku in skus:
        if sku in first:
            errors.append(_error(field, f"SKU {sku!r} is also {first[sku]}'s", "duplicate"))
        else:
            first[sku] = field
    query = sa.select(Variant.sku).where(Variant.sku.in_(list(first)), Variant.retired_at.is_(None))
    if except_ids:
        query = query.where(Variant.id.not_in(list(except_ids)))
    taken = set((await session.execute(query)).scalars())
    errors += [
        _error(field, f"SKU {sku!r} is already taken", "unique")
        for sku, field in first.items()
        if sku in taken
    ]
    if errors:
        raise invalid(errors)


def unique_violation(exc: Exception) -> Unprocessable | None:
    """A concurrent writer took the SKU or combination between the check and the insert."""
    text = str(getattr(exc, "orig", exc))
    if "uq_variants_live_sku" in text:
        return invalid([_error("variants.sku", "the SKU is already taken", "unique")])
    if "uq_variants_live_combination" in text:
        return invalid([_error("variants.options", "the same combination as another variant", "duplicate")])
    return None


async def replace_all(
    session: AsyncSession,
    *,
    product: Product,
    options: list[dict[str, Any]],
    wanted: Sequence[VariantIn],
    now: datetime,
) -> list[tuple[str, Variant]]:
    """Make the product's live variants ``wanted``: with an id updated, without added, left out retired.

    Returns (``created|updated|retired``, variant) for each variant that changed. The caller
    holds the product's row lock.
    """
    live = await live_variants(session, product.id)
    by_id = {v.id: v for v in live}
    errors = [
        _error(f"variants.{i}.id", "not a live variant of this product", "not_found")
        for i, w in enumerate(wanted)
        if w.id is not None and w.id not in by_id
    ]
    ids = [w.id for w in wanted if w.id is not None]
    errors += [
        _error(f"variants.{i}.id", "named twice", "duplicate")
        for i, w in enumerate(wanted)
        if w.id is not None and ids.count(w.id) > 1 and ids.index(w.id) != i
    ]
    if errors:
        raise invalid(errors)
    check_shape(options, [(f"variants.{i}", w.options) for i, w in enumerate(wanted)])
    kept = {w.id for w in wanted if w.id is not None}
    await check_skus_free(
        session, [(f"variants.{i}.sku", w.sku) for i, w in enumerate(wanted)], except_ids=list(by_id)
    )
    changes: list[tuple[str, Variant]] = []
    for v in live:
        if v.id not in kept:
            v.retired_at, v.is_active, v.updated_at = now, False, now
            changes.append(("retired", v))
    await session.flush()  # a retired variant's SKU and combination are free for the rows below
    for position, w in enumerate(wanted):
        values = {
            "sku": w.sku,
            "options": dict(w.options),
            "title": title_of(options, w.options),
            "price": w.price,
            "compare_at_price": w.compare_at_price,
            "stock": w.stock,
            "is_active": w.is_active,
            "position": position,
        }
        if w.id is None:
            variant = Variant(
                id=uuid.uuid4(), product_id=product.id, created_at=now, updated_at=now, **values
            )
            session.add(variant)
            changes.append(("created", variant))
            continue
        variant = by_id[w.id]
        if any(getattr(variant, k) != val for k, val in values.items()):
            for k, val in values.items():
                setattr(variant, k, val)
            variant.updated_at = now
            changes.append(("updated", variant))
    await session.flush()
    product.options = options
    return changes


async def publish_changes(
    session: AsyncSession,
    product: Product,
    changes: Sequence[tuple[str, Variant]],
    *,
    old_stock: dict[uuid.UUID, int],
) -> None:
    """``variant.*`` for each changed variant and, when any stock moved, one ``stock.changed``."""
    moved = []
    for kind, v in changes:
        await events.variant_changed(
            session, kind, product_id=product.id, version=product.version, variant=variant_wire(v)
        )
        if kind != "retired" and old_stock.get(v.id) != v.stock:
            moved.append({"id": v.id, "sku": v.sku, "stock": v.stock})
    if moved or any(kind == "retired" for kind, _ in changes):
        await events.stock_changed(
            session, product_id=product.id, stock=product.stock, version=product.version, variants=moved
        )
