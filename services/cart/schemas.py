"""Request and response shapes of the cart service (Cart wire shape of DESIGN.md section 2)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Availability = Literal["available", "insufficient_stock", "unavailable"]
MAX_QUANTITY = 99  # of one product in one cart
# strict: "2", 2.0 or true are not quantities
AddQuantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY, strict=True, description="units to add (1..99)")]
SetQuantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY, strict=True,
                                   description="units wanted (0 removes the line)")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CartItemCreate(_In):
    product_id: uuid.UUID
    quantity: AddQuantity = 1


class CartItemUpdate(_In):
    quantity: SetQuantity


class WishlistEntryCreate(_In):
    product_id: uuid.UUID


class CartItemPublic(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
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
    items: list[CartItemPublic]
    item_count: int
    subtotal: int
    currency: str


class WishlistEntryPublic(BaseModel):
    id: uuid.UUID
    product_id: uuid.UUID
    name: str
    slug: str
    image: str | None
    price: int
    currency: str
    stock: int
    availability: Literal["available", "out_of_stock", "unavailable"]
    created_at: datetime


class WishlistPublic(BaseModel):
    items: list[WishlistEntryPublic]
    count: int
