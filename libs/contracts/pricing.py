"""Events of the pricing service. The breakdown its quotes answer is in ``libs.contracts.breakdown``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from libs.common.events.catalogue import EventCatalogue, EventType


class PromotionChanged(BaseModel):
    """The whole promotion as admins see it (`deleted` on promotion.deleted)."""

    id: uuid.UUID
    name: str
    code: str | None
    stackable: bool
    is_active: bool
    currency: str
    rules: dict[str, Any]
    action: dict[str, Any]
    times_used: int
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


class PromotionUsageChanged(BaseModel):
    promotion_id: uuid.UUID
    code: str | None
    order_id: uuid.UUID
    customer_id: uuid.UUID | None
    amount: int = Field(description="integer minor units (cents) the promotion took off this order")
    currency: str
    times_used: int = Field(description="live usages after this change")
    usage_limit: int | None


class ShippingZoneChanged(BaseModel):
    id: uuid.UUID
    name: str
    countries: list[str]
    regions: list[str]
    postal_prefixes: list[str]
    methods: list[dict[str, Any]]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


class TaxRateChanged(BaseModel):
    id: uuid.UUID
    name: str
    country: str
    region: str | None
    rate_bp: int = Field(description="basis points: 1900 = 19%")
    applies_to_shipping: bool
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False


EVENTS = EventCatalogue(
    producer="pricing",
    events={
        "promotion.created": EventType(PromotionChanged, "A promotion or coupon was created."),
        "promotion.updated": EventType(
            PromotionChanged, "A promotion was changed; data is the whole promotion."
        ),
        "promotion.deleted": EventType(PromotionChanged, "A promotion was deleted; its code is free again."),
        "promotion.claimed": EventType(
            PromotionUsageChanged, "An order used a promotion (claimed at placement)."
        ),
        "promotion.released": EventType(
            PromotionUsageChanged, "An unpaid order was cancelled: its use is given back."
        ),
        "shipping.zone_created": EventType(
            ShippingZoneChanged, "A shipping zone (with its methods) was created."
        ),
        "shipping.zone_updated": EventType(ShippingZoneChanged, "A shipping zone or its methods changed."),
        "shipping.zone_deleted": EventType(
            ShippingZoneChanged, "A shipping zone and its methods were deleted."
        ),
        "tax.rate_created": EventType(TaxRateChanged, "A tax rate was created."),
        "tax.rate_updated": EventType(TaxRateChanged, "A tax rate was changed."),
        "tax.rate_deleted": EventType(TaxRateChanged, "A tax rate was deleted."),
    },
)
