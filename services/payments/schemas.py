"""Request and response shapes of the payments API."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class CheckoutCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: uuid.UUID
    # a Stripe PaymentMethod id (e.g. pm_card_visa): confirms server-side at once
    payment_method: str | None = Field(None, min_length=3, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$")


class VerifyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_intent_id: str = Field(min_length=3, max_length=255, pattern=r"^pi_[A-Za-z0-9_]+$")


class PaymentPublic(BaseModel):
    """A payment attempt of an order as the owner sees it."""

    payment_id: uuid.UUID
    order_id: uuid.UUID
    payment_intent_id: str
    amount: int
    currency: str
    # the provider's PaymentIntent status: requires_payment_method, processing, succeeded, canceled...
    status: str
    paid: bool
    refunded: bool
    failure_reason: str | None = None


class CheckoutPublic(PaymentPublic):
    """Checkout wire shape of DESIGN.md: what the frontend needs to confirm with Stripe.js."""

    client_secret: str | None
    publishable_key: str


class WebhookReceipt(BaseModel):
    received: bool = True
    handled: bool
