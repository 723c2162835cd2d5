"""Settings of the cart service (environment variables, see .env.example)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from libs.common.config import CommonSettings


class CartSettings(CommonSettings):
    """Cart settings; every field is an environment variable of the same name."""

    service_name: str = "cart"
    port: int = 8003
    database_url: str | None = Field(None, validation_alias="CART_DATABASE_URL")

    # the currency an empty cart reports (catalog's default)
    default_currency: str = "USD"
    max_cart_lines: int = 100
    max_wishlist_entries: int = 500
    # where the checkout quote is priced (default: the registry's), and how long cart waits for it
    pricing_url: str = ""
    pricing_timeout: float = 5.0


@lru_cache
def get_settings() -> CartSettings:
    return CartSettings()
