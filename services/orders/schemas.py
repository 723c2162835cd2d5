"""Request and response shapes of the orders API (DESIGN.md section 2, Order wire shape)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    field_validator,
    model_validator,
)

# the shapes its events carry live with its event contract; the breakdown is the shared one
from libs.contracts.breakdown import Breakdown, BreakdownShipping
from libs.contracts.orders import Fulfillment, OrderItemPublic, OrderStatus, ReturnLine, ReturnStatus

# ISO 3166-1 alpha-2, officially assigned codes
ISO_COUNTRIES = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
S = OrderStatus
# the status machine: where an admin may move an order from each status
TRANSITIONS: dict[str, tuple[OrderStatus, ...]] = {
    S.pending_payment: (S.paid, S.cancelled),
    S.paid: (S.processing, S.cancelled),
    S.processing: (S.shipped, S.cancelled),
    S.shipped: (S.delivered,),
    S.delivered: (),
    S.cancelled: (),
}


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    line1: Text
    line2: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    city: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    # state, province or county: tax rates and shipping zones may depend on it
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    postal_code: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=2, max_length=12, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$"
        ),
    ]
    country: Annotated[str, Field(description="ISO 3166-1 alpha-2 code, e.g. DE")]
    phone: (
        Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()./-]{5,24}$")] | None
    ) = None

    @field_validator("country")
    @classmethod
    def _iso_country(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in ISO_COUNTRIES:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code, e.g. DE or US")
        return code


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: uuid.UUID
    variant_id: uuid.UUID | None = Field(None, description="required when the product has several variants")
    quantity: int = Field(ge=1, le=1000)


class OrderCreate(BaseModel):
    """Without ``items`` the order is placed from the caller's cart."""

    model_config = ConfigDict(extra="forbid")

    shipping_address: ShippingAddress | None = None
    address_id: uuid.UUID | None = Field(None, description="one of the caller's saved addresses, instead")
    items: list[OrderItemIn] | None = Field(None, max_length=100)
    shipping_method_id: uuid.UUID | None = Field(
        None, description="one of GET /shipping-methods for the address; default: the cheapest"
    )
    coupon_code: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=1, max_length=64)]
        | None
    ) = None

    @model_validator(mode="after")
    def _one_address(self) -> OrderCreate:
        if (self.shipping_address is None) == (self.address_id is None):
            raise ValueError("give exactly one of shipping_address or address_id")
        return self


# one line of printable text: it goes into e-mails and the console as is
TrackingText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"),
]


class StatusUpdate(BaseModel):
    """A move along the status machine; a move to ``shipped`` may say how it travels (all optional: a
    parcel handed over in person has no tracking)."""

    model_config = ConfigDict(extra="forbid")

    status: OrderStatus
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    carrier: TrackingText | None = None
    tracking_number: TrackingText | None = None
    tracking_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = Field(
        None, description="an http(s) address where the customer follows the parcel"
    )

    @field_validator("tracking_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c in value for c in " \r\n\t"):
            raise ValueError("must be an http(s) URL with a host")
        return value

    @model_validator(mode="after")
    def _tracking_only_when_shipping(self) -> StatusUpdate:
        given = [f for f in ("carrier", "tracking_number", "tracking_url") if getattr(self, f) is not None]
        if given and self.status != OrderStatus.shipped:
            raise ValueError(f"{', '.join(given)} can only be given when shipping (status shipped)")
        return self


class StatusChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    from_: OrderStatus | None = Field(serialization_alias="from", validation_alias="from_status")
    to: OrderStatus = Field(validation_alias="to_status")
    by: str
    at: datetime
    reason: str | None


class OrderPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    status: OrderStatus
    items: list[OrderItemPublic]
    subtotal: int
    total: int = Field(description="what the customer pays: breakdown.total")
    currency: str
    breakdown: Breakdown = Field(description="the price as pricing made it at placement, never recomputed")
    shipping_method: BreakdownShipping | None
    shipping_address: ShippingAddress
    status_history: list[StatusChangePublic] = Field(validation_alias="history")
    created_at: datetime
    updated_at: datetime
    payment_due_at: datetime = Field(
        description="an unpaid order is cancelled (its stock released) after this"
    )
    paid_at: datetime | None
    payment_id: uuid.UUID | None
    last_payment_error: str | None
    last_payment_error_at: datetime | None
    refunded_at: datetime | None
    refund_amount: int | None
    fulfillment: Fulfillment | None = Field(description="carrier and tracking, once shipped")


class AdminOrderPublic(OrderPublic):
    """An order as admins read it: with the moves the status machine allows from here, so a client
    offers those and never keeps its own copy of the machine."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def allowed_moves(self) -> list[OrderStatus]:
        return list(TRANSITIONS[self.status])


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class ReturnItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: int = Field(ge=0, description="the order line's position in `items` (0 = the first)")
    quantity: int = Field(ge=1, le=10_000)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ReturnCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ReturnItemIn] = Field(min_length=1, max_length=100)
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class ReturnUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["approved", "rejected", "received"] = Field(
        description="refunded is set by the refund itself (payments), never by hand"
    )


class ReturnPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    user_id: uuid.UUID
    status: ReturnStatus
    items: list[ReturnLine]
    note: str | None
    refund_amount: int | None = Field(description="minor units refunded for it; set once received")
    currency: str
    created_at: datetime
    updated_at: datetime
    received_at: datetime | None
    refunded_at: datetime | None
