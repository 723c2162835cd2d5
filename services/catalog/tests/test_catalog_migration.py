"""The variants migration on a first-wave catalog: every product keeps its stock, prices and history."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic import command

from libs.common.db import _alembic_lock, alembic_config, create_database, migrate
from libs.common.testing import Infra, settings_for
from services.catalog.app import MIGRATIONS
from services.catalog.settings import CatalogSettings

FIRST_WAVE = "fc85de27522a"


async def test_first_wave_products_become_one_default_variant_each_without_loss(infra: Infra) -> None:
    settings = settings_for(
        CatalogSettings, infra, db_prefix=f"{infra.db_prefix}varmig{uuid.uuid4().hex[:6]}_"
    )
    url = settings.db_url
    await create_database(url)

    def to_first_wave() -> None:
        with _alembic_lock:
            command.upgrade(alembic_config(url, MIGRATIONS), FIRST_WAVE)

    await asyncio.to_thread(to_first_wave)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    cat, lamp, gone, order_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=30)
    try:
        await conn.execute("INSERT INTO categories (id, name, slug) VALUES ($1, 'Home', 'home')", cat)
        await conn.executemany(
            "INSERT INTO products (id, name, slug, price, compare_at_price, currency, sku, category_id, stock, "
            "is_active, deleted_at, version, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, 'USD', $6, $7, $8, $9, $10, $11, $12, $12)",
            [
                (lamp, "Lamp", "lamp", 4999, 5999, "LAMP-1", cat, 7, True, None, 5, created),
                (gone, "Old chair", "old-chair", 12000, None, "CHAIR-0", cat, 0, False, created, 9, created),
            ],
        )
        await conn.execute(
            "INSERT INTO reservations (order_id, status, currency) VALUES ($1, 'committed', 'USD')", order_id
        )
        await conn.executemany(
            "INSERT INTO reservation_lines (order_id, product_id, name, unit_price, currency, quantity) "
            "VALUES ($1, $2, $3, $4, 'USD', $5)",
            [(order_id, lamp, "Lamp", 4500, 2), (order_id, gone, "Old chair", 11000, 1)],
        )
        await migrate(url, MIGRATIONS)
        products = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, price, compare_at_price, stock, version, options FROM products"
            )
        }
        variants = {r["product_id"]: r for r in await conn.fetch("SELECT * FROM variants")}
        lines = await conn.fetch(
            "SELECT * FROM reservation_lines WHERE order_id = $1 ORDER BY unit_price", order_id
        )
    finally:
        await conn.close()
    assert len(variants) == 2
    for pid, sku, price, compare_at, stock in (
        (lamp, "LAMP-1", 4999, 5999, 7),
        (gone, "CHAIR-0", 12000, None, 0),
    ):
        v = variants[pid]
        assert (v["sku"], v["price"], v["compare_at_price"], v["stock"]) == (sku, price, compare_at, stock)
        assert v["options"] == "{}" and v["title"] == "Default" and v["retired_at"] is None
        assert v["created_at"] == created
        p = products[pid]
        assert (p["price"], p["compare_at_price"], p["stock"], p["options"]) == (
            price,
            compare_at,
            stock,
            "[]",
        )
    assert products[lamp]["version"] == 5  # history untouched: consumers' version guards still hold
    # order history: each line names its variant and keeps what was paid
    assert [
        (ln["product_id"], ln["variant_id"], ln["sku"], ln["unit_price"], ln["quantity"]) for ln in lines
    ] == [
        (lamp, variants[lamp]["id"], "LAMP-1", 4500, 2),
        (gone, variants[gone]["id"], "CHAIR-0", 11000, 1),
    ]
