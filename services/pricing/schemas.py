"""Request and response shapes of pricing (DESIGN.md section 10, "Write shapes").

Countries are ISO 3166-1 alpha-2 and currencies ISO 4217, checked against pycountry's tables
(a pattern alone would take "XX" or "ABC"); every amount is integer minor units and every rate
basis points, so a float never reaches the money engine.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from libs.contracts.breakdown import Breakdown

T = TypeVar("T")


def _country(value: str) -> str:
    code = value.upper()
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)")
    return code


def _currency(value: str) -> str:
    code = value.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, USD)")
    return code


Country = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2), AfterValidator(_country)
]
Currency = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=3), AfterValidator(_currency)
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PostalPrefix = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_upper=True, min_length=1, max_length=20, pattern=r"^[A-Za-z0-9 -]+$"
    ),
]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=3,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    ),
]
Money = Annotated[int, Field(ge=0, le=10**12, description="integer minor units (cents)")]
PositiveMoney = Annotated[int, Field(ge=1, le=10**12, description="integer minor units (cents)")]
BasisPoints = Annotated[int, Field(ge=0, le=10_000, description="basis points: 1900 = 19%")]
Limit = Annotated[int, Field(ge=1, le=10_000_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database
        if isinstance(v, str) and "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


def _unique(values: list[Any], what: str) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")
    return values


# ---- promotions ---------------------------------------------------------------------------------


class PromotionRules(_In):
    min_subtotal: Money | None = None
    product_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    category_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    first_order_only: bool = False
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    usage_limit: Limit | None = None
    usage_limit_per_customer: Limit | None = None

    _ids = field_validator("product_ids", "category_ids")(lambda v: _unique(v, "ids"))

    @field_validator("ends_at")
    @classmethod
    def _ends_after_start(cls, v: datetime | None, info: Any) -> datetime | None:
        starts = info.data.get("starts_at")
        if v is not None and starts is not None and v <= starts:
            raise ValueError("ends_at must be after starts_at")
        return v


class PercentOff(_In):
    type: Literal["percent_off"]
    value: Annotated[int, Field(ge=1, le=10_000, description="basis points off each eligible line")]


class AmountOff(_In):
    type: Literal["amount_off"]
    value: PositiveMoney


class FreeShipping(_In):
    type: Literal["free_shipping"]


class BuyXGetY(_In):
    type: Literal["buy_x_get_y"]
    buy: Annotated[int, Field(ge=1, le=1000)]
    get: Annotated[int, Field(ge=1, le=1000)]
    value: Annotated[
        int, Field(ge=1, le=10_000, description="basis points off the `get` units; 10000 = free")
    ] = 10_000


Action = Annotated[PercentOff | AmountOff | FreeShipping | BuyXGetY, Field(discriminator="type")]


class PromotionCreate(_In):
    name: Name
    code: Code | None = Field(None, description="none: the promotion applies automatically")
    stackable: bool = False
    is_active: bool = True
    currency: Currency | None = Field(None, description="of amount_off and min_subtotal; default: the shop's")
    rules: PromotionRules = Field(default_factory=PromotionRules)
    action: Action


class PromotionReplace(PromotionCreate):
    """PUT: every field is set again."""


class PromotionUpdate(_In):
    """PATCH: the fields given change; `rules` and `action` are replaced whole when given."""

    name: Name | None = None
    code: Code | None = None
    stackable: bool | None = None
    is_active: bool | None = None
    currency: Currency | None = None
    rules: PromotionRules | None = None
    action: Action | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> PromotionUpdate:
        for name in ("name", "stackable", "is_active", "currency", "rules", "action"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PromotionPublic(BaseModel):
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


class PromotionUsagePublic(BaseModel):
    order_id: uuid.UUID
    customer_id: uuid.UUID | None
    code: str | None
    amount: int
    currency: str
    claimed_at: datetime
    released_at: datetime | None


# ---- shipping -----------------------------------------------------------------------------------


class Estimate(_In):
    min_days: Annotated[int, Field(ge=0, le=365)]
    max_days: Annotated[int, Field(ge=0, le=365)]

    @field_validator("max_days")
    @classmethod
    def _not_below_min(cls, v: int, info: Any) -> int:
        if v < info.data.get("min_days", 0):
            raise ValueError("max_days must not be below min_days")
        return v


class ShippingMethodIn(_In):
    id: uuid.UUID | None = Field(None, description="on PUT/PATCH: an existing method to keep; none adds one")
    name: Name
    amount: Money
    currency: Currency
    free_over: Money | None = Field(None, description="free when the subtotal reaches this amount")
    estimate: Estimate | None = None
    is_active: bool = True


class ShippingZoneCreate(_In):
    name: Name
    countries: list[Country] = Field(min_length=1, max_length=300)
    regions: list[Region] = Field(default_factory=list, max_length=500)
    postal_prefixes: list[PostalPrefix] = Field(default_factory=list, max_length=1000)
    methods: list[ShippingMethodIn] = Field(default_factory=list, max_length=50)

    _countries = field_validator("countries")(lambda v: _unique(v, "countries"))

    @field_validator("methods")
    @classmethod
    def _method_ids_unique(cls, v: list[ShippingMethodIn]) -> list[ShippingMethodIn]:
        _unique([m.id for m in v if m.id is not None], "method ids")
        return v


class ShippingZoneReplace(ShippingZoneCreate):
    """PUT: every field is set again; methods sent with their id are kept, others added, the rest removed."""


class ShippingZoneUpdate(_In):
    name: Name | None = None
    countries: list[Country] | None = Field(None, min_length=1, max_length=300)
    regions: list[Region] | None = Field(None, max_length=500)
    postal_prefixes: list[PostalPrefix] | None = Field(None, max_length=1000)
    methods: list[ShippingMethodIn] | None = Field(None, max_length=50)

    @model_validator(mode="after")
    def _required_not_null(self) -> ShippingZoneUpdate:
        for name in ("name", "countries", "regions", "postal_prefixes", "methods"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ShippingMethodPublic(BaseModel):
    id: uuid.UUID
    zone_id: uuid.UUID
    name: str
    amount: int
    currency: str
    free_over: int | None
    estimate: dict[str, int] | None
    is_active: bool


class ShippingZonePublic(BaseModel):
    id: uuid.UUID
    name: str
    countries: list[str]
    regions: list[str]
    postal_prefixes: list[str]
    methods: list[ShippingMethodPublic]
    version: int
    created_at: datetime
    updated_at: datetime


# ---- tax ----------------------------------------------------------------------------------------


class TaxRateCreate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    country: Country
    region: Region | None = None
    rate_bp: BasisPoints
    applies_to_shipping: bool = False


class TaxRateReplace(TaxRateCreate):
    """PUT: every field is set again."""


class TaxRateUpdate(_In):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    country: Country | None = None
    region: Region | None = None
    rate_bp: BasisPoints | None = None
    applies_to_shipping: bool | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> TaxRateUpdate:
        for name in ("name", "country", "rate_bp", "applies_to_shipping"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TaxRatePublic(BaseModel):
    id: uuid.UUID
    name: str
    country: str
    region: str | None
    rate_bp: int
    applies_to_shipping: bool
    version: int
    created_at: datetime
    updated_at: datetime


# ---- quotes -------------------------------------------------------------------------------------


class QuoteAddress(BaseModel):
    """The parts of the one address shape that pricing reads; the other fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    country: Country
    region: Region | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = None


class QuoteLine(_In):
    product_id: uuid.UUID
    variant_id: uuid.UUID | None = None
    category_id: uuid.UUID | None = Field(
        None, description="default: the product's category as catalog last said"
    )
    unit_price: Money
    quantity: Annotated[int, Field(ge=1, le=100_000)]


class QuoteRequest(_In):
    currency: Currency
    lines: list[QuoteLine] = Field(min_length=1, max_length=500)
    shipping_address: QuoteAddress
    shipping_method_id: uuid.UUID | None = Field(None, description="default: the cheapest method on offer")
    coupon_code: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=64)]
        | None
    ) = None
    customer_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = Field(
        None, description="price this order and claim its promotions (idempotent)"
    )


class CouponStatus(BaseModel):
    code: str
    applied: bool
    reason: str | None = None
    detail: str | None = None
    shortfall: int | None = None


class QuoteAnswer(BaseModel):
    breakdown: Breakdown
    shipping_methods: list[ShippingMethodPublic]
    coupon: CouponStatus | None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int
