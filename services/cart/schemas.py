"""Request and response shapes of the cart service (Cart wire shape of DESIGN.md section 2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from libs.contracts.breakdown import Breakdown

# one vocabulary for cart lines and wishlist entries: out_of_stock is none left, insufficient_stock
# some but fewer than the line's quantity (cart only), unavailable not sold or not in the cart's currency
Availability = Literal["available", "insufficient_stock", "out_of_stock", "unavailable"]
MAX_QUANTITY = 99  # of one product in one cart
# strict: "2", 2.0 or true are not quantities
AddQuantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, description="units to add (1..99)")]
SetQuantity = Annotated[
    int, Field(ge=0, le=MAX_QUANTITY, strict=True, description="units wanted (0 removes the line)")
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartItemCreate(_In):
    """``variant_id``, or ``product_id`` alone for a product with one variant (several: a 422 naming the options)."""

    product_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None
    quantity: AddQuantity = 1


class CartItemUpdate(_In):
    quantity: SetQuantity


class ShippingAddress(BaseModel):
    """The one address shape (DESIGN.md section 10); pricing checks the country against ISO 3166-1."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=200)] | None = None
    line1: Annotated[str, Field(max_length=200)] | None = None
    line2: Annotated[str, Field(max_length=200)] | None = None
    city: Annotated[str, Field(max_length=100)] | None = None
    region: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2")]
    phone: Annotated[str, Field(max_length=40)] | None = None


class CheckoutQuoteCreate(_In):
    shipping_address: ShippingAddress | None = None
    address_id: uuid.UUID | None = Field(None, description="one of the caller's saved addresses, instead")
    shipping_method_id: uuid.UUID | None = None
    coupon_code: Annotated[str, Field(min_length=1, max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_address(self) -> CheckoutQuoteCreate:
        if (self.shipping_address is None) == (self.address_id is None):
            raise ValueError("give exactly one of shipping_address or address_id")
        return self


class CheckoutQuote(BaseModel):
    """Pricing's answer for the cart: the breakdown an order placed now would charge."""

    breakdown: Breakdown
    shipping_methods: list[dict[str, Any]] = Field(description="the methods that deliver to the address")
    coupon: dict[str, Any] | None = Field(description="{code, applied, reason?, detail?, shortfall?}")
    unavailable_items: list[str] = Field(description="cart lines left out (not sold now, or short of stock)")


class WishlistEntryCreate(_In):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = Field(
        None, description="one variant; none: the product's only one, or the product"
    )


class CartItemPublic(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = Field(
        description="null only for a line from before variants not yet resolved"
    )
    sku: str | None
    title: str | None = Field(description='the variant\'s title, e.g. "M / Red"')
    options: dict[str, str]
    name: str
    image: str | None
    unit_price: int
    added_unit_price: int
    currency: str
    quantity: int
    line_total: int
    stock: int
    availability: Availability


class CartPublic(BaseModel):
    """A list shape shared with the wishlist: ``items``, ``count`` (entries) and ``item_count`` (units)."""

    items: list[CartItemPublic]
    count: int
    item_count: int
    subtotal: int
    currency: str


class WishlistEntryPublic(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = Field(description="null: the product, no variant chosen")
    sku: str | None
    title: str | None
    name: str
    slug: str
    image: str | None
    price: int
    currency: str
    stock: int
    availability: Availability
    created_at: datetime


class WishlistPublic(BaseModel):
    """The cart's list shape: ``count`` entries, ``item_count`` units (one per entry)."""

    items: list[WishlistEntryPublic]
    count: int
    item_count: int
