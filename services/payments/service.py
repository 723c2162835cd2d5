"""Payment rules: checkout, verify, webhooks and refunds all meet in one reconcile keyed by the PaymentIntent id.

Provider calls never run inside a database transaction, except the refund of a
cancelled order, which holds the payment's row lock on purpose so a refund webhook
racing it waits and then sees the refund already recorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
import stripe
from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import BadRequest, Conflict, DomainError, NotFound
from libs.common.events import publish_in
from libs.common.http import call
from libs.common.logging import get_logger
from services.payments.events import payment_event, return_refunded
from services.payments.models import PayableOrder, Payment, ReturnRefund
from services.payments.provider import Intent, PaymentProvider
from services.payments.schemas import CheckoutPublic, PaymentPublic, WebhookReceipt

log = get_logger(__name__)
PAYABLE = "pending_payment"
# intent states in which a new payment method may be tried
CONFIRMABLE = frozenset({"requires_payment_method", "requires_confirmation"})
FAILED_STATES = frozenset({"requires_payment_method", "canceled"})


def _now() -> datetime:
    return datetime.now(UTC)


class OrderNotKnownYet(DomainError):
    """The order exists but its order.created has not reached payments yet: retry, do not give up."""

    status, title, slug = 425, "Order not payable yet", "order-not-payable-yet"

    def __init__(self) -> None:
        super().__init__(
            "Payments has not heard of this order yet (it was just placed); retry in a second.",
            headers={"Retry-After": "1"},
        )


async def _placed_order_exists(
    http: httpx.AsyncClient, orders_url: str, order_id: uuid.UUID, authorization: str | None
) -> bool:
    """Whether orders shows the caller this order (asked with the caller's own token).

    Asked only when payments has no record of it: a 200 means its event is on the way. When
    orders cannot answer we cannot tell, and a retry is the useful advice either way.
    """
    try:
        resp = await call(
            http,
            "GET",
            f"{orders_url}/orders/{order_id}",
            service="orders",
            retries=0,
            headers={"Authorization": authorization or ""},
        )
    except DomainError:
        return True
    return resp.status_code != 404


# --- read-model of payable orders -------------------------------------------------------------


async def record_payable_order(
    *,
    session: AsyncSession,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    amount: int,
    currency: str,
    status: str,
    at: datetime,
) -> None:
    """Remember a new order; a newer status that arrived first (out of order) is kept."""
    stmt = insert(PayableOrder).values(
        order_id=order_id,
        user_id=user_id,
        amount=amount,
        currency=currency.upper(),
        status=status,
        status_at=at,
        updated_at=_now(),
    )
    newer = stmt.excluded.status_at > PayableOrder.status_at
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PayableOrder.order_id],
            set_={
                "user_id": stmt.excluded.user_id,
                "amount": stmt.excluded.amount,
                "currency": stmt.excluded.currency,
                "status": sa.case((newer, stmt.excluded.status), else_=PayableOrder.status),
                "status_at": sa.func.greatest(stmt.excluded.status_at, PayableOrder.status_at),
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


async def record_order_status(
    *,
    session: AsyncSession,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    status: str,
    amount: int | None,
    currency: str | None,
    at: datetime,
) -> None:
    """Apply an order's status change unless a newer one is already known."""
    stmt = insert(PayableOrder).values(
        order_id=order_id,
        user_id=user_id,
        amount=amount or 0,
        currency=(currency or "USD").upper(),
        status=status,
        status_at=at,
        updated_at=_now(),
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[PayableOrder.order_id],
            set_={
                "status": stmt.excluded.status,
                "status_at": stmt.excluded.status_at,
                "updated_at": stmt.excluded.updated_at,
            },
            where=PayableOrder.status_at <= stmt.excluded.status_at,
        )
    )


# --- checkout and verify ----------------------------------------------------------------------


async def checkout(
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    user: Principal,
    order_id: uuid.UUID,
    payment_method: str | None,
    publishable_key: str,
    http: httpx.AsyncClient,
    orders_url: str,
    authorization: str | None,
) -> CheckoutPublic:
    """Create (or return) the order's PaymentIntent; with a payment method, confirm it at once.

    An order placed a moment ago may not have reached payments yet: that is a 425 with
    ``Retry-After``, told apart from an id that is nobody's (or someone else's) 404 by asking orders.
    """
    async with session.begin():
        order = await session.get(PayableOrder, order_id)
        if order is not None:
            if order.user_id != user.user_id:
                raise NotFound("No such order.")
            existing = (
                await session.execute(
                    sa.select(Payment).where(Payment.order_id == order_id, Payment.status != "canceled")
                )
            ).scalar_one_or_none()
            if existing is not None and existing.paid_at is not None:
                # a retried checkout whose answer was lost sees the same, now paid, intent
                return _checkout(existing, publishable_key)
            if order.status != PAYABLE:
                raise Conflict(
                    f"This order cannot be paid: it is {order.status}.",
                    type_="order-not-payable",
                    order_status=order.status,
                )
    if order is None:
        if await _placed_order_exists(http, orders_url, order_id, authorization):
            raise OrderNotKnownYet()
        raise NotFound("No such order.")
    if existing is None:
        # the same key for every checkout of the order: the provider answers with the same intent
        intent = await provider.create_intent(
            amount=order.amount,
            currency=order.currency,
            payment_method=payment_method,
            metadata={"order_id": str(order.order_id), "user_id": str(order.user_id)},
            idempotency_key=f"order-{order.order_id}",
        )
    elif payment_method and existing.status in CONFIRMABLE:
        intent = await provider.confirm_intent(
            existing.payment_intent_id,
            payment_method=payment_method,
            idempotency_key=f"confirm-{existing.payment_intent_id}-{uuid.uuid4()}",
        )
    else:
        return _checkout(existing, publishable_key)
    payment = await reconcile(session=session, intent=intent, provider=provider)
    if payment is None:
        raise Conflict(
            "A payment for this order is already under way; retry in a moment.",
            type_="payment-in-progress",
            headers={"Retry-After": "1"},
        )
    return _checkout(payment, publishable_key)


async def verify(
    *, session: AsyncSession, provider: PaymentProvider, user: Principal, payment_intent_id: str
) -> PaymentPublic:
    """Ask the provider for the intent's real status and reconcile it."""
    async with session.begin():
        payment = await _payment_by_intent(session, payment_intent_id)
        if payment is None or payment.user_id != user.user_id:
            raise NotFound("No payment with this payment_intent_id.")
    intent = await provider.retrieve_intent(payment_intent_id)
    if intent is None:
        raise NotFound("The payment provider does not know this payment.")
    reconciled = await reconcile(session=session, intent=intent, provider=provider)
    return to_public(reconciled or payment)


# --- the one reconcile path -------------------------------------------------------------------


async def reconcile(*, session: AsyncSession, intent: Intent, provider: PaymentProvider) -> Payment | None:
    """Apply the provider's view of an intent, in its own transaction; None for an intent not ours.

    Verify, webhooks and checkout all come through here. A payment that succeeds after its
    order was cancelled (the customer confirmed in the browser after the timeout) is refunded.
    """
    async with session.begin():
        payment = await apply_intent(session=session, intent=intent, provider_name=provider.name)
        late = (
            payment is not None
            and payment.paid_at is not None
            and payment.refunded_at is None
            and await _order_status(session, payment.order_id) == "cancelled"
        )
    if late:
        assert payment is not None
        async with session.begin():
            await refund_cancelled_order(session=session, provider=provider, order_id=payment.order_id)
        log.warning("late_payment_refunded", order_id=str(payment.order_id))
    return payment


async def _order_status(session: AsyncSession, order_id: uuid.UUID) -> str | None:
    return (
        await session.execute(sa.select(PayableOrder.status).where(PayableOrder.order_id == order_id))
    ).scalar_one_or_none()


async def apply_intent(*, session: AsyncSession, intent: Intent, provider_name: str) -> Payment | None:
    """Under the payment's row lock, apply each status transition at most once (events in the outbox)."""
    payment = await _lock_payment(session, intent, provider_name)
    if payment is None:
        return None
    if payment.paid_at is not None:
        return payment  # succeeded is final for the intent; a late failure report changes nothing
    if intent.client_secret:
        payment.client_secret = intent.client_secret
    payment.status = intent.status
    if intent.status == "succeeded":
        payment.paid_at = _now()
        payment.charge_id = intent.latest_charge
        payment.amount, payment.currency = intent.amount, intent.currency
        await publish_in(session, payment_event("payment.succeeded", payment))
        log.info("payment_succeeded", order_id=str(payment.order_id), payment_intent_id=intent.id)
    elif (
        intent.status in FAILED_STATES
        and intent.failure_key
        and intent.failure_key not in payment.failure_keys
    ):
        payment.failure_keys = [*payment.failure_keys, intent.failure_key]
        payment.failure_count += 1
        payment.last_failure_reason = intent.failure_reason
        await publish_in(session, payment_event("payment.failed", payment, reason=intent.failure_reason))
        log.info("payment_failed", order_id=str(payment.order_id), payment_intent_id=intent.id)
    return payment


async def apply_refund(
    *, session: AsyncSession, payment_intent_id: str, refund_id: str | None
) -> Payment | None:
    """Record a refund reported by the provider once, under the payment's row lock."""
    payment = (
        await session.execute(
            _locked(sa.select(Payment).where(Payment.payment_intent_id == payment_intent_id))
        )
    ).scalar_one_or_none()
    if payment is None or payment.paid_at is None or payment.refunded_at is not None:
        return payment
    partial = await session.scalar(
        sa.select(ReturnRefund.refund_id).where(ReturnRefund.payment_id == payment.id).limit(1)
    )
    if partial is not None:
        return payment  # refunded in full by returns, each already recorded and announced with its amount
    await _mark_refunded(session, payment, refund_id)
    return payment


async def refund_cancelled_order(
    *, session: AsyncSession, provider: PaymentProvider, order_id: uuid.UUID
) -> None:
    """Refund the paid payment of a cancelled order, once (runs in the consumer's transaction)."""
    # lock every intent of the order, paid or not: one being marked paid right now is waited for,
    # and a reconcile arriving after this commit sees the order cancelled and refunds it instead
    rows = (
        (
            await session.execute(
                _locked(sa.select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at))
            )
        )
        .scalars()
        .all()
    )
    payment = next((p for p in rows if p.paid_at is not None), None)
    if payment is None or payment.refunded_at is not None:
        return
    # the key makes a redelivery after a crash between the call and the commit a no-op at the provider
    refund = await provider.refund(
        intent_id=payment.payment_intent_id, amount=payment.amount, idempotency_key=f"refund-{payment.id}"
    )
    await _mark_refunded(session, payment, refund.id)


async def refund_return(
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    order_id: uuid.UUID,
    return_id: uuid.UUID,
    amount: int,
) -> None:
    """Refund a received return's share of the order's payment, once per return (consumer transaction).

    Never more than is left of the payment: the returns' amounts already stay within it (orders fixes
    them), this is the last guard before money moves."""
    rows = (
        (
            await session.execute(
                _locked(sa.select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at))
            )
        )
        .scalars()
        .all()
    )
    payment = next((p for p in rows if p.paid_at is not None), None)
    if payment is None:
        log.warning("return_without_payment", order_id=str(order_id), return_id=str(return_id))
        return  # nothing was paid through payments (an admin marked it paid): nothing to give back
    if await session.get(ReturnRefund, return_id) is not None:
        return
    before = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(ReturnRefund.amount), 0)).where(
            ReturnRefund.payment_id == payment.id
        )
    )
    left = 0 if payment.refunded_at is not None else payment.amount - int(before or 0)
    amount = min(amount, left)
    if amount <= 0:
        log.warning("return_nothing_left_to_refund", order_id=str(order_id), return_id=str(return_id))
        return
    # the key makes a redelivery after a crash between the call and the commit a no-op at the provider
    refund = await provider.refund(
        intent_id=payment.payment_intent_id, amount=amount, idempotency_key=f"return-{return_id}"
    )
    session.add(
        ReturnRefund(
            return_id=return_id,
            payment_id=payment.id,
            order_id=order_id,
            amount=amount,
            refund_id=refund.id,
            created_at=_now(),
        )
    )
    await publish_in(
        session, return_refunded(payment, amount=amount, refund_id=refund.id, return_id=return_id)
    )
    log.info("return_refunded", order_id=str(order_id), return_id=str(return_id), amount=amount)


async def _mark_refunded(session: AsyncSession, payment: Payment, refund_id: str | None) -> None:
    payment.refunded_at = _now()
    payment.refund_id = refund_id
    await publish_in(session, payment_event("payment.refunded", payment))
    log.info("payment_refunded", order_id=str(payment.order_id), payment_intent_id=payment.payment_intent_id)


async def _payment_by_intent(session: AsyncSession, payment_intent_id: str) -> Payment | None:
    return (
        await session.execute(sa.select(Payment).where(Payment.payment_intent_id == payment_intent_id))
    ).scalar_one_or_none()


async def _lock_payment(session: AsyncSession, intent: Intent, provider_name: str) -> Payment | None:
    stmt = _locked(sa.select(Payment).where(Payment.payment_intent_id == intent.id))
    payment = (await session.execute(stmt)).scalar_one_or_none()
    if payment is not None:
        return payment
    # first sight of the intent (checkout's own answer, or a webhook that beat it): its metadata says whose
    try:
        order_id = uuid.UUID(intent.metadata["order_id"])
        user_id = uuid.UUID(intent.metadata["user_id"])
    except (KeyError, ValueError):
        return None
    order = await session.get(PayableOrder, order_id)
    if order is None or order.user_id != user_id:
        return None  # not an order of this shop (or not known yet: the provider will report again)
    await session.execute(
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            payment_intent_id=intent.id,
            provider=provider_name,
            order_id=order_id,
            user_id=user_id,
            amount=intent.amount,
            currency=intent.currency,
            status=intent.status,
            client_secret=intent.client_secret,
            failure_keys=[],
            failure_count=0,
            created_at=_now(),
            updated_at=_now(),
        )
        .on_conflict_do_nothing()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def _locked(stmt: sa.Select[Payment]) -> sa.Select[Payment]:
    """Lock the rows, and refresh them: an object this session loaded before the lock may be stale."""
    return stmt.with_for_update().execution_options(populate_existing=True)


# --- webhooks ---------------------------------------------------------------------------------


async def handle_webhook(
    *,
    session: AsyncSession,
    provider: PaymentProvider,
    payload: bytes,
    signature: str | None,
    secret: SecretStr | None,
) -> WebhookReceipt:
    """Verify a Stripe webhook's signature and reconcile what it reports."""
    if secret is None:
        raise BadRequest("Webhooks are not configured on this deployment (no STRIPE_WEBHOOK_SECRET).")
    if not signature:
        raise BadRequest("The Stripe-Signature header is missing.")
    try:
        event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature, secret.get_secret_value())
        body: dict[str, Any] = event.to_dict()
        kind = str(body["type"])
        obj: dict[str, Any] = body["data"]["object"]
    except stripe.SignatureVerificationError as exc:
        raise BadRequest("The webhook signature is not valid.") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("The webhook body is not a Stripe event.") from exc
    if kind in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        try:
            intent = Intent.from_stripe(obj)
        except (KeyError, ValueError, TypeError) as exc:
            raise BadRequest("The webhook's payment intent is incomplete.") from exc
        return WebhookReceipt(
            handled=await reconcile(session=session, intent=intent, provider=provider) is not None
        )
    if kind == "charge.refunded":
        intent_id = obj.get("payment_intent")
        if not isinstance(intent_id, str) or not obj.get("refunded"):
            return WebhookReceipt(handled=False)  # partial refunds are not ours: we only refund in full
        refunds = (obj.get("refunds") or {}).get("data") or []
        refund_id = refunds[0].get("id") if refunds and isinstance(refunds[0], dict) else None
        async with session.begin():
            payment = await apply_refund(session=session, payment_intent_id=intent_id, refund_id=refund_id)
        return WebhookReceipt(handled=payment is not None)
    return WebhookReceipt(handled=False)


# --- shapes -----------------------------------------------------------------------------------


def to_public(payment: Payment) -> PaymentPublic:
    return PaymentPublic(**_fields(payment))


def _checkout(payment: Payment, publishable_key: str) -> CheckoutPublic:
    return CheckoutPublic(
        **_fields(payment), client_secret=payment.client_secret, publishable_key=publishable_key
    )


def _fields(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": payment.id,
        "order_id": payment.order_id,
        "payment_intent_id": payment.payment_intent_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "paid": payment.paid_at is not None,
        "refunded": payment.refunded_at is not None,
        "failure_reason": payment.last_failure_reason if payment.paid_at is None else None,
    }
