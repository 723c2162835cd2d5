"""Request and response shapes of the catalog (wire shapes of DESIGN.md section 2)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

# the wire shapes the catalog also publishes as events live with its event contract
from libs.contracts.catalog import CategoryPublic as CategoryPublic
from libs.contracts.catalog import ImagePublic as ImagePublic
from libs.contracts.catalog import ProductPublic
from libs.contracts.catalog import StockSettings as StockSettings
from libs.contracts.catalog import VariantPublic as VariantPublic

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=120,
        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    ),
]
Sku = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$"
    ),
]
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
Description = Annotated[str, StringConstraints(max_length=10_000)]
Money = Annotated[int, Field(ge=0, le=10**12, description="integer minor units (cents)")]
Url = Annotated[AnyHttpUrl, Field()]
SortKey = Literal["relevance", "price_asc", "price_desc", "newest", "name"]
MAX_ATTRIBUTES_BYTES = 8_000
MAX_OPTIONS = 3
MAX_VARIANTS = 100
OptionName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
OptionValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Stock = Annotated[int, Field(ge=0, le=10_000_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database
        if isinstance(v, str) and "\x00" in v:
            raise ValueError("must not contain NUL characters")
        return v


class CategoryCreate(_In):
    name: Name
    slug: Slug | None = None
    description: Description = ""
    image_url: Url | None = None
    parent_id: uuid.UUID | None = None
    position: int = Field(0, ge=-1_000_000, le=1_000_000)


class CategoryReplace(CategoryCreate):
    """PUT: every field is set again; a missing slug keeps the current one."""


class CategoryUpdate(_In):
    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    image_url: Url | None = None
    parent_id: uuid.UUID | None = None
    position: int | None = Field(None, ge=-1_000_000, le=1_000_000)

    @model_validator(mode="after")
    def _required_not_null(self) -> CategoryUpdate:
        for name in ("name", "slug", "description", "position"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


def _check_attributes(v: dict[str, Any]) -> dict[str, Any]:
    import orjson

    try:
        raw = orjson.dumps(v)
    except TypeError as exc:  # e.g. an integer past 64 bits: no answer could carry it
        raise ValueError(f"attributes must be plain JSON ({exc})") from None
    if b"\\u0000" in raw:
        raise ValueError("attributes must not contain NUL characters")
    if len(raw) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"attributes must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON")
    return v


class OptionIn(_In):
    name: OptionName
    values: list[OptionValue] = Field(min_length=1, max_length=100)

    @field_validator("values")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("values must be distinct")
        return v


class VariantIn(_In):
    """A variant in a product's ``variants`` list: with ``id`` it updates that one, without it adds one."""

    id: uuid.UUID | None = None
    sku: Sku
    options: dict[OptionName, OptionValue] = Field(default_factory=dict, max_length=MAX_OPTIONS)
    price: Money
    compare_at_price: Money | None = None
    stock: Stock = 0
    is_active: bool = True

    @model_validator(mode="after")
    def _compare_at_not_below_price(self) -> VariantIn:
        if self.compare_at_price is not None and self.compare_at_price < self.price:
            raise ValueError("compare_at_price must not be lower than price")
        return self


class VariantUpdate(_In):
    """PATCH of one variant; ``options`` must stay one value of each of the product's options."""

    sku: Sku | None = None
    options: dict[OptionName, OptionValue] | None = Field(None, max_length=MAX_OPTIONS)
    price: Money | None = None
    compare_at_price: Money | None = None
    stock: Stock | None = None
    is_active: bool | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> VariantUpdate:
        for name in self.model_fields_set - {"compare_at_price"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ProductCreate(_In):
    """First-wave fields, plus ``options`` and ``variants``.

    Without ``variants`` the product gets one default variant from ``sku``, ``price``,
    ``compare_at_price`` and ``stock``. With them, product-level price and stock are derived
    (lowest active price, sum of stock) and must not be sent.
    """

    name: Name
    slug: Slug | None = None
    description: Description = ""
    price: Money | None = None
    compare_at_price: Money | None = None
    currency: Currency | None = None
    sku: Sku
    category_id: uuid.UUID
    images: list[Url] = Field(default_factory=list, max_length=20)
    stock: Stock | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True
    options: list[OptionIn] = Field(default_factory=list, max_length=MAX_OPTIONS)
    variants: list[VariantIn] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)

    _attrs = field_validator("attributes")(_check_attributes)

    @model_validator(mode="after")
    def _compare_at_not_below_price(self) -> ProductCreate:
        if (
            self.compare_at_price is not None
            and self.price is not None
            and self.compare_at_price < self.price
        ):
            raise ValueError("compare_at_price must not be lower than price")
        return self


class ProductReplace(ProductCreate):
    """PUT: every field is set again; a missing slug keeps the current one."""


class ProductUpdate(_In):
    name: Name | None = None
    slug: Slug | None = None
    description: Description | None = None
    price: Money | None = None
    compare_at_price: Money | None = None
    currency: Currency | None = None
    sku: Sku | None = None
    category_id: uuid.UUID | None = None
    images: list[Url] | None = Field(None, max_length=20)
    stock: int | None = Field(None, ge=0, le=10_000_000)
    attributes: dict[str, Any] | None = None
    is_active: bool | None = None
    options: list[OptionIn] | None = Field(None, max_length=MAX_OPTIONS)
    variants: list[VariantIn] | None = Field(None, min_length=1, max_length=MAX_VARIANTS)

    @field_validator("attributes")
    @classmethod
    def _attrs(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else _check_attributes(v)

    @model_validator(mode="after")
    def _required_not_null(self) -> ProductUpdate:
        for name in self.model_fields_set - {"compare_at_price"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ImageUpdate(_In):
    alt: Annotated[str, StringConstraints(max_length=500)] | None = None
    position: int | None = Field(None, ge=0, le=1000)
    variant_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> ImageUpdate:
        for name in self.model_fields_set - {"variant_id"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class StockChange(_In):
    delta: int = Field(ge=-10_000_000, le=10_000_000)
    variant_id: uuid.UUID | None = Field(None, description="required when the product has several variants")

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("delta must not be 0")
        return v


class ReservationItemIn(_In):
    """A line names its variant; a product alone stands for its only variant (first-wave callers)."""

    product_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None
    quantity: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _names_something(self) -> ReservationItemIn:
        if self.product_id is None and self.variant_id is None:
            raise ValueError("product_id or variant_id is required")
        return self


class ReservationCreate(_In):
    order_id: uuid.UUID
    items: list[ReservationItemIn] = Field(min_length=1, max_length=200)


class ReservedItem(BaseModel):
    product_id: uuid.UUID
    variant_id: uuid.UUID
    sku: str
    title: str
    name: str
    unit_price: int
    currency: str
    quantity: int


class ReservationPublic(BaseModel):
    order_id: uuid.UUID
    status: str
    items: list[ReservedItem]
    currency: str


PRODUCT_FIELDS = (
    "id",
    "name",
    "slug",
    "description",
    "price",
    "compare_at_price",
    "currency",
    "sku",
    "category_id",
    "images",
    "stock",
    "attributes",
    "is_active",
    "version",
    "created_at",
    "updated_at",
)
VARIANT_FIELDS = (
    "id",
    "sku",
    "title",
    "options",
    "price",
    "compare_at_price",
    "stock",
    "is_active",
    "image_id",
    "position",
)
CATEGORY_FIELDS = (
    "id",
    "name",
    "slug",
    "description",
    "image_url",
    "parent_id",
    "position",
    "created_at",
    "updated_at",
)


def variant_wire(v: Any) -> dict[str, Any]:
    """The Variant wire shape from an ORM object."""
    return {f: getattr(v, f) for f in VARIANT_FIELDS}


def image_wire(i: Any) -> dict[str, Any]:
    """The Image wire shape: URLs of the original and its thumbnails."""
    base = f"{i.base_url}/{i.prefix}"
    return {
        "id": i.id,
        "url": f"{base}/original.{i.extension}",
        "alt": i.alt,
        "position": i.position,
        "width": i.width,
        "height": i.height,
        "variant_id": i.variant_id,
        "thumbnails": {name: f"{base}/{name}.{i.extension}" for name in ("small", "medium")},
    }


def product_wire(p: Any, variants: Sequence[Any] = (), images: Sequence[Any] = ()) -> dict[str, Any]:
    """The Product wire shape from an ORM object or a result row (plus ``deleted``), with its live
    variants and its uploaded images."""
    out = {f: getattr(p, f) for f in PRODUCT_FIELDS}
    deleted_at = getattr(p, "deleted_at", None)
    out["deleted"] = deleted_at is not None
    out["deleted_at"] = deleted_at
    out["options"] = getattr(p, "options", None) or []
    out["variants"] = [variant_wire(v) for v in variants]
    out["media"] = [image_wire(i) for i in images]
    return out


def category_wire(c: Any, product_count: int) -> dict[str, Any]:
    """The Category wire shape."""
    out = {f: getattr(c, f) for f in CATEGORY_FIELDS}
    out["product_count"] = product_count
    return out


class CategoryFacet(BaseModel):
    id: uuid.UUID
    name: str
    count: int


class ValueFacet(BaseModel):
    value: str
    count: int


class PriceRange(BaseModel):
    min: int | None
    max: int | None


class Facets(BaseModel):
    """Counts over the filtered set (every page): products per category and per option value."""

    categories: list[CategoryFacet]
    options: dict[str, list[ValueFacet]]
    price: PriceRange


class ProductPage(BaseModel):
    items: list[ProductPublic]
    total: int
    page: int
    page_size: int
    facets: Facets | None = Field(None, description="with facets=true")


class StockSettingsUpdate(_In):
    low_stock_threshold: int = Field(
        ge=0, le=1_000_000, description="a live variant at or below this many units is low on stock"
    )


class LowStockVariant(BaseModel):
    """A live variant of a visible product at or below the threshold (a product without options: its one variant)."""

    product_id: uuid.UUID
    variant_id: uuid.UUID
    name: str = Field(description="the product's name")
    title: str = Field(
        description="the variant's title (its option values); empty for a product without options"
    )
    sku: str
    stock: int


class LowStockPage(BaseModel):
    items: list[LowStockVariant]
    total: int
    page: int
    page_size: int
    threshold: int = Field(description="the stock at or below which a variant is listed")
