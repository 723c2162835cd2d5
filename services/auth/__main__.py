"""``python -m services.auth [serve|migrate|create-admin|rotate-key]``."""

from __future__ import annotations

import argparse
import os

from libs.common.db import Database, migrate
from libs.common.errors import DomainError
from libs.common.runner import main
from services.auth import service, signing
from services.auth.app import MIGRATIONS, create_app, make_passwords
from services.auth.schemas import normalize_email
from services.auth.settings import AuthSettings, get_settings


def _admin_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--name", default=None)


async def create_admin(settings: AuthSettings, args: argparse.Namespace) -> None:
    """Create an admin account, or promote an existing account to admin."""
    await migrate(settings.db_url, MIGRATIONS)
    try:
        email = normalize_email(args.email)
    except ValueError as exc:
        raise SystemExit(f"create-admin: --email {exc}") from exc
    db = Database(settings.db_url, pool_size=1)
    try:
        async with db.session() as session:
            user, created = await service.make_admin(
                session=session,
                passwords=make_passwords(settings),
                email=email,
                password=args.password,
                name=args.name,
            )
    except DomainError as exc:
        raise SystemExit(f"create-admin: {exc.detail}") from exc
    finally:
        await db.dispose()
    print(f"{user.email}: {'created as admin' if created else 'promoted to admin'} ({user.id})")


async def rotate_key(settings: AuthSettings, _: argparse.Namespace) -> None:
    """Add a signing key (it signs after the cache period); older keys stay in the JWKS."""
    await migrate(settings.db_url, MIGRATIONS)
    db = Database(settings.db_url, pool_size=1)
    try:
        kid = await signing.rotate(db, settings)
    finally:
        await db.dispose()
    print(f"new signing key {kid}; published now, signing after SIGNING_KEY_CACHE_SECONDS")


if __name__ == "__main__":
    settings = get_settings()
    # uvicorn resolves X-Forwarded-For itself before the app sees the peer: trust the same proxies
    os.environ.setdefault("FORWARDED_ALLOW_IPS", ",".join(settings.trusted_proxies))
    main(
        None,
        settings=settings,
        app_factory=create_app,
        migrations=MIGRATIONS,
        commands={"create-admin": (_admin_args, create_admin), "rotate-key": (lambda p: None, rotate_key)},
    )
