"""Events of the orders service, and the order shapes they carry."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from libs.common.events.catalogue import EventCatalogue, EventType
from libs.contracts.breakdown import Breakdown


class OrderStatus(StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    processing = "processing"
    shipped = "shipped"
    delivered = "delivered"
    cancelled = "cancelled"


class OrderItemPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: uuid.UUID
    # the variant bought (issue 15); none on lines placed before variants
    variant_id: uuid.UUID | None = None
    sku: str | None = None
    title: str | None = Field(None, description='the variant\'s title, e.g. "M / Red"')
    name: str
    unit_price: int
    quantity: int
    line_total: int


class OrderCreated(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderItemPublic]
    subtotal: int = Field(description="integer minor units (cents)")
    total: int = Field(description="integer minor units (cents)")
    currency: str
    created_at: datetime
    # added with pricing: consumers written before it read the event without it
    breakdown: Breakdown | None = Field(None, description="shipping, tax and discounts as placed")


class OrderStatusChanged(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    order_id: uuid.UUID
    user_id: uuid.UUID
    from_: OrderStatus | None = Field(alias="from")
    to: OrderStatus
    by: str = Field(description='who moved it: a user id, "payments" or "system" (payment timeout)')
    reason: str | None
    total: int
    currency: str
    at: datetime


class Fulfillment(BaseModel):
    """How a shipped order travels: what the admin gave when shipping it (each part may be missing:
    a parcel handed over in person has no tracking number)."""

    model_config = ConfigDict(from_attributes=True)

    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = Field(None, description="http(s) only")
    shipped_at: datetime


class OrderFulfilled(BaseModel):
    order_id: uuid.UUID
    user_id: uuid.UUID
    fulfillment: Fulfillment
    by: str = Field(description="the admin who shipped it")


class ReturnStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    rejected = "rejected"
    received = "received"
    refunded = "refunded"


class ReturnLine(BaseModel):
    line_id: int = Field(description="the order line's position (0 = its first line)")
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = Field(None, description="the variant whose units come back to stock")
    name: str
    quantity: int
    reason: str
    refund_amount: int | None = Field(
        None, description="minor units this line gets back; set when the units are received"
    )


class ReturnChanged(BaseModel):
    """A return of (part of) a delivered order moved: requested, approved, rejected, received (with
    the amount payments refunds) or refunded."""

    return_id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: ReturnStatus
    items: list[ReturnLine]
    note: str | None
    refund_amount: int | None = Field(None, description="minor units; set once received")
    currency: str
    by: str
    at: datetime


EVENTS = EventCatalogue(
    producer="orders",
    events={
        "order.created": EventType(
            OrderCreated, "An order was placed and its stock reserved (pending_payment)."
        ),
        "order.status_changed": EventType(OrderStatusChanged, "An order moved from one status to another."),
        **{
            f"return.{status}": EventType(ReturnChanged, f"A return of a delivered order was {status}.")
            for status in ("requested", "approved", "rejected", "received", "refunded")
        },
        "order.fulfilled": EventType(
            OrderFulfilled,
            "An order was handed to its carrier (published with its move to shipped): carrier and tracking.",
        ),
    },
)
