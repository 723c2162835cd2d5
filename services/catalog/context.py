"""The catalog's running context, typed once: its settings and the read path it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.catalog.cache import ResponseCache
from services.catalog.media import MediaStore
from services.catalog.settings import CatalogSettings


@dataclass
class CatalogState:
    # a plain asyncpg pool for the browsing hot path (see app.open_state)
    read_pool: asyncpg.Pool
    # public reads, micro-cached; every write clears it
    response_cache: ResponseCache
    # product images' object storage (disabled without MEDIA_S3_ENDPOINT)
    media: MediaStore


CatalogContext = ServiceContext[CatalogSettings, CatalogState]
Ctx = Annotated[CatalogContext, Depends(service_context)]
