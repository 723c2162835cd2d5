"""The demo catalog: a category tree and many varied products, written in bulk, once."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import boto3
from PIL import Image
from pydantic import SecretStr

from libs.common.testing import Infra, settings_for
from services.catalog.seed import seed
from services.catalog.service import SLUG_RE
from services.catalog.settings import CatalogSettings


async def test_seed_writes_ten_thousand_varied_products_only_once(infra: Infra) -> None:
    # how fast is measured, not asserted (bench/catalog.py prints the seeding time)
    settings = settings_for(CatalogSettings, infra, db_prefix=f"{infra.db_prefix}seed_")
    assert await seed(settings, products=10_000) == 10_000
    conn = await asyncpg.connect(settings.db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        stats = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT sku) AS skus, count(DISTINCT price) AS prices, "
            "count(*) FILTER (WHERE stock = 0) AS sold_out, count(DISTINCT category_id) AS cats, "
            "count(DISTINCT attributes->>'colour') AS colours FROM products"
        )
        assert stats["n"] == stats["skus"] == 10_000
        assert (
            stats["prices"] > 100 and stats["sold_out"] > 100 and stats["cats"] > 20 and stats["colours"] > 5
        )
        depth = await conn.fetchval(
            "WITH RECURSIVE t(id, depth) AS (SELECT id, 1 FROM categories WHERE parent_id IS NULL "
            "UNION ALL SELECT c.id, t.depth + 1 FROM categories c JOIN t ON c.parent_id = t.id) SELECT max(depth) FROM t"
        )
        assert depth == 3
        # every product's page answers by its slug (the lookup takes only what slugify makes)
        slugs = [r["slug"] for r in await conn.fetch("SELECT slug FROM products")]
        assert [s for s in slugs if not SLUG_RE.match(s)] == []
        assert await seed(settings, products=10) == 0  # already seeded: left alone
        assert await seed(settings, products=10, force=True) == 10
        assert await conn.fetchval("SELECT count(*) FROM products") == 10_010
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()


async def test_seeded_products_come_in_sizes_and_colours_with_a_picture_of_each_colour(
    infra: Infra, tmp_path: Path, s3_url: str
) -> None:
    settings = settings_for(
        CatalogSettings,
        infra,
        db_prefix=f"{infra.db_prefix}seedpics_",
        media_local_dir=str(tmp_path),
        media_public_url="http://shop.test/media",
    )
    assert await seed(settings, products=300) == 300
    conn = await asyncpg.connect(settings.db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        products = await conn.fetch(
            "SELECT p.id, p.name, p.price, p.stock, p.options, p.images, c.name AS category, "
            "(SELECT min(price) FROM variants v WHERE v.product_id = p.id AND v.is_active) AS cheapest, "
            "(SELECT sum(stock) FROM variants v WHERE v.product_id = p.id) AS units "
            "FROM products p JOIN categories c ON c.id = p.category_id"
        )
        variants = await conn.fetch("SELECT product_id, sku, title, options, image_id FROM variants")
        images = await conn.fetch("SELECT id, product_id, variant_id, base_url, prefix FROM product_images")
    finally:
        await conn.close()

    shapes = {tuple(o["name"] for o in json.loads(p["options"])) for p in products}
    assert {("Size", "Colour"), ("Size",), ("Colour",), ()} <= shapes
    titles = {v["title"] for v in variants}
    assert {"M", "Default", "42"} <= titles and any(" / " in t for t in titles)
    assert len({v["sku"] for v in variants}) == len(variants) > 2 * len(products)
    for p in products:  # the first-wave fields are the variants' roll-up
        assert (p["price"], p["stock"]) == (p["cheapest"], p["units"]), p["name"]
    shoes = [p for p in products if p["category"] == "Boots"]
    assert shoes and all(json.loads(p["options"])[0]["values"][0].isdigit() for p in shoes)

    # a picture per colour a product is sold in, shown for that colour's variants; every file there
    by_id = {i["id"]: i for i in images}
    assert {i["product_id"] for i in images} == {p["id"] for p in products}
    variant_colour: dict[object, set[str]] = {}
    for v in variants:
        colour = json.loads(v["options"]).get("Colour")
        if colour is not None:
            assert v["image_id"] is not None and by_id[v["image_id"]]["product_id"] == v["product_id"]
            variant_colour.setdefault(v["image_id"], set()).add(colour)
    assert variant_colour and all(len(colours) == 1 for colours in variant_colour.values())
    for image in images:
        for name, side in (("original", 600), ("small", 200), ("medium", 600)):
            with Image.open(tmp_path / f"{image['prefix']}/{name}.jpg") as picture:
                assert (picture.format, picture.size) == ("JPEG", (side, side))
    assert all(json.loads(p["images"])[0].startswith("http://shop.test/media/products/") for p in products)

    # the same into the S3-speaking server
    in_bucket = settings.model_copy(
        update={
            "db_prefix": f"{infra.db_prefix}seeds3_",
            "media_local_dir": None,
            "media_public_url": None,
            "media_s3_endpoint": s3_url,
            "media_s3_bucket": "seed-media",
            "media_s3_access_key": SecretStr("test"),
            "media_s3_secret_key": SecretStr("test"),
        }
    )
    assert await seed(in_bucket, products=20) == 20
    conn = await asyncpg.connect(in_bucket.db_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        prefixes = {r["prefix"] for r in await conn.fetch("SELECT prefix FROM product_images")}
    finally:
        await conn.close()
    bucket = boto3.client(
        "s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    keys = {o["Key"] for o in bucket.list_objects_v2(Bucket="seed-media").get("Contents", [])}
    assert keys == {f"{p}/{n}.jpg" for p in prefixes for n in ("original", "small", "medium")}
