"""The demo catalog: a category tree and many varied products, written in bulk, once."""

from __future__ import annotations

import time

import asyncpg

from libs.common.testing import Infra, settings_for
from services.catalog.seed import seed
from services.catalog.service import SLUG_RE
from services.catalog.settings import CatalogSettings


async def test_seed_writes_ten_thousand_varied_products_quickly_and_only_once(infra: Infra) -> None:
    settings = settings_for(CatalogSettings, infra, db_prefix=f"{infra.db_prefix}seed_")
    started = time.monotonic()
    assert await seed(settings, products=10_000) == 10_000
    assert time.monotonic() - started < 20
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
