"""Verifying access tokens, and who the caller is.

Every service (and the gateway) verifies tokens itself, so a service reached
directly is exactly as safe as one behind the gateway. Rules (DESIGN.md section 4):
RS256 only (no ``none``, no HS/RS confusion), ``exp``/``iat``/``iss``/``aud``/``sub``/``sid``
required, keys from the auth service's JWKS cached by ``kid`` with one refresh on an
unknown ``kid``, and revocation (logout, reset, block) checked in Redis. Redis or the
JWKS being out of reach fails closed: the request is refused with 503 and Retry-After,
never let through unchecked, and a token with a key we cannot look up is not called
invalid (401) while the JWKS cannot be read: it may be signed with a key just rotated in.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from libs.common.errors import Forbidden, ServiceUnavailable, Unauthorized
from libs.common.logging import get_logger
from libs.common.unavailable import REDIS, describe, outages

ALGORITHM = "RS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "sid", "jti"]
INTERNAL_TOKEN_HEADER = "X-Internal-Token"
IDENTITY = "identity service (JWKS)"
log = get_logger(__name__)


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request."""

    user_id: uuid.UUID
    role: str
    session_id: str
    token_id: str
    issued_at: int
    expires_at: int
    token: str
    # an API key's scopes (libs/common/apikeys.py); None for a person's session
    scopes: tuple[str, ...] | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def revoked_session_key(prefix: str, session_id: str) -> str:
    return f"{prefix}auth:revoked-session:{session_id}"


def valid_after_key(prefix: str, user_id: uuid.UUID | str) -> str:
    return f"{prefix}auth:valid-after:{user_id}"


async def revoke_session(redis: Redis, prefix: str, session_id: str, *, ttl_seconds: int) -> None:
    """Make every access token of a session invalid at once (logout)."""
    await redis.set(revoked_session_key(prefix, session_id), "1", ex=max(1, ttl_seconds))


async def revoke_user_tokens(
    redis: Redis, prefix: str, user_id: uuid.UUID | str, *, ttl_seconds: int, now: float | None = None
) -> None:
    """Make every access token of a user issued until now invalid (reset, block, role change)."""
    # iat has whole seconds: tokens of this very second pass this check, so callers also
    # revoke each of the user's sessions by id (auth knows them); this mark is the backstop
    stamp = int(now if now is not None else time.time())
    await redis.set(valid_after_key(prefix, user_id), str(stamp), ex=max(1, ttl_seconds))


class TokenVerifier:
    """Verifies RS256 access tokens against a JWKS URL and the revocation marks in Redis.

    A token whose signature and claims checked out once is remembered (bounded, by its
    exact bytes and while its key is still published): later calls re-check only its
    expiry and the revocation marks, which are the parts that can change. The RSA check
    is the larger share of a signed-in request's own work, and a client repeats one
    token for its whole lifetime.
    """

    remembered = 4096

    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        redis: Redis | None,
        redis_prefix: str,
        http: httpx.AsyncClient | None = None,
        leeway: int = 0,
        min_refresh_interval: float = 5.0,
    ) -> None:
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.audience = audience
        self.redis = redis
        self.redis_prefix = redis_prefix
        self.leeway = leeway
        self._http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._jwks_unreachable = False  # the last JWKS request failed
        self._min_refresh = min_refresh_interval
        self._lock = asyncio.Lock()
        self._verified: dict[str, tuple[str, Principal]] = {}  # token -> (kid, principal)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            if not force and self._keys:
                return
            if force and time.monotonic() - self._fetched_at < self._min_refresh:
                return  # an unknown kid must not turn into a JWKS request per call
            client = self._http or httpx.AsyncClient(timeout=5)
            try:
                resp = await client.get(self.jwks_url)
                resp.raise_for_status()
                jwks = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                self._jwks_unreachable = True
                outages.down(IDENTITY, describe(exc), where=self.jwks_url)
                if not self._keys:
                    raise _identity_unreachable() from exc
                return
            finally:
                if self._http is None:
                    await client.aclose()
            keys = {}
            for jwk in jwks.get("keys", []):
                if jwk.get("kty") == "RSA" and jwk.get("kid") and jwk.get("use", "sig") == "sig":
                    keys[jwk["kid"]] = jwt.PyJWK(jwk, algorithm=ALGORITHM).key
            self._keys = keys
            self._fetched_at = time.monotonic()
            self._jwks_unreachable = False
            outages.up(IDENTITY)

    async def _key_for(self, kid: str) -> Any:
        if not self._keys:
            await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        if kid not in self._keys:
            if self._jwks_unreachable:
                raise _identity_unreachable()
            raise Unauthorized("The token was signed with an unknown key.")
        return self._keys[kid]

    async def verify(self, token: str) -> Principal:
        """The caller behind ``token``; raises ``Unauthorized`` for anything not trustworthy."""
        if (
            not token.isascii()
        ):  # a JWT is base64url and dots; other text (a lone surrogate) cannot even be encoded
            raise Unauthorized("The token is malformed.")
        known = self._verified.get(token)
        if known is not None and known[0] in self._keys:
            principal = known[1]
            if time.time() >= principal.expires_at + self.leeway:
                del self._verified[token]
                raise Unauthorized("The token has expired.")
            await self._check_revocation(principal)
            return principal
        principal = await self._verify_signed(token)
        await self._check_revocation(principal)
        return principal

    async def _verify_signed(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The token names no signing key.")
        key = await self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The token is not valid.") from exc
        try:
            principal = Principal(
                user_id=uuid.UUID(str(claims["sub"])),
                role=str(claims.get("role", "user")),
                session_id=str(claims["sid"]),
                token_id=str(claims["jti"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                token=token,
                scopes=tuple(str(claims["scp"]).split()) if "scp" in claims else None,
            )
        except (ValueError, TypeError) as exc:
            raise Unauthorized("The token's claims are not valid.") from exc
        if len(self._verified) >= self.remembered:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (kid, principal)
        return principal

    async def _check_revocation(self, p: Principal) -> None:
        if self.redis is None:
            return
        try:
            revoked, valid_after = await self.redis.mget(
                revoked_session_key(self.redis_prefix, p.session_id),
                valid_after_key(self.redis_prefix, p.user_id),
            )
        except (RedisError, OSError) as exc:
            if outages.note(exc, where="token revocation check", probes={REDIS: self.redis.ping}) is None:
                raise  # a wrong command or key type is a bug: a 500 with its traceback
            raise ServiceUnavailable("Sessions cannot be checked right now; try again shortly.") from exc
        outages.up(REDIS)
        if revoked is not None:
            raise Unauthorized("The session has ended; sign in again.")
        if valid_after is not None and p.issued_at < int(valid_after):
            raise Unauthorized("The session has ended; sign in again.")


def _identity_unreachable() -> ServiceUnavailable:
    return ServiceUnavailable("The identity service cannot be reached to verify tokens; try again shortly.")


_bearer = HTTPBearer(auto_error=False)


def _verifier(request: Request) -> TokenVerifier:
    return request.app.state.ctx.verifier


async def optional_user(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | None:
    """The caller if a token was sent; a bad token is still a 401, never a silent guest."""
    if creds is None:
        if request.headers.get("authorization"):
            raise Unauthorized("The Authorization header must be 'Bearer <token>'.")
        return None
    principal = await _verifier(request).verify(creds.credentials)
    request.state.principal = principal
    return principal


async def current_user(principal: Annotated[Principal | None, Depends(optional_user)]) -> Principal:
    """The signed-in caller (user or admin); 401 without a valid token."""
    if principal is None:
        raise Unauthorized("Sign in to use this.")
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The signed-in admin; 403 for anybody else."""
    if not principal.is_admin:
        raise Forbidden("Only admins may do this.")
    return principal


async def internal_caller(
    request: Request, x_internal_token: Annotated[str | None, Header(include_in_schema=False)] = None
) -> None:
    """Refuse any caller of an ``/internal`` route without the service credential."""
    expected = request.app.state.ctx.settings.internal_api_token.get_secret_value().encode()
    if x_internal_token is None or not hmac.compare_digest(x_internal_token.encode(), expected):
        raise Forbidden("This route is for the shop's own services.")


OptionalUser = Annotated[Principal | None, Depends(optional_user)]
CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(require_admin)]
InternalCaller = Annotated[None, Depends(internal_caller)]
