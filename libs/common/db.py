"""Async PostgreSQL access: one engine per service, sessions, migrations.

Each service owns one database; :func:`new_metadata` gives its models a naming
convention so Alembic migrations name constraints the same way everywhere.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config  # alembic loads only where migrations run

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_alembic_lock = threading.Lock()


def new_metadata() -> MetaData:
    """A MetaData with the shared naming convention, for one service's tables."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """A service's engine and session factory.

    Sessions do not expire on commit so that objects returned by service functions
    can be serialised after their transaction ended.
    """

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        # no pre-ping: it costs round trips on every checkout; a connection found dead fails
        # that one request with a 503 and is dropped from the pool.
        # At most 2 x pool_size connections, as before, but all of them kept once opened: an
        # "overflow" connection was closed when returned, so at 16 requests in flight every
        # request past the tenth opened one (TLS attempt, type set-up queries) and closed it
        # again, a fifth of cart's CPU per GET /cart. The pool still opens them only on demand.
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=2 * pool_size,
            max_overflow=0,
            pool_pre_ping=False,
            pool_recycle=1800,
            pool_timeout=10,
            echo=echo,
            connect_args={"timeout": 5, "command_timeout": 30},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; the caller opens the transaction (``async with s.begin()``)."""
        async with self.sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


async def create_database(url: str) -> bool:
    """Create the database named by ``url`` if it is missing; True when it was created."""
    sa_url = make_url(url)
    name = sa_url.database
    assert name, "the URL must name a database"
    admin = sa_url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{_ident(name)}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database named by ``url`` (tests use this to clean up after a run)."""
    sa_url = make_url(url)
    name = sa_url.database
    assert name
    admin = sa_url.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_ident(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def _ident(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    return name


def alembic_config(url: str, migrations: Path) -> Config:
    """An Alembic config for one service's ``migrations/`` folder and database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def migrate(url: str, migrations: Path, *, create: bool = True) -> None:
    """Bring the database up to the newest revision; running it twice changes nothing."""
    from alembic import command

    if create:
        await create_database(url)
    cfg = alembic_config(url, migrations)

    def upgrade() -> None:
        # alembic's ``context`` is one module-level proxy: two upgrades at once in one
        # process (the embedded mode starts every service together) would clobber it
        with _alembic_lock:
            # "heads": two revisions written in parallel from one parent (two branches of work
            # landing in either order) both apply, instead of the service refusing to start
            command.upgrade(cfg, "heads")

    await asyncio.to_thread(upgrade)


def run_migrations_online(target_metadata: MetaData) -> None:
    """Body of a service's ``migrations/env.py``: apply migrations over an async engine.

    Alembic runs it in a worker thread (see :func:`migrate`), so it owns its event loop.
    """
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            # one migrator at a time: parallel starts of the same service must not race
            await conn.execute(text("SELECT pg_advisory_lock(727274)"))
            await conn.commit()
            try:
                await conn.run_sync(do_run)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(727274)"))
                await conn.commit()
        await engine.dispose()

    asyncio.run(run())


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: a session of the app's database for one request."""
    db: Database = request.app.state.ctx.db
    async with db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
