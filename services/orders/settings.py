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

    # seconds an order may stay pending_payment before the sweeper cancels it
    order_payment_timeout: float = 1800.0
    order_sweep_interval: float = 5.0
    order_sweep_batch: int = 100
    # seconds an Idempotency-Key is remembered per user
    idempotency_ttl: int = 86400
    # a claim older than this is considered abandoned (its request died) and may be taken over
    idempotency_stale_after: float = 60.0
    # how long a request waits for a concurrent request with the same key to finish
    idempotency_wait: float = 30.0
    catalog_timeout: float = 5.0


@lru_cache
def get_settings() -> OrdersSettings:
    return OrdersSettings()  # type: ignore[call-arg]  # filled from the environment
