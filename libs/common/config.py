"""Settings every part shares, read from the environment by pydantic-settings.

Each service subclasses :class:`CommonSettings`. Infrastructure is addressed by URLs
so that the same code runs against the embedded servers, localhost or containers.
A service's database is ``{PG_DSN}/{DB_PREFIX}{service}`` unless the service's own
``<SERVICE>_DATABASE_URL`` names one, which keeps "one database per service" true
while a single ``.env`` configures the whole system.

Where the parts reach each other comes from the registry (:mod:`libs.common.parts`):
``<PART>_URL`` when set, else ``PART_URL_TEMPLATE`` filled with the part's name and
port (``http://127.0.0.1:{port}`` on one machine, ``http://{name}:{port}`` in compose).
``<PART>_URL`` may list several replicas, comma-separated (:mod:`libs.common.replicas`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.parts import BY_NAME, DEFAULT_URL_TEMPLATE, PARTS, part
from libs.common.replicas import Replicas, split_urls

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
    # quorum (replicated, survives a broker node; RabbitMQ 3.10+, a single node too) or classic
    event_queue_type: Literal["quorum", "classic"] = "quorum"
    # seconds a queue may go unused (no consumer, not declared again) before the broker deletes it;
    # unset in a shop. Test runs set it so the durable queues of a run that was killed go away by
    # themselves instead of being recovered, as Raft groups, at every broker start
    event_queue_expires: float | None = Field(None, gt=0)
    outbox_poll_interval: float = 1.0
    # allocations the garbage collector lets pass before a young collection (Python's default,
    # 700, when unset); a part that makes many short-lived objects per unit of work sets more
    # (realtime: a broadcast is a task and a frame per socket, see libs.common.runner.serve)
    gc_young_threshold: int | None = Field(None, ge=100)

    # OpenTelemetry traces (libs/common/tracing.py): off, console (one log line per span, for
    # make dev) or otlp; unset means otlp when OTEL_EXPORTER_OTLP_ENDPOINT is set, else off
    traces: Literal["", "off", "console", "otlp"] = ""
    otel_exporter_otlp_endpoint: str = ""
    # the share of requests and events whose trace is recorded (decided once, where the trace starts)
    traces_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    jwks_url: str = ""  # empty: auth's, {AUTH_URL}/.well-known/jwks.json
    jwt_issuer: str = "shop-auth"
    jwt_audience: str = "shop"
    internal_api_token: SecretStr = SecretStr(DEV_INTERNAL_TOKEN)
    # addresses (or networks) only the gateway sends from, whose X-Forwarded-For is believed without
    # its proof header (libs/common/forwarding.py); loopback entries are ignored
    trusted_proxies: list[str] = Field(default_factory=list)
    # the largest request body, as at the gateway: reaching a service's port directly gives no more room
    max_body_bytes: int = 1024 * 1024

    # the parts this code calls by name; empty: from PART_URL_TEMPLATE (any part: url_of)
    part_url_template: str = DEFAULT_URL_TEMPLATE
    # name -> URL, what a launcher imposes (the devserver); a part's own <PART>_URL field still wins
    part_urls: dict[str, str] = Field(default_factory=dict)
    auth_url: str = ""
    catalog_url: str = ""
    cart_url: str = ""
    orders_url: str = ""
    payments_url: str = ""
    realtime_url: str = ""
    _part_urls: dict[str, str] = PrivateAttr(default_factory=dict)
    # every replica of each part (libs/common/replicas.py), the first being _part_urls'
    _replica_urls: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> CommonSettings:
        if self.env == "prod" and self.internal_api_token.get_secret_value() == DEV_INTERNAL_TOKEN:
            raise ConfigurationError("INTERNAL_API_TOKEN must be set outside dev")
        return self

    @model_validator(mode="after")
    def _derive_part_urls(self) -> CommonSettings:
        if "port" not in self.model_fields_set and self.service_name in BY_NAME:
            self.port = BY_NAME[self.service_name].port  # a part listens where the registry says
        dotenv = self._dotenv()
        for p in PARTS:
            field = f"{p.name}_url"
            declared = getattr(self, field, "") if field in type(self).model_fields else ""
            url = (
                declared
                or self.part_urls.get(p.name)
                or os.environ.get(p.url_env)
                or dotenv.get(p.url_env)
                or self.part_url_template.format(name=p.name, port=p.port)
            )
            # a comma-separated list names the part's replicas; the code calls the first, the
            # HTTP client (libs.common.http.make_client) spreads those calls over them all
            urls = split_urls(url) or [url.rstrip("/")]
            self._part_urls[p.name], self._replica_urls[p.name] = urls[0], urls
            if field in type(self).model_fields:
                setattr(self, field, self._part_urls[p.name])
        if not self.jwks_url:
            self.jwks_url = f"{self._part_urls['auth']}/.well-known/jwks.json"
        return self

    def _dotenv(self) -> dict[str, str]:
        env_file = self.model_config.get("env_file")
        if not isinstance(env_file, str | Path) or not Path(env_file).is_file():
            return {}
        return {k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None}

    def url_of(self, name: str) -> str:
        """The base URL of the part called ``name`` (no trailing slash)."""
        part(name)  # an unknown name is a KeyError that lists the known ones
        declared = getattr(self, f"{name}_url", "") if f"{name}_url" in type(self).model_fields else ""
        # a field wins: model_copy(update=...) changes it without running the validators again
        return str(declared).rstrip("/") or self._part_urls[name]

    def replica_urls(self, name: str) -> list[str]:
        """Every replica of the part called ``name``; the first is :meth:`url_of`'s."""
        primary = self.url_of(name)
        urls = self._replica_urls.get(name, [])
        return urls if urls and urls[0] == primary else [primary]

    def replicas(self) -> Replicas:
        """Every part's replicas, for the HTTP client that spreads calls over them."""
        return Replicas.from_urls({p.name: self.replica_urls(p.name) for p in PARTS})

    @property
    def trace_mode(self) -> Literal["off", "console", "otlp"]:
        """What ``traces`` asks for, with its default resolved."""
        if self.traces:
            return self.traces
        return "otlp" if self.otel_exporter_otlp_endpoint else "off"

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
