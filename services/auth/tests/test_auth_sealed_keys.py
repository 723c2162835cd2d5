"""Generated signing keys are sealed in the database when SIGNING_KEY_ENCRYPTION_KEY is set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import jwt
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.fernet import Fernet
from jwt.algorithms import RSAAlgorithm

from libs.common.config import ConfigurationError
from libs.common.db import Database, migrate
from libs.common.testing import Infra, settings_for
from services.auth import signing
from services.auth.app import MIGRATIONS
from services.auth.models import SigningKey
from services.auth.settings import AuthSettings

Settings = Callable[..., AuthSettings]


@pytest_asyncio.fixture
async def fresh(infra: Infra) -> AsyncIterator[tuple[Database, Settings]]:
    """An empty auth database of its own, and settings for it with any encryption key."""
    prefix = f"{infra.db_prefix}sealed{uuid.uuid4().hex[:6]}_"

    def settings(key: str | None = None) -> AuthSettings:
        return settings_for(AuthSettings, infra, db_prefix=prefix, signing_key_encryption_key=key)

    await migrate(settings().db_url, MIGRATIONS)
    db = Database(settings().db_url, pool_size=1)
    yield db, settings
    await db.dispose()


async def stored(db: Database) -> dict[str, str]:
    async with db.session() as session:
        rows = (await session.execute(sa.select(SigningKey.kid, SigningKey.private_pem))).all()
    return {kid: value for kid, value in rows}


async def minted_and_verified(db: Database, settings: AuthSettings) -> str:
    """A token minted with the stored key, checked against the published JWKS like a verifier does."""
    keys = signing.Keys(db, settings)
    token, _ = await keys.mint(user_id=uuid.uuid4(), role="user", sid=uuid.uuid4())
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in (await keys.ring()).jwks()["keys"] if k["kid"] == kid)
    jwt.decode(
        token,
        RSAAlgorithm.from_jwk(jwk),  # type: ignore[arg-type]
        algorithms=["RS256"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )
    return kid


async def test_a_generated_key_is_stored_sealed_and_signs(fresh: tuple[Database, Settings]) -> None:
    db, settings = fresh
    sealed = settings(Fernet.generate_key().decode())
    await signing.ensure_key(db, sealed)
    [(kid, value)] = (await stored(db)).items()
    assert value.startswith("fernet:") and "PRIVATE KEY" not in value
    assert await minted_and_verified(db, sealed) == kid


async def test_keys_stored_plain_are_sealed_at_the_next_start(fresh: tuple[Database, Settings]) -> None:
    db, settings = fresh
    await signing.ensure_key(db, settings())
    [(kid, plain)] = (await stored(db)).items()
    assert "BEGIN PRIVATE KEY" in plain
    sealed = settings(Fernet.generate_key().decode())
    await signing.ensure_key(db, sealed)
    assert (await stored(db))[kid].startswith("fernet:")  # the same key, no new one
    assert await minted_and_verified(db, sealed) == kid


async def test_a_sealed_key_needs_its_encryption_key_to_start(fresh: tuple[Database, Settings]) -> None:
    db, settings = fresh
    await signing.ensure_key(db, settings(Fernet.generate_key().decode()))
    with pytest.raises(RuntimeError, match="is sealed: set SIGNING_KEY_ENCRYPTION_KEY"):
        await signing.ensure_key(db, settings())
    with pytest.raises(RuntimeError, match="does not open"):
        await signing.load(db, settings(Fernet.generate_key().decode()))
    with pytest.raises(RuntimeError, match="must be Fernet keys"):
        await signing.ensure_key(db, settings("not-a-key"))


async def test_the_encryption_key_itself_can_rotate(fresh: tuple[Database, Settings]) -> None:
    db, settings = fresh
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    await signing.ensure_key(db, settings(old))
    [kid] = await stored(db)
    await signing.ensure_key(db, settings(f"{new},{old}"))  # the first seals, both open
    assert await minted_and_verified(db, settings(new)) == kid  # resealed: the old key is no longer needed


def test_production_refuses_readable_signing_keys(infra: Infra) -> None:
    def prod(key: str | None) -> AuthSettings:
        return settings_for(
            AuthSettings,
            infra,
            env="prod",
            internal_api_token="s3cret-token",
            email_backend="smtp",
            signing_key_encryption_key=key,
        )

    for unset in (None, "", "  "):
        with pytest.raises(ConfigurationError, match="SIGNING_KEY_ENCRYPTION_KEY"):
            prod(unset)
    assert prod(Fernet.generate_key().decode()).env == "prod"
