"""Payment providers behind one small interface: the real Stripe API (official SDK) or an in-process fake.

Both speak in :class:`Intent` and :class:`Refund`, plain snapshots of Stripe's objects, so
the reconcile path never knows which provider it talks to. A declined card is not an
exception: it is an intent in ``requires_payment_method`` with ``last_error`` set, as Stripe
reports it (on a confirm, Stripe answers 402 with the intent inside the error body).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import stripe
from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.db import Database
from libs.common.errors import BadRequest, ServiceUnavailable
from libs.common.logging import get_logger
from services.payments.models import FakeProviderObject
from services.payments.settings import PaymentsSettings

log = get_logger(__name__)


class UnknownIntent(BadRequest):
    """The provider has no such PaymentIntent."""


@dataclass(frozen=True)
class Intent:
    """What matters to us of a PaymentIntent."""

    id: str
    amount: int
    currency: str
    status: str
    client_secret: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    latest_charge: str | None = None
    # the failure of the last attempt, if it failed: (key unique per attempt, message for people)
    failure_key: str | None = None
    failure_reason: str | None = None

    @classmethod
    def from_stripe(cls, obj: dict[str, Any]) -> Intent:
        """Read a PaymentIntent as Stripe serialises it (API answer, error body or webhook)."""
        err = obj.get("last_payment_error") or None
        failure_key = failure_reason = None
        if err:
            # a failed attempt makes a charge of its own: its id tells attempts apart
            pm = err.get("payment_method")
            pm_id = pm.get("id") if isinstance(pm, dict) else pm
            failure_key = err.get("charge") or f"{err.get('code')}:{pm_id}:{err.get('decline_code')}"
            failure_reason = err.get("message") or err.get("code") or "The payment failed."
        charge = obj.get("latest_charge")
        if isinstance(charge, dict):
            charge = charge.get("id")
        return cls(
            id=str(obj["id"]),
            amount=int(obj["amount"]),
            currency=str(obj["currency"]).upper(),
            status=str(obj["status"]),
            client_secret=obj.get("client_secret"),
            metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
            latest_charge=charge,
            failure_key=failure_key,
            failure_reason=failure_reason,
        )


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount: int


class PaymentProvider(Protocol):
    """The few calls payments makes to a provider; every mutating call takes an idempotency key."""

    name: str

    async def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        payment_method: str | None,
        idempotency_key: str,
    ) -> Intent: ...

    async def confirm_intent(
        self, intent_id: str, *, payment_method: str, idempotency_key: str
    ) -> Intent: ...

    async def retrieve_intent(self, intent_id: str) -> Intent | None: ...

    async def refund(self, *, intent_id: str, amount: int, idempotency_key: str) -> Refund: ...

    async def close(self) -> None: ...


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, sending the form body as ``content``.

    stripe 16.1 passes the already-encoded body as ``data=``, which httpx 0.28 deprecates
    (a DeprecationWarning on every call, an error under ``-W error``).
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.pop("data", None)
        if data:
            kwargs["content"] = data
        return args, kwargs


class StripeProvider:
    """The real Stripe API through the official SDK's async methods."""

    name = "stripe"

    def __init__(self, settings: PaymentsSettings) -> None:
        assert settings.stripe_secret_key is not None
        self._http = _HTTPXClient(timeout=settings.stripe_timeout)
        self.client = stripe.StripeClient(
            settings.stripe_secret_key.get_secret_value(),
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=settings.stripe_max_network_retries,
            http_client=self._http,
        )

    async def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        payment_method: str | None,
        idempotency_key: str,
    ) -> Intent:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "metadata": metadata,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
        if payment_method:
            params.update(payment_method=payment_method, confirm=True)
        return await self._intent_call(
            self.client.v1.payment_intents.create_async(
                # stripe types params as its own TypedDict; ours is built key by key above
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        )

    async def confirm_intent(self, intent_id: str, *, payment_method: str, idempotency_key: str) -> Intent:
        return await self._intent_call(
            self.client.v1.payment_intents.confirm_async(
                intent_id,
                params={"payment_method": payment_method},
                options={"idempotency_key": idempotency_key},
            )
        )

    async def retrieve_intent(self, intent_id: str) -> Intent | None:
        try:
            return await self._intent_call(self.client.v1.payment_intents.retrieve_async(intent_id))
        except UnknownIntent:
            return None

    async def refund(self, *, intent_id: str, amount: int, idempotency_key: str) -> Refund:
        try:
            r = await self.client.v1.refunds.create_async(
                params={"payment_intent": intent_id, "amount": amount},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        d = r.to_dict()
        return Refund(id=str(d["id"]), status=str(d.get("status")), amount=int(d["amount"]))

    async def _intent_call(self, call: Any) -> Intent:
        try:
            obj = await call
        except stripe.CardError as exc:
            # Stripe reports a declined confirmation as 402 with the intent in the body
            body = exc.json_body if isinstance(exc.json_body, dict) else {}
            pi = (body.get("error") or {}).get("payment_intent")
            if isinstance(pi, dict) and pi.get("id"):
                return Intent.from_stripe(pi)
            raise BadRequest(
                exc.user_message or "The card was declined.", title="Payment refused", type_="payment-refused"
            ) from exc
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                raise UnknownIntent("The payment provider does not know this payment.") from exc
            raise BadRequest(
                f"The payment provider refused the request: {exc.user_message or 'invalid'}",
                title="Payment refused",
                type_="payment-refused",
            ) from exc
        except stripe.StripeError as exc:
            raise _unavailable(exc) from exc
        return Intent.from_stripe(obj.to_dict())

    async def close(self) -> None:
        await self._http.close_async()


def _unavailable(exc: stripe.StripeError) -> ServiceUnavailable:
    log.warning("stripe_error", error=type(exc).__name__, status=exc.http_status, request_id=exc.request_id)
    return ServiceUnavailable(
        "The payment provider cannot be reached right now; try again shortly.", headers={"Retry-After": "2"}
    )


DECLINED = "Your card was declined."


class FakeProvider:
    """Stripe test mode simulated in-process: ``pm_card_visa`` pays, ``pm_card_chargeDeclined`` is declined.

    What it knows is written to the payments database (when given one), so a restart
    of the process forgets no intent, as Stripe would not.
    """

    name = "fake"

    def __init__(self, db: Database | None = None) -> None:
        self._db = db
        # the store itself without a database; with one, only the database is read, since another
        # instance (a replica, or the process before a restart) may have changed an intent since
        self._memory: dict[tuple[str, str], Any] = {}
        self._lock = asyncio.Lock()

    async def _get(self, kind: str, key: str) -> Any:
        if self._db is None:
            return self._memory.get((kind, key))
        async with self._db.session() as session:
            row = await session.get(FakeProviderObject, (kind, key))
        return row.body if row is not None else None

    async def _put(self, kind: str, key: str, body: Any) -> None:
        if self._db is None:
            self._memory[(kind, key)] = body
            return
        async with self._db.session() as session, session.begin():
            await session.execute(
                pg_insert(FakeProviderObject)
                .values(kind=kind, key=key, body=body)
                .on_conflict_do_update(index_elements=["kind", "key"], set_={"body": body})
            )

    async def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        payment_method: str | None,
        idempotency_key: str,
    ) -> Intent:
        if payment_method:
            _check_test_method(payment_method)
        async with self._lock:
            if (known := await self._get("reply", idempotency_key)) is not None:
                return Intent.from_stripe(await self._get("intent", known["intent_id"]))
            pi_id = "pi_fake_" + secrets.token_hex(12)
            obj: dict[str, Any] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": amount,
                "currency": currency.lower(),
                "status": "requires_payment_method",
                "client_secret": f"{pi_id}_secret_{secrets.token_hex(12)}",
                "metadata": dict(metadata),
                "latest_charge": None,
                "last_payment_error": None,
            }
            if payment_method:
                self._attempt(obj, payment_method)
            await self._put("intent", pi_id, obj)
            await self._put("reply", idempotency_key, {"intent_id": pi_id})
            return Intent.from_stripe(obj)

    async def confirm_intent(self, intent_id: str, *, payment_method: str, idempotency_key: str) -> Intent:
        _check_test_method(payment_method)
        async with self._lock:
            obj = await self._get("intent", intent_id)
            if obj is None:
                raise UnknownIntent("The payment provider does not know this payment.")
            if await self._get("reply", idempotency_key) is None:
                if obj["status"] in ("requires_payment_method", "requires_confirmation"):
                    obj = dict(obj)
                    self._attempt(obj, payment_method)
                    await self._put("intent", intent_id, obj)
                await self._put("reply", idempotency_key, {"intent_id": intent_id})
            return Intent.from_stripe(obj)

    async def retrieve_intent(self, intent_id: str) -> Intent | None:
        obj = await self._get("intent", intent_id)
        return Intent.from_stripe(obj) if obj else None

    async def refund(self, *, intent_id: str, amount: int, idempotency_key: str) -> Refund:
        async with self._lock:
            known = await self._get("refund", idempotency_key)
            if known is None:
                known = {"id": "re_fake_" + secrets.token_hex(12), "status": "succeeded", "amount": amount}
                await self._put("refund", idempotency_key, known)
            return Refund(id=known["id"], status=known["status"], amount=known["amount"])

    def _attempt(self, obj: dict[str, Any], payment_method: str) -> None:
        charge = "ch_fake_" + secrets.token_hex(12)
        if "chargeDeclined" in payment_method:
            obj.update(
                status="requires_payment_method",
                latest_charge=charge,
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": DECLINED,
                    "charge": charge,
                    "payment_method": {"id": payment_method},
                },
            )
        else:
            obj.update(status="succeeded", latest_charge=charge, last_payment_error=None)

    async def close(self) -> None:
        return None


def _check_test_method(payment_method: str) -> None:
    if not payment_method.startswith("pm_card_"):
        raise BadRequest(
            f"No such PaymentMethod: '{payment_method}'. Use a test method such as pm_card_visa.",
            title="Payment refused",
            type_="payment-refused",
        )


def make_provider(settings: PaymentsSettings, db: Database | None = None) -> PaymentProvider:
    """The provider the settings ask for."""
    if settings.provider_name == "stripe":
        return StripeProvider(settings)
    return FakeProvider(db)
