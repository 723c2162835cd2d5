"""Deleting an image or a product removes its bytes (original and thumbnails) once no row names them:
in the real S3-speaking server and in a local directory, right away when storage answers, later
by the sweeper when it did not, and never while an image row still names them."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest_asyncio
import sqlalchemy as sa
from catalog_helpers import Builder, EventTap
from PIL import Image
from test_catalog_images import bucket_keys, s3

from libs.common.db import Database
from libs.common.testing import Infra, TestKeys, eventually, serve_app, settings_for
from services.catalog import images, media, trash
from services.catalog.app import create_app
from services.catalog.models import MediaDeletion
from services.catalog.settings import CatalogSettings


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


async def upload(client: httpx.AsyncClient, admin: dict[str, str], product_id: str) -> dict[str, str]:
    resp = await client.post(
        f"/admin/products/{product_id}/images", files={"file": ("a.png", png(), "image/png")}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


@pytest_asyncio.fixture
async def db(catalog_settings: CatalogSettings) -> AsyncIterator[Database]:
    database = Database(catalog_settings.db_url, pool_size=2)
    yield database
    await database.dispose()


async def deletions(db: Database, product_id: str) -> list[MediaDeletion]:
    async with db.session() as session:
        rows = await session.scalars(
            sa.select(MediaDeletion).where(MediaDeletion.prefix.startswith(f"products/{product_id}/"))
        )
        return list(rows.all())


async def test_deleting_a_product_removes_every_image_it_had_from_the_bucket(
    client: httpx.AsyncClient,
    build: Builder,
    admin: dict[str, str],
    s3_url: str,
    event_tap: EventTap,
    db: Database,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    other = await build.product(cat["id"])
    for _ in range(2):
        await upload(client, admin, p["id"])
    kept = await upload(client, admin, other["id"])
    assert len(await bucket_keys(s3_url, p["id"])) == 6  # two originals, four thumbnails

    assert (await client.delete(f"/admin/products/{p['id']}", headers=admin)).status_code == 204

    assert await bucket_keys(s3_url, p["id"]) == []
    assert await deletions(db, p["id"]) == []
    # another product's image is untouched, and the deletion names no image that is gone
    assert len(await bucket_keys(s3_url, other["id"])) == 3
    assert (await client.get(f"/media/{kept['url'].split('/shop-media/', 1)[1]}")).status_code == 200

    async def announced() -> None:
        [deleted] = event_tap.of("product.deleted", id=p["id"])
        assert deleted.data["media"] == []

    await eventually(announced)


async def test_bytes_storage_refused_to_delete_are_removed_later_by_the_sweeper(
    client: httpx.AsyncClient,
    build: Builder,
    admin: dict[str, str],
    s3_url: str,
    catalog_settings: CatalogSettings,
    db: Database,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    image = await upload(client, admin, p["id"])
    # storage unreachable at the moment of deleting (nothing listens on the endpoint)
    down = media.S3MediaStore(catalog_settings.model_copy(update={"media_s3_endpoint": "http://127.0.0.1:9"}))
    live = media.S3MediaStore(catalog_settings)
    async with db.session() as session:
        await images.delete(
            session=session, store=down, product_id=uuid.UUID(p["id"]), image_id=uuid.UUID(image["id"])
        )
    assert (await client.get(f"/products/{p['id']}")).json()["media"] == []
    assert len(await bucket_keys(s3_url, p["id"])) == 3  # still there...
    [pending] = await deletions(db, p["id"])
    assert pending.attempts == 1 and pending.last_error and pending.due_at > datetime.now(UTC)

    async with db.session() as session:  # ...not due yet: the sweeper leaves it
        assert await trash.sweep(session, live) == 0
    assert len(await bucket_keys(s3_url, p["id"])) == 3
    async with db.session() as session, session.begin():  # its time comes
        await session.execute(
            sa.update(MediaDeletion)
            .where(MediaDeletion.prefix == pending.prefix)
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with db.session() as session:  # this sweep or the app's own, whichever comes first
        await trash.sweep(session, live)
    assert await bucket_keys(s3_url, p["id"]) == []
    assert await deletions(db, p["id"]) == []


async def test_the_sweeper_removes_bytes_no_image_names_and_keeps_those_one_does(
    client: httpx.AsyncClient,
    build: Builder,
    admin: dict[str, str],
    s3_url: str,
    catalog_settings: CatalogSettings,
    db: Database,
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    image = await upload(client, admin, p["id"])
    named = image["url"].split("/shop-media/", 1)[1].rsplit("/", 1)[0]
    # an upload whose process died between storing the bytes and writing the row
    orphan = media.new_prefix(uuid.UUID(p["id"]), uuid.uuid4())
    for name in ("original", "small", "medium"):
        s3(s3_url).put_object(Bucket="shop-media", Key=f"{orphan}/{name}.png", Body=png())
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with db.session() as session, session.begin():
        await trash.condemn(session, orphan, "png", due_at=past)
        await trash.condemn(session, named, "png", due_at=past)  # wrongly condemned: a row names it

    async with db.session() as session:
        await trash.sweep(session, media.S3MediaStore(catalog_settings))

    left = await bucket_keys(s3_url, p["id"])
    assert left == sorted(f"{named}/{n}.png" for n in ("original", "small", "medium"))
    assert await deletions(db, p["id"]) == []
    assert (await client.get(f"/products/{p['id']}")).json()["media"][0]["id"] == image["id"]


async def test_a_local_media_directory_loses_the_files_of_deleted_images_and_products(
    infra: Infra, keys: TestKeys, admin: dict[str, str], tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    settings = settings_for(
        CatalogSettings,
        infra,
        keys,
        db_prefix=f"{infra.db_prefix}localmedia{run}_",
        events_queue_prefix=f"{infra.queue_prefix}localmedia{run}.",
        media_local_dir=str(tmp_path / "media"),
    )
    root = tmp_path / "media" / "products"

    def files(product_id: str) -> list[str]:
        return sorted(str(f.relative_to(root)) for f in (root / product_id).rglob("*") if f.is_file())

    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        build = Builder(client, admin)
        cat = await build.category()
        p = await build.product(cat["id"])
        first, second = [await upload(client, admin, p["id"]) for _ in range(2)]
        assert len(files(p["id"])) == 6
        assert (await client.get(first["url"])).status_code == 200

        resp = await client.delete(f"/admin/products/{p['id']}/images/{first['id']}", headers=admin)
        assert resp.status_code == 204
        assert files(p["id"]) == sorted(
            f"{p['id']}/{second['id']}/{n}.png" for n in ("original", "small", "medium")
        )

        assert (await client.delete(f"/admin/products/{p['id']}", headers=admin)).status_code == 204
        assert not (root / p["id"]).exists()  # the files and their folders
        assert (await client.get(second["url"])).status_code == 404
