"""Settings of the pricing service (environment variables, see .env.example)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from libs.common.config import CommonSettings


class PricingSettings(CommonSettings):
    """Pricing settings; every field is an environment variable of the same name."""

    service_name: str = "pricing"
    port: int = 8007
    database_url: str | None = Field(None, validation_alias="PRICING_DATABASE_URL")

    # the shop's currency (DEFAULT_CURRENCY, as cart reads it): a promotion created without one uses it
    default_currency: str = "USD"
    # PRICES_INCLUDE_TAX: whether catalog prices already include tax (the breakdown says which it was)
    prices_include_tax: bool = False
    # seconds after which a claim whose order orders never announced (order.created) is given back
    pricing_claim_confirm_timeout: float = 3600.0
    pricing_claim_sweep_interval: float = 30.0


@lru_cache
def get_settings() -> PricingSettings:
    return PricingSettings()
