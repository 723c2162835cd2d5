"""Events of the catalog: the Category and Product wire shapes (DESIGN.md sections 2 and 10) and stock moves.

Variants arrived in the second wave; every field they brought has a default, so an event
published before them (or a consumer that ignores them) still parses.
"""

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


class ProductOption(BaseModel):
    name: str
    values: list[str]


class VariantPublic(BaseModel):
    """One sellable combination of a product's option values, with its own SKU, price and stock."""

    id: uuid.UUID
    sku: str
    title: str
    options: dict[str, str]
    price: int
    compare_at_price: int | None = None
    stock: int
    is_active: bool = True
    image_id: uuid.UUID | None = None
    position: int = 0


class ImagePublic(BaseModel):
    """An uploaded image: re-encoded without metadata, with two thumbnails (``small``, ``medium``)."""

    id: uuid.UUID
    url: str
    alt: str
    position: int
    width: int
    height: int
    variant_id: uuid.UUID | None = None
    thumbnails: dict[str, str]


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
    # price is the lowest active variant's, stock the sum over active variants
    options: list[ProductOption] = []
    variants: list[VariantPublic] = []
    # uploaded images in order (``images`` keeps the first wave's plain URLs)
    media: list[ImagePublic] = []


class VariantStock(BaseModel):
    id: uuid.UUID
    sku: str
    stock: int


class StockChanged(BaseModel):
    """The product's new total ``stock``; ``variants`` names each variant that moved and its stock."""

    product_id: uuid.UUID
    stock: int
    version: int
    variants: list[VariantStock] = []


class VariantChanged(BaseModel):
    """One variant as it is now, and the product version its change made."""

    product_id: uuid.UUID
    version: int
    variant: VariantPublic


class StockSettings(BaseModel):
    """The shop's stock settings: a live variant at or below ``low_stock_threshold`` units is low."""

    low_stock_threshold: int
    version: int
    updated_at: datetime
    updated_by: uuid.UUID | None = None


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
            StockChanged,
            "A product's stock moved (reservation, release, admin change); variants says which moved.",
        ),
        "variant.created": EventType(VariantChanged, "A variant was added to a product."),
        "variant.updated": EventType(
            VariantChanged, "A variant was changed (price, stock, SKU, active flag); newer version wins."
        ),
        "variant.retired": EventType(
            VariantChanged, "A variant was retired: no longer sold, kept for order history."
        ),
        "settings.stock_updated": EventType(
            StockSettings, "An admin changed the shop's stock settings (the low-stock threshold)."
        ),
    },
)
