"""Business rules of orders: placing, reading, the status machine, payment facts, the unpaid sweeper.

Totals: pricing makes the breakdown (shipping, tax, promotions) over the prices catalog reserved
at, and the order keeps it as made; ``total`` is the breakdown's and is what payments charges.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import (
    Conflict,
    DomainError,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    domain_problem,
)
from libs.common.events import publish_in
from libs.common.logging import get_logger
from libs.contracts.orders import Fulfillment
from libs.contracts.payments import PaymentEventData
from services.orders import addresses, events, idempotency, placements, upstream
from services.orders.context import Attempt, OrdersContext
from services.orders.models import Order, OrderItem, StatusChange
from services.orders.schemas import TRANSITIONS, OrderCreate, OrderPublic, OrderStatus, Page
from services.orders.settings import OrdersSettings

log = get_logger(__name__)
S = OrderStatus


@dataclass(frozen=True)
class PlacedOrder:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def to_public(order: Order) -> dict[str, Any]:
    return OrderPublic.model_validate(order).model_dump(mode="json", by_alias=True)


async def place_order(
    *, ctx: OrdersContext, session: AsyncSession, user: Principal, order_in: OrderCreate, key: str | None
) -> PlacedOrder:
    """Place an order from the cart (or the given items); a repeated Idempotency-Key gets the first answer."""
    settings = ctx.settings
    if key is None:
        attempt = Attempt(order_id=uuid.uuid4(), user_id=user.user_id, key=None)
        async with session.begin():
            await placements.open_in(
                session, settings=settings, order_id=attempt.order_id, user_id=user.user_id
            )
    else:
        fingerprint = idempotency.request_hash(order_in.model_dump(mode="json"))
        claim = await idempotency.claim(
            session=session, settings=settings, user_id=user.user_id, key=key, fingerprint=fingerprint
        )
        if claim.answer is not None:
            return PlacedOrder(claim.answer[0], claim.answer[1], replayed=True)
        attempt = Attempt(order_id=claim.order_id, user_id=user.user_id, key=key)
        if claim.abandoned is not None:
            await placements.release_abandoned(ctx, claim.abandoned)
    placements.hold(ctx, attempt.order_id)
    try:
        order = await _place(ctx=ctx, session=session, user=user, order_in=order_in, attempt=attempt)
    except DomainError as exc:
        answered = (
            key is not None and exc.status < 500 and not isinstance(exc, placements.TooManyUnpaidOrders)
        )
        if answered and key is not None:
            # a refusal on the merits (empty cart, short stock, over a limit) is the key's answer
            body = domain_problem(exc)
            try:
                async with session.begin():
                    await idempotency.complete(
                        session,
                        user_id=user.user_id,
                        key=key,
                        order_id=attempt.order_id,
                        status=exc.status,
                        body=body,
                    )
            except Exception:
                answered = False
        await placements.settle(ctx, attempt, free_key=not answered)
        raise
    except BaseException:
        await placements.settle(ctx, attempt, free_key=True)
        raise
    finally:
        placements.let_go(ctx, attempt.order_id)
    return PlacedOrder(201, to_public(order))


def _check_limits(settings: OrdersSettings, merged: dict[tuple[uuid.UUID, uuid.UUID | None], int]) -> None:
    """What one unpaid order may take off sale: per line (product or variant) and in all (issue 21)."""
    per_line = settings.order_max_line_quantity
    over = [
        {
            "product_id": str(pid),
            **({"variant_id": str(vid)} if vid else {}),
            "requested": qty,
            "limit": per_line,
        }
        for (pid, vid), qty in merged.items()
        if qty > per_line
    ]
    if over:
        raise Unprocessable(
            f"At most {per_line} units of one product can be ordered at once; "
            f"{len(over)} line(s) ask for more.",
            title="Quantity limit exceeded",
            over=over,
        )
    units = sum(merged.values())
    if units > settings.order_max_units:
        raise Unprocessable(
            f"At most {settings.order_max_units} units can be ordered at once; this order has {units}.",
            title="Order too large",
            units=units,
            limit=settings.order_max_units,
        )


async def _place(
    *, ctx: OrdersContext, session: AsyncSession, user: Principal, order_in: OrderCreate, attempt: Attempt
) -> Order:
    settings = ctx.settings
    if order_in.items is not None:
        wanted = [(i.product_id, i.variant_id, i.quantity) for i in order_in.items]
    else:
        wanted = await upstream.cart_items(ctx, user_id=user.user_id)
    merged: dict[tuple[uuid.UUID, uuid.UUID | None], int] = {}
    for product_id, variant_id, quantity in wanted:
        if quantity > 0:
            merged[(product_id, variant_id)] = merged.get((product_id, variant_id), 0) + quantity
    if not merged:
        what = "The order has no items." if order_in.items is not None else "Your cart is empty."
        raise Unprocessable(
            f"{what} Add products before placing an order.",
            title="Nothing to order",
            type_="nothing-to-order",
        )
    _check_limits(settings, merged)
    shipping = await addresses.shipping_address(ctx, user_id=user.user_id, order_in=order_in)
    order_id = attempt.order_id
    attempt.reserved = True
    try:
        reservation = await upstream.reserve(
            ctx, order_id=order_id, items=[(pid, vid, qty) for (pid, vid), qty in merged.items()]
        )
    except (Conflict, Unprocessable):
        # catalog refused (short stock, unknown products): its transaction reserved nothing under
        # this order id, and nothing more is sent under it, so there is nothing to release
        attempt.reserved = False
        raise
    if any(i.currency and i.currency != reservation.currency for i in reservation.items):
        raise Unprocessable(
            "Products priced in different currencies cannot be ordered together.", type_="currency-mismatch"
        )
    breakdown = await upstream.price(
        ctx,
        order_id=order_id,
        user_id=user.user_id,
        reservation=reservation,
        shipping_address=shipping,
        shipping_method_id=order_in.shipping_method_id,
        coupon_code=order_in.coupon_code,
    )
    now = datetime.now(UTC)
    lines = [
        OrderItem(
            position=n,
            product_id=i.product_id,
            variant_id=i.variant_id,
            sku=i.sku,
            title=i.title,
            name=i.name,
            unit_price=i.unit_price,
            quantity=i.quantity,
            line_total=i.unit_price * i.quantity,
        )
        for n, i in enumerate(reservation.items)
    ]
    subtotal = sum(line.line_total for line in lines)
    large = sum(line.quantity for line in lines) > settings.order_large_units
    hold_for = settings.order_large_payment_timeout if large else settings.order_payment_timeout
    order = Order(
        id=order_id,
        user_id=user.user_id,
        status=S.pending_payment,
        subtotal=subtotal,
        total=breakdown.total,
        currency=reservation.currency,
        shipping_address=shipping,
        breakdown=breakdown.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        payment_due_at=now + timedelta(seconds=hold_for),
        items=lines,
        history=[
            StatusChange(
                from_status=None, to_status=S.pending_payment, by=str(user.user_id), at=now, reason=None
            )
        ],
    )
    attempt.committing = True
    async with session.begin():
        if attempt.key is not None:
            await idempotency.lock(session, user_id=user.user_id, key=attempt.key)
        if not await placements.close_in(session, order_id):
            raise ServiceUnavailable(
                "This checkout took too long and was given up; nothing was ordered. Please retry.",
                headers={"Retry-After": "1"},
            )
        session.add(order)
        await publish_in(session, events.order_created(order))
        if attempt.key is not None:
            await idempotency.complete(
                session,
                user_id=user.user_id,
                key=attempt.key,
                order_id=order_id,
                status=201,
                body=to_public(order),
            )
    log.info("order_placed", order_id=str(order_id), total=order.total, currency=order.currency)
    return order


async def list_orders(
    *,
    session: AsyncSession,
    page: int,
    page_size: int,
    user_id: uuid.UUID | Sequence[uuid.UUID] | None = None,
    status: OrderStatus | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    id_prefix: str | None = None,
    schema: type[OrderPublic] = OrderPublic,
) -> Page[Any]:
    """Orders matching the filters, newest first; `id_prefix`: the start of the order's number (hex)."""
    where = []
    if isinstance(user_id, uuid.UUID):
        where.append(Order.user_id == user_id)
    elif user_id is not None:
        where.append(Order.user_id.in_(list(user_id)))
    if status is not None:
        where.append(Order.status == status)
    if created_from is not None:
        where.append(Order.created_at >= _aware(created_from))
    if created_to is not None:
        where.append(Order.created_at <= _aware(created_to))
    if id_prefix:
        where.append(sa.cast(Order.id, sa.String).like(id_prefix + "%"))
    async with session.begin():
        total = (
            await session.execute(sa.select(sa.func.count()).select_from(Order).where(*where))
        ).scalar_one()
        rows = (
            (
                await session.execute(
                    sa.select(Order)
                    .where(*where)
                    .order_by(Order.created_at.desc(), Order.id)
                    .offset((page - 1) * page_size)
                    .limit(page_size)
                )
            )
            .scalars()
            .all()
        )
    return Page[schema](  # type: ignore[valid-type]
        items=[schema.model_validate(o) for o in rows], total=total, page=page, page_size=page_size
    )


async def get_order(*, session: AsyncSession, order_id: uuid.UUID, user: Principal) -> Order:
    """The caller's order (admins may read any); anybody else's is reported as missing."""
    async with session.begin():
        order = await session.get(Order, order_id)
    if order is None or (order.user_id != user.user_id and not user.is_admin):
        raise NotFound("No such order.")
    return order


async def cancel_order(*, session: AsyncSession, order_id: uuid.UUID, user: Principal) -> Order:
    """Cancel the caller's own order while it is still unpaid."""
    async with session.begin():
        order = await _locked(session, order_id)
        if order is None or order.user_id != user.user_id:
            raise NotFound("No such order.")
        if order.status != S.pending_payment:
            raise Conflict(
                f"An order that is {order.status} can no longer be cancelled by you; "
                "contact support for a paid order.",
                title="Status change not allowed",
                type_="status-change-not-allowed",
                current_status=order.status,
                allowed=[],
            )
        await _move(session, order, to=S.cancelled, by=str(user.user_id), reason="cancelled by customer")
    return order


async def change_status(
    *,
    session: AsyncSession,
    order_id: uuid.UUID,
    to: OrderStatus,
    admin: Principal,
    reason: str | None,
    carrier: str | None = None,
    tracking_number: str | None = None,
    tracking_url: str | None = None,
) -> Order:
    """Move an order along the status machine on an admin's behalf; shipping it records how it travels
    and announces it (order.fulfilled) with the move."""
    async with session.begin():
        order = await _locked(session, order_id)
        if order is None:
            raise NotFound("No such order.")
        allowed = TRANSITIONS[order.status]
        if to not in allowed:
            moves = ", ".join(allowed) or "none (it is final)"
            raise Conflict(
                f"An order that is {order.status} cannot become {to}; allowed: {moves}.",
                title="Status change not allowed",
                type_="status-change-not-allowed",
                current_status=order.status,
                allowed=list(allowed),
            )
        await _move(session, order, to=to, by=str(admin.user_id), reason=reason)
        if to == S.shipped:
            order.fulfillment = Fulfillment(
                carrier=carrier,
                tracking_number=tracking_number,
                tracking_url=tracking_url,
                shipped_at=order.updated_at,
            ).model_dump(mode="json")
            await publish_in(session, events.order_fulfilled(order, by=str(admin.user_id)))
    return order


async def _locked(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    # the row lock serialises admin moves, payment events and the sweeper on one order
    return (
        await session.execute(
            sa.select(Order)
            .where(Order.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _move(session: AsyncSession, order: Order, *, to: str, by: str, reason: str | None) -> None:
    """Apply one status change with its history entry and event, in the caller's transaction."""
    now = datetime.now(UTC)
    entry = StatusChange(from_status=order.status, to_status=to, by=by, at=now, reason=reason)
    order.history.append(entry)
    order.status = to
    order.updated_at = now
    await session.flush()
    await publish_in(session, events.order_status_changed(order, entry))


async def record_payment_succeeded(*, session: AsyncSession, payment: PaymentEventData) -> None:
    """An unpaid order becomes paid; a payment for a cancelled order is recorded (payments refunds it)."""
    order = await _locked(session, payment.order_id)
    if order is None:
        log.warning("payment_for_unknown_order", order_id=str(payment.order_id))
        return
    if order.status == S.pending_payment and (
        payment.amount != order.total or payment.currency.upper() != order.currency.upper()
    ):
        log.error("payment_amount_mismatch", order_id=str(order.id), amount=payment.amount, total=order.total)
        order.last_payment_error = "The payment does not match the order total."
        order.last_payment_error_at = datetime.now(UTC)
        return
    if order.status not in (S.pending_payment, S.cancelled) or order.paid_at is not None:
        return  # already paid: a second report of the same payment changes nothing
    order.paid_at = datetime.now(UTC)
    order.last_payment_error = order.last_payment_error_at = None  # a declined attempt before it is over
    order.payment_id = payment.payment_id
    order.payment_intent_id = payment.payment_intent_id
    if order.status == S.pending_payment:
        await _move(session, order, to=S.paid, by="payments", reason=None)
    else:
        log.warning("payment_after_cancellation", order_id=str(order.id))


async def record_payment_failed(*, session: AsyncSession, payment: PaymentEventData) -> None:
    """Keep the failure on the order so the customer sees why; it stays payable."""
    order = await _locked(session, payment.order_id)
    if order is None or order.status != S.pending_payment:
        return
    order.last_payment_error = payment.reason or "The payment failed."
    order.last_payment_error_at = datetime.now(UTC)
    order.updated_at = datetime.now(UTC)


async def record_refund(*, session: AsyncSession, payment: PaymentEventData) -> None:
    """Note the refund on the (cancelled) order; its status does not change."""
    order = await _locked(session, payment.order_id)
    if order is None:
        return
    now = datetime.now(UTC)
    order.refunded_at = order.refunded_at or now
    order.refund_amount = (order.refund_amount or 0) + payment.amount
    order.updated_at = now


async def cancel_unpaid(*, session: AsyncSession, batch: int) -> int:
    """Cancel up to ``batch`` unpaid orders past their payment due time; returns how many."""
    async with session.begin():
        orders = (
            (
                await session.execute(
                    sa.select(Order)
                    .where(Order.status == S.pending_payment, Order.payment_due_at < sa.func.now())
                    .order_by(Order.payment_due_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        for order in orders:
            await _move(session, order, to=S.cancelled, by="system", reason="payment timeout")
    return len(orders)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
