"""Stock reservations for orders, per variant: all-or-nothing conditional decrements, idempotent on order_id.

A line names a variant, or a product alone for its only live variant (what first-wave callers
send). Every writer of a product's variants locks the product row first, products in id order,
so concurrent reservations sharing products never deadlock; the variant decrement is conditional
(``stock >= q``), and the ``stock >= 0`` CHECK constraint is the guard below it.

A reservation is one statement committed on its own (``_RESERVE_SQL``): many buyers of one
product queue for its row only while PostgreSQL runs that statement, not across round trips to
this process (issue 22: 200 buyers of one variant reserved at about half the rate of 200 buyers
of different products while the lock spanned the whole transaction)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from libs.common import tracing
from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.events.outbox import wake_relays
from libs.common.logging import get_logger
from services.catalog import events
from services.catalog.models import Product, Reservation, ReservationLine, Variant
from services.catalog.schemas import ReservationCreate
from services.catalog.variants import ROLLUP_SQL

log = get_logger(__name__)

_p = cast(sa.Table, Product.__table__)
_r = cast(sa.Table, Reservation.__table__)
_l = cast(sa.Table, ReservationLine.__table__)
_v = cast(sa.Table, Variant.__table__)


Reader = AsyncSession | AsyncConnection  # reads run in a session's transaction or on their own


async def _stored(session: Reader, order_id: uuid.UUID) -> dict[str, Any] | None:
    head = (await session.execute(sa.select(_r).where(_r.c.order_id == order_id))).first()
    if head is None:
        return None
    lines = (
        await session.execute(
            sa.select(_l).where(_l.c.order_id == order_id).order_by(_l.c.product_id, _l.c.variant_id)
        )
    ).all()
    return {
        "order_id": head.order_id,
        "status": head.status,
        "currency": head.currency,
        "items": [{k: getattr(ln, k) for k in _LINE_FIELDS} for ln in lines],
    }


_LINE_FIELDS = ("product_id", "variant_id", "sku", "title", "name", "unit_price", "currency", "quantity")


async def _resolve(
    session: Reader, data: ReservationCreate
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, str], dict[uuid.UUID, uuid.UUID]]:
    """Quantity wanted per variant (a line naming a product alone means its only live variant),
    the id each variant was asked for by (problems name what the caller sent), and its product."""
    by_product = [i.product_id for i in data.items if i.variant_id is None]
    named = [i.variant_id for i in data.items if i.variant_id is not None]
    live = (
        await session.execute(
            sa.select(_v.c.id, _v.c.product_id).where(
                _v.c.retired_at.is_(None), sa.or_(_v.c.product_id.in_(by_product), _v.c.id.in_(named))
            )
        )
    ).all()
    variants_of: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    product_of: dict[uuid.UUID, uuid.UUID] = {}
    for row in live:
        variants_of[row.product_id].append(row.id)
        product_of[row.id] = row.product_id
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    asked_as: dict[uuid.UUID, str] = {}
    unavailable: list[str] = []
    ambiguous: list[str] = []
    for item in data.items:
        if item.variant_id is not None:
            owner = product_of.get(item.variant_id)
            if owner is None or (item.product_id is not None and owner != item.product_id):
                unavailable.append(str(item.variant_id))
                continue
            wanted[item.variant_id] += item.quantity
            asked_as[item.variant_id] = str(item.variant_id)
            continue
        assert item.product_id is not None
        choices = variants_of.get(item.product_id, [])
        if len(choices) > 1:
            ambiguous.append(str(item.product_id))
        elif not choices:
            unavailable.append(str(item.product_id))
        else:
            wanted[choices[0]] += item.quantity
            asked_as.setdefault(choices[0], str(item.product_id))
    if ambiguous:
        raise Unprocessable(
            f"These products have several variants; name the variant_id: {', '.join(ambiguous)}.",
            title="Variant required",
            type_="variant-required",
            products=ambiguous,
        )
    if unavailable:
        raise Unprocessable(
            f"These products cannot be ordered: {', '.join(unavailable)}.",
            title="Products unavailable",
            type_="product-unavailable",
            unavailable=unavailable,
        )
    return wanted, asked_as, {vid: product_of[vid] for vid in wanted}


# One statement, run outside any transaction of ours (autocommit), so the rows it locks are held for
# as long as PostgreSQL takes to run it, never across a round trip to this process. In order: the
# products (id order, as every writer of their variants does), then the variants ((product, id)
# order); both FOR UPDATE, which also reads each row as it is now, not as the statement's snapshot
# had it. Only when every product is live, one currency, and every variant live with enough stock
# does anything change: the reservation (ON CONFLICT: an order id already known changes nothing
# and is replayed), its lines, the decrements, the products' stock and version, and one
# stock.changed per product in the outbox. Data-modifying CTEs see the snapshot, not each other's
# writes: the product's stock is lowered by what its variants gave (it is their sum), and each
# UPDATE re-reads the row it locked (READ COMMITTED), so the arithmetic is on current values. The
# variants' stock >= 0 CHECK stays the last guard.
_RESERVE_SQL = sa.text(
    """
WITH want AS (
  SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:qs AS int[])) AS w(id, q)
), lp AS (
  SELECT p.id, p.name, p.currency FROM products p
  WHERE p.id = ANY(CAST(:pids AS uuid[])) AND p.is_active AND p.deleted_at IS NULL
  ORDER BY p.id FOR UPDATE
), lv AS (
  SELECT v.id, v.product_id, v.sku, v.title, v.price, v.stock, w.q FROM variants v JOIN want w ON w.id = v.id
  WHERE v.is_active AND v.retired_at IS NULL AND (SELECT count(*) FROM lp) = :np
  ORDER BY v.product_id, v.id FOR UPDATE OF v
), ok AS (
  SELECT (SELECT count(*) FROM lp) = :np AND (SELECT count(DISTINCT currency) FROM lp) = 1
     AND (SELECT count(*) FROM lv WHERE lv.stock >= lv.q) = :nv AS ok
), claim AS (
  INSERT INTO reservations (order_id, status, currency, created_at, updated_at)
  SELECT CAST(:order_id AS uuid), 'reserved', (SELECT min(currency) FROM lp), CAST(:now AS timestamptz),
    CAST(:now AS timestamptz) FROM ok WHERE ok.ok
  ON CONFLICT DO NOTHING RETURNING order_id
), moved AS (
  UPDATE variants v SET stock = v.stock - lv.q, updated_at = :now FROM lv
  WHERE v.id = lv.id AND EXISTS (SELECT 1 FROM claim)
  RETURNING v.id, v.product_id, v.sku, v.stock
), lines AS (
  INSERT INTO reservation_lines
    (order_id, product_id, variant_id, sku, title, name, unit_price, currency, quantity)
  SELECT c.order_id, lv.product_id, lv.id, lv.sku, lv.title, lp.name, lv.price, lp.currency, lv.q
  FROM claim c, lv JOIN lp ON lp.id = lv.product_id
  RETURNING product_id, variant_id, sku, title, name, unit_price, currency, quantity
), rolled AS (
  UPDATE products p SET stock = p.stock - t.q, version = p.version + 1, updated_at = :now
  FROM (SELECT lv.product_id, sum(lv.q) AS q FROM lv, claim GROUP BY lv.product_id) t
  WHERE p.id = t.product_id
  RETURNING p.id, p.stock, p.version
), told AS (
  INSERT INTO outbox (id, routing_key, payload, headers)
  SELECT e.id, 'stock.changed', CAST(
    CAST(:envelope AS jsonb) || jsonb_build_object('id', e.id, 'data', jsonb_build_object(
      'product_id', r.id, 'stock', r.stock, 'version', r.version,
      'variants', (SELECT jsonb_agg(jsonb_build_object('id', m.id, 'sku', m.sku, 'stock', m.stock) ORDER BY m.id)
                   FROM moved m WHERE m.product_id = r.id)))
    AS text), CAST(:headers AS text)
  FROM rolled r JOIN unnest(CAST(:pids AS uuid[]), CAST(:eids AS uuid[])) AS e(product_id, id)
    ON e.product_id = r.id
)
SELECT (SELECT ok FROM ok) AS ok, EXISTS (SELECT 1 FROM claim) AS claimed,
  (SELECT jsonb_agg(to_jsonb(l) ORDER BY l.product_id, l.variant_id) FROM lines l) AS lines
"""
).columns(ok=sa.Boolean, claimed=sa.Boolean, lines=JSONB)


async def reserve(*, session: AsyncSession, data: ReservationCreate) -> tuple[dict[str, Any], bool]:
    """Reserve every item or none; returns (reservation, created). A known order_id is replayed.

    The replay of a released order id says ``status: released`` (with no stock held): orders
    must not store an order on it.

    What can be read without a lock is read first (a known order id, which variant each line
    means); the reservation itself is ``_RESERVE_SQL``, one statement, so buyers of one product
    queue for its row only while PostgreSQL runs that statement. Only when it changed nothing is
    the reason looked up (unavailable, mixed currencies, short stock), on rows that may have moved
    since: a refusal names what it saw then.
    """
    engine = cast(AsyncEngine, session.bind)
    # no transaction of ours: each read stands alone (the statement checks again), and the
    # statement commits as it ends, so nothing waits on this process while its locks are held
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        stored = await _stored(conn, data.order_id)
        if stored is not None:
            return stored, False
        wanted, asked_as, product_of = await _resolve(conn, data)
        product_ids = sorted(set(product_of.values()))
        ids = sorted(wanted, key=lambda vid: (product_of[vid], vid))
        row = (
            await conn.execute(
                _RESERVE_SQL,
                {
                    "order_id": data.order_id,
                    "ids": ids,
                    "qs": [wanted[vid] for vid in ids],
                    "pids": product_ids,
                    "eids": [uuid.uuid4() for _ in product_ids],
                    "np": len(product_ids),
                    "nv": len(ids),
                    "now": datetime.now(UTC),
                    "envelope": events.stock_changed_head(product_ids[0]),
                    "headers": tracing.headers_json(),
                },
            )
        ).one()
        if not row.claimed:
            stored = await _stored(conn, data.order_id)
            if stored is not None:  # the same order id, reserved (or released) by another request meanwhile
                return stored, False
            await _refusal(conn, ids, wanted, asked_as, product_of)
    wake_relays()
    lines = [{k: _typed(k, line[k]) for k in _LINE_FIELDS} for line in row.lines]
    return {
        "order_id": data.order_id,
        "status": "reserved",
        "currency": lines[0]["currency"],
        "items": lines,
    }, True


def _typed(key: str, value: Any) -> Any:
    return uuid.UUID(value) if key in ("product_id", "variant_id") else value


async def _refusal(
    session: Reader,
    ids: list[uuid.UUID],
    wanted: dict[uuid.UUID, int],
    asked_as: dict[uuid.UUID, str],
    product_of: dict[uuid.UUID, uuid.UUID],
) -> NoReturn:
    """Why a reservation changed nothing, as the problem the caller gets (always raises)."""
    products = {
        r.id: r
        for r in (
            await session.execute(
                sa.select(_p.c.id, _p.c.currency, _p.c.is_active, _p.c.deleted_at).where(
                    _p.c.id.in_(set(product_of.values()))
                )
            )
        ).all()
    }
    variants = {
        r.id: r
        for r in (
            await session.execute(
                sa.select(_v.c.id, _v.c.sku, _v.c.stock, _v.c.is_active, _v.c.retired_at).where(
                    _v.c.id.in_(ids)
                )
            )
        ).all()
    }
    unavailable = [
        asked_as[vid]
        for vid in ids
        if vid not in variants
        or not variants[vid].is_active
        or variants[vid].retired_at is not None
        or product_of[vid] not in products
        or not products[product_of[vid]].is_active
        or products[product_of[vid]].deleted_at is not None
    ]
    if unavailable:
        raise Unprocessable(
            f"These products cannot be ordered: {', '.join(unavailable)}.",
            title="Products unavailable",
            type_="product-unavailable",
            unavailable=unavailable,
        )
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise Unprocessable(
            f"One order cannot mix currencies ({', '.join(sorted(currencies))}).",
            title="Mixed currencies",
            type_="currency-mismatch",
        )
    short = [
        {
            "product_id": str(product_of[vid]),
            "variant_id": str(vid),
            "sku": variants[vid].sku,
            "requested": wanted[vid],
            "available": variants[vid].stock,
        }
        for vid in ids
        if variants[vid].stock < wanted[vid]
    ]
    raise Conflict(
        (
            "Not enough stock for: "
            + ", ".join(f"{s['sku']} (requested {s['requested']}, available {s['available']})" for s in short)
            + "."
        )
        if short
        else "Not enough stock for this order.",
        title="Insufficient stock",
        type_="insufficient-stock",
        short=short,
    )


async def _rolled_up(
    session: AsyncSession, moved: Sequence[Any], product_of: dict[uuid.UUID, uuid.UUID], *, now: datetime
) -> None:
    """Derive the touched products' stock and price again, bump their version, emit stock.changed."""
    product_ids = sorted({product_of[m.id] for m in moved})
    await session.execute(
        sa.text(
            "UPDATE products SET version = version + 1, updated_at = :now WHERE id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": product_ids, "now": now},
    )
    rows = (await session.execute(ROLLUP_SQL, {"ids": product_ids})).all()
    for row in sorted(rows, key=lambda r: r.id):
        await events.stock_changed(
            session,
            product_id=row.id,
            stock=row.stock,
            version=row.version,
            variants=[
                {"id": m.id, "sku": m.sku, "stock": m.stock}
                for m in sorted(moved, key=lambda m: m.id)
                if product_of[m.id] == row.id
            ],
        )


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
                sa.select(_l.c.product_id, _l.c.variant_id, _l.c.quantity)
                .where(_l.c.order_id == order_id)
                .order_by(_l.c.product_id, _l.c.variant_id)
            )
        ).all()
        if lines:
            await session.execute(
                sa.select(_p.c.id)
                .where(_p.c.id.in_(sorted({ln.product_id for ln in lines})))
                .order_by(_p.c.id)
                .with_for_update()
            )
            # a retired variant gets its units back too: un-retiring it brings them with it
            restored = (
                await session.execute(
                    sa.text(
                        "UPDATE variants v SET stock = v.stock + w.q, updated_at = now() "
                        "FROM unnest(CAST(:ids AS uuid[]), CAST(:qs AS int[])) AS w(id, q) WHERE v.id = w.id "
                        "RETURNING v.id, v.sku, v.stock"
                    ),
                    {"ids": [ln.variant_id for ln in lines], "qs": [ln.quantity for ln in lines]},
                )
            ).all()
            if restored:
                await _rolled_up(
                    session, restored, {ln.variant_id: ln.product_id for ln in lines}, now=datetime.now(UTC)
                )
        await session.execute(
            sa.update(_r).where(_r.c.order_id == order_id).values(status="released", updated_at=sa.func.now())
        )
    return await _stored(session, order_id)


async def restock_returned_in(
    session: AsyncSession, *, order_id: uuid.UUID, lines: Sequence[tuple[uuid.UUID, uuid.UUID | None, int]]
) -> int:
    """Received units of a return go back to their variant's stock (consumer transaction; the inbox
    makes it once per return). A line without its variant (an order from before variants) takes the
    variant this order reserved of that product. Returns how many units came back."""
    reserved = {
        row.product_id: row.variant_id
        for row in (
            await session.execute(
                sa.select(_l.c.product_id, _l.c.variant_id).where(_l.c.order_id == order_id)
            )
        ).all()
    }
    units: dict[uuid.UUID, int] = {}
    product_of: dict[uuid.UUID, uuid.UUID] = {}
    for product_id, variant_id, quantity in lines:
        variant = variant_id or reserved.get(product_id)
        if variant is None:
            log.warning("returned_units_without_variant", order_id=str(order_id), product_id=str(product_id))
            continue
        units[variant] = units.get(variant, 0) + quantity
        product_of[variant] = product_id
    if not units:
        return 0
    await session.execute(
        sa.select(_p.c.id)
        .where(_p.c.id.in_(sorted(set(product_of.values()))))
        .order_by(_p.c.id)
        .with_for_update()
    )
    ids = sorted(units)
    restored = (
        await session.execute(
            sa.text(
                "UPDATE variants v SET stock = v.stock + w.q, updated_at = now() "
                "FROM unnest(CAST(:ids AS uuid[]), CAST(:qs AS int[])) AS w(id, q) WHERE v.id = w.id "
                "RETURNING v.id, v.sku, v.stock"
            ),
            {"ids": ids, "qs": [units[i] for i in ids]},
        )
    ).all()
    if restored:
        await _rolled_up(session, restored, product_of, now=datetime.now(UTC))
    return sum(units[r.id] for r in restored)


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
