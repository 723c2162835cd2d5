"""Placements: the order id a request reserves stock under, from before catalog is asked until the
order is stored or the stock is given back.

Why: catalog's reservation and orders' commit are two databases. A process killed between them
left stock reserved for an order that never existed, and nothing released it unless the client
retried with the same key (issue 23). Now every placement first commits a row here, so orders'
database always knows which order ids might hold stock without an order:

- the request's process renews the row's lease while the request works (one UPDATE per tick
  for all its placements), and deletes the row in the order's own transaction;
- a row whose lease ran out belongs to a request that died (or lost its database): any replica's
  sweeper fences it (``placing -> abandoned``, a conditional update under the row lock, so the
  order can no longer be stored), asks catalog to release that order id, and deletes the row
  once catalog confirmed. An order that did commit deleted its row in the same transaction, so
  a release is only ever sent for an order id orders' database proves has no order;
- catalog turns a release of an order id it never saw into a tombstone, so a reservation that
  arrives after its release (a slow request) is refused rather than made.

A repeat of an Idempotency-Key whose placement is no longer live takes the key over under a new
order id (the old one is fenced in the same transaction and released), so an order is never built
on a reservation that was released meanwhile.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict
from libs.common.logging import get_logger
from libs.common.unavailable import dependency_probes, describe, outages
from services.orders import upstream
from services.orders.context import Attempt, OrdersContext
from services.orders.models import IdempotencyKey, Order, Placement
from services.orders.settings import OrdersSettings

log = get_logger(__name__)
P = Placement
PLACING, ABANDONED = "placing", "abandoned"


class TooManyUnpaidOrders(Conflict):
    """The account already has as many orders awaiting payment as a shop allows (not a key's answer)."""

    title = "Too many unpaid orders"


def _lease(settings: OrdersSettings) -> timedelta:
    return timedelta(seconds=settings.placement_lease)


def _account_lock(user_id: uuid.UUID) -> int:
    return int.from_bytes(user_id.bytes[:8], "big", signed=True)


async def open_in(
    session: AsyncSession, *, settings: OrdersSettings, order_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Record a placement in the caller's transaction; refuse an account at its limit of unpaid orders.

    Placements in progress count as unpaid orders and the account's advisory lock serialises the
    count with the insert, so concurrent requests cannot together pass the limit.
    """
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_account_lock(user_id))))
    # one statement, one snapshot: an order committing in between moves from one count to the other
    unpaid = (
        sa.select(sa.func.count())
        .select_from(Order)
        .where(Order.user_id == user_id, Order.status == "pending_payment")
        .scalar_subquery()
    )
    placing = (
        sa.select(sa.func.count())
        .select_from(P)
        .where(P.user_id == user_id, P.state == PLACING, P.lease_until > sa.func.now())
        .scalar_subquery()
    )
    open_unpaid = int((await session.execute(sa.select(unpaid + placing))).scalar_one())
    limit = settings.order_max_open_unpaid
    if open_unpaid >= limit:
        raise TooManyUnpaidOrders(
            f"You have {open_unpaid} orders awaiting payment; at most {limit} may be open at once. "
            "Pay for or cancel one of them before placing another.",
            open_unpaid=open_unpaid,
            limit=limit,
        )
    await session.execute(
        sa.insert(P).values(
            order_id=order_id,
            user_id=user_id,
            state=PLACING,
            lease_until=sa.func.now() + _lease(settings),
            created_at=datetime.now(UTC),
        )
    )


async def seconds_left(session: AsyncSession, order_id: uuid.UUID) -> float | None:
    """How long the placement's owner still holds it; None when it is not live (gone, abandoned, lapsed)."""
    left = (
        await session.execute(
            sa.select(sa.extract("epoch", P.lease_until - sa.func.now())).where(
                P.order_id == order_id, P.state == PLACING, P.lease_until > sa.func.now()
            )
        )
    ).scalar_one_or_none()
    return None if left is None else float(left)


async def fence_in(session: AsyncSession, order_id: uuid.UUID, *, settings: OrdersSettings) -> bool:
    """Make a lapsed placement unable to become an order; False if its owner renewed it meanwhile."""
    await session.execute(
        sa.update(P)
        .where(P.order_id == order_id, P.state == PLACING, P.lease_until <= sa.func.now())
        .values(state=ABANDONED, lease_until=sa.func.now() + _lease(settings))
    )
    state = (await session.execute(sa.select(P.state).where(P.order_id == order_id))).scalar_one_or_none()
    return state != PLACING


async def close_in(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """In the order's transaction: the placement becomes the order. False if it was fenced (the order must not be stored).

    A caller holding an Idempotency-Key locks the key's row first: every path takes the key's row
    before the placement's, so a takeover and a commit cannot deadlock.
    """
    closed = (
        await session.execute(
            sa.delete(P).where(P.order_id == order_id, P.state == PLACING).returning(P.order_id)
        )
    ).first()
    return closed is not None


def hold(ctx: OrdersContext, order_id: uuid.UUID) -> None:
    ctx.state.placements.held.add(order_id)


def let_go(ctx: OrdersContext, order_id: uuid.UUID) -> None:
    ctx.state.placements.held.discard(order_id)


async def settle(ctx: OrdersContext, attempt: Attempt, *, free_key: bool) -> None:
    """After a failed placement: give the stock back and (``free_key``) the key, once it is safe.

    Before the order's transaction was tried, only this request could ever store the order, so the
    release goes out at once (even with orders' database down). After it was tried, its outcome may
    be unknown (a connection lost at COMMIT): the placement is fenced and checked against the orders
    table first. What cannot be done now is retried by :func:`tend_placements`.
    """
    if attempt.reserved and not attempt.committing and await upstream.release(ctx, order_id=attempt.order_id):
        attempt.reserved = False  # nothing is held under this order id any more
    try:
        await _settle(ctx, attempt, free_key=free_key)
    except Exception as exc:  # orders' database is unreachable: the next tick retries
        log.warning("placement_settle_deferred", order_id=str(attempt.order_id), error=type(exc).__name__)
        ctx.state.placements.pending[attempt.order_id] = Attempt(
            order_id=attempt.order_id,
            user_id=attempt.user_id,
            key=attempt.key if free_key else None,
            reserved=attempt.reserved,
            committing=attempt.committing,
        )
    else:
        ctx.state.placements.pending.pop(attempt.order_id, None)


async def _settle(ctx: OrdersContext, attempt: Attempt, *, free_key: bool) -> None:
    settings = ctx.settings
    assert ctx.db is not None
    k = IdempotencyKey
    key = None if attempt.key is None else (k.user_id == attempt.user_id) & (k.key == attempt.key)
    async with ctx.db.session() as session, session.begin():
        if key is not None:  # the key's row before the placement's, as everywhere (no deadlock)
            await session.execute(sa.select(k.order_id).where(key).with_for_update())
        # waits for a transaction that may still be committing the order, then fences the row
        await session.execute(
            sa.update(P)
            .where(P.order_id == attempt.order_id, P.state == PLACING)
            .values(state=ABANDONED, lease_until=sa.func.now() + _lease(settings))
        )
        stored = (await session.execute(sa.select(Order.id).where(Order.id == attempt.order_id))).first()
        if stored is None and free_key and key is not None:
            await session.execute(
                sa.delete(k).where(key, k.order_id == attempt.order_id, k.response_status.is_(None))
            )
    if stored is not None:
        log.warning("placement_committed_after_all", order_id=str(attempt.order_id))
        return
    if attempt.reserved and not await upstream.release(ctx, order_id=attempt.order_id):
        return  # the row stays abandoned: the sweeper asks catalog again
    await _forget(ctx, attempt.order_id)


async def release_abandoned(ctx: OrdersContext, order_id: uuid.UUID) -> None:
    """Best effort, right after a takeover fenced ``order_id``: its stock goes back before the retry reserves."""
    try:
        if await upstream.release(ctx, order_id=order_id):
            await _forget(ctx, order_id)
    except Exception as exc:  # the sweeper does it later
        log.warning("placement_release_deferred", order_id=str(order_id), error=type(exc).__name__)


async def _forget(ctx: OrdersContext, order_id: uuid.UUID) -> None:
    assert ctx.db is not None
    async with ctx.db.session() as session, session.begin():
        await session.execute(sa.delete(P).where(P.order_id == order_id, P.state == ABANDONED))


async def renew(ctx: OrdersContext) -> None:
    """Extend the lease of every placement this process is working on (rows being committed are skipped)."""
    held = list(ctx.state.placements.held)
    if not held:
        return
    assert ctx.db is not None
    mine = (
        sa.select(P.order_id)
        .where(P.order_id.in_(held), P.state == PLACING)
        .with_for_update(skip_locked=True)
    )
    async with ctx.db.session() as session, session.begin():
        await session.execute(
            sa.update(P)
            .where(P.order_id.in_(mine.scalar_subquery()))
            .values(lease_until=sa.func.now() + _lease(ctx.settings))
        )


async def sweep(ctx: OrdersContext) -> int:
    """Release the stock of placements whose owner is gone; safe with any number of replicas.

    ``SKIP LOCKED`` gives each row to one sweeper at a time; the fenced row's lease is pushed on,
    so another replica retries the release only if this one failed to finish it.
    """
    settings = ctx.settings
    assert ctx.db is not None
    async with ctx.db.session() as session, session.begin():
        due = list(
            (
                await session.execute(
                    sa.select(P.order_id)
                    .where(P.lease_until <= sa.func.now())
                    .order_by(P.lease_until)
                    .limit(settings.placement_sweep_batch)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not due:
            return 0
        stored = set((await session.execute(sa.select(Order.id).where(Order.id.in_(due)))).scalars())
        if stored:  # cannot happen (the order's transaction deletes its row), but never release those
            await session.execute(sa.delete(P).where(P.order_id.in_(stored)))
        orphans = [oid for oid in due if oid not in stored]
        if orphans:
            await session.execute(
                sa.update(P)
                .where(P.order_id.in_(orphans))
                .values(state=ABANDONED, lease_until=sa.func.now() + _lease(settings))
            )
    released = 0
    for order_id in orphans:
        if await upstream.release(ctx, order_id=order_id):
            await _forget(ctx, order_id)
            released += 1
    if orphans:
        log.info("orphaned_placements_released", released=released, found=len(orphans))
    return released


async def tend_placements(ctx: OrdersContext) -> None:
    """Background work of placements: renew this process's leases; finish deferred clean-ups and sweep orphans.

    Renewing runs on its own: a sweep waiting on a slow catalog must not let a live lease lapse.
    """
    tick = ctx.settings.placement_lease / 4
    await asyncio.gather(_every(tick, ctx, renew), _every(tick, ctx, _retry_pending, sweep))


async def _every(
    tick: float, ctx: OrdersContext, *steps: Callable[[OrdersContext], Awaitable[object]]
) -> None:
    while True:
        for step in steps:
            try:
                await step(ctx)
            except Exception as exc:  # a database or catalog outage: the next tick tries again
                if (
                    outages.note(
                        exc,
                        where=f"placements {step.__name__}",
                        probes=dependency_probes(db=ctx.db, redis=ctx.redis, bus=ctx.bus),
                    )
                    is None
                ):
                    log.error("placements_step_failed", step=step.__name__, error=describe(exc), exc_info=exc)
        await asyncio.sleep(tick)


async def _retry_pending(ctx: OrdersContext) -> None:
    for attempt in list(ctx.state.placements.pending.values()):
        await settle(ctx, attempt, free_key=attempt.key is not None)


def retry_after(seconds: float | None) -> str:
    return str(max(1, min(5, math.ceil(seconds or 1))))
