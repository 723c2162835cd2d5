"""Token verification refuses every forgery and every ended session, and fails closed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from redis.asyncio import Redis

from libs.common.auth import TokenVerifier, revoke_session, revoke_user_tokens
from libs.common.errors import ServiceUnavailable, Unauthorized
from libs.common.testing import Infra, TestKeys
from libs.common.testing.apps import free_port


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, object], claims: dict[str, object], sign: bytes | None = None) -> str:
    """A compact JWT with any header, signed with HMAC-SHA256 over ``sign`` (or unsigned)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if sign is None:
        return signing_input + "."
    return signing_input + "." + b64(hmac.new(sign, signing_input.encode(), hashlib.sha256).digest())


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest_asyncio.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    r = Redis.from_url(infra.redis_url)
    yield r
    await r.aclose()


@pytest.fixture
def verifier(keys: TestKeys, redis: Redis, infra: Infra) -> TokenVerifier:
    return TokenVerifier(
        jwks_url=keys.jwks_url,
        issuer=keys.issuer,
        audience=keys.audience,
        redis=redis,
        redis_prefix=infra.redis_prefix,
    )


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as info:
        await verifier.verify(token)
    return info.value.detail


async def test_valid_token_is_accepted_with_its_claims(verifier: TokenVerifier, keys: TestKeys) -> None:
    user_id = uuid.uuid4()
    token = keys.mint(user_id=user_id, role="admin", sid="s-1")
    p = await verifier.verify(token)
    assert (p.user_id, p.role, p.session_id, p.is_admin, p.token) == (user_id, "admin", "s-1", True, token)


async def test_unsigned_alg_none_token_is_refused(verifier: TokenVerifier, keys: TestKeys) -> None:
    good = claims_of(keys.mint(role="admin"))
    assert "algorithm" in await refused(verifier, forge({"alg": "none", "typ": "JWT", "kid": keys.kid}, good))
    assert await refused(verifier, forge({"alg": "None", "kid": keys.kid}, good))


async def test_hs256_token_signed_with_the_public_key_is_refused(
    verifier: TokenVerifier, keys: TestKeys
) -> None:
    pem = (
        keys.keys[keys.kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    token = forge(
        {"alg": "HS256", "typ": "JWT", "kid": keys.kid}, claims_of(keys.mint(role="admin")), sign=pem
    )
    await refused(verifier, token)


async def test_expired_token_is_refused(verifier: TokenVerifier, keys: TestKeys) -> None:
    token = keys.mint(issued_at=int(time.time()) - 1000, expires_in=900)
    assert "expired" in await refused(verifier, token)


async def test_token_for_another_audience_or_issuer_is_refused(
    verifier: TokenVerifier, keys: TestKeys
) -> None:
    await refused(verifier, keys.mint(audience="another-shop"))
    await refused(verifier, keys.mint(issuer="evil-auth"))


async def test_token_missing_a_required_claim_is_refused(verifier: TokenVerifier, keys: TestKeys) -> None:
    for claim in ("sid", "exp", "sub", "aud", "iss", "jti", "iat"):
        await refused(verifier, keys.mint(drop=(claim,)))


async def test_tampered_payload_is_refused(verifier: TokenVerifier, keys: TestKeys) -> None:
    header, _, signature = keys.mint(role="user").split(".")
    claims = claims_of(keys.mint(role="user"))
    claims["role"] = "admin"
    await refused(verifier, f"{header}.{b64(json.dumps(claims).encode())}.{signature}")
    await refused(verifier, "not-a-jwt")


async def test_unknown_kid_is_refused_and_a_key_published_later_is_accepted(
    keys: TestKeys, redis: Redis, infra: Infra
) -> None:
    verifier = TokenVerifier(
        jwks_url=keys.jwks_url,
        issuer=keys.issuer,
        audience=keys.audience,
        redis=redis,
        redis_prefix=infra.redis_prefix,
        min_refresh_interval=0,
    )
    await verifier.verify(keys.mint())
    _, payload, sig = keys.mint().split(".")
    forged_header = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "nobody-knows"}).encode())
    assert "unknown key" in await refused(verifier, f"{forged_header}.{payload}.{sig}")

    rotated = keys.add_key()
    try:
        p = await verifier.verify(keys.mint(kid=rotated, sid="rotated"))
        assert p.session_id == "rotated"
    finally:
        del keys.keys[rotated]


async def test_a_token_accepted_before_is_still_refused_once_expired(
    verifier: TokenVerifier, keys: TestKeys
) -> None:
    token = keys.mint(expires_in=2)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first  # remembered: no second RSA check, same caller
    await asyncio.sleep(max(0.0, first.expires_at - time.time()) + 0.05)
    assert "expired" in await refused(verifier, token)


async def test_a_token_accepted_before_is_refused_once_its_key_is_withdrawn(
    keys: TestKeys, redis: Redis, infra: Infra
) -> None:
    verifier = TokenVerifier(
        jwks_url=keys.jwks_url,
        issuer=keys.issuer,
        audience=keys.audience,
        redis=redis,
        redis_prefix=infra.redis_prefix,
        min_refresh_interval=0,
    )
    withdrawn = keys.add_key()
    token = keys.mint(kid=withdrawn)
    await verifier.verify(token)
    del keys.keys[withdrawn]
    _, payload, sig = keys.mint().split(".")
    stranger = b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "not-published"}).encode())
    await refused(verifier, f"{stranger}.{payload}.{sig}")  # makes the verifier fetch the JWKS again
    assert "unknown key" in await refused(verifier, token)


async def test_unknown_kids_do_not_turn_into_a_jwks_request_each(
    keys: TestKeys, redis: Redis, infra: Infra
) -> None:
    verifier = TokenVerifier(
        jwks_url=keys.jwks_url,
        issuer=keys.issuer,
        audience=keys.audience,
        redis=redis,
        redis_prefix=infra.redis_prefix,
        min_refresh_interval=60,
    )
    await verifier.verify(keys.mint())
    fetched = verifier._fetched_at
    _, payload, sig = keys.mint().split(".")
    for i in range(5):
        h = b64(json.dumps({"alg": "RS256", "kid": f"guess-{i}"}).encode())
        await refused(verifier, f"{h}.{payload}.{sig}")
    assert verifier._fetched_at == fetched


async def test_revoked_session_is_refused(
    verifier: TokenVerifier, keys: TestKeys, redis: Redis, infra: Infra
) -> None:
    sid = uuid.uuid4().hex
    token, other = keys.mint(sid=sid), keys.mint()
    await verifier.verify(token)
    await revoke_session(redis, infra.redis_prefix, sid, ttl_seconds=60)
    assert "session has ended" in await refused(verifier, token)
    await verifier.verify(other)


async def test_tokens_issued_before_a_user_wide_revocation_are_refused(
    verifier: TokenVerifier, keys: TestKeys, redis: Redis, infra: Infra
) -> None:
    user_id = uuid.uuid4()
    now = int(time.time())
    old = keys.mint(user_id=user_id, issued_at=now - 10)
    await revoke_user_tokens(redis, infra.redis_prefix, user_id, ttl_seconds=60, now=now - 5)
    await refused(verifier, old)
    assert (await verifier.verify(keys.mint(user_id=user_id))).user_id == user_id
    await verifier.verify(keys.mint(issued_at=now - 10))


async def test_unreachable_redis_fails_closed(keys: TestKeys, infra: Infra) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    verifier = TokenVerifier(
        jwks_url=keys.jwks_url,
        issuer=keys.issuer,
        audience=keys.audience,
        redis=dead,
        redis_prefix=infra.redis_prefix,
    )
    try:
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(keys.mint())
    finally:
        await dead.aclose()


async def test_unreachable_jwks_is_a_503_not_a_pass(redis: Redis, infra: Infra, keys: TestKeys) -> None:
    verifier = TokenVerifier(
        jwks_url=f"http://127.0.0.1:{free_port()}/.well-known/jwks.json",
        issuer=keys.issuer,
        audience=keys.audience,
        redis=redis,
        redis_prefix=infra.redis_prefix,
    )
    with pytest.raises(ServiceUnavailable):
        await verifier.verify(keys.mint())
