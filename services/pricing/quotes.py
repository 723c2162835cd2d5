"""Quotes and claims: the data pricing holds, run through the money engine.

A quote without an order id is a preview (the cart's checkout page): nothing is written. With an
order id it is the order's price: the promotions it uses are claimed in the same transaction, under
a row lock on every promotion with a usage limit, so the last use of a code is spent once however
many orders race for it. The answer is stored and a repeated claim for the order gets it again
(idempotent on the order id); releasing the order gives its uses back: orders' cancellation of an
unpaid order does it (an event), and so does a sweeper for claims whose order never appeared
(orders failed after claiming; `PRICING_CLAIM_CONFIRM_TIMEOUT`, default an hour, long past any placement).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, Unprocessable
from services.pricing import engine, events, readmodel
from services.pricing import service as admin_service
from services.pricing.models import CustomerOrder, OrderPricing, Promotion, PromotionUsage, ShippingMethod
from services.pricing.schemas import CouponStatus, QuoteAnswer, QuoteRequest


@dataclass
class _Promotions:
    automatic: list[Promotion]
    coupon: Promotion | None
    coupon_problem: CouponStatus | None


def _money(m: ShippingMethod) -> engine.ShippingMethod:
    return engine.ShippingMethod(id=m.id, name=m.name, amount=m.amount, free_over=m.free_over)


def _engine_promotion(p: Promotion, *, used: int, used_by_customer: int) -> engine.Promotion:
    action = engine.Action(
        engine.ActionType(p.action_type), value=p.action_value, buy=p.action_buy or 0, get=p.action_get or 0
    )
    rules = engine.Rules(
        min_subtotal=p.min_subtotal,
        product_ids=frozenset(p.product_ids),
        category_ids=frozenset(p.category_ids),
        first_order_only=p.first_order_only,
        starts_at=p.starts_at,
        ends_at=p.ends_at,
        usage_limit=p.usage_limit,
        usage_limit_per_customer=p.usage_limit_per_customer,
    )
    return engine.Promotion(
        id=p.id,
        name=p.name,
        action=action,
        rules=rules,
        code=p.code,
        stackable=p.stackable,
        times_used=used,
        times_used_by_customer=used_by_customer,
    )


async def _load_promotions(session: AsyncSession, req: QuoteRequest) -> _Promotions:
    """Live automatic promotions of the quote's currency, and the coupon (or why there is none)."""
    automatic = list(
        (
            await session.execute(
                sa.select(Promotion).where(
                    Promotion.deleted_at.is_(None),
                    Promotion.code.is_(None),
                    Promotion.is_active,
                    Promotion.currency == req.currency,
                )
            )
        ).scalars()
    )
    coupon: Promotion | None = None
    problem: CouponStatus | None = None
    if req.coupon_code is not None:
        coupon = (
            await session.execute(
                sa.select(Promotion).where(Promotion.deleted_at.is_(None), Promotion.code == req.coupon_code)
            )
        ).scalar_one_or_none()
        if coupon is None or not coupon.is_active:
            coupon, problem = (
                None,
                CouponStatus(
                    code=req.coupon_code,
                    applied=False,
                    reason="unknown_code",
                    detail="There is no such code.",
                ),
            )
        elif coupon.currency != req.currency:
            problem = CouponStatus(
                code=req.coupon_code,
                applied=False,
                reason="not_for_these_items",
                detail=f"This code is for orders in {coupon.currency}.",
            )
            coupon = None
    return _Promotions(automatic, coupon, problem)


async def _usage_counts(
    session: AsyncSession, ids: list[uuid.UUID], customer_id: uuid.UUID | None
) -> tuple[dict[uuid.UUID, int], dict[uuid.UUID, int]]:
    if not ids:
        return {}, {}
    mine_count = (
        sa.func.count().filter(PromotionUsage.customer_id == customer_id)
        if customer_id is not None
        else sa.literal(0)
    )
    rows = await session.execute(
        sa.select(PromotionUsage.promotion_id, sa.func.count(), mine_count)
        .where(PromotionUsage.promotion_id.in_(ids), PromotionUsage.released_at.is_(None))
        .group_by(PromotionUsage.promotion_id)
    )
    total: dict[uuid.UUID, int] = {}
    mine: dict[uuid.UUID, int] = {}
    for promotion_id, n, by_customer in rows:
        total[promotion_id], mine[promotion_id] = int(n), int(by_customer)
    return total, mine


async def _lines(session: AsyncSession, req: QuoteRequest) -> list[engine.Line]:
    """The request's lines with each product's category (as catalog last said, unless given) and its ancestors."""
    known = await readmodel.categories_of(
        session, [ln.product_id for ln in req.lines if ln.category_id is None]
    )
    category = [ln.category_id or known.get(ln.product_id) for ln in req.lines]
    ancestors = await readmodel.ancestors_of(session, [c for c in category if c is not None])
    return [
        engine.Line(
            product_id=ln.product_id,
            variant_id=ln.variant_id,
            unit_price=ln.unit_price,
            quantity=ln.quantity,
            category_id=cat,
            ancestor_category_ids=ancestors.get(cat, frozenset()) if cat else frozenset(),
        )
        for ln, cat in zip(req.lines, category, strict=True)
    ]


def _no_delivery(detail: str, field: str) -> Unprocessable:
    return Unprocessable(
        detail,
        title="Cannot ship there",
        errors=[{"field": field, "message": detail, "type": "not_deliverable"}],
    )


async def _shipping(
    session: AsyncSession, req: QuoteRequest, subtotal: int
) -> tuple[list[ShippingMethod], ShippingMethod | None]:
    """The methods on offer for the address, and the chosen one (default: the cheapest for this cart)."""
    addr = req.shipping_address
    offers = await admin_service.methods_for(
        session=session,
        country=addr.country,
        region=addr.region,
        postal_code=addr.postal_code,
        currency=req.currency,
    )
    if req.shipping_method_id is not None:
        chosen = next((m for m in offers if m.id == req.shipping_method_id), None)
        if chosen is None:
            raise _no_delivery(
                "This shipping method does not deliver to this address (or not in this currency).",
                "shipping_method_id",
            )
        return offers, chosen
    if offers:
        return offers, min(
            offers, key=lambda m: (_money(m).charge_for(subtotal), m.amount, m.name, str(m.id))
        )
    if await admin_service.any_shipping_configured(session):
        raise _no_delivery(
            f"The shop does not ship to this address ({addr.country}).", "shipping_address.country"
        )
    return offers, None  # a shop without shipping zones charges no shipping


@dataclass
class _Inputs:
    """Everything a quote reads except usage counts, which a claim reads again under its locks."""

    lines: list[engine.Line]
    offers: list[ShippingMethod]
    chosen: ShippingMethod | None
    rates: list[engine.TaxRate]
    promos: _Promotions
    first_order: bool

    @property
    def promotions(self) -> dict[uuid.UUID, Promotion]:
        return {
            p.id: p for p in [*self.promos.automatic, *([self.promos.coupon] if self.promos.coupon else [])]
        }


@dataclass
class _Priced:
    answer: dict[str, Any]
    result: engine.Quote
    used: dict[uuid.UUID, int]


async def _gather(session: AsyncSession, req: QuoteRequest, *, claiming: bool = False) -> _Inputs:
    lines = await _lines(session, req)
    offers, chosen = await _shipping(session, req, sum(ln.subtotal for ln in lines))
    addr = req.shipping_address
    rates = await admin_service.rates_for(session=session, country=addr.country, region=addr.region)
    promos = await _load_promotions(session, req)
    candidates = [*promos.automatic, *([promos.coupon] if promos.coupon else [])]
    if claiming and req.customer_id is not None and any(p.rules_per_customer for p in candidates):
        # one such claim per customer at a time: first-order and per-customer limits stay exact
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"pricing-customer:{req.customer_id}")))
        )
    first = await readmodel.is_first_order(session, customer_id=req.customer_id, order_id=req.order_id)
    return _Inputs(
        lines,
        offers,
        chosen,
        [engine.TaxRate(t.name, t.rate_bp, t.applies_to_shipping) for t in rates],
        promos,
        first,
    )


async def _price(
    session: AsyncSession, req: QuoteRequest, inputs: _Inputs, *, prices_include_tax: bool, now: datetime
) -> _Priced:
    """Read the usage counts and run the engine (the part of a claim that runs under its locks)."""
    promos = inputs.promos
    used, mine = await _usage_counts(session, list(inputs.promotions), req.customer_id)

    def as_engine(p: Promotion) -> engine.Promotion:
        return _engine_promotion(p, used=used.get(p.id, 0), used_by_customer=mine.get(p.id, 0))

    result = engine.quote(
        lines=inputs.lines,
        currency=req.currency,
        now=now,
        shipping=_money(inputs.chosen) if inputs.chosen else None,
        tax_rates=inputs.rates,
        prices_include_tax=prices_include_tax,
        automatic=[as_engine(p) for p in promos.automatic],
        coupon=as_engine(promos.coupon) if promos.coupon else None,
        first_order=inputs.first_order,
    )
    coupon = promos.coupon_problem
    if promos.coupon is not None:
        rejected = result.coupon_rejection
        coupon = (
            CouponStatus(code=promos.coupon.code or "", applied=True)
            if rejected is None
            else CouponStatus(
                code=rejected.code,
                applied=False,
                reason=rejected.reason.value,
                detail=rejected.detail,
                shortfall=rejected.shortfall,
            )
        )
    answer = QuoteAnswer(
        breakdown=result.breakdown.as_dict(),
        coupon=coupon,
        shipping_methods=[admin_service.method_wire(m) for m in inputs.offers],
    )
    return _Priced(answer.model_dump(mode="json"), result, used)


async def quote(*, session: AsyncSession, req: QuoteRequest, prices_include_tax: bool) -> dict[str, Any]:
    """The breakdown for a cart or an order; with `order_id` the order's promotions are claimed."""
    if req.order_id is not None:
        return await _claim(session=session, req=req, prices_include_tax=prices_include_tax)
    async with session.begin():
        inputs = await _gather(session, req)
        priced = await _price(
            session, req, inputs, prices_include_tax=prices_include_tax, now=datetime.now(UTC)
        )
    return priced.answer


def _fingerprint(req: QuoteRequest) -> str:
    return hashlib.sha256(orjson.dumps(req.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _replay(stored: OrderPricing, fingerprint: str) -> dict[str, Any]:
    if stored.request_hash != fingerprint:
        raise Conflict(
            "This order was already priced with other lines, address or code.", title="Order already priced"
        )
    return dict(stored.answer)


async def _lock_limited(session: AsyncSession, inputs: _Inputs) -> None:
    """Row-lock every promotion with a usage limit, in id order (two claims never deadlock); a claim
    holds the locks only for its last few statements, so a hot code queues claims briefly."""
    limited = sorted(
        p.id
        for p in inputs.promotions.values()
        if p.usage_limit is not None or p.usage_limit_per_customer is not None
    )
    if limited:
        await session.execute(
            sa.select(Promotion.id).where(Promotion.id.in_(limited)).order_by(Promotion.id).with_for_update()
        )


async def _claim(*, session: AsyncSession, req: QuoteRequest, prices_include_tax: bool) -> dict[str, Any]:
    assert req.order_id is not None
    fingerprint = _fingerprint(req)
    try:
        async with session.begin():
            inputs = await _gather(session, req, claiming=True)
            await _lock_limited(session, inputs)
            # checked under the locks: a concurrent claim of the same order has committed by now
            stored = await session.get(OrderPricing, req.order_id, populate_existing=True)
            if stored is not None:
                return _replay(stored, fingerprint)
            now = datetime.now(UTC)
            priced = await _price(session, req, inputs, prices_include_tax=prices_include_tax, now=now)
            rejected = priced.answer["coupon"]
            if rejected is not None and not rejected["applied"]:
                raise Unprocessable(
                    rejected["detail"],
                    title="Coupon does not apply",
                    reason=rejected["reason"],
                    code=rejected["code"],
                    shortfall=rejected["shortfall"],
                    errors=[
                        {"field": "coupon_code", "message": rejected["detail"], "type": rejected["reason"]}
                    ],
                )
            await _record_usages(session, req, inputs, priced, now)
            session.add(
                OrderPricing(
                    order_id=req.order_id,
                    customer_id=req.customer_id,
                    request_hash=fingerprint,
                    answer=priced.answer,
                    created_at=now,
                    released_at=None,
                )
            )
            await session.flush()
    except IntegrityError:
        # the same order claimed at the same moment with no lock to queue on: answer what the first stored
        async with session.begin():
            stored = await session.get(OrderPricing, req.order_id, populate_existing=True)
            if stored is None:
                raise
            return _replay(stored, fingerprint)
    return priced.answer


async def _record_usages(
    session: AsyncSession, req: QuoteRequest, inputs: _Inputs, priced: _Priced, now: datetime
) -> None:
    assert req.order_id is not None
    promotions = inputs.promotions
    for d in priced.result.breakdown.discounts:
        p = promotions[d.promotion_id]
        session.add(
            PromotionUsage(
                promotion_id=p.id,
                order_id=req.order_id,
                customer_id=req.customer_id,
                code=p.code,
                amount=d.amount,
                currency=req.currency,
                claimed_at=now,
                released_at=None,
            )
        )
        await events.publish(
            session,
            "promotion.claimed",
            {
                "promotion_id": p.id,
                "code": p.code,
                "order_id": req.order_id,
                "customer_id": req.customer_id,
                "amount": d.amount,
                "currency": req.currency,
                "times_used": priced.used.get(p.id, 0) + 1,
                "usage_limit": p.usage_limit,
            },
        )


async def release(*, session: AsyncSession, order_id: uuid.UUID) -> dict[str, Any]:
    """Give back the promotions an order used (its unpaid order was cancelled); idempotent."""
    async with session.begin():
        released = await release_in(session, order_id=order_id)
    return {"order_id": str(order_id), "released": [str(p) for p in released]}


async def release_in(session: AsyncSession, *, order_id: uuid.UUID) -> list[uuid.UUID]:
    """`release` inside the caller's transaction (an event handler's); the promotions given back."""
    now = datetime.now(UTC)
    usages = list(
        (
            await session.execute(
                sa.update(PromotionUsage)
                .where(PromotionUsage.order_id == order_id, PromotionUsage.released_at.is_(None))
                .values(released_at=now)
                .returning(PromotionUsage)
            )
        ).scalars()
    )
    await session.execute(
        sa.update(OrderPricing)
        .where(OrderPricing.order_id == order_id, OrderPricing.released_at.is_(None))
        .values(released_at=now)
    )
    for u in sorted(usages, key=lambda u: u.promotion_id):
        promotion = await session.get(Promotion, u.promotion_id)
        assert promotion is not None  # usages reference promotions, whose rows are never deleted
        times_used = int(
            (await session.execute(sa.select(admin_service.live_usages(u.promotion_id)))).scalar_one()
        )
        await events.publish(
            session,
            "promotion.released",
            {
                "promotion_id": u.promotion_id,
                "code": u.code,
                "order_id": order_id,
                "customer_id": u.customer_id,
                "amount": u.amount,
                "currency": u.currency,
                "times_used": times_used,
                "usage_limit": promotion.usage_limit,
            },
        )
    return [u.promotion_id for u in usages]


async def release_unconfirmed(*, session: AsyncSession, older_than: timedelta, batch: int = 100) -> int:
    """Give back the claims of orders that never came to be: priced, yet orders never announced
    them (it failed after the claim and gave up). Safe with many replicas (SKIP LOCKED)."""
    async with session.begin():
        cutoff = datetime.now(UTC) - older_than
        stale = list(
            (
                await session.execute(
                    sa.select(OrderPricing.order_id)
                    .where(
                        OrderPricing.released_at.is_(None),
                        OrderPricing.created_at < cutoff,
                        ~sa.exists().where(CustomerOrder.order_id == OrderPricing.order_id),
                    )
                    .order_by(OrderPricing.created_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for order_id in stale:
            await release_in(session, order_id=order_id)
    return len(stale)
