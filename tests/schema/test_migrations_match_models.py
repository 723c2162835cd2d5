"""The tables each service's migrations build are the tables its models declare.

Services query through their SQLAlchemy models, while production databases are built only
by Alembic revisions; a column added to a model without a revision works in no test that
creates tables from the models, and fails in production. Every service database here is
built by its migrations, then compared with its models the way ``alembic revision
--autogenerate`` would (types included): any difference is a missing or wrong revision.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common.config import to_asyncpg_url
from libs.common.db import migrate
from libs.common.parts import PARTS
from libs.common.testing import Infra

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(env.parent.parent.name for env in (ROOT / "services").glob("*/migrations/env.py"))


def test_every_service_with_tables_is_checked() -> None:
    assert SERVICES == sorted(p.name for p in PARTS if p.database)


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_build_what_the_models_declare(infra: Infra, service: str) -> None:
    url = to_asyncpg_url(f"{infra.pg_dsn.rstrip('/')}/{infra.db_prefix}schema_{service}")
    await migrate(url, ROOT / "services" / service / "migrations")
    metadata: MetaData = importlib.import_module(f"services.{service}.models").Base.metadata

    def differences(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: the models and the migrations differ; add a revision:\n{diff}"
