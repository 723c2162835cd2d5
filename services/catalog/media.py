"""Product images: read from the bytes, re-encoded clean, thumbnailed, kept in S3-compatible storage.

Nothing an uploader sends is stored as sent: the type comes from the content (Pillow), the
pixels are decoded under a pixel budget (a decompression bomb is refused before it is
expanded) and written again in the same format without metadata (EXIF with its GPS position,
ICC, text chunks), next to two thumbnails. Only then do the bytes go to object storage, so a
refused upload stores nothing.

Two stores behind one interface, chosen by settings: S3-compatible object storage (the
production path, ``MEDIA_S3_*``), and a directory (``MEDIA_LOCAL_DIR``: ``make dev`` with no
S3 configured keeps images in ``.data/media/``). Catalog serves either at ``/media/<key>``
through the gateway, so the bucket can stay private (a CDN may front that path or the bucket).
Keys are immutable (a new upload gets a new key), so what is served is cached for a year.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioboto3
from PIL import Image, UnidentifiedImageError

from libs.common.errors import DomainError, ServiceUnavailable, Unprocessable
from services.catalog.settings import CatalogSettings

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
THUMBNAILS = {"small": 200, "medium": 600}
CONTENT_TYPES = {extension: content_type for content_type, extension in FORMATS.values()}
IMMUTABLE = "public, max-age=31536000, immutable"
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# the only keys this code ever writes: anything else (a "..", a slash too many) names no image
KEY = re.compile(rf"products/{_UUID}/{_UUID}/(original|small|medium)\.(jpg|png|webp)")


class UnsupportedMediaType(DomainError):
    status, title = 415, "Unsupported media type"


class ContentTooLarge(DomainError):
    status, title = 413, "Content too large"


@dataclass(frozen=True)
class Rendition:
    name: str  # original | small | medium
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class Processed:
    format: str
    content_type: str
    extension: str
    renditions: list[Rendition]

    @property
    def original(self) -> Rendition:
        return self.renditions[0]


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, format="JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format="WEBP", quality=85)
    return out.getvalue()


def process(data: bytes, *, max_pixels: int) -> Processed:
    """Decode, clean and thumbnail one upload; 415 not an image we take, 422 broken or too many pixels."""
    try:
        with warnings.catch_warnings():
            # Pillow warns between max_pixels and twice that, and raises beyond: both refuse here
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = max_pixels
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format or ""
                if fmt not in FORMATS:
                    raise UnsupportedMediaType(
                        f"{fmt or 'This file'} is not an image type the shop takes: JPEG, PNG or WebP.",
                        type_="unsupported-media-type",
                    )
                if probe.width * probe.height > max_pixels:
                    raise Image.DecompressionBombError("too many pixels")
                probe.load()
                image = probe.copy()  # pixels only: info (EXIF, ICC, text chunks) is not written back
    except UnidentifiedImageError:
        raise UnsupportedMediaType(
            "The file is not an image (JPEG, PNG or WebP), whatever its name or type says.",
            type_="unsupported-media-type",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Unprocessable(
            f"The image has more than {max_pixels:,} pixels; nothing was stored.",
            errors=[{"field": "file", "message": "too many pixels", "type": "too_large"}],
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise Unprocessable(
            "The image cannot be read (truncated or corrupt); nothing was stored.",
            errors=[{"field": "file", "message": f"unreadable image: {exc}"[:200], "type": "value_error"}],
        ) from None
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    content_type, extension = FORMATS[fmt]
    renditions = [Rendition("original", _encode(image, fmt), image.width, image.height)]
    for name, side in THUMBNAILS.items():
        thumb = image.copy()
        thumb.thumbnail((side, side))
        renditions.append(Rendition(name, _encode(thumb, fmt), thumb.width, thumb.height))
    return Processed(fmt, content_type, extension, renditions)


@dataclass(frozen=True)
class Stored:
    data: bytes
    content_type: str
    etag: str


class MediaStore:
    """Where image bytes live: ``put`` every rendition of an upload under a prefix, ``delete`` keys."""

    enabled: bool
    public_base: str

    async def ensure_bucket(self) -> None:
        """Make the place ready (a fresh dev or test server has no bucket or directory yet)."""

    async def put(self, prefix: str, processed: Processed) -> None:
        raise NotImplementedError

    async def put_many(self, items: list[tuple[str, Processed]]) -> None:
        """Store many images (the seed's); on any failure none of them is left behind."""
        for prefix, processed in items:
            await self.put(prefix, processed)

    async def delete(self, keys: list[str]) -> None:
        raise NotImplementedError

    def local_file(self, key: str) -> Path | None:
        """The file behind a key when it is on this machine (local storage), else None."""
        return None

    async def read(self, key: str) -> Stored | None:
        """An image's bytes from storage that is not a local file (S3), None when there is none."""
        return None

    @staticmethod
    def key(prefix: str, name: str, extension: str) -> str:
        return f"{prefix}/{name}.{extension}"

    def url(self, prefix: str, name: str, extension: str) -> str:
        return f"{self.public_base}/{self.key(prefix, name, extension)}"


def open_store(settings: CatalogSettings) -> MediaStore:
    """S3 when an endpoint is configured, else a local directory when one is, else none (uploads 503)."""
    if not settings.media_s3_endpoint and settings.media_local_dir:
        return LocalMediaStore(settings)
    return S3MediaStore(settings)


class LocalMediaStore(MediaStore):
    """A directory on this machine (the embedded mode), files written whole or not at all."""

    def __init__(self, settings: CatalogSettings) -> None:
        self.root = Path(settings.media_local_dir or ".").resolve()
        self.enabled = True
        self.public_base = (settings.media_public_url or "/media").rstrip("/")

    async def ensure_bucket(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not KEY.fullmatch(key):
            raise ValueError(f"not a media key: {key!r}")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"not a media key: {key!r}")
        return path

    def _write(self, prefix: str, processed: Processed) -> None:
        for r in processed.renditions:
            path = self._path(self.key(prefix, r.name, processed.extension))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            partial.write_bytes(r.data)
            os.replace(partial, path)  # a reader sees the whole file or none

    async def put(self, prefix: str, processed: Processed) -> None:
        keys = [self.key(prefix, r.name, processed.extension) for r in processed.renditions]
        try:
            await asyncio.to_thread(self._write, prefix, processed)
        except OSError as exc:
            await self.delete(keys)
            raise ServiceUnavailable("Image storage is unavailable right now; nothing was stored.") from exc

    async def put_many(self, items: list[tuple[str, Processed]]) -> None:
        def write_all() -> None:
            for prefix, processed in items:
                self._write(prefix, processed)

        try:
            await asyncio.to_thread(write_all)
        except OSError as exc:
            await self.delete([self.key(p, r.name, x.extension) for p, x in items for r in x.renditions])
            raise ServiceUnavailable("Image storage is unavailable right now; nothing was stored.") from exc

    def _remove(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            for folder in (path.parent, path.parent.parent):  # the image's, then the product's if empty
                try:
                    folder.rmdir()
                except OSError:
                    break

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self._remove, keys)

    def local_file(self, key: str) -> Path | None:
        try:
            path = self._path(key)
        except ValueError:
            return None
        return path if path.is_file() else None


class S3MediaStore(MediaStore):
    """The bucket images live in, over the S3 API (aioboto3)."""

    def __init__(self, settings: CatalogSettings) -> None:
        self.settings = settings
        self.enabled = bool(settings.media_s3_endpoint)
        self._session = aioboto3.Session()
        base = (
            settings.media_public_url
            or f"{(settings.media_s3_endpoint or '').rstrip('/')}/{settings.media_s3_bucket}"
        )
        self.public_base = base.rstrip("/")

    def _client(self) -> Any:
        s = self.settings
        return self._session.client(
            "s3",
            endpoint_url=s.media_s3_endpoint,
            region_name=s.media_s3_region,
            aws_access_key_id=s.media_s3_access_key.get_secret_value() or None,
            aws_secret_access_key=s.media_s3_secret_key.get_secret_value() or None,
        )

    def _require(self) -> None:
        if not self.enabled:
            raise ServiceUnavailable("Image storage is not configured here (MEDIA_S3_ENDPOINT).")

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (a fresh dev or test server)."""
        self._require()
        async with self._client() as s3:
            try:
                await s3.head_bucket(Bucket=self.settings.media_s3_bucket)
            except Exception:
                await s3.create_bucket(Bucket=self.settings.media_s3_bucket)

    async def put(self, prefix: str, processed: Processed) -> None:
        """Store every rendition under ``prefix``; on any failure none is left behind."""
        await self.put_many([(prefix, processed)])

    async def put_many(self, items: list[tuple[str, Processed]]) -> None:
        """Every rendition of every image, a few dozen requests in flight on one client."""
        self._require()
        objects = [
            (self.key(prefix, r.name, processed.extension), r.data, processed.content_type)
            for prefix, processed in items
            for r in processed.renditions
        ]
        gate = asyncio.Semaphore(32)
        try:
            async with self._client() as s3:

                async def one(key: str, data: bytes, content_type: str) -> None:
                    async with gate:
                        await s3.put_object(
                            Bucket=self.settings.media_s3_bucket,
                            Key=key,
                            Body=data,
                            ContentType=content_type,
                            CacheControl=IMMUTABLE,
                        )

                await asyncio.gather(*(one(*o) for o in objects))
        except Exception as exc:
            await self.delete([key for key, _, _ in objects])
            raise ServiceUnavailable("Image storage is unavailable right now; nothing was stored.") from exc

    async def read(self, key: str) -> Stored | None:
        if not self.enabled or not KEY.fullmatch(key):
            return None
        try:
            async with self._client() as s3:
                got = await s3.get_object(Bucket=self.settings.media_s3_bucket, Key=key)
                data = await got["Body"].read()
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                return None
            raise ServiceUnavailable("Image storage is unavailable right now.") from exc
        content_type = CONTENT_TYPES[key.rsplit(".", 1)[1]]
        return Stored(data, content_type, got.get("ETag") or f'"{len(data):x}"')

    async def delete(self, keys: list[str]) -> None:
        """Remove objects (already gone is fine)."""
        if not keys or not self.enabled:
            return
        async with self._client() as s3:
            for start in range(0, len(keys), 1000):  # the most one request may name
                await s3.delete_objects(
                    Bucket=self.settings.media_s3_bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start : start + 1000]], "Quiet": True},
                )


def new_prefix(product_id: uuid.UUID, image_id: uuid.UUID) -> str:
    return f"products/{product_id}/{image_id}"
