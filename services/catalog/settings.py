"""Settings of the catalog service."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from libs.common.config import CommonSettings

# what a multipart upload adds around the file: boundaries, part headers, the alt text (<= 500 chars)
MULTIPART_ROOM = 64 * 1024


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

    # product images live in S3-compatible object storage; no endpoint: uploads answer 503
    media_s3_endpoint: str | None = None
    media_s3_bucket: str = "shop-media"
    media_s3_region: str = "us-east-1"
    media_s3_access_key: SecretStr = SecretStr("")
    media_s3_secret_key: SecretStr = SecretStr("")
    # no S3 endpoint but a directory: images are kept there (make dev sets .data/media); S3 stays the
    # production path. Either way catalog serves them at /media/<key>, the gateway's too
    media_local_dir: str | None = None
    # where clients fetch images (a CDN, or the bucket's public URL); default <endpoint>/<bucket>, or
    # /media for a local directory (make dev: the gateway's URL + /media)
    media_public_url: str | None = None
    # largest upload accepted (bytes) and largest image (pixels) decoded: past either, nothing is stored
    media_max_bytes: int = 10 * 1024 * 1024
    media_max_pixels: int = 40_000_000
    # seconds between looks for image objects left to remove (storage was down when they were deleted)
    media_sweep_interval: float = 60.0

    @property
    def media_max_body_bytes(self) -> int:
        """The upload route's body cap: the largest image plus room for the multipart framing and alt."""
        return self.media_max_bytes + MULTIPART_ROOM


@lru_cache
def get_settings() -> CatalogSettings:
    return CatalogSettings()
