"""Settings of the catalog service."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from libs.common.config import CommonSettings


class CatalogSettings(CommonSettings):
    """Catalog settings; every field is an environment variable of the same name."""

    service_name: str = "catalog"
    port: int = 8002
    database_url: str | None = Field(None, validation_alias="CATALOG_DATABASE_URL")

    # max-age of public GET responses (seconds); ETags make revalidation cheap
    catalog_cache_max_age: int = 30
    # seconds a public response is kept in-process (0 disables); see services/catalog/cache.py
    catalog_response_cache_ttl: float = 2.0
    catalog_default_currency: str = "USD"


@lru_cache
def get_settings() -> CatalogSettings:
    return CatalogSettings()
