"""Events of the catalog: the Category and Product wire shapes (DESIGN.md section 2) and stock moves."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from libs.common.events.catalogue import EventCatalogue, EventType


class CategoryPublic(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    image_url: str | None
    parent_id: uuid.UUID | None
    position: int
    product_count: int
    created_at: datetime
    updated_at: datetime


class ProductPublic(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    price: int
    compare_at_price: int | None
    currency: str
    sku: str
    category_id: uuid.UUID | None
    images: list[str]
    stock: int
    attributes: dict[str, Any]
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    deleted: bool = False
    deleted_at: datetime | None = None


class StockChanged(BaseModel):
    product_id: uuid.UUID
    stock: int
    version: int


EVENTS = EventCatalogue(
    producer="catalog",
    events={
        "category.created": EventType(CategoryPublic, "A category was created."),
        "category.updated": EventType(CategoryPublic, "A category was changed; data is the whole category."),
        "category.deleted": EventType(CategoryPublic, "A category was deleted; data is its last state."),
        "product.created": EventType(ProductPublic, "A product was created."),
        "product.updated": EventType(
            ProductPublic, "A product was changed; apply it only if version is newer."
        ),
        "product.deleted": EventType(
            ProductPublic, "A product was soft-deleted (deleted: true, kept for orders)."
        ),
        "stock.changed": EventType(
            StockChanged, "A product's stock moved (reservation, release, admin change)."
        ),
    },
)
