"""Migrations: applying them brings a database to head; applying them again changes nothing."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.engine import make_url

from libs.common.config import CommonSettings, to_asyncpg_url
from libs.common.db import Database, create_database, drop_database, migrate
from libs.common.service import create_service_app
from libs.common.testing import Infra, TestKeys, assert_problem, running_app, settings_for

ENV_PY = """\
import sqlalchemy as sa

from libs.common.db import run_migrations_online

run_migrations_online(sa.MetaData())
"""

REVISION = '''\
"""widgets"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))


def downgrade() -> None:
    op.drop_table("widgets")
'''


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text(ENV_PY)
    (folder / "versions" / "0001_widgets.py").write_text(textwrap.dedent(REVISION))
    return folder


async def test_migrating_twice_is_a_no_op(infra: Infra, migrations: Path) -> None:
    url = to_asyncpg_url(f"{infra.pg_dsn.rstrip('/')}/{infra.db_prefix}migrations")
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        await migrate(url, migrations)
        conn = await asyncpg.connect(plain)
        try:
            assert await conn.fetchval("SELECT version_num FROM alembic_version") == "0001"
            await conn.execute("INSERT INTO widgets (id, name) VALUES (1, 'kept')")
        finally:
            await conn.close()

        await migrate(url, migrations)
        await asyncio.gather(migrate(url, migrations), migrate(url, migrations))  # parallel starts

        conn = await asyncpg.connect(plain)
        try:
            assert await conn.fetch("SELECT version_num FROM alembic_version") == [("0001",)]
            assert await conn.fetchval("SELECT name FROM widgets WHERE id = 1") == "kept"
        finally:
            await conn.close()
    finally:
        await drop_database(url)


async def test_create_database_is_idempotent_and_the_database_answers(infra: Infra) -> None:
    url = to_asyncpg_url(f"{infra.pg_dsn.rstrip('/')}/{infra.db_prefix}created")
    try:
        assert await create_database(url) is True
        assert await create_database(url) is False
        db = Database(url, pool_size=1)
        try:
            await db.ping()
        finally:
            await db.dispose()
    finally:
        await drop_database(url)


def test_unsafe_database_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unsafe"):
        asyncio.run(create_database('postgresql+asyncpg://postgres@127.0.0.1/x"; DROP DATABASE y; --'))


async def test_a_database_refusing_more_connections_is_a_503_not_a_500(infra: Infra, keys: TestKeys) -> None:
    """'too many clients' (SQLSTATE 53300) is the server's state, so callers are told to retry."""
    role = f"{infra.db_prefix}limited"
    admin = await asyncpg.connect(infra.pg_dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
        limited = make_url(to_asyncpg_url(infra.pg_dsn)).set(username=role, database="postgres")
        db = Database(limited.render_as_string(hide_password=False), pool_size=1)
        router = APIRouter()

        @router.get("/rows")
        async def rows() -> dict[str, int]:
            async with db.session() as session:
                return {"n": (await session.execute(sa.text("SELECT 1"))).scalar_one()}

        settings = settings_for(CommonSettings, infra, keys, service_name="commondb", event_bus="memory")
        async with running_app(create_service_app(settings=settings, title="db", routers=[router])) as client:
            resp = await client.get("/rows")
            assert_problem(resp, 503)
            assert resp.headers["retry-after"]
        await db.dispose()
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
