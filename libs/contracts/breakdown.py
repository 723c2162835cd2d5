"""The price breakdown (DESIGN.md section 10): one shape for pricing's quotes, the order that keeps
it and never recomputes it, and the events that carry it.

A shape several parts exchange, not one producer's: orders' contract carries it without depending
on pricing's. Amounts are integer minor units, rates basis points; a partial refund follows `lines`.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class BreakdownDiscount(BaseModel):
    promotion_id: uuid.UUID
    code: str | None
    label: str
    amount: int


class BreakdownShipping(BaseModel):
    id: uuid.UUID
    name: str
    amount: int = Field(description="the method's charge before promotions")
    discount: int = Field(description="taken off by a free-shipping promotion")
    tax: int


class BreakdownTaxLine(BaseModel):
    name: str
    rate: int = Field(description="basis points: 1900 = 19%")
    amount: int


class BreakdownLine(BaseModel):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None
    unit_price: int
    quantity: int
    subtotal: int
    discount: int = Field(description="this line's exact share of every discount")
    tax: int
    total: int


class Breakdown(BaseModel):
    """`total = subtotal - discount_total + shipping_total (+ tax_total unless prices_include_tax)`."""

    subtotal: int
    discount_total: int
    shipping_total: int
    tax_total: int
    total: int
    currency: str
    prices_include_tax: bool
    discounts: list[BreakdownDiscount]
    shipping_method: BreakdownShipping | None
    tax_lines: list[BreakdownTaxLine]
    lines: list[BreakdownLine]
