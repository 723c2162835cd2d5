"""Settings every part shares, read from the environment by pydantic-settings.

Each service subclasses :class:`CommonSettings`. Infrastructure is addressed by URLs
so that the same code runs against the embedded servers, localhost or containers.
A service's database is ``{PG_DSN}/{DB_PREFIX}{service}`` unless the service's own
``<SERVICE>_DATABASE_URL`` names one, which keeps "one database per service" true
while a single ``.env`` configures the whole system.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_INTERNAL_TOKEN = "dev-internal-token-change-me"  # refused outside dev


class ConfigurationError(RuntimeError):
    """Raised at start-up when the settings cannot be used safely."""


class CommonSettings(BaseSettings):
    """Settings shared by every part; subclasses add their own and set ``service_name``."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_file_encoding="utf-8")

    service_name: str = "shop"
    env: Literal["dev", "test", "prod"] = "dev"
    log_level: str = "INFO"
    log_json: bool = True

    host: str = "127.0.0.1"
    port: int = 8000

    pg_dsn: str = "postgresql://postgres@127.0.0.1:5432"
    db_prefix: str = "shop_"
    database_url: str | None = None
    db_pool_size: int = 10

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "shop:"
    # connections this process keeps to Redis; past them a command waits (see libs.common.redis_client)
    redis_max_connections: int = 64

    event_bus: Literal["amqp", "memory"] = "amqp"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = "shop.events"
    events_queue_prefix: str = ""
    event_retry_delays: list[float] = Field(default_factory=lambda: [1.0, 5.0, 30.0])
    event_max_attempts: int = 4
    outbox_poll_interval: float = 1.0

    jwks_url: str = "http://127.0.0.1:8001/.well-known/jwks.json"
    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop"
    internal_api_token: SecretStr = SecretStr(DEV_INTERNAL_TOKEN)

    catalog_url: str = "http://127.0.0.1:8002"
    cart_url: str = "http://127.0.0.1:8003"
    orders_url: str = "http://127.0.0.1:8004"
    payments_url: str = "http://127.0.0.1:8005"
    auth_url: str = "http://127.0.0.1:8001"
    realtime_url: str = "http://127.0.0.1:8006"

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> CommonSettings:
        if self.env == "prod" and self.internal_api_token.get_secret_value() == DEV_INTERNAL_TOKEN:
            raise ConfigurationError("INTERNAL_API_TOKEN must be set outside dev")
        return self

    @property
    def db_name(self) -> str:
        return f"{self.db_prefix}{self.service_name}"

    @property
    def db_url(self) -> str:
        """The async SQLAlchemy URL of this service's own database."""
        url = self.database_url or f"{self.pg_dsn.rstrip('/')}/{self.db_name}"
        return to_asyncpg_url(url)


def to_asyncpg_url(url: str) -> str:
    """Normalise ``postgres://`` / ``postgresql://`` URLs to the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
