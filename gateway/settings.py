"""Gateway settings: its upstreams are the registry's parts (``AUTH_URL``, ``CATALOG_URL``... override)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from libs.common.config import CommonSettings
from libs.common.parts import SERVICES


class RateLimit(BaseModel):
    """A token bucket: ``rate`` requests per second sustained, bursts of ``burst``."""

    rate: float = Field(gt=0)
    burst: int = Field(ge=1)


DEFAULT_LIMIT = RateLimit(rate=20, burst=100)


class GatewaySettings(CommonSettings):
    service_name: str = "gateway"
    port: int = 8000

    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:5173"]
    )
    max_body_bytes: int = 1024 * 1024
    # per route group, a body cap other than max_body_bytes: image uploads take up to 10 MB of file
    # plus its multipart framing (catalog's MEDIA_MAX_BYTES + 64 KiB checks the same)
    max_body_bytes_by_group: dict[str, int] = Field(
        default_factory=lambda: {"upload": 10 * 1024 * 1024 + 64 * 1024}
    )

    # per route group (routes.py); a group without its own entry shares the "default" bucket
    rate_limit_enabled: bool = True
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: {"default": DEFAULT_LIMIT, "auth": RateLimit(rate=5, burst=30)}
    )
    upstream_timeouts: dict[str, float] = Field(
        default_factory=lambda: {"default": 10.0, "payment": 30.0, "socket": 60.0, "upload": 60.0}
    )
    connect_timeout: float = 2.0
    # http1: the gateway's own keep-alive connections (gateway/http1.py); the others to compare
    upstream_client: Literal["http1", "aiohttp", "httpx"] = "http1"
    max_connections: int = 512
    # open websockets relayed at once; past it a new one is closed with 1013 (try again later).
    # Each holds one upstream connection for its whole life, so this is not a pool size.
    max_websockets: int = 10000
    openapi_cache_seconds: float = 10.0
    # the gateway is the edge: client-sent X-Forwarded-For is trusted from no one unless listed here
    forwarded_allow_ips: str = ""

    def limit_for(self, group: str) -> tuple[str, RateLimit]:
        """The bucket name and limit of a route group."""
        if group in self.rate_limits:
            return group, self.rate_limits[group]
        return "default", self.rate_limits.get("default", DEFAULT_LIMIT)

    def body_limit_for(self, group: str) -> int:
        return self.max_body_bytes_by_group.get(group, self.max_body_bytes)

    def timeout_for(self, group: str) -> float:
        return self.upstream_timeouts.get(group, self.upstream_timeouts.get("default", 10.0))

    def upstreams(self) -> dict[str, str]:
        """Base URL of every upstream service (every part of the registry but the gateway)."""
        return {p.name: self.url_of(p.name) for p in SERVICES}


@lru_cache
def get_settings() -> GatewaySettings:
    return GatewaySettings()
