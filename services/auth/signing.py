"""RS256 signing keys: configured (PEM) or generated once and kept in the database; JWKS; minting.

The newest active key signs; every active key is published, so tokens signed before a
rotation stay valid until they expire. With SIGNING_KEY_ENCRYPTION_KEY set, stored keys are
sealed (Fernet) and keys stored before it was set are sealed at the next start, so a copy of
the database alone cannot mint tokens.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import Database
from libs.common.logging import get_logger
from services.auth.models import SigningKey
from services.auth.settings import AuthSettings

log = get_logger(__name__)
_KEY_LOCK = 727275  # advisory lock: two first starts must not both generate a key
_SEALED = "fernet:"  # prefix of a sealed key; a plain one starts with the PEM header


@dataclass
class KeyRing:
    signing_kid: str
    private: dict[str, rsa.RSAPrivateKey]
    loaded_at: float = field(default_factory=time.monotonic)
    _derived: dict[tuple[str, bytes], bytes] = field(default_factory=dict, repr=False)

    def derived_secret(self, kid: str, purpose: bytes) -> bytes:
        """A 32-byte secret for ``purpose`` derived (HKDF) from one signing key.

        For keyed hashes of what this service keeps outside its database (reset codes in
        Redis): whoever reads Redis alone has no key to test guesses against.
        """
        cached = self._derived.get((kid, purpose))
        if cached is None:
            der = self.private[kid].private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            cached = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(der)
            self._derived[(kid, purpose)] = cached
        return cached

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.private.items():
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig", alg="RS256")
            out.append(jwk)
        return {"keys": out}


def _generate() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return uuid.uuid4().hex[:16], pem


def _fernets(settings: AuthSettings) -> list[Fernet]:
    """SIGNING_KEY_ENCRYPTION_KEY's keys, the sealing one first; none when it is unset."""
    if settings.signing_key_encryption_key is None:
        return []
    try:
        return [
            Fernet(part.strip())
            for part in settings.signing_key_encryption_key.get_secret_value().split(",")
            if part.strip()
        ]
    except ValueError as exc:
        raise RuntimeError(
            "SIGNING_KEY_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated"
        ) from exc


def _sealer(settings: AuthSettings) -> MultiFernet | None:
    fernets = _fernets(settings)
    return MultiFernet(fernets) if fernets else None


def _sealed_by(fernet: Fernet, stored: str) -> bool:
    """Whether ``stored`` is sealed under ``fernet`` already (then a start leaves it as it is)."""
    if not stored.startswith(_SEALED):
        return False
    try:
        fernet.decrypt(stored.removeprefix(_SEALED).encode())
    except InvalidToken:
        return False
    return True


def _seal(pem: str, sealer: MultiFernet | None) -> str:
    return pem if sealer is None else _SEALED + sealer.encrypt(pem.encode()).decode()


def _open(kid: str, stored: str, sealer: MultiFernet | None) -> str:
    if not stored.startswith(_SEALED):
        return stored
    if sealer is None:
        raise RuntimeError(f"signing key {kid} is sealed: set SIGNING_KEY_ENCRYPTION_KEY")
    try:
        return sealer.decrypt(stored.removeprefix(_SEALED).encode()).decode()
    except InvalidToken:
        raise RuntimeError(f"SIGNING_KEY_ENCRYPTION_KEY does not open signing key {kid}") from None


def _load_pem(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA private key")
    return key


def _configured(settings: AuthSettings) -> tuple[str, rsa.RSAPrivateKey] | None:
    if settings.jwt_private_key is None:
        return None
    key = _load_pem(settings.jwt_private_key.get_secret_value())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return settings.jwt_key_id or hashlib.sha256(der).hexdigest()[:16], key


async def add_key(session: AsyncSession, settings: AuthSettings) -> str:
    """Store a newly generated key; being the newest, it signs from now on."""
    kid, pem = _generate()
    session.add(SigningKey(kid=kid, private_pem=_seal(pem, _sealer(settings)), active=True))
    await session.flush()
    return kid


async def ensure_key(db: Database, settings: AuthSettings) -> None:
    """Generate the first key at start-up when none is configured or stored; seal plain stored keys."""
    fernets = _fernets(settings)
    sealer = MultiFernet(fernets) if fernets else None
    async with db.session() as session, session.begin():
        await session.execute(sa.text(f"SELECT pg_advisory_xact_lock({_KEY_LOCK})"))
        stored = (await session.scalars(sa.select(SigningKey))).all()
        for key in stored:
            opened = _open(key.kid, key.private_pem, sealer)  # a key it cannot open stops the start here
            if sealer is not None and not _sealed_by(fernets[0], key.private_pem):
                if not key.private_pem.startswith(_SEALED):
                    log.warning("signing_key_sealed", kid=key.kid)
                key.private_pem = _seal(
                    opened, sealer
                )  # under the first encryption key; the others only open
        if settings.jwt_private_key is None and not any(key.active for key in stored):
            kid = await add_key(session, settings)
            log.warning("signing_key_generated", kid=kid)


async def rotate(db: Database, settings: AuthSettings) -> str:
    """Add a key: published at once, signing once SIGNING_KEY_CACHE_SECONDS have passed."""
    async with db.session() as session, session.begin():
        return await add_key(session, settings)


async def load(db: Database, settings: AuthSettings) -> KeyRing:
    # a new key signs only once every instance's cache has had time to publish it, so no
    # verifier meets a kid that the JWKS it fetched (from any instance) does not list yet
    grace = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, settings.signing_key_cache_seconds)
    async with db.session() as session:
        rows = (
            await session.execute(
                sa.select(
                    SigningKey.kid, SigningKey.private_pem, (SigningKey.created_at <= grace).label("ripe")
                )
                .where(SigningKey.active)
                .order_by(SigningKey.created_at, SigningKey.kid)
            )
        ).all()
    sealer = _sealer(settings)
    private = {row.kid: _load_pem(_open(row.kid, row.private_pem, sealer)) for row in rows}
    configured = _configured(settings)
    if configured is not None:
        private[configured[0]] = configured[1]
        signing = configured[0]
    elif rows:
        ripe = [row.kid for row in rows if row.ripe]
        signing = ripe[-1] if ripe else rows[0].kid  # a young deployment: its first key
    else:
        raise RuntimeError("no signing key: start the service once or configure JWT_PRIVATE_KEY")
    return KeyRing(signing_kid=signing, private=private)


class Keys:
    """A process's cached view of the key table."""

    def __init__(self, db: Database, settings: AuthSettings) -> None:
        self.db = db
        self.settings = settings
        self._ring: KeyRing | None = None

    async def ring(self) -> KeyRing:
        ring = self._ring
        if ring is None or time.monotonic() - ring.loaded_at >= self.settings.signing_key_cache_seconds:
            ring = self._ring = await load(self.db, self.settings)
        return ring

    async def mint(
        self,
        *,
        user_id: uuid.UUID,
        role: str,
        sid: uuid.UUID,
        ttl: int | None = None,
        scopes: list[str] | None = None,
    ) -> tuple[str, int]:
        """An access token and its lifetime in seconds (``scopes``: an API key's, in ``scp``)."""
        ring = await self.ring()
        now = int(time.time())
        ttl = ttl or self.settings.access_token_ttl
        claims = {
            "sub": str(user_id),
            "role": role,
            "sid": str(sid),
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + ttl,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
        }
        if scopes is not None:
            claims["scp"] = " ".join(scopes)
        token = jwt.encode(
            claims, ring.private[ring.signing_kid], algorithm="RS256", headers={"kid": ring.signing_kid}
        )
        return token, ttl
