"""Autogenerate an Alembic revision for one service against a scratch database.

Usage: python scripts/new_migration.py <service> "<message>"

The service's package needs ``migrations/env.py`` (see services/*/migrations) and
``models.py``; the script creates ``migrations/versions`` and the mako template on
first use, upgrades a scratch database to head, diffs it with the models, writes the
revision and drops the scratch database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402

from libs.common.config import to_asyncpg_url  # noqa: E402
from libs.common.db import alembic_config, create_database, drop_database  # noqa: E402


def main() -> None:
    service, message = sys.argv[1], sys.argv[2]
    migrations = ROOT / "services" / service / "migrations"
    (migrations / "versions").mkdir(parents=True, exist_ok=True)
    template = migrations / "script.py.mako"
    if not template.exists():
        shutil.copy(ROOT / "libs/common/migration_template/script.py.mako", template)
    dsn = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
    url = to_asyncpg_url(f"{dsn}/shopscratch_{service}_{uuid.uuid4().hex[:6]}")
    asyncio.run(create_database(url))
    try:
        cfg = alembic_config(url, migrations)
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)
    finally:
        asyncio.run(drop_database(url))


if __name__ == "__main__":
    main()
