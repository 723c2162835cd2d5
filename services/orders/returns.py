"""Returns of delivered orders: what a customer may send back, how admins move a return along, and
what each return refunds (``services.orders.refunds``), all under the order's row lock.

Moves: requested -> approved | rejected; approved -> received; received -> refunded (payments'
refund, never by hand). A line's units may be asked back up to what was delivered minus what other
returns (not rejected) already hold; the amount is fixed when the units are received, from the units
of that line received before, so the returns of an order refund exactly what was paid when every
unit is back and never more.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.events import publish_in
from libs.contracts.orders import OrderStatus, ReturnLine, ReturnStatus
from services.orders import events
from services.orders.models import Order, OrderReturn
from services.orders.refunds import line_shares, units_refund
from services.orders.schemas import Page, ReturnCreate, ReturnPublic

R = ReturnStatus
MOVES: dict[str, tuple[str, ...]] = {
    R.requested: (R.approved, R.rejected),
    R.approved: (R.received,),
    R.received: (R.refunded,),
    R.rejected: (),
    R.refunded: (),
}
# the returns whose units count against what may still be asked back
_HOLDING = (R.requested, R.approved, R.received, R.refunded)


def _now() -> datetime:
    return datetime.now(UTC)


async def _lock_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    return (
        await session.execute(
            sa.select(Order)
            .where(Order.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _returns_of(session: AsyncSession, order_id: uuid.UUID) -> list[OrderReturn]:
    rows = await session.scalars(
        sa.select(OrderReturn).where(OrderReturn.order_id == order_id).order_by(OrderReturn.created_at)
    )
    return list(rows)


def _units(returns: list[OrderReturn], statuses: tuple[str, ...]) -> dict[int, int]:
    units: dict[int, int] = defaultdict(int)
    for r in returns:
        if r.status in statuses:
            for line in r.items:
                units[int(line["line_id"])] += int(line["quantity"])
    return units


async def request_return(
    *, session: AsyncSession, order_id: uuid.UUID, user: Principal, body: ReturnCreate, window_days: int
) -> OrderReturn:
    """Ask to send back units of a delivered order's lines, within the return window."""
    async with session.begin():
        order = await _lock_order(session, order_id)
        if order is None or order.user_id != user.user_id:
            raise NotFound("No such order.")
        if order.status != OrderStatus.delivered:
            raise Conflict(
                f"Only a delivered order can be returned; this one is {order.status}.",
                title="Return not allowed",
                type_="return-not-allowed",
                current_status=order.status,
            )
        delivered_at = max(
            (h.at for h in order.history if h.to_status == OrderStatus.delivered), default=None
        )
        if delivered_at is not None and _now() > delivered_at + timedelta(days=window_days):
            closed = delivered_at + timedelta(days=window_days)
            raise Conflict(
                f"Returns are taken for {window_days} days after delivery; this order's window closed on "
                f"{closed.date().isoformat()}.",
                title="Return not allowed",
                type_="return-not-allowed",
                current_status=order.status,
                return_by=closed.isoformat(),
            )
        held = _units(await _returns_of(session, order.id), _HOLDING)
        asked: dict[int, int] = defaultdict(int)
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(body.items):
            if item.line_id >= len(order.items):
                errors.append(_error(i, "line_id", f"the order has lines 0 to {len(order.items) - 1}"))
                continue
            asked[item.line_id] += item.quantity
            left = order.items[item.line_id].quantity - held[item.line_id]
            if asked[item.line_id] > left:
                errors.append(
                    _error(i, "quantity", f"at most {max(left, 0)} of this line can still be returned")
                )
        if errors:
            raise Unprocessable(
                "Some items cannot be returned as asked; `errors` says which and why.",
                type_="validation-failed",
                errors=errors,
            )
        now = _now()
        ret = OrderReturn(
            id=uuid.uuid4(),
            order_id=order.id,
            user_id=order.user_id,
            status=R.requested,
            items=[
                ReturnLine(
                    line_id=item.line_id,
                    product_id=order.items[item.line_id].product_id,
                    variant_id=order.items[item.line_id].variant_id,
                    name=order.items[item.line_id].name,
                    quantity=item.quantity,
                    reason=item.reason,
                ).model_dump(mode="json")
                for item in body.items
            ],
            note=body.note,
            currency=order.currency,
            created_at=now,
            updated_at=now,
        )
        session.add(ret)
        await session.flush()
        await publish_in(session, events.return_changed(ret, by=str(user.user_id)))
    return ret


def _error(index: int, field: str, message: str) -> dict[str, Any]:
    return {"field": f"items.{index}.{field}", "message": message, "type": "value_error"}


async def move_return(
    *, session: AsyncSession, return_id: uuid.UUID, to: str, admin: Principal
) -> OrderReturn:
    """Approve, reject or receive a return; receiving fixes what it refunds."""
    async with session.begin():
        found = await session.get(OrderReturn, return_id)
        if found is None:
            raise NotFound("No such return.")
        # the order's lock first (as a request takes it): receipts of one order's returns queue here
        order = await _lock_order(session, found.order_id)
        ret = (
            await session.execute(
                sa.select(OrderReturn)
                .where(OrderReturn.id == return_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        assert order is not None  # the return's foreign key holds it
        _check_move(ret, to)
        now = _now()
        if to == R.received:
            _fix_refund(order, ret, await _returns_of(session, order.id))
            ret.received_at = now
        ret.status = to
        ret.updated_at = now
        await session.flush()
        await publish_in(session, events.return_changed(ret, by=str(admin.user_id)))
    return ret


def _check_move(ret: OrderReturn, to: str) -> None:
    allowed = MOVES[ret.status]
    if to not in allowed or to == R.refunded:
        moves = ", ".join(a for a in allowed if a != R.refunded) or "none by hand"
        raise Conflict(
            f"A return that is {ret.status} cannot become {to}; allowed: {moves}.",
            title="Return status change not allowed",
            type_="return-change-not-allowed",
            current_status=ret.status,
            allowed=[a for a in allowed if a != R.refunded],
        )


def _fix_refund(order: Order, ret: OrderReturn, returns: list[OrderReturn]) -> None:
    """Each line's amount from the units of that line received before this return."""
    lines = (order.breakdown or {}).get("lines") or []
    matches = len(lines) == len(order.items) and all(
        str(b.get("product_id")) == str(i.product_id) for b, i in zip(lines, order.items, strict=True)
    )
    totals = [int(b["total"]) for b in lines] if matches else [i.line_total for i in order.items]
    shares = line_shares(totals, order.total)
    before = _units([r for r in returns if r.id != ret.id], (R.received, R.refunded))
    items = []
    for line in ret.items:
        n = int(line["line_id"])
        amount = units_refund(
            share=shares[n],
            quantity=order.items[n].quantity,
            already=before[n],
            returning=int(line["quantity"]),
        )
        before[n] += int(line["quantity"])
        items.append({**line, "refund_amount": amount})
    ret.items = items
    ret.refund_amount = sum(i["refund_amount"] for i in items)


async def record_refund(
    *, session: AsyncSession, return_id: uuid.UUID, refund_id: str | None, amount: int
) -> None:
    """Payments refunded a received return (consumer transaction): it becomes refunded, once."""
    ret = (
        await session.execute(sa.select(OrderReturn).where(OrderReturn.id == return_id).with_for_update())
    ).scalar_one_or_none()
    if ret is None or ret.status != R.received:
        return
    ret.status = R.refunded
    ret.refund_id = refund_id
    ret.refunded_at = ret.updated_at = _now()
    await session.flush()
    await publish_in(session, events.return_changed(ret, by="payments"))


async def list_for_order(*, session: AsyncSession, order_id: uuid.UUID, user: Principal) -> list[OrderReturn]:
    """The returns of one of the caller's orders (an admin sees any order's), oldest first."""
    order = await session.get(Order, order_id)
    if order is None or (order.user_id != user.user_id and not user.is_admin):
        raise NotFound("No such order.")
    return await _returns_of(session, order_id)


async def list_admin(
    *, session: AsyncSession, page: int, page_size: int, status: str | None, order_id: uuid.UUID | None
) -> Page[ReturnPublic]:
    """Every return, newest first."""
    where = []
    if status:
        where.append(OrderReturn.status == status)
    if order_id:
        where.append(OrderReturn.order_id == order_id)
    total = await session.scalar(sa.select(sa.func.count()).select_from(OrderReturn).where(*where))
    rows = await session.scalars(
        sa.select(OrderReturn)
        .where(*where)
        .order_by(OrderReturn.created_at.desc(), OrderReturn.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return Page[ReturnPublic](
        items=[ReturnPublic.model_validate(r) for r in rows], total=total or 0, page=page, page_size=page_size
    )
