"""Settings of the payments service."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from libs.common.config import CommonSettings, ConfigurationError


class PaymentsSettings(CommonSettings):
    """Payments settings; every field is an environment variable of the same name."""

    service_name: str = "payments"
    port: int = 8005
    database_url: str | None = Field(None, validation_alias="PAYMENTS_DATABASE_URL")

    # "auto": stripe when STRIPE_SECRET_KEY is set, otherwise the in-process fake
    payment_provider: Literal["auto", "stripe", "fake"] = "auto"
    stripe_secret_key: SecretStr | None = None
    stripe_publishable_key: str = "pk_test_fake"
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_max_network_retries: int = 2
    stripe_timeout: float = 20.0

    @property
    def provider_name(self) -> Literal["stripe", "fake"]:
        if self.payment_provider == "auto":
            return "stripe" if self.stripe_secret_key is not None else "fake"
        return self.payment_provider

    @model_validator(mode="after")
    def _stripe_needs_a_key(self) -> PaymentsSettings:
        if self.provider_name == "stripe" and self.stripe_secret_key is None:
            raise ConfigurationError("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
        if self.env == "prod" and self.provider_name == "fake":
            raise ConfigurationError("the fake payment provider is refused in prod; set STRIPE_SECRET_KEY")
        return self


@lru_cache
def get_settings() -> PaymentsSettings:
    return PaymentsSettings()
