"""Settings of the orders service."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from libs.common.config import CommonSettings


class OrdersSettings(CommonSettings):
    """Orders settings; every field is an environment variable of the same name."""

    service_name: str = "orders"
    port: int = 8004
    database_url: str | None = Field(None, validation_alias="ORDERS_DATABASE_URL")

    # days after delivery in which a customer may ask to return items (RETURN_WINDOW_DAYS)
    return_window_days: int = Field(30, ge=0)
    # seconds an order may stay pending_payment before the sweeper cancels it
    order_payment_timeout: float = 1800.0
    order_sweep_interval: float = 5.0
    order_sweep_batch: int = 100
    # what unpaid orders may hold (issue 21): units of one product in one order, units in one order,
    # orders of one account awaiting payment at once (placements in progress count too)
    order_max_line_quantity: int = Field(20, ge=1)
    order_max_units: int = Field(100, ge=1)
    order_max_open_unpaid: int = Field(5, ge=1)
    # an order of more units than this is large: it is held unpaid for the shorter time below
    order_large_units: int = Field(20, ge=1)
    order_large_payment_timeout: float = 600.0
    # seconds an Idempotency-Key is remembered per user
    idempotency_ttl: int = 86400
    # seconds a repeat waits for the answer of a request still working on the same key before it is
    # told 409 with Retry-After (well under the gateway's 10-s timeout)
    idempotency_wait: float = 2.0
    # seconds a placement (the order id being reserved) stays claimed without its owner renewing it;
    # the owner renews every quarter of it, so a dead owner's key and stock are freed within about this
    placement_lease: float = Field(10.0, gt=0)
    # how many abandoned placements one sweep releases at catalog
    placement_sweep_batch: int = 50
    catalog_timeout: float = 5.0
    # pricing makes each order's breakdown (shipping, tax, promotions) and claims its coupon uses
    pricing_url: str = ""
    pricing_timeout: float = 5.0


@lru_cache
def get_settings() -> OrdersSettings:
    return OrdersSettings()
