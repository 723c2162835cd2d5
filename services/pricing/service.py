"""Business rules of pricing's admin data: promotions, shipping zones with their methods, tax rates.

Every change commits with its event (outbox) in one transaction. The quote and the claims of
promotions by orders live in quotes.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound, Unprocessable
from services.pricing import events
from services.pricing.engine import rate_applies, zone_covers
from services.pricing.models import Promotion, PromotionUsage, ShippingMethod, ShippingZone, TaxRate
from services.pricing.schemas import (
    PromotionCreate,
    PromotionUpdate,
    ShippingMethodIn,
    ShippingZoneCreate,
    ShippingZoneUpdate,
    TaxRateCreate,
    TaxRateUpdate,
)

# ---- promotions ---------------------------------------------------------------------------------

_RULE_FIELDS = (
    "min_subtotal",
    "first_order_only",
    "starts_at",
    "ends_at",
    "usage_limit",
    "usage_limit_per_customer",
)


def live_usages(promotion_id: Any) -> sa.ScalarSelect[int]:
    """How many orders hold a use of the promotion now (released uses do not count)."""
    return (
        sa.select(sa.func.count())
        .select_from(PromotionUsage)
        .where(PromotionUsage.promotion_id == promotion_id, PromotionUsage.released_at.is_(None))
        .scalar_subquery()
    )


def promotion_wire(p: Promotion, times_used: int) -> dict[str, Any]:
    rules: dict[str, Any] = {name: getattr(p, name) for name in _RULE_FIELDS}
    rules["product_ids"] = list(p.product_ids)
    rules["category_ids"] = list(p.category_ids)
    action: dict[str, Any] = {"type": p.action_type}
    if p.action_type in ("percent_off", "amount_off", "buy_x_get_y"):
        action["value"] = p.action_value
    if p.action_type == "buy_x_get_y":
        action["buy"], action["get"] = p.action_buy, p.action_get
    return {
        "id": p.id,
        "name": p.name,
        "code": p.code,
        "stackable": p.stackable,
        "is_active": p.is_active,
        "currency": p.currency,
        "rules": rules,
        "action": action,
        "times_used": times_used,
        "version": p.version,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def _promotion_values(
    data: PromotionCreate | PromotionUpdate, fields: set[str], default_currency: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("name", "code", "stackable", "is_active"):
        if name in fields:
            values[name] = getattr(data, name)
    if "currency" in fields or isinstance(data, PromotionCreate):
        values["currency"] = data.currency or default_currency
    if "rules" in fields and data.rules is not None:
        r = data.rules
        values.update({name: getattr(r, name) for name in _RULE_FIELDS})
        values["product_ids"], values["category_ids"] = list(r.product_ids), list(r.category_ids)
    if "action" in fields and data.action is not None:
        a = data.action
        values["action_type"] = a.type
        values["action_value"] = getattr(a, "value", 0)
        values["action_buy"] = getattr(a, "buy", None)
        values["action_get"] = getattr(a, "get", None)
    return values


def _code_taken(exc: IntegrityError) -> Conflict:
    if "uq_promotions_live_code" in str(exc.orig):
        return Conflict(
            "Another promotion already uses this code.",
            title="Already exists",
            errors=[{"field": "code", "message": "code is already taken", "type": "unique"}],
        )
    return Conflict("The promotion conflicts with existing data.")


async def _times_used(session: AsyncSession, promotion_id: uuid.UUID) -> int:
    return int((await session.execute(sa.select(live_usages(promotion_id)))).scalar_one())


async def create_promotion(
    *, session: AsyncSession, data: PromotionCreate, default_currency: str
) -> dict[str, Any]:
    """Create a promotion (a coupon when it has a code) and emit promotion.created."""
    now = datetime.now(UTC)
    try:
        async with session.begin():
            promotion = Promotion(
                id=uuid.uuid4(),
                version=1,
                created_at=now,
                updated_at=now,
                deleted_at=None,
                **_promotion_values(data, set(PromotionCreate.model_fields), default_currency),
            )
            session.add(promotion)
            await session.flush()
            wire = promotion_wire(promotion, 0)
            await events.publish(session, "promotion.created", wire)
    except IntegrityError as exc:
        raise _code_taken(exc) from None
    return wire


async def _live_promotion(session: AsyncSession, promotion_id: uuid.UUID, *, lock: bool = False) -> Promotion:
    query = sa.select(Promotion).where(Promotion.id == promotion_id, Promotion.deleted_at.is_(None))
    promotion = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if promotion is None:
        raise NotFound("No such promotion.")
    return promotion


async def get_promotion(*, session: AsyncSession, promotion_id: uuid.UUID) -> dict[str, Any]:
    """One live promotion with its current number of uses."""
    promotion = await _live_promotion(session, promotion_id)
    return promotion_wire(promotion, await _times_used(session, promotion_id))


async def update_promotion(
    *,
    session: AsyncSession,
    promotion_id: uuid.UUID,
    data: PromotionCreate | PromotionUpdate,
    replace: bool,
    default_currency: str,
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a promotion; orders already priced keep their breakdown."""
    fields = set(type(data).model_fields) if replace else set(data.model_fields_set)
    values = _promotion_values(data, fields, default_currency)
    try:
        async with session.begin():
            promotion = await _live_promotion(session, promotion_id, lock=True)
            for name, value in values.items():
                setattr(promotion, name, value)
            promotion.version += 1
            promotion.updated_at = datetime.now(UTC)
            await session.flush()
            wire = promotion_wire(promotion, await _times_used(session, promotion_id))
            await events.publish(session, "promotion.updated", wire)
    except IntegrityError as exc:
        raise _code_taken(exc) from None
    return wire


async def delete_promotion(*, session: AsyncSession, promotion_id: uuid.UUID) -> None:
    """Delete a promotion: it stops applying, its usages stay as order history, its code is free again."""
    async with session.begin():
        promotion = await _live_promotion(session, promotion_id, lock=True)
        now = datetime.now(UTC)
        promotion.deleted_at, promotion.updated_at = now, now
        promotion.version += 1
        await session.flush()
        wire = promotion_wire(promotion, await _times_used(session, promotion_id)) | {"deleted": True}
        await events.publish(session, "promotion.deleted", wire)


async def list_promotions(
    *,
    session: AsyncSession,
    page: int,
    page_size: int,
    q: str | None,
    kind: Literal["automatic", "coupon"] | None,
    is_active: bool | None,
) -> dict[str, Any]:
    """Live promotions, newest first; `q` searches name and code."""
    where: list[sa.ColumnElement[bool]] = [Promotion.deleted_at.is_(None)]
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(sa.or_(Promotion.name.ilike(pattern), Promotion.code.ilike(pattern)))
    if kind == "automatic":
        where.append(Promotion.code.is_(None))
    elif kind == "coupon":
        where.append(Promotion.code.is_not(None))
    if is_active is not None:
        where.append(Promotion.is_active.is_(is_active))
    total = int(
        (await session.execute(sa.select(sa.func.count()).select_from(Promotion).where(*where))).scalar_one()
    )
    rows = (
        await session.execute(
            sa.select(Promotion, live_usages(Promotion.id))
            .where(*where)
            .order_by(Promotion.created_at.desc(), Promotion.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).all()
    return {
        "items": [promotion_wire(p, used) for p, used in rows],
        "total": total,
        "page": page,
        "page_size": page_size,
    }


async def list_usages(
    *, session: AsyncSession, promotion_id: uuid.UUID, page: int, page_size: int
) -> dict[str, Any]:
    """Which orders used a promotion (released ones included, marked), newest first."""
    if await session.get(Promotion, promotion_id) is None:
        raise NotFound("No such promotion.")
    where = PromotionUsage.promotion_id == promotion_id
    total = int(
        (
            await session.execute(sa.select(sa.func.count()).select_from(PromotionUsage).where(where))
        ).scalar_one()
    )
    rows = (
        await session.execute(
            sa.select(PromotionUsage)
            .where(where)
            .order_by(PromotionUsage.claimed_at.desc(), PromotionUsage.order_id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    ).scalars()
    items = [
        {
            "order_id": u.order_id,
            "customer_id": u.customer_id,
            "code": u.code,
            "amount": u.amount,
            "currency": u.currency,
            "claimed_at": u.claimed_at,
            "released_at": u.released_at,
        }
        for u in rows
    ]
    return {"items": items, "total": total, "page": page, "page_size": page_size}


# ---- shipping zones -----------------------------------------------------------------------------


def method_wire(m: ShippingMethod) -> dict[str, Any]:
    estimate = None
    if m.estimate_min_days is not None and m.estimate_max_days is not None:
        estimate = {"min_days": m.estimate_min_days, "max_days": m.estimate_max_days}
    return {
        "id": m.id,
        "zone_id": m.zone_id,
        "name": m.name,
        "amount": m.amount,
        "currency": m.currency,
        "free_over": m.free_over,
        "estimate": estimate,
        "is_active": m.is_active,
    }


def zone_wire(z: ShippingZone) -> dict[str, Any]:
    return {
        "id": z.id,
        "name": z.name,
        "countries": list(z.countries),
        "regions": list(z.regions),
        "postal_prefixes": list(z.postal_prefixes),
        "methods": [method_wire(m) for m in z.methods],
        "version": z.version,
        "created_at": z.created_at,
        "updated_at": z.updated_at,
    }


def _method_values(m: ShippingMethodIn, position: int) -> dict[str, Any]:
    return {
        "name": m.name,
        "amount": m.amount,
        "currency": m.currency,
        "free_over": m.free_over,
        "estimate_min_days": m.estimate.min_days if m.estimate else None,
        "estimate_max_days": m.estimate.max_days if m.estimate else None,
        "is_active": m.is_active,
        "position": position,
    }


def _set_methods(zone: ShippingZone, methods: Sequence[ShippingMethodIn]) -> None:
    """Methods sent with an id are updated, without one added; those left out are removed."""
    current = {m.id: m for m in zone.methods}
    kept: list[ShippingMethod] = []
    for position, m in enumerate(methods):
        if m.id is None:
            kept.append(ShippingMethod(id=uuid.uuid4(), zone_id=zone.id, **_method_values(m, position)))
            continue
        existing = current.get(m.id)
        if existing is None:
            raise Unprocessable(
                "A method id does not belong to this zone; leave id out to add a method.",
                errors=[
                    {
                        "field": f"methods.{position}.id",
                        "message": "not a method of this zone",
                        "type": "not_found",
                    }
                ],
            )
        for name, value in _method_values(m, position).items():
            setattr(existing, name, value)
        kept.append(existing)
    zone.methods = kept


async def create_zone(*, session: AsyncSession, data: ShippingZoneCreate) -> dict[str, Any]:
    """Create a shipping zone with its methods; emits shipping.zone_created."""
    now = datetime.now(UTC)
    async with session.begin():
        zone = ShippingZone(
            id=uuid.uuid4(),
            name=data.name,
            countries=list(data.countries),
            regions=list(data.regions),
            postal_prefixes=list(data.postal_prefixes),
            version=1,
            created_at=now,
            updated_at=now,
            methods=[],
        )
        for position, m in enumerate(data.methods):
            if m.id is not None:
                raise Unprocessable(
                    "A new zone's methods have no ids yet.",
                    errors=[
                        {"field": f"methods.{position}.id", "message": "leave id out", "type": "value_error"}
                    ],
                )
        _set_methods(zone, data.methods)
        session.add(zone)
        await session.flush()
        wire = zone_wire(zone)
        await events.publish(session, "shipping.zone_created", wire)
    return wire


async def _zone(session: AsyncSession, zone_id: uuid.UUID, *, lock: bool = False) -> ShippingZone:
    query = sa.select(ShippingZone).where(ShippingZone.id == zone_id)
    zone = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if zone is None:
        raise NotFound("No such shipping zone.")
    return zone


async def get_zone(*, session: AsyncSession, zone_id: uuid.UUID) -> dict[str, Any]:
    return zone_wire(await _zone(session, zone_id))


async def list_zones(*, session: AsyncSession, country: str | None) -> list[dict[str, Any]]:
    """Every zone (or those reaching `country`) with its methods, by name."""
    query = sa.select(ShippingZone).order_by(ShippingZone.name, ShippingZone.id)
    if country:
        query = query.where(ShippingZone.countries.contains([country]))
    return [zone_wire(z) for z in (await session.execute(query)).scalars()]


async def update_zone(
    *, session: AsyncSession, zone_id: uuid.UUID, data: ShippingZoneCreate | ShippingZoneUpdate, replace: bool
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a zone; `methods`, when given, is the zone's whole list."""
    fields = set(type(data).model_fields) if replace else set(data.model_fields_set)
    async with session.begin():
        zone = await _zone(session, zone_id, lock=True)
        for name in ("name", "countries", "regions", "postal_prefixes"):
            if name in fields:
                setattr(zone, name, list(getattr(data, name)) if name != "name" else data.name)
        if "methods" in fields and data.methods is not None:
            _set_methods(zone, data.methods)
        zone.version += 1
        zone.updated_at = datetime.now(UTC)
        await session.flush()
        wire = zone_wire(zone)
        await events.publish(session, "shipping.zone_updated", wire)
    return wire


async def delete_zone(*, session: AsyncSession, zone_id: uuid.UUID) -> None:
    """Delete a zone and its methods (orders keep the method's name and price in their breakdown)."""
    async with session.begin():
        zone = await _zone(session, zone_id, lock=True)
        wire = zone_wire(zone) | {"deleted": True}
        await session.delete(zone)
        await events.publish(session, "shipping.zone_deleted", wire)


async def methods_for(
    *,
    session: AsyncSession,
    country: str,
    region: str | None,
    postal_code: str | None,
    currency: str | None = None,
) -> list[ShippingMethod]:
    """The active methods of every zone that reaches the address, cheapest first."""
    zones = (
        await session.execute(sa.select(ShippingZone).where(ShippingZone.countries.contains([country])))
    ).scalars()
    found = [
        m
        for z in zones
        if zone_covers(
            countries=z.countries,
            regions=z.regions,
            postal_prefixes=z.postal_prefixes,
            country=country,
            region=region,
            postal_code=postal_code,
        )
        for m in z.methods
        if m.is_active and (currency is None or m.currency == currency)
    ]
    return sorted(found, key=lambda m: (m.amount, m.name, str(m.id)))


async def any_shipping_configured(session: AsyncSession) -> bool:
    return bool((await session.execute(sa.select(sa.exists().where(ShippingMethod.is_active)))).scalar_one())


# ---- tax rates ----------------------------------------------------------------------------------


def rate_wire(t: TaxRate) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "country": t.country,
        "region": t.region,
        "rate_bp": t.rate_bp,
        "applies_to_shipping": t.applies_to_shipping,
        "version": t.version,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


async def _check_rate_unique(session: AsyncSession, rate: TaxRate) -> None:
    # two rates of one name on one place would charge the same tax twice
    clash = (
        await session.execute(
            sa.select(TaxRate.id).where(
                TaxRate.id != rate.id,
                TaxRate.country == rate.country,
                sa.func.coalesce(sa.func.lower(TaxRate.region), "") == (rate.region or "").lower(),
                sa.func.lower(TaxRate.name) == rate.name.lower(),
            )
        )
    ).first()
    if clash is not None:
        raise Conflict(
            "A tax rate of this name already exists for this country and region.",
            title="Already exists",
            errors=[{"field": "name", "message": "already used here", "type": "unique"}],
        )


async def create_rate(*, session: AsyncSession, data: TaxRateCreate) -> dict[str, Any]:
    """Create a tax rate; emits tax.rate_created."""
    now = datetime.now(UTC)
    async with session.begin():
        # one admin edit at a time per country keeps the uniqueness check honest
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"tax:{data.country}")))
        )
        rate = TaxRate(id=uuid.uuid4(), version=1, created_at=now, updated_at=now, **data.model_dump())
        await _check_rate_unique(session, rate)
        session.add(rate)
        await session.flush()
        wire = rate_wire(rate)
        await events.publish(session, "tax.rate_created", wire)
    return wire


async def _rate(session: AsyncSession, rate_id: uuid.UUID, *, lock: bool = False) -> TaxRate:
    query = sa.select(TaxRate).where(TaxRate.id == rate_id)
    rate = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if rate is None:
        raise NotFound("No such tax rate.")
    return rate


async def get_rate(*, session: AsyncSession, rate_id: uuid.UUID) -> dict[str, Any]:
    return rate_wire(await _rate(session, rate_id))


async def list_rates(*, session: AsyncSession, country: str | None) -> list[dict[str, Any]]:
    query = sa.select(TaxRate).order_by(TaxRate.country, TaxRate.region.nulls_first(), TaxRate.name)
    if country:
        query = query.where(TaxRate.country == country)
    return [rate_wire(t) for t in (await session.execute(query)).scalars()]


async def update_rate(
    *, session: AsyncSession, rate_id: uuid.UUID, data: TaxRateCreate | TaxRateUpdate, replace: bool
) -> dict[str, Any]:
    """Change (PATCH) or replace (PUT) a tax rate; orders already priced keep their breakdown."""
    fields = data.model_dump(exclude_unset=not replace)
    async with session.begin():
        rate = await _rate(session, rate_id, lock=True)
        for name, value in fields.items():
            setattr(rate, name, value)
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"tax:{rate.country}")))
        )
        await _check_rate_unique(session, rate)
        rate.version += 1
        rate.updated_at = datetime.now(UTC)
        await session.flush()
        wire = rate_wire(rate)
        await events.publish(session, "tax.rate_updated", wire)
    return wire


async def delete_rate(*, session: AsyncSession, rate_id: uuid.UUID) -> None:
    async with session.begin():
        rate = await _rate(session, rate_id, lock=True)
        wire = rate_wire(rate) | {"deleted": True}
        await session.delete(rate)
        await events.publish(session, "tax.rate_deleted", wire)


async def rates_for(*, session: AsyncSession, country: str, region: str | None) -> list[TaxRate]:
    """Every rate that applies at the address: the country's, plus its region's (they add up)."""
    query = (
        sa.select(TaxRate)
        .where(TaxRate.country == country)
        .order_by(TaxRate.region.nulls_first(), TaxRate.name, TaxRate.id)
    )
    return [
        t
        for t in (await session.execute(query)).scalars()
        if rate_applies(rate_country=t.country, rate_region=t.region, country=country, region=region)
    ]
