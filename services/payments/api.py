"""Payment routes: thin wrappers over service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from libs.common.auth import CurrentUser
from libs.common.db import SessionDep
from libs.common.errors import problem_doc
from services.payments import service as payment_service
from services.payments.context import Ctx
from services.payments.provider import PaymentProvider
from services.payments.schemas import (
    CheckoutCreate,
    CheckoutPublic,
    PaymentPublic,
    VerifyCreate,
    WebhookReceipt,
)
from services.payments.settings import PaymentsSettings

router = APIRouter(prefix="/payment", tags=["payments"])


def _provider(ctx: Ctx) -> PaymentProvider:
    return ctx.state.provider


def _settings(ctx: Ctx) -> PaymentsSettings:
    return ctx.settings


ProviderDep = Annotated[PaymentProvider, Depends(_provider)]
SettingsDep = Annotated[PaymentsSettings, Depends(_settings)]


@router.post(
    "/checkout",
    responses={
        404: problem_doc("No such order of yours"),
        409: problem_doc("The order is not awaiting payment (`order_status`), or a payment is under way"),
        425: problem_doc(
            "The order was just placed and payments has not heard of it yet: retry after `Retry-After`"
        ),
    },
)
async def checkout(
    body: CheckoutCreate,
    user: CurrentUser,
    session: SessionDep,
    provider: ProviderDep,
    settings: SettingsDep,
    request: Request,
) -> CheckoutPublic:
    """Create or return the order's PaymentIntent; with ``payment_method`` it is confirmed at once."""
    return await payment_service.checkout(
        session=session,
        provider=provider,
        user=user,
        order_id=body.order_id,
        payment_method=body.payment_method,
        publishable_key=settings.stripe_publishable_key,
        http=request.app.state.ctx.http,
        orders_url=settings.orders_url,
        authorization=request.headers.get("authorization"),
    )


@router.post("/verify")
async def verify_payment(
    body: VerifyCreate, user: CurrentUser, session: SessionDep, provider: ProviderDep
) -> PaymentPublic:
    """Ask the provider for the payment's real status; records the payment once."""
    return await payment_service.verify(
        session=session, provider=provider, user=user, payment_intent_id=body.payment_intent_id
    )


@router.post("/webhook")
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    provider: ProviderDep,
    settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceipt:
    """Stripe's webhook: public, trusted only through its signature."""
    return await payment_service.handle_webhook(
        session=session,
        provider=provider,
        payload=await request.body(),
        signature=stripe_signature,
        secret=settings.stripe_webhook_secret,
    )
