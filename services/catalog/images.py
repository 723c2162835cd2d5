"""Uploaded product images: stored, ordered, linked to a variant, deleted with their bytes.

The bytes go to object storage before the row is written, and are removed again when the row
is not (a refused or failed upload leaves nothing behind); a deleted image's bytes are removed
once its row is gone, so no product ever names a missing object. What storage cannot remove at
that moment is removed later (services/catalog/trash.py).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import NotFound, ServiceUnavailable, Unprocessable
from services.catalog import media, trash
from services.catalog import service as catalog
from services.catalog.models import ProductImage, Variant
from services.catalog.schemas import ImageUpdate, image_wire


async def upload(
    *,
    session: AsyncSession,
    store: media.MediaStore,
    product_id: uuid.UUID,
    data: bytes,
    alt: str,
    max_bytes: int,
    max_pixels: int,
) -> dict[str, Any]:
    """Check, clean and store one image as the product's last; emits product.updated."""
    if len(data) > max_bytes:
        raise media.ContentTooLarge(
            f"The image is larger than {max_bytes} bytes; nothing was stored.", limit=max_bytes
        )
    async with session.begin():
        await catalog.locked_product(session, product_id)  # 404 before any work
    processed = await asyncio.to_thread(media.process, data, max_pixels=max_pixels)
    if not store.enabled:
        raise ServiceUnavailable("Image storage is not configured here (MEDIA_S3_ENDPOINT).")
    image_id = uuid.uuid4()
    prefix = media.new_prefix(product_id, image_id)
    async with session.begin():  # bytes stored but never named (a crash before the row) are swept
        await trash.condemn(
            session, prefix, processed.extension, due_at=datetime.now(UTC) + trash.UPLOAD_GRACE
        )
    try:
        await store.put(prefix, processed)
        async with session.begin():
            product = await catalog.locked_product(session, product_id)
            if not await trash.reprieve(session, prefix):
                raise ServiceUnavailable("The upload took too long to be stored; nothing was kept.")
            last = await session.scalar(
                sa.select(sa.func.max(ProductImage.position)).where(ProductImage.product_id == product_id)
            )
            image = ProductImage(
                id=image_id,
                product_id=product_id,
                base_url=store.public_base,
                prefix=prefix,
                extension=processed.extension,
                alt=alt,
                position=0 if last is None else last + 1,
                width=processed.original.width,
                height=processed.original.height,
                created_at=datetime.now(UTC),
            )
            session.add(image)
            await session.flush()
            await catalog.announce(
                session, product, [], old_stock={}, product_changed=True, now=datetime.now(UTC)
            )
    except Exception:
        # the pending deletion is still there (its transaction rolled back): the bytes go now, or
        # later by the sweeper; a cancelled request leaves them to the sweeper after the grace
        await trash.purge_now(session, store, [prefix])
        raise
    return image_wire(image)


async def _own_image(session: AsyncSession, product_id: uuid.UUID, image_id: uuid.UUID) -> ProductImage:
    image = await session.scalar(
        sa.select(ProductImage).where(ProductImage.id == image_id, ProductImage.product_id == product_id)
    )
    if image is None:
        raise NotFound("No such image of this product.")
    return image


async def update(
    *, session: AsyncSession, product_id: uuid.UUID, image_id: uuid.UUID, data: ImageUpdate
) -> dict[str, Any]:
    """Change an image's alt text, position or variant; emits product.updated."""
    async with session.begin():
        product = await catalog.locked_product(session, product_id)
        image = await _own_image(session, product_id, image_id)
        fields = data.model_dump(exclude_unset=True)
        if fields.get("variant_id") is not None:
            owner = await session.scalar(
                sa.select(Variant.product_id).where(
                    Variant.id == fields["variant_id"], Variant.retired_at.is_(None)
                )
            )
            if owner != product_id:
                raise Unprocessable(
                    "The variant is not a live variant of this product.",
                    errors=[
                        {
                            "field": "variant_id",
                            "message": "not a variant of this product",
                            "type": "not_found",
                        }
                    ],
                )
        if "variant_id" in fields and fields["variant_id"] != image.variant_id:
            # the variant's own image_id follows: the image it was shown with no longer is, the new one is
            # unless it already has one
            await session.execute(
                sa.update(Variant)
                .where(Variant.id == image.variant_id, Variant.image_id == image.id)
                .values(image_id=None)
            )
            if fields["variant_id"] is not None:
                await session.execute(
                    sa.update(Variant)
                    .where(Variant.id == fields["variant_id"], Variant.image_id.is_(None))
                    .values(image_id=image.id)
                )
        for name, value in fields.items():
            setattr(image, name, value)
        await session.flush()
        await catalog.announce(
            session, product, [], old_stock={}, product_changed=True, now=datetime.now(UTC)
        )
        return image_wire(image)


async def delete(
    *, session: AsyncSession, store: media.MediaStore, product_id: uuid.UUID, image_id: uuid.UUID
) -> None:
    """Remove an image, then its bytes (later when storage is down); emits product.updated."""
    async with session.begin():
        product = await catalog.locked_product(session, product_id)
        image = await _own_image(session, product_id, image_id)
        prefix = image.prefix
        await trash.condemn(session, prefix, image.extension)
        await session.execute(sa.update(Variant).where(Variant.image_id == image.id).values(image_id=None))
        await session.delete(image)
        await session.flush()
        await catalog.announce(
            session, product, [], old_stock={}, product_changed=True, now=datetime.now(UTC)
        )
    await trash.purge_now(session, store, [prefix])
