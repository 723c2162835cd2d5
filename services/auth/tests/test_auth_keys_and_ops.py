"""Signing-key rotation, the outbox event, the admin CLI, dev bootstrap, and the cost of a hash."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from auth_testkit import PASSWORD, bearer, new_email, sign_in, sign_up
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from libs.common.config import ConfigurationError
from libs.common.events.tables import outbox_t
from libs.common.testing import Infra, assert_problem, eventually, running_app, settings_for
from services.auth import signing
from services.auth.__main__ import rotate_key
from services.auth.app import create_app, make_passwords
from services.auth.context import AuthContext
from services.auth.models import User
from services.auth.settings import AuthSettings


async def test_rotation_signs_with_the_new_key_and_old_tokens_stay_valid(
    client: httpx.AsyncClient, auth_settings: AuthSettings
) -> None:
    address = new_email()
    before = await sign_up(client, email_=address)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    await rotate_key(auth_settings, argparse.Namespace())
    after = await sign_in(client, address)
    new_kid = jwt.get_unverified_header(after["access_token"])["kid"]
    assert new_kid != old_kid
    kids = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= kids
    for tokens in (before, after):
        assert (await client.get("/users/me", headers=bearer(tokens))).status_code == 200


async def test_a_token_signed_by_an_unknown_key_is_refused(client: httpx.AsyncClient, keys: Any) -> None:
    tokens = await sign_up(client)
    forged = keys.mint(user_id=tokens["user"]["id"], role="admin")  # right claims, foreign key
    assert_problem(await client.get("/admin/users", headers={"Authorization": f"Bearer {forged}"}), 401)


async def test_registration_writes_user_registered_to_the_outbox_and_it_is_sent(
    client: httpx.AsyncClient, ctx: AuthContext
) -> None:
    body = await sign_up(client, name="Evented")
    assert ctx.db is not None

    async def sent() -> None:
        async with ctx.db.session() as session:  # type: ignore[union-attr]
            rows = (
                await session.execute(
                    sa.select(outbox_t.c.payload, outbox_t.c.sent_at).where(
                        outbox_t.c.routing_key == "user.registered"
                    )
                )
            ).all()
        mine = [
            (json.loads(r.payload), r.sent_at)
            for r in rows
            if json.loads(r.payload)["data"]["user_id"] == body["user"]["id"]
        ]
        assert len(mine) == 1
        event, sent_at = mine[0]
        assert event["producer"] == "auth" and event["type"] == "user.registered"
        assert event["data"] == {
            "user_id": body["user"]["id"],
            "email": body["user"]["email"],
            "name": "Evented",
        }
        assert sent_at is not None  # the relay published it with a confirm

    await eventually(sent)


async def test_create_admin_cli_creates_then_promotes(client: httpx.AsyncClient, infra: Infra) -> None:
    address = new_email("ops")
    await sign_up(client, email_=address)
    env = {**os.environ, **infra.env(), "LOG_JSON": "false"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
        "create-admin",
        "--email",
        address.upper(),
        "--password",
        PASSWORD,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"promoted to admin" in out
    promoted = await sign_in(client, address)
    assert (await client.get("/admin/users", headers=bearer(promoted))).status_code == 200
    weak = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.auth",
        "create-admin",
        "--email",
        new_email(),
        "--password",
        "weak",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(weak.communicate(), timeout=60)
    assert weak.returncode != 0 and b"at least 8" in err


async def test_dev_mode_creates_the_configured_admin_once(infra: Infra, auth_settings: AuthSettings) -> None:
    address = new_email("devadmin")
    dev = settings_for(
        AuthSettings,
        infra,
        env="dev",
        admin_email=address,
        admin_password="Dev-admin-pass-1",
        event_bus="memory",
        jwks_url=auth_settings.jwks_url,
    )
    for _ in range(2):  # the second start finds the admin and leaves it alone
        async with running_app(create_app(dev)) as app_client:
            resp = await app_client.post(
                "/auth/login", json={"email": address, "password": "Dev-admin-pass-1"}
            )
            assert resp.status_code == 200, resp.text
            assert (
                jwt.decode(resp.json()["access_token"], options={"verify_signature": False})["role"]
                == "admin"
            )


async def test_one_password_hash_costs_tens_of_milliseconds(auth_settings: AuthSettings) -> None:
    passwords = make_passwords(auth_settings)
    await passwords.hash("warm-up-Password-1")
    rounds = 10
    start = time.perf_counter()
    for _ in range(rounds):
        stored = await passwords.hash("Measure-me-please-1")
    per_hash = (time.perf_counter() - start) / rounds
    start = time.perf_counter()
    for _ in range(rounds):
        assert await passwords.verify(stored, "Measure-me-please-1")
    per_verify = (time.perf_counter() - start) / rounds
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    print(
        f"\nargon2id m=19456 KiB t=2 p=1: hash {per_hash * 1000:.1f} ms, verify {per_verify * 1000:.1f} ms "
        f"(one core bounds logins at about {1 / per_verify:.0f}/s)"
    )
    assert 0.001 < per_verify < 1.0


async def test_a_configured_pem_key_signs_and_stored_keys_stay_published(
    infra: Infra, auth_settings: AuthSettings
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    configured = settings_for(
        AuthSettings,
        infra,
        event_bus="memory",
        jwt_private_key=pem,
        jwt_key_id="ops-key-1",
        jwks_url=auth_settings.jwks_url,
    )
    async with running_app(create_app(configured)) as app_client:
        resp = await app_client.post(
            "/auth/register", json={"email": new_email(), "password": PASSWORD, "name": "Pem"}
        )
        assert resp.status_code == 201, resp.text
        token = resp.json()["access_token"]
        assert jwt.get_unverified_header(token)["kid"] == "ops-key-1"
        jwks = (await app_client.get("/.well-known/jwks.json")).json()["keys"]
        assert "ops-key-1" in {k["kid"] for k in jwks} and len(jwks) > 1  # the generated ones too
        public = jwt.PyJWK(next(k for k in jwks if k["kid"] == "ops-key-1")).key
        jwt.decode(token, public, algorithms=["RS256"], audience="shop", issuer="shop-auth")


async def test_login_rehashes_a_password_stored_with_old_parameters(
    client: httpx.AsyncClient, ctx: AuthContext
) -> None:
    address = new_email()
    body = await sign_up(client, email_=address)
    weak_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert ctx.db is not None
    async with ctx.db.session() as session, session.begin():
        await session.execute(
            sa.update(User).where(User.id == uuid.UUID(body["user"]["id"])).values(password_hash=weak_hash)
        )
    await sign_in(client, address)
    async with ctx.db.session() as session:
        stored = await session.scalar(sa.select(User.password_hash).where(User.email == address))
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    await sign_in(client, address)


async def test_openapi_documents_every_auth_route(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/forgot-password",
        "/auth/verify-otp",
        "/auth/reset-password",
        "/users/me",
        "/users/change-password",
        "/admin/users",
        "/admin/users/{user_id}",
        "/.well-known/jwks.json",
    ):
        assert path in paths, path


def test_production_refuses_to_log_reset_codes(infra: Infra) -> None:
    with pytest.raises(ConfigurationError):
        settings_for(AuthSettings, infra, env="prod", internal_api_token="s3cret-token", email_backend="log")


async def test_a_rotated_key_is_published_before_it_signs(
    ctx: AuthContext, auth_settings: AuthSettings
) -> None:
    assert ctx.db is not None
    slow = auth_settings.model_copy(update={"signing_key_cache_seconds": 3600})
    before = await signing.load(ctx.db, slow)
    new_kid = await signing.rotate(ctx.db, auth_settings)
    after = await signing.load(ctx.db, slow)
    assert new_kid in {k["kid"] for k in after.jwks()["keys"]}
    assert after.signing_kid == before.signing_kid != new_kid
    assert (await signing.load(ctx.db, auth_settings)).signing_kid == new_kid  # no grace configured
