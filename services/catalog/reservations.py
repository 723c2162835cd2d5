"""Stock reservations for orders: all-or-nothing conditional decrements, idempotent on order_id.

Rows are locked in product-id order so concurrent reservations sharing products never
deadlock; the decrement itself stays conditional (``stock >= q``) as the last guard, and
the ``stock >= 0`` CHECK constraint is the one below it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound, Unprocessable
from services.catalog import events
from services.catalog.models import Product, Reservation, ReservationLine
from services.catalog.schemas import ReservationCreate

_p = cast(sa.Table, Product.__table__)
_r = cast(sa.Table, Reservation.__table__)
_l = cast(sa.Table, ReservationLine.__table__)


async def _stored(session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any] | None:
    head = (await session.execute(sa.select(_r).where(_r.c.order_id == order_id))).first()
    if head is None:
        return None
    lines = (
        await session.execute(sa.select(_l).where(_l.c.order_id == order_id).order_by(_l.c.product_id))
    ).all()
    return {
        "order_id": head.order_id,
        "status": head.status,
        "currency": head.currency,
        "items": [
            {
                "product_id": ln.product_id,
                "name": ln.name,
                "unit_price": ln.unit_price,
                "currency": ln.currency,
                "quantity": ln.quantity,
            }
            for ln in lines
        ],
    }


async def reserve(*, session: AsyncSession, data: ReservationCreate) -> tuple[dict[str, Any], bool]:
    """Reserve every item or none; returns (reservation, created). A known order_id is replayed.

    The replay of a released order id says ``status: released`` (with no stock held): orders
    must not store an order on it.
    """
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    for item in data.items:
        wanted[item.product_id] += item.quantity
    ids = sorted(wanted)
    async with session.begin():
        # the order_id row serialises two requests for the same order: the second waits, then replays
        claimed = (
            await session.execute(
                insert(_r)
                .values(order_id=data.order_id, status="reserved", currency="XXX")
                .on_conflict_do_nothing()
                .returning(_r.c.order_id)
            )
        ).first()
        if claimed is None:
            stored = await _stored(session, data.order_id)
            assert stored is not None
            return stored, False
        products = {
            r.id: r
            for r in (
                await session.execute(
                    sa.select(
                        _p.c.id,
                        _p.c.name,
                        _p.c.price,
                        _p.c.currency,
                        _p.c.stock,
                        _p.c.is_active,
                        _p.c.deleted_at,
                    )
                    .where(_p.c.id.in_(ids))
                    .order_by(_p.c.id)
                    .with_for_update()
                )
            ).all()
        }
        unavailable = [
            str(pid)
            for pid in ids
            if pid not in products or not products[pid].is_active or products[pid].deleted_at
        ]
        if unavailable:
            raise Unprocessable(
                f"These products cannot be ordered: {', '.join(unavailable)}.",
                title="Products unavailable",
                type_="product-unavailable",
                unavailable=unavailable,
            )
        currencies = {products[pid].currency for pid in ids}
        if len(currencies) > 1:
            raise Unprocessable(
                f"One order cannot mix currencies ({', '.join(sorted(currencies))}).",
                title="Mixed currencies",
                type_="currency-mismatch",
            )
        short = [
            {"product_id": str(pid), "requested": wanted[pid], "available": products[pid].stock}
            for pid in ids
            if products[pid].stock < wanted[pid]
        ]
        if short:
            raise Conflict(
                "Not enough stock for: "
                + ", ".join(
                    f"{s['product_id']} (requested {s['requested']}, available {s['available']})"
                    for s in short
                )
                + ".",
                title="Insufficient stock",
                type_="insufficient-stock",
                short=short,
            )
        now = datetime.now(UTC)
        updated = (
            await session.execute(
                sa.text(
                    "UPDATE products p SET stock = p.stock - v.q, version = p.version + 1, updated_at = :now "
                    "FROM unnest(CAST(:ids AS uuid[]), CAST(:qs AS int[])) AS v(id, q) "
                    "WHERE p.id = v.id AND p.stock >= v.q AND p.is_active AND p.deleted_at IS NULL "
                    "RETURNING p.id, p.stock, p.version"
                ),
                {"ids": ids, "qs": [wanted[pid] for pid in ids], "now": now},
            )
        ).all()
        if len(updated) != len(ids):
            raise Conflict(
                "Not enough stock for this order.",
                title="Insufficient stock",
                type_="insufficient-stock",
                short=[],
            )
        currency = currencies.pop()
        await session.execute(sa.update(_r).where(_r.c.order_id == data.order_id).values(currency=currency))
        lines = [
            {
                "order_id": data.order_id,
                "product_id": pid,
                "name": products[pid].name,
                "unit_price": products[pid].price,
                "currency": currency,
                "quantity": wanted[pid],
            }
            for pid in ids
        ]
        await session.execute(sa.insert(_l), lines)
        for row in sorted(updated, key=lambda r: r.id):
            await events.stock_changed(session, product_id=row.id, stock=row.stock, version=row.version)
    return {
        "order_id": data.order_id,
        "status": "reserved",
        "currency": currency,
        "items": [{k: v for k, v in line.items() if k != "order_id"} for line in lines],
    }, True


async def release_in(
    session: AsyncSession, *, order_id: uuid.UUID, missing_ok: bool = False
) -> dict[str, Any] | None:
    """Give a reservation's stock back once, inside the caller's transaction."""
    status = (
        await session.execute(sa.select(_r.c.status).where(_r.c.order_id == order_id).with_for_update())
    ).scalar_one_or_none()
    if status is None:
        if missing_ok:
            return None
        raise NotFound("No reservation for this order.")
    if status != "released":
        lines = (
            await session.execute(
                sa.select(_l.c.product_id, _l.c.quantity)
                .where(_l.c.order_id == order_id)
                .order_by(_l.c.product_id)
            )
        ).all()
        if lines:
            await session.execute(
                sa.select(_p.c.id)
                .where(_p.c.id.in_([ln.product_id for ln in lines]))
                .order_by(_p.c.id)
                .with_for_update()
            )
            restored = (
                await session.execute(
                    sa.text(
                        "UPDATE products p SET stock = p.stock + v.q, version = p.version + 1, updated_at = now() "
                        "FROM unnest(CAST(:ids AS uuid[]), CAST(:qs AS int[])) AS v(id, q) WHERE p.id = v.id "
                        "RETURNING p.id, p.stock, p.version"
                    ),
                    {"ids": [ln.product_id for ln in lines], "qs": [ln.quantity for ln in lines]},
                )
            ).all()
            for row in sorted(restored, key=lambda r: r.id):
                await events.stock_changed(session, product_id=row.id, stock=row.stock, version=row.version)
        await session.execute(
            sa.update(_r).where(_r.c.order_id == order_id).values(status="released", updated_at=sa.func.now())
        )
    return await _stored(session, order_id)


async def release(*, session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any]:
    """Give a reservation's stock back (idempotent: the second call changes nothing).

    An order id never reserved gets a tombstone (a released reservation without lines): orders
    releases an order id it gave up on without knowing whether its reservation arrived, and a
    reservation arriving after the release must then be refused, not made (its stock would be held
    for an order that will never exist). ``reserve`` replays the tombstone, status ``released``.
    """
    async with session.begin():
        await session.execute(
            insert(_r).values(order_id=order_id, status="released", currency="XXX").on_conflict_do_nothing()
        )
        stored = await release_in(session, order_id=order_id)
    assert stored is not None
    return stored


async def commit_in(session: AsyncSession, *, order_id: uuid.UUID) -> None:
    """A paid order's reservation becomes final (no stock change)."""
    await session.execute(
        sa.update(_r)
        .where(_r.c.order_id == order_id, _r.c.status == "reserved")
        .values(status="committed", updated_at=sa.func.now())
    )
